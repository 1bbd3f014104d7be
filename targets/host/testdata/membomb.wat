;; membomb: grows memory 16 pages (1 MiB) at a time until the host refuses,
;; then traps.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $grow
      (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1))
        (then unreachable))
      (br $grow))))
