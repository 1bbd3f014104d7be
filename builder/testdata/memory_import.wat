;; Imports its memory, which ferry-host does not offer.
(module
  (import "env" "memory" (memory 1))
  (func (export "_start")))
