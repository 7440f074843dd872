;; The DATA/BDAT encoder's line scan, 16 bytes at a time (WebAssembly SIMD).
;; Built into line-scan-wasm.ts by `node scripts/build-wasm.mjs`; the unit
;; test test/unit/line-scan.test.ts fails when that file is out of date.
;;
;; The encoder copies a window of the message (at most 64 KiB) into this
;; memory and asks for the first pair of adjacent bytes (p, p + 1), p in
;; [q, limit), that needs a change:
;;   - a CR at p not followed by LF (a bare CR),
;;   - an LF at p + 1 not preceded by CR (a bare LF),
;;   - with stuff != 0, an LF at p followed by "." at p + 1 (a dot to double).
;; The first two are one test: (byte p is CR) XOR (byte p + 1 is LF).
;; Lanes past `limit` may read bytes after the window (the memory is larger
;; than any window); a hit there is not reported.
(module
  (memory (export "memory") 3)
  (func (export "scan") (param $q i32) (param $limit i32) (param $stuff i32) (result i32)
    (local $x v128) (local $y v128) (local $m i32) (local $dots v128)
    ;; all ones when stuffing, else zero: masks the dot test away for BDAT
    (local.set $dots (i8x16.splat (i32.sub (i32.const 0) (local.get $stuff))))
    (block $none
      (loop $next
        (br_if $none (i32.ge_u (local.get $q) (local.get $limit)))
        (local.set $x (v128.load (local.get $q)))
        (local.set $y (v128.load offset=1 (local.get $q)))
        (local.set $m (i8x16.bitmask
          (v128.or
            (v128.xor
              (i8x16.eq (local.get $x) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13))
              (i8x16.eq (local.get $y) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
            (v128.and (local.get $dots)
              (v128.and
                (i8x16.eq (local.get $x) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))
                (i8x16.eq (local.get $y) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46)))))))
        (if (local.get $m)
          (then
            (local.set $q (i32.add (local.get $q) (i32.ctz (local.get $m))))
            (return (select (local.get $q) (i32.const -1) (i32.lt_u (local.get $q) (local.get $limit))))))
        (local.set $q (i32.add (local.get $q) (i32.const 16)))
        (br $next)))
    (i32.const -1)))
