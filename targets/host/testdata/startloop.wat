;; startloop: a start section (so the module runs on wazero's own
;; termination checks, not the interrupt instrumentation) and a _start that
;; never returns.
(module
  (memory (export "memory") 1)
  (func $init)
  (start $init)
  (func (export "_start")
    (loop $forever (br $forever))))
