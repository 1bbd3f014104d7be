;; start: a module with a start section (run by wazero at instantiation),
;; which the interrupt instrumentation leaves to wazero's own checks.
(module
  (memory (export "memory") 1)
  (func $init)
  (start $init)
  (func (export "_start")))
