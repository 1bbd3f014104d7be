;; echo: answers text/plain with the environment (one NAME=value per line),
;; a line "--args--", the arguments (one per line), a line "--body--" and
;; then the request body copied from stdin.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (memory (export "memory") 4)
  (data (i32.const 64) "Content-Type: text/plain\n\n")   ;; 26 bytes
  (data (i32.const 96) "--args--\n")                     ;; 9 bytes
  (data (i32.const 112) "--body--\n")                    ;; 9 bytes
  ;; write(ptr, len) to stdout
  (func $write (param $p i32) (param $n i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  ;; nul2nl(ptr, len): replace NUL bytes by newlines
  (func $nul2nl (param $p i32) (param $n i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (if (i32.eqz (i32.load8_u (local.get $p)))
          (then (i32.store8 (local.get $p) (i32.const 10))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $l))))
  (func (export "_start")
    (local $n i32)
    (call $write (i32.const 64) (i32.const 26))
    ;; environment: count at 16, size at 20; pointers at 4096, data at 65536
    (drop (call $environ_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $environ_get (i32.const 4096) (i32.const 65536)))
    (call $nul2nl (i32.const 65536) (i32.load (i32.const 20)))
    (call $write (i32.const 65536) (i32.load (i32.const 20)))
    (call $write (i32.const 96) (i32.const 9))
    (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $args_get (i32.const 4096) (i32.const 65536)))
    (call $nul2nl (i32.const 65536) (i32.load (i32.const 20)))
    (call $write (i32.const 65536) (i32.load (i32.const 20)))
    (call $write (i32.const 112) (i32.const 9))
    ;; copy stdin to stdout through a 64 KiB buffer at 131072
    (block $eof
      (loop $copy
        (i32.store (i32.const 24) (i32.const 131072))
        (i32.store (i32.const 28) (i32.const 65536))
        (br_if $eof (i32.ne (call $fd_read (i32.const 0) (i32.const 24) (i32.const 1) (i32.const 32)) (i32.const 0)))
        (local.set $n (i32.load (i32.const 32)))
        (br_if $eof (i32.eqz (local.get $n)))
        (call $write (i32.const 131072) (local.get $n))
        (br $copy)))))
