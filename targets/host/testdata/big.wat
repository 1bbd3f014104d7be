;; big: writes a CGI header, then 64 KiB chunks of 'x' until a write fails:
;; a response without end (the host caps it).
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 64) "Content-Type: text/plain\n\n") ;; 26 bytes
  (func (export "_start")
    (local $i i32)
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 26))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (memory.fill (i32.const 65536) (i32.const 120) (i32.const 65536))
    ;; 1600 chunks of 64 KiB = 100 MiB
    (block $done
      (loop $more
        (br_if $done (i32.ge_u (local.get $i) (i32.const 1600)))
        (i32.store (i32.const 0) (i32.const 65536))
        (i32.store (i32.const 4) (i32.const 65536))
        (br_if $done (i32.ne (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)) (i32.const 0)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $more)))))
