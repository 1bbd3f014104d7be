;; hello.wat: a copy of examples/hello-wat/hello.wat for the fleet example.
;; A WAGI (CGI over WASI preview 1) command: ferry-host runs _start once per
;; request and sends what it writes to stdout (fd 1) as the HTTP response,
;; headers first, then a blank line, then the body. It answers every path
;; with 200, so it also serves as its own health check.
;; Rebuild with: wat2wasm hello.wat -o hello.wasm
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; The response at offset 16; the iovec {ptr, len} at offset 0; the
  ;; count of bytes written goes to offset 8.
  (data (i32.const 16) "content-type: text/plain\n\nHello from WAT on ferry!\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 51))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
