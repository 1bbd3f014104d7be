;; floodlog: a hostile WAGI guest that floods the ferry log host function:
;; 64 KiB messages of "x\n" lines, forever.
(module
  (import "ferry" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (func (export "_start")
    (local $i i32)
    (block $done
      (loop $fill
        (br_if $done (i32.ge_u (local.get $i) (i32.const 65536)))
        (i32.store16 (i32.add (i32.const 1024) (local.get $i)) (i32.const 0x0a78)) ;; "x\n"
        (local.set $i (i32.add (local.get $i) (i32.const 2)))
        (br $fill)))
    (loop $forever
      (call $log (i32.const 0) (i32.const 1024) (i32.const 65536))
      (br $forever))))
