;; A minimal reactor: _initialize once, ferry_handle per request; it uses
;; ferry's own host module.
(module
  (import "ferry" "log" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "_initialize"))
  (func (export "ferry_handle") (result i32) (i32.const 0)))
