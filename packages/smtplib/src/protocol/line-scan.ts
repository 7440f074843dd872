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

/** Where a window is copied in the scanner's memory (bytes before it are never read). */
export const SCAN_BASE = 16;

export interface LineScanner {
  /** First flagged pair (p, p + 1) with p in [q, limit) (memory offsets), or -1. */
  scan(q: number, limit: number, stuff: number): number;
  /** The module's memory, where a window is copied at SCAN_BASE. */
  memory: Uint8Array;
  /** The largest window it can take: its loads read up to 17 bytes past the window. */
  maxWindow: number;
}

let loaded: LineScanner | null | undefined;
let enabled = true;

/** The SIMD scanner, or undefined where it cannot run (or is switched off). */
export function lineScanner(): LineScanner | undefined {
  if (!enabled) return undefined;
  if (loaded === undefined) loaded = load();
  return loaded ?? undefined;
}

/** Tests switch the SIMD scan off to check the indexOf scan gives the same bytes. */
export function useSimdLineScan(on: boolean): void {
  enabled = on;
}

/** The part of the WebAssembly global used here (the project's TypeScript libraries do not declare it). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: { scan: LineScanner['scan']; memory: { buffer: ArrayBuffer } } };
}

function load(): LineScanner | null {
  try {
    const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
    if (wasm === undefined) return null;
    const bytes = Buffer.from(LINE_SCAN_WASM, 'base64');
    if (!wasm.validate(bytes)) return null; // no SIMD here
    const { exports } = new wasm.Instance(new wasm.Module(bytes));
    const memory = new Uint8Array(exports.memory.buffer);
    return { scan: exports.scan, memory, maxWindow: memory.length - SCAN_BASE - 32 };
  } catch {
    return null; // code generation disallowed, or no WebAssembly at all
  }
}
