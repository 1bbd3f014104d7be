;; sleep: a WAGI guest that asks poll_oneoff to sleep for an hour, forever:
;; the whole request is spent inside one host call.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    ;; subscription at 0 (48 bytes): userdata 0, tag 0 (clock),
    ;; clock id 1 (monotonic), timeout 3600 s relative, precision 0, flags 0
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 3600000000000))
    (loop $forever
      (drop (call $poll (i32.const 0) (i32.const 128) (i32.const 1) (i32.const 256)))
      (br $forever))))
