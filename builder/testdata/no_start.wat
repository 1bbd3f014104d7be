;; Exports no _start: not runnable as a WAGI module.
(module
  (memory (export "memory") 1)
  (func (export "main")))
