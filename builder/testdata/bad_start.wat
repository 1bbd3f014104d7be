;; Exports _start with parameters: not a WASI command entry point.
(module
  (func (export "_start") (param i32)))
