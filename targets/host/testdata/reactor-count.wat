;; reactor-count: answers each request with how many requests its instance
;; has served (one digit, "1" to "9"), so a test can see instances being
;; reused and recycled.
(module
  (import "ferry" "resp_write" (func $resp_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $n (mut i32) (i32.const 0))
  (func (export "_initialize"))
  (func (export "ferry_handle") (result i32)
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (i32.store8 (i32.const 0) (i32.add (i32.const 48) (global.get $n)))
    (drop (call $resp_write (i32.const 0) (i32.const 1)))
    (i32.const 0)))
