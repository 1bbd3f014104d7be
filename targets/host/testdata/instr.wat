;; instr: exercises the instruction decoder of the interrupt instrumentation:
;; an imported and a defined global, a table, SIMD, bulk memory, br_table,
;; typed select, i64 and float constants and nested loops. count(n) loops n
;; times and returns n.
(module
  (import "env" "g" (global $imported i32))
  (global $defined (mut i64) (i64.const -1))
  (memory 1)
  (table 1 funcref)
  (elem (i32.const 0) $count)
  (func $count (export "count") (param $n i32) (result i32)
    (local $i i32) (local $v v128)
    (local.set $v (v128.const i32x4 1 2 3 4))
    (local.set $v (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v)))
    (drop (i32x4.extract_lane 2 (local.get $v)))
    (memory.fill (i32.const 0) (i32.const 0) (i32.const 16))
    (memory.copy (i32.const 16) (i32.const 0) (i32.const 16))
    (drop (select (result i32) (i32.const 1) (i32.const 2) (global.get $imported)))
    (drop (f64.const 1.5))
    (drop (f32.const 2.5))
    (global.set $defined (i64.const 0x7fffffffffffffff))
    (block $out
      (loop $outer
        (br_if $out (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (block $a (block $b
          (br_table $a $b $outer (i32.and (local.get $i) (i32.const 1)))))
        (loop $inner (br_if $inner (i32.const 0)))
        (br $outer)))
    (local.get $i)))
