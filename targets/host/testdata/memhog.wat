;; memhog: a WAGI guest that grows its memory to 120 pages (7.5 MiB, near an
;; 8 MiB limit), touches every page, holds it for 200 ms (poll_oneoff),
;; then answers "held".
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 512) "Content-Type: text/plain\n\nheld\n") ;; 31 bytes
  (func (export "_start")
    (local $p i32)
    (if (i32.eq (memory.grow (i32.const 119)) (i32.const -1)) (then unreachable))
    (local.set $p (i32.const 65536))
    (block $done
      (loop $touch
        (br_if $done (i32.ge_u (local.get $p) (i32.const 7864320)))
        (i32.store8 (local.get $p) (i32.const 1))
        (local.set $p (i32.add (local.get $p) (i32.const 4096)))
        (br $touch)))
    ;; sleep 200 ms: clock subscription at 0, out at 128, nevents at 256
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 200000000))
    (drop (call $poll (i32.const 0) (i32.const 128) (i32.const 1) (i32.const 256)))
    (i32.store (i32.const 300) (i32.const 512))
    (i32.store (i32.const 304) (i32.const 31))
    (drop (call $fd_write (i32.const 1) (i32.const 300) (i32.const 1) (i32.const 308)))))
