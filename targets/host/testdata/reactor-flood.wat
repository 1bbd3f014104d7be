;; reactor-flood: a hostile reactor guest whose handler floods stderr with
;; 64 KiB of "x\n" lines per fd_write, forever.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "_initialize")
    (local $i i32)
    (block $done
      (loop $fill
        (br_if $done (i32.ge_u (local.get $i) (i32.const 65536)))
        (i32.store16 (i32.add (i32.const 1024) (local.get $i)) (i32.const 0x0a78)) ;; "x\n"
        (local.set $i (i32.add (local.get $i) (i32.const 2)))
        (br $fill)))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 65536)))
  (func (export "ferry_handle") (result i32)
    (loop $forever
      (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br $forever))
    (i32.const 0)))
