;; reactor-wat: the reactor floor without Go. ferry_handle answers every
;; request with the same head and 26-byte body as testdata/reactor-floor
;; (Content-Type: text/plain, "Hello, bench, from ferry!\n"), through
;; resp_start and resp_write, so BenchmarkReactorFloor can tell the
;; runtime's own cost per request from the Go runtime's and the SDK's.
(module
  (import "ferry" "resp_start" (func $resp_start (param i32 i32 i32) (result i32)))
  (import "ferry" "resp_write" (func $resp_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "Content-Type: text/plain\n")
  (data (i32.const 128) "Hello, bench, from ferry!\n")
  (func (export "_initialize"))
  (func (export "ferry_handle") (result i32)
    (drop (call $resp_start (i32.const 200) (i32.const 64) (i32.const 25)))
    (drop (call $resp_write (i32.const 128) (i32.const 26)))
    (i32.const 0)))
