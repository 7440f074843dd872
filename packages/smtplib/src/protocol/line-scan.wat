;; The DATA/BDAT encoder's line scan, 64 bytes a step (WebAssembly SIMD).
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

;; `insertions` works in steps of 64 bytes: four 16-byte lanes loaded at p
  ;; and at p + 1, each lane's pairs flagged by (CR at p) XOR (LF at p + 1),
  ;; and when stuffing also (LF at p) AND ("." at p + 1), and the four lanes'
  ;; flags tested at once (v128.any_true): a step of clean text costs eight
  ;; loads, the compares and one branch. A step with flags has them read off
  ;; its 64-bit mask lowest first, each pair decided from its two bytes (a
  ;; pair's flag depends on its bytes only, so no step is read twice: with a
  ;; dot on every line, going back to the scan from each hit cost twice the
  ;; time). The encoder zeroes 80 bytes after the window: a step reads up to
  ;; 64 bytes past its last pair; flags at or past `limit` end the scan.
  ;; Every loaded lane is OR-ed into $high: whether the window has a byte
  ;; over 127 (BODY=8BITMIME, RFC 6152) comes with the scan, instead of a
  ;; second pass over the message (Node's isAscii read 20 MB again: 0.7 ms).
  ;; 20 MB of text: ~1.2 ms here against ~2 ms with a bitmask per 32 bytes
  ;; and a call per hit (Node 20).
  (func (export "insertions") (param $q i32) (param $limit i32) (param $stuff i32) (param $ins i32) (param $base i32) (result i32)
    (local $x0 v128) (local $x1 v128) (local $x2 v128) (local $x3 v128)
    (local $y0 v128) (local $y1 v128) (local $y2 v128) (local $y3 v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128) (local $high v128)
    (local $m i64) (local $r i32) (local $x i32) (local $y i32) (local $n i32) (local $dots i32) (local $byte i32)
    (block $done
      (loop $step
        (br_if $done (i32.ge_u (local.get $q) (local.get $limit)))
        (local.set $x0 (v128.load (local.get $q)))
        (local.set $y0 (v128.load offset=1 (local.get $q)))
        (local.set $x1 (v128.load offset=16 (local.get $q)))
        (local.set $y1 (v128.load offset=17 (local.get $q)))
        (local.set $x2 (v128.load offset=32 (local.get $q)))
        (local.set $y2 (v128.load offset=33 (local.get $q)))
        (local.set $x3 (v128.load offset=48 (local.get $q)))
        (local.set $y3 (v128.load offset=49 (local.get $q)))
        (local.set $high (v128.or (local.get $high)
          (v128.or (v128.or (local.get $x0) (local.get $x1)) (v128.or (local.get $x2) (local.get $x3)))))
        (if (local.get $stuff)
          (then
            (local.set $t0 (v128.or (v128.xor (i8x16.eq (local.get $x0) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)) (i8x16.eq (local.get $y0) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
              (v128.and (i8x16.eq (local.get $x0) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)) (i8x16.eq (local.get $y0) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46)))))
            (local.set $t1 (v128.or (v128.xor (i8x16.eq (local.get $x1) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)) (i8x16.eq (local.get $y1) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
              (v128.and (i8x16.eq (local.get $x1) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)) (i8x16.eq (local.get $y1) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46)))))
            (local.set $t2 (v128.or (v128.xor (i8x16.eq (local.get $x2) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)) (i8x16.eq (local.get $y2) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
              (v128.and (i8x16.eq (local.get $x2) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)) (i8x16.eq (local.get $y2) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46)))))
            (local.set $t3 (v128.or (v128.xor (i8x16.eq (local.get $x3) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)) (i8x16.eq (local.get $y3) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)))
              (v128.and (i8x16.eq (local.get $x3) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10)) (i8x16.eq (local.get $y3) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46))))))
          (else
            (local.set $t0 (v128.xor (i8x16.eq (local.get $x0) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)) (i8x16.eq (local.get $y0) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))))
            (local.set $t1 (v128.xor (i8x16.eq (local.get $x1) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)) (i8x16.eq (local.get $y1) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))))
            (local.set $t2 (v128.xor (i8x16.eq (local.get $x2) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)) (i8x16.eq (local.get $y2) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))))
            (local.set $t3 (v128.xor (i8x16.eq (local.get $x3) (v128.const i8x16 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13 13)) (i8x16.eq (local.get $y3) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))))))
        (if (v128.any_true (v128.or (v128.or (local.get $t0) (local.get $t1)) (v128.or (local.get $t2) (local.get $t3))))
          (then
            (local.set $m (i64.or
              (i64.or (i64.extend_i32_u (i8x16.bitmask (local.get $t0))) (i64.shl (i64.extend_i32_u (i8x16.bitmask (local.get $t1))) (i64.const 16)))
              (i64.or (i64.shl (i64.extend_i32_u (i8x16.bitmask (local.get $t2))) (i64.const 32)) (i64.shl (i64.extend_i32_u (i8x16.bitmask (local.get $t3))) (i64.const 48)))))
            (loop $hit
              (local.set $r (i32.add (local.get $q) (i32.wrap_i64 (i64.ctz (local.get $m)))))
              (br_if $done (i32.ge_u (local.get $r) (local.get $limit)))
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
              ;; the next flag of this step, lowest first
              (local.set $m (i64.and (local.get $m) (i64.sub (local.get $m) (i64.const 1))))
              (br_if $hit (i64.ne (local.get $m) (i64.const 0))))))
        (local.set $q (i32.add (local.get $q) (i32.const 64)))
        (br $step)))
    (i32.store (i32.const 0) (local.get $dots))
    ;; at address 4: 1 if a byte of [q, limit] is over 127 (the steps loaded
    ;; all of [q, limit); the window's last byte, at limit, is tested here)
    (i32.store (i32.const 4) (i32.or
      (i32.ne (i8x16.bitmask (local.get $high)) (i32.const 0))
      (i32.shr_u (i32.load8_u (local.get $limit)) (i32.const 7))))
    (local.get $n))

  ;; `dotline` finds, in a window whose line ends are all CRLF (the encoder
  ;; checked it: Plan.verbatim), the first pair (p, p + 1), p in [q, limit),
  ;; of an LF and a "." (a line DATA stuffs), and returns p + 1, or -1: the
  ;; dot test of `insertions` alone, 64 bytes a step, without its line-end
  ;; tests and its list (a third fewer operations a step). Same zeroed tail.
  (func (export "dotline") (param $q i32) (param $limit i32) (result i32)
    (local $t v128) (local $m i64) (local $r i32)
    (block $none
      (loop $step
        (br_if $none (i32.ge_u (local.get $q) (local.get $limit)))
        (if (v128.any_true (v128.or
              (v128.or
                (v128.and (i8x16.eq (v128.load (local.get $q)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))
                          (i8x16.eq (v128.load offset=1 (local.get $q)) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46)))
                (v128.and (i8x16.eq (v128.load offset=16 (local.get $q)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))
                          (i8x16.eq (v128.load offset=17 (local.get $q)) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46))))
              (v128.or
                (v128.and (i8x16.eq (v128.load offset=32 (local.get $q)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))
                          (i8x16.eq (v128.load offset=33 (local.get $q)) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46)))
                (v128.and (i8x16.eq (v128.load offset=48 (local.get $q)) (v128.const i8x16 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10 10))
                          (i8x16.eq (v128.load offset=49 (local.get $q)) (v128.const i8x16 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46 46))))))
          (then
            ;; the step's lowest such pair, byte by byte (a hit is rare), never past `limit`
            (local.set $r (local.get $q))
            (loop $pair
              (br_if $none (i32.ge_u (local.get $r) (local.get $limit)))
              (if (i32.and (i32.eq (i32.load8_u (local.get $r)) (i32.const 10)) (i32.eq (i32.load8_u offset=1 (local.get $r)) (i32.const 46)))
                (then (return (i32.add (local.get $r) (i32.const 1)))))
              (local.set $r (i32.add (local.get $r) (i32.const 1)))
              (br $pair))))
        (local.set $q (i32.add (local.get $q) (i32.const 64)))
        (br $step)))
    (i32.const -1))

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
