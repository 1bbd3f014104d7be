;; Imports a global and a table, which ferry-host does not offer.
(module
  (import "env" "g" (global i32))
  (import "env" "t" (table 1 funcref))
  (func (export "_start")))
