;; hello: the smallest WAGI guest. Writes a CGI response to stdout.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "Content-Type: text/plain\n\nhello\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))  ;; iov.base
    (i32.store (i32.const 4) (i32.const 32))  ;; iov.len
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
