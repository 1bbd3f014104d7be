;; varecho: a WAGI guest that answers text/plain with the value of its
;; component variable "key", read through ferry's var_get host function
;; (build: wat2wasm varecho.wat -o varecho.wasm).
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "ferry" "var_get" (func $var_get (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "Content-Type: text/plain\n\n")  ;; 26 bytes
  (data (i32.const 48) "key")                            ;; 3 bytes
  (func $write (param $p i32) (param $n i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (local $n i32)
    (call $write (i32.const 16) (i32.const 26))
    ;; the value goes to [1024, 1024+4096)
    (local.set $n (call $var_get (i32.const 48) (i32.const 3) (i32.const 1024) (i32.const 4096)))
    (if (i32.gt_s (local.get $n) (i32.const 0))
      (then (call $write (i32.const 1024) (local.get $n))))))
