;; flaky-health: a reactor that answers 200 "ok" to the first three requests
;; its instance serves and 500 "sick" to every later one, so that a version
;; passes its deploy probe and then turns unhealthy (run it with
;; max_concurrency = 1: one instance, one counter).
(module
  (import "ferry" "resp_start" (func $resp_start (param i32 i32 i32) (result i32)))
  (import "ferry" "resp_write" (func $resp_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $n (mut i32) (i32.const 0))
  (data (i32.const 0) "ok\n")
  (data (i32.const 16) "sick\n")
  (data (i32.const 32) "Content-Type: text/plain\n")
  (func (export "_initialize"))
  (func (export "ferry_handle") (result i32)
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (if (i32.le_u (global.get $n) (i32.const 3))
      (then
        (drop (call $resp_start (i32.const 200) (i32.const 32) (i32.const 25)))
        (drop (call $resp_write (i32.const 0) (i32.const 3))))
      (else
        (drop (call $resp_start (i32.const 500) (i32.const 32) (i32.const 25)))
        (drop (call $resp_write (i32.const 16) (i32.const 5)))))
    (i32.const 0)))
