;; The ink scan's kernel (lib/plan/ink_scan.ts reads it; `deno task wasm` compiles it to ink_scan.wasm, and
;; tests/plan/ink_scan_test.ts checks that the committed binary is this text compiled). WebAssembly SIMD: 16 bytes,
;; four RGBA pixels, per instruction.
(module
  (memory (export "memory") 1)

  ;; One band of 1 to 8 rows of RGBA pixels at offset 0, `stride` bytes per row (`segs` segments of 8 px, 32 bytes).
  ;; Per segment s: at `out` + 4 s the lowest R, G, B and A of its pixels (one byte each, as RGBA in memory), at `out`
  ;; + 4 segs + 4 s the highest, and at `out` + 8 segs + s one byte of flags: 1 where every row of the segment is flat
  ;; (the highest minus the lowest of each channel over its 8 px at most `range`), 2 where every column is (over the
  ;; band's rows).
  (func (export "band") (param $stride i32) (param $rows i32) (param $segs i32) (param $range i32) (param $out i32)
    (local $s i32) (local $p i32) (local $q i32) (local $end i32) (local $across i32)
    (local $a v128) (local $b v128) (local $lo0 v128) (local $hi0 v128) (local $lo1 v128) (local $hi1 v128)
    (local $limit v128) (local $lo v128) (local $hi v128) (local $first v128)
    (local.set $limit (i8x16.splat (local.get $range)))
    (block $done
      (br_if $done (i32.eqz (local.get $segs)))
      (loop $segment
        ;; Per column of the segment (pixels 0–3 in $lo0/$hi0, 4–7 in $lo1/$hi1): the lowest and highest of each channel.
        (local.set $p (i32.shl (local.get $s) (i32.const 5)))
        (local.set $lo0 (v128.load (local.get $p)))
        (local.set $lo1 (v128.load offset=16 (local.get $p)))
        (local.set $hi0 (local.get $lo0))
        (local.set $hi1 (local.get $lo1))
        (local.set $across (i32.const 1))
        (local.set $q (local.get $p))
        (local.set $end (i32.add (local.get $p) (i32.mul (local.get $rows) (local.get $stride))))
        (loop $row
          (local.set $a (v128.load (local.get $q)))
          (local.set $b (v128.load offset=16 (local.get $q)))
          (local.set $lo0 (i8x16.min_u (local.get $lo0) (local.get $a)))
          (local.set $hi0 (i8x16.max_u (local.get $hi0) (local.get $a)))
          (local.set $lo1 (i8x16.min_u (local.get $lo1) (local.get $b)))
          (local.set $hi1 (i8x16.max_u (local.get $hi1) (local.get $b)))
          ;; Whether this row is flat too, while every row so far was: a row of one colour (most of a page) at once,
          ;; else its 8 px folded to one lowest and one highest pixel.
          (if (local.get $across)
            (then
              (local.set $first (i32x4.splat (i32x4.extract_lane 0 (local.get $a))))
              (if (i32.eqz (i32x4.all_true (v128.and (i32x4.eq (local.get $a) (local.get $first))
                                                      (i32x4.eq (local.get $b) (local.get $first)))))
                (then
                  (local.set $lo (call $fold_lo (i8x16.min_u (local.get $a) (local.get $b))))
                  (local.set $hi (call $fold_hi (i8x16.max_u (local.get $a) (local.get $b))))
                  (if (v128.any_true (i8x16.gt_u (i8x16.sub_sat_u (local.get $hi) (local.get $lo)) (local.get $limit)))
                    (then (local.set $across (i32.const 0))))))))
          (local.set $q (i32.add (local.get $q) (local.get $stride)))
          (br_if $row (i32.lt_u (local.get $q) (local.get $end))))
        (local.set $q (i32.add (local.get $out) (i32.shl (local.get $s) (i32.const 2))))
        (i32.store (local.get $q)
          (i32x4.extract_lane 0 (call $fold_lo (i8x16.min_u (local.get $lo0) (local.get $lo1)))))
        (local.set $q (i32.add (local.get $q) (i32.shl (local.get $segs) (i32.const 2))))
        (i32.store (local.get $q)
          (i32x4.extract_lane 0 (call $fold_hi (i8x16.max_u (local.get $hi0) (local.get $hi1)))))
        (i32.store8
          (i32.add (i32.add (local.get $out) (i32.shl (local.get $segs) (i32.const 3))) (local.get $s))
          (i32.or
            (local.get $across)
            (i32.shl
              (i32.eqz (v128.any_true (v128.or
                (i8x16.gt_u (i8x16.sub_sat_u (local.get $hi0) (local.get $lo0)) (local.get $limit))
                (i8x16.gt_u (i8x16.sub_sat_u (local.get $hi1) (local.get $lo1)) (local.get $limit)))))
              (i32.const 1))))
        (local.set $s (i32.add (local.get $s) (i32.const 1)))
        (br_if $segment (i32.lt_u (local.get $s) (local.get $segs))))))

  ;; The lowest of each channel over a vector's four pixels, in every pixel of the result.
  (func $fold_lo (param $v v128) (result v128)
    (local.set $v (i8x16.min_u (local.get $v)
      (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
    (i8x16.min_u (local.get $v)
      (i8x16.shuffle 4 5 6 7 0 1 2 3 12 13 14 15 8 9 10 11 (local.get $v) (local.get $v))))

  ;; The highest of each channel over a vector's four pixels, in every pixel of the result.
  (func $fold_hi (param $v v128) (result v128)
    (local.set $v (i8x16.max_u (local.get $v)
      (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
    (i8x16.max_u (local.get $v)
      (i8x16.shuffle 4 5 6 7 0 1 2 3 12 13 14 15 8 9 10 11 (local.get $v) (local.get $v)))))
