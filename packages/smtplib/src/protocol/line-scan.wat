;; The DATA/BDAT encoder's line scan, 16 bytes at a time (WebAssembly SIMD).
;; Built into line-scan-wasm.ts by `node scripts/build-wasm.mjs`; the unit
;; test test/unit/line-scan.test.ts fails when that file is out of date.
;; The rule it applies is data-encoder.ts's (scanWindow, the indexOf scan);
;; the property tests require both to give the same bytes.
;;
;; The encoder copies a window of the message (at most 64 KiB) into this
;; memory at `base`. `insertions` finds every pair of adjacent bytes
;; (p, p + 1) of the window, p in [q, limit), that needs a change, and writes
;; the insertion it needs at `ins` (i32 pairs: position in the window, byte to
;; insert before it):
;;   - a CR at p not followed by LF (a bare CR): an LF at p + 1, and when
;;     stuffing and p + 1 is ".", a "." there too (p + 1 starts a line);
;;   - an LF at p + 1 not preceded by CR (a bare LF): a CR at p + 1;
;;   - when stuffing, an LF at p followed by "." at p + 1: a "." at p + 1.
;; The first two are one SIMD test: (byte p is CR) XOR (byte p + 1 is LF).
;; It returns the number of pairs written, stores how many were dots at
;; address 0, and at address 4 whether a byte of the window from q on is over
;; 127 (found by the same loads). The window's first and last bytes (which pair with bytes of the
;; chunks around it) are the encoder's to decide.
;;
;; `spread` then builds the window's output from those insertions: one
;; memory.copy per span between them, inside the module (in JavaScript each
;; span cost a native call, 15-20 ms for 20 MB with a dot on every line).
;;
;; The layout (offsets) is line-scan.ts's; pages never touched cost no memory.
(module
  (memory (export "memory") 16)

;; Every byte the scan loads is OR-ed in here: whether the window has a
  ;; byte over 127 (BODY=8BITMIME, RFC 6152) comes with the scan, instead of
  ;; a second pass over the message (Node's isAscii read 20 MB again: 0.7 ms).
  (global $high (mut v128) (v128.const i64x2 0 0))

  ;; The first flagged pair at or after q (below limit), or -1; 32 bytes per
  ;; step. Lanes past `limit` read bytes after the window (the encoder zeroes
  ;; 48 of them); a hit there is not reported. The bytes loaded cover
  ;; [q, limit) whatever the hits: after a hit at r the next call starts at
  ;; r + 1, inside what was loaded.
  (func $scan (param $q i32) (param $limit i32) (param $stuff i32) (result i32)
    (local $x v128) (local $y v128) (local $x2 v128) (local $y2 v128) (local $m i32) (local $dots v128) (local $high v128)
    ;; all ones when stuffing, else zero: masks the dot test away for BDAT
    (local.set $dots (i8x16.splat (i32.sub (i32.const 0) (local.get $stuff))))
    (local.set $high (global.get $high))
    (block $none
      (loop $next
        (br_if $none (i32.ge_u (local.get $q) (local.get $limit)))
        (local.set $x (v128.load (local.get $q)))
        (local.set $y (v128.load offset=1 (local.get $q)))
        (local.set $x2 (v128.load offset=16 (local.get $q)))
        (local.set $y2 (v128.load offset=17 (local.get $q)))
        (local.set $high (v128.or (local.get $high) (v128.or (local.get $x) (local.get $x2))))
        (local.set $m (i32.or
          (i8x16.bitmask (v128.or
            (v128.xor
              (i8x16.eq (local.get $x) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13))
              (i8x16.eq (local.get $y) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
            (v128.and (local.get $dots)
              (v128.and
                (i8x16.eq (local.get $x) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))
                (i8x16.eq (local.get $y) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46))))))
          (i32.shl (i8x16.bitmask (v128.or
            (v128.xor
              (i8x16.eq (local.get $x2) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13))
              (i8x16.eq (local.get $y2) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
            (v128.and (local.get $dots)
              (v128.and
                (i8x16.eq (local.get $x2) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))
                (i8x16.eq (local.get $y2) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46)))))) (i32.const 16))))
        (if (local.get $m)
          (then
            (global.set $high (local.get $high))
            (local.set $q (i32.add (local.get $q) (i32.ctz (local.get $m))))
            (return (select (local.get $q) (i32.const -1) (i32.lt_u (local.get $q) (local.get $limit))))))
        (local.set $q (i32.add (local.get $q) (i32.const 32)))
        (br $next)))
    (global.set $high (local.get $high))
    (i32.const -1))

  (func (export "insertions") (param $q i32) (param $limit i32) (param $stuff i32) (param $ins i32) (param $base i32) (result i32)
    (local $r i32) (local $x i32) (local $y i32) (local $n i32) (local $dots i32) (local $byte i32)
    (global.set $high (v128.const i64x2 0 0))
    (block $done
      (loop $next
        (local.set $r (call $scan (local.get $q) (local.get $limit) (local.get $stuff)))
        (br_if $done (i32.lt_s (local.get $r) (i32.const 0)))
        (local.set $x (i32.load8_u (local.get $r)))
        (local.set $y (i32.load8_u offset=1 (local.get $r)))
        (if (i32.and (i32.eq (local.get $x) (i32.const 13)) (i32.ne (local.get $y) (i32.const 10)))
          (then
            ;; bare CR: add its LF; a "." after it starts a line
            (local.set $byte (i32.const 10))
            (if (i32.and (local.get $stuff) (i32.eq (local.get $y) (i32.const 46)))
              (then
                (i32.store (local.get $ins) (i32.sub (i32.add (local.get $r) (i32.const 1)) (local.get $base)))
                (i32.store offset=4 (local.get $ins) (i32.const 10))
                (local.set $ins (i32.add (local.get $ins) (i32.const 8)))
                (local.set $n (i32.add (local.get $n) (i32.const 1)))
                (local.set $dots (i32.add (local.get $dots) (i32.const 1)))
                (local.set $byte (i32.const 46)))))
          (else
            (if (i32.eq (local.get $y) (i32.const 10))
              (then (local.set $byte (i32.const 13))) ;; bare LF: add its CR
              (else
                (local.set $byte (i32.const 46)) ;; LF then "."
                (local.set $dots (i32.add (local.get $dots) (i32.const 1)))))))
        (i32.store (local.get $ins) (i32.sub (i32.add (local.get $r) (i32.const 1)) (local.get $base)))
        (i32.store offset=4 (local.get $ins) (local.get $byte))
        (local.set $ins (i32.add (local.get $ins) (i32.const 8)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (local.set $q (i32.add (local.get $r) (i32.const 1)))
        (br $next)))
    (i32.store (i32.const 0) (local.get $dots))
    ;; at address 4: 1 if a byte of [q, limit] is over 127 (the scan loaded
    ;; all of [q, limit); the window's last byte, at limit, is tested here)
    (i32.store (i32.const 4) (i32.or
      (i32.ne (i8x16.bitmask (global.get $high)) (i32.const 0))
      (i32.shr_u (i32.load8_u (local.get $limit)) (i32.const 7))))
    (local.get $n))

  (func (export "spread") (param $src i32) (param $end i32) (param $dst i32) (param $ins i32) (param $count i32)
    (local $s i32) (local $pos i32) (local $n i32)
    (block $copied
      (loop $next
        (br_if $copied (i32.eqz (local.get $count)))
        (local.set $pos (i32.load (local.get $ins)))
        (local.set $n (i32.sub (local.get $pos) (local.get $s)))
        (memory.copy (local.get $dst) (i32.add (local.get $src) (local.get $s)) (local.get $n))
        (local.set $dst (i32.add (local.get $dst) (local.get $n)))
        (i32.store8 (local.get $dst) (i32.load offset=4 (local.get $ins)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 1)))
        (local.set $s (local.get $pos))
        (local.set $ins (i32.add (local.get $ins) (i32.const 8)))
        (local.set $count (i32.sub (local.get $count) (i32.const 1)))
        (br $next)))
    (memory.copy (local.get $dst) (i32.add (local.get $src) (local.get $s)) (i32.sub (local.get $end) (local.get $s)))))
