;; baddata: a WAGI module whose data segment lies outside its one page of
;; memory, so instantiating it fails (it compiles and validates).
(module
  (memory (export "memory") 1)
  (data (i32.const 70000) "out of bounds")
  (func (export "_start")))
