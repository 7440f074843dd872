// The encoder's line scan in WebAssembly SIMD (line-scan.wat): 16 bytes per
// step instead of two native indexOf calls per line. On a 20 MB text body
// (87-byte lines) the indexOf scan cost about 7 ms and this one 3 ms, the
// copy into its memory included (Node 20, 2 cores); that scan was a third of
// the CPU of sending such a message by BDAT.
//
// It is an accelerator, not a second rule: the indexOf scan in
// data-encoder.ts stays the definition, runs where WebAssembly or its SIMD is
// not available (node --jitless, an old CPU, code generation disallowed), and
// the property tests require both to produce the same bytes.

import { LINE_SCAN_WASM } from './line-scan-wasm.js';

// The module's memory (16 pages, 1 MiB; a page never touched is never
// backed by RAM, so a text body costs only the window's 64 KiB):
//   [0, 4)                          insertions()'s dot count
//   [4, 8)                          insertions()'s "a byte over 127" flag
//   [SCAN_BASE, +MAX_WINDOW + 80)  the window, then 80 zero bytes (the scan reads up to 64 bytes past it)
//   [OUT_BASE, +2 * MAX_WINDOW + 2) spread()'s output (worst case: every byte a bare LF)
//   [INS_BASE, ...)                the insertions, i32 pairs (position, byte)
/** Where a window is copied (bytes before it are never read). */
const SCAN_BASE = 16;
/** The encoder's windows are 64 KiB at most (ENCODE_WINDOW); a larger one falls back to the indexOf scan. */
const MAX_WINDOW = 64 * 1024;
/** Zeroed after each window: the scan's last 64-byte step reads up to 64 bytes past its last pair. */
const TAIL_BYTES = 80;
const OUT_BASE = 128 * 1024;
/** 2 * (MAX_WINDOW + 2) pairs of i32 from here end at 832 KiB + 16 bytes, inside the 1 MiB. */
const INS_BASE = 320 * 1024;
const MEMORY_BYTES = 16 * 65536;

export interface LineScanner {
  /**
   * Copies the window `src[from, to)` into the module and writes, after the `preset` pairs
   * already in `inserts`, the insertions its pairs of adjacent bytes
   * (p, p + 1) need, p from `start`; returns how many pairs it wrote and
   * leaves how many of them are dots in dotsWritten().
   */
  scan(src: Buffer, from: number, to: number, start: number, stuff: boolean, preset: number): number;
  /** The dots among the last scan()'s insertions. */
  dotsWritten(): number;
  /** Whether the last scanned window has a byte over 127 from `start` on. */
  highBit(): boolean;
  /**
   * The last scanned window's bytes [0, end) with the first `count`
   * insertions made: a view of the module's memory, valid until its next call.
   */
  spread(end: number, count: number): Uint8Array;
  /** The insertions, as pairs (position in the window, byte): the encoder writes the window's first one itself. */
  inserts: Int32Array;
  /**
   * In `src[from, to)`, a body whose line ends are all CRLF (checked before:
   * Plan.verbatim), the position of the first "." after an LF (a line DATA
   * stuffs), the LF in [from, to); -1 if there is none. Windows of the
   * range, one call for all: the caller makes one per write, not one per window.
   */
  dotLine(src: Buffer, from: number, to: number): number;
}

let loaded: LineScanner | null | undefined;
let enabled = true;
/**
 * Windows shorter than this use the indexOf scan: a small message has a few
 * lines, and a process that only sends small ones never compiles the module
 * (compiling pages about 1 MB of V8's WebAssembly compiler into RSS).
 */
const DEFAULT_MIN_WINDOW = 4096;
let minWindow = DEFAULT_MIN_WINDOW;

/** The SIMD scanner for a window of `length` bytes, or undefined: too short, too long, or it cannot run here. */
export function lineScanner(length: number): LineScanner | undefined {
  if (!enabled || length < minWindow || length > MAX_WINDOW) return undefined;
  if (loaded === undefined) loaded = load();
  return loaded ?? undefined;
}

/**
 * Tests switch the SIMD scan off to check that the indexOf scan gives the same
 * bytes, and on for windows of any length (`minWindow: 0`).
 */
export function useSimdLineScan(on: boolean, options: { minWindow?: number } = {}): void {
  enabled = on;
  minWindow = options.minWindow ?? DEFAULT_MIN_WINDOW;
}

/** The part of the WebAssembly global used here (the project's TypeScript libraries do not declare it). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: WasmExports };
}

/** line-scan.wat's exports (offsets are into its memory). */
interface WasmExports {
  insertions(q: number, limit: number, stuff: number, ins: number, base: number): number;
  spread(src: number, end: number, dst: number, ins: number, count: number): void;
  dotline(q: number, limit: number): number;
  memory: { buffer: ArrayBuffer };
}

function load(): LineScanner | null {
  try {
    const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
    if (wasm === undefined) return null;
    const bytes = Buffer.from(LINE_SCAN_WASM, 'base64');
    if (!wasm.validate(bytes)) return null; // no SIMD here
    const { exports } = new wasm.Instance(new wasm.Module(bytes));
    const buffer = exports.memory.buffer;
    if (buffer.byteLength !== MEMORY_BYTES) return null;
    const memory = new Uint8Array(buffer);
    const inserts = new Int32Array(buffer, INS_BASE, 2 * (MAX_WINDOW + 2));
    const results = new Int32Array(buffer, 0, 2); // insertions() leaves its dot count at address 0, the high-bit flag at 4
    /** Copies `src[from, from + length)` to SCAN_BASE, where both scans read a window. */
    const place = (src: Uint8Array, from: number, length: number): void => {
      // A plain Uint8Array view, not Buffer#subarray (Node's JavaScript, which a few hundred windows per message get compiled by TurboFan).
      memory.set(from === 0 && length === src.length ? src : new Uint8Array(src.buffer, src.byteOffset + from, length), SCAN_BASE);
      // What a scan reads past the window must not be an earlier window's bytes (a false "over 127", a false dot line).
      memory.fill(0, SCAN_BASE + length, SCAN_BASE + length + TAIL_BYTES);
    };
    return {
      scan(src, from, to, start, stuff, preset) {
        const length = to - from;
        place(src, from, length);
        // pairs whose both bytes are in the window
        return exports.insertions(SCAN_BASE + start, SCAN_BASE + length - 1, stuff ? 1 : 0, INS_BASE + 8 * preset, SCAN_BASE);
      },
      dotsWritten: () => results[0]!,
      highBit: () => results[1] !== 0,
      spread(end, count) {
        exports.spread(SCAN_BASE, end, OUT_BASE, INS_BASE, count);
        return memory.subarray(OUT_BASE, OUT_BASE + end + count);
      },
      inserts,
      dotLine(src, from, to) {
        for (let at = from; at < to; at += MAX_WINDOW) {
          // One byte past the window: its last byte may be the LF before a dot.
          const end = Math.min(src.length, to + 1, at + MAX_WINDOW + 1);
          const length = end - at;
          if (length < 2) return -1;
          place(src, at, length);
          const found = exports.dotline(SCAN_BASE, SCAN_BASE + length - 1);
          if (found !== -1) return at + found - SCAN_BASE;
        }
        return -1;
      },
    };
  } catch {
    return null; // code generation disallowed, or no WebAssembly at all
  }
}
