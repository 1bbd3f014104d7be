;; module: one import of each kind, exports of each kind, a start-less
;; module with loops, SIMD, bulk memory and br_table in its code, and a
;; name section (wat2wasm --debug-names). wasmbin's table tests read it.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "env" "t" (table 1 2 funcref))
  (import "env" "memory" (memory 1 4))
  (import "env" "g" (global $g i32))
  (global $counter (mut i32) (i32.const 0))
  (func $spin (export "spin") (param $n i32) (result i32)
    (local $i i32) (local $v v128)
    (local.set $v (v128.const i32x4 1 2 3 4))
    (memory.fill (i32.const 0) (i32.const 0) (i32.const 16))
    (drop (select (result i32) (i32.const 1) (i32.const 2) (global.get $g)))
    (drop (f64.const 1.5))
    (drop (i64.const -1))
    (block $out
      (loop $outer
        (br_if $out (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (block $a (block $b
          (br_table $a $b $outer (i32.and (local.get $i) (i32.const 1)))))
        (loop $inner (br_if $inner (i32.const 0)))
        (br $outer)))
    (local.get $i))
  (func $noop)
  (export "counter" (global $counter))
  (export "mem" (memory 0))
  (export "tab" (table 0)))
