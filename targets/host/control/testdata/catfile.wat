;; catfile.wat: a WAGI guest that serves a declared file. It opens
;; "static/index.html" relative to the first preopened directory (fd 3, the
;; component's declared files mounted read-only at "/") with WASI
;; path_open, and copies it to stdout after a content-type header. When the
;; file cannot be opened it answers 404. Used by the control tests of
;; declared files. Rebuild with: wat2wasm catfile.wat -o catfile.wasm
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  ;; 0: iovec for writes, 8: bytes written, 12: opened fd,
  ;; 16: iovec for reads, 24: bytes read, 1024..65536: read buffer.
  (data (i32.const 64) "static/index.html")
  (data (i32.const 96) "content-type: text/html\n\n")
  (data (i32.const 128) "status: 404\ncontent-type: text/plain\n\nno file\n")
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (local $fd i32)
    (local $n i32)
    ;; path_open(dirfd 3, dirflags 0, path, len 17, oflags 0,
    ;;           rights fd_read, inheriting 0, fdflags 0, &fd)
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 17)
          (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 12))
      (then
        (call $write (i32.const 128) (i32.const 46))
        (return)))
    (local.set $fd (i32.load (i32.const 12)))
    (call $write (i32.const 96) (i32.const 25))
    (block $done
      (loop $more
        (i32.store (i32.const 16) (i32.const 1024))
        (i32.store (i32.const 20) (i32.const 64512))
        (br_if $done (call $fd_read (local.get $fd) (i32.const 16) (i32.const 1) (i32.const 24)))
        (local.set $n (i32.load (i32.const 24)))
        (br_if $done (i32.eqz (local.get $n)))
        (call $write (i32.const 1024) (local.get $n))
        (br $more)))))
