;; A WAGI guest in WebAssembly text: a WASI command that writes a CGI
;; response (headers, blank line, body) to stdout.
;; Rebuild hello.wasm with: wat2wasm hello.wat -o hello.wasm
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: pointer 16, length 44
  (data (i32.const 0) "\10\00\00\00\2c\00\00\00")
  (data (i32.const 16) "content-type: text/plain\n\nHello from ferry!\n")
  (func (export "_start")
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
