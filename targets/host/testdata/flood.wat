;; flood: a hostile WAGI guest that floods stderr. It fills 64 KiB with
;; "x\n" (32,768 one-byte lines), then writes them to stderr with fd_write
;; forever, ignoring every error. Each call is a host call that logs
;; thousands of lines, so a deadline checked only in guest code (every few
;; thousand loop iterations) would take minutes to stop it.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "_start")
    (local $i i32)
    (block $done
      (loop $fill
        (br_if $done (i32.ge_u (local.get $i) (i32.const 65536)))
        (i32.store16 (i32.add (i32.const 1024) (local.get $i)) (i32.const 0x0a78)) ;; "x\n"
        (local.set $i (i32.add (local.get $i) (i32.const 2)))
        (br $fill)))
    (i32.store (i32.const 0) (i32.const 1024))  ;; iovec.buf
    (i32.store (i32.const 4) (i32.const 65536)) ;; iovec.len
    (loop $forever
      (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br $forever))))
