// The encoder has two scans: the SIMD one (line-scan.wat, used wherever
// WebAssembly SIMD runs) and the indexOf one it accelerates (the definition,
// used elsewhere). Whatever the bytes and however they are split, both must
// give the same output, content size, line state and 8-bit verdict (the SIMD
// scan finds bytes over 127 in the same loads). The other property tests
// (encoder-parser.property.test.ts) check the output itself, on the SIMD scan.

import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { contentSize, DataEncoder, firstDotLine, hasEightBit } from '../../packages/smtplib/src/protocol/data-encoder.js';
import { lineScanner, useSimdLineScan } from '../../packages/smtplib/src/protocol/line-scan.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 400);

/** Mostly the bytes the scan looks for, in runs long enough to cross 16-byte lanes. */
const scanByte = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(0x0d, 0x0a, 0x2e) },
  { weight: 4, arbitrary: fc.constantFrom(0x61, 0x20) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
);
const bytes = fc.array(scanByte, { maxLength: 400 }).map((a) => Buffer.from(a));
/** Text-like lines (CRLF, sometimes a bare CR or LF, sometimes a leading dot) of lengths around the lane width. */
const line = fc.tuple(fc.constantFrom('', '.', '..'), fc.string({ maxLength: 40 }), fc.constantFrom('\r\n', '\r\n', '\r\n', '\n', '\r', '')).map(([lead, body, end]) => lead + body.replace(/[\r\n]/g, 'x') + end);
const textish = fc.array(line, { maxLength: 60 }).map((lines) => Buffer.from(lines.join(''), 'latin1'));
const cuts = fc.array(fc.nat(), { maxLength: 12 });

function splitAt(buf: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let start = 0;
  for (const p of points) {
    out.push(buf.subarray(start, p));
    start = p;
  }
  out.push(buf.subarray(start));
  return out;
}

function run(simd: boolean, mode: 'data' | 'bdat', chunks: Buffer[]) {
  useSimdLineScan(simd, { minWindow: 0 }); // the SIMD scan for windows of any length, short ones included
  const encoder = new DataEncoder(mode);
  const out: Buffer[] = [];
  for (const chunk of chunks) out.push(...encoder.encode(chunk));
  out.push(encoder.end());
  return { wire: Buffer.concat(out).toString('latin1'), content: encoder.contentBytes, inserted: encoder.insertedBytes, eightBit: encoder.eightBit };
}

/** The same, each part given as a range of the whole input (encode(m, start, end): no slice per part). */
function runRanges(simd: boolean, mode: 'data' | 'bdat', m: Buffer, at: number[]) {
  useSimdLineScan(simd, { minWindow: 0 });
  const encoder = new DataEncoder(mode);
  const out: Buffer[] = [];
  let start = 0;
  for (const part of splitAt(m, at)) {
    out.push(...encoder.encode(m, start, start + part.length));
    start += part.length;
  }
  out.push(encoder.end());
  return { wire: Buffer.concat(out).toString('latin1'), content: encoder.contentBytes, inserted: encoder.insertedBytes, eightBit: encoder.eightBit };
}

afterEach(() => useSimdLineScan(true));

describe('which scan a window gets', () => {
  it('the SIMD scan from 4 KiB to 64 KiB, the indexOf scan below and above', () => {
    expect(lineScanner(4095)).toBeUndefined();
    expect(lineScanner(4096)).toBeDefined();
    expect(lineScanner(65536)).toBeDefined();
    expect(lineScanner(65537)).toBeUndefined();
  });
});

describe('SIMD line scan', () => {
  it('runs on this machine (else the comparisons below would compare the indexOf scan with itself)', () => {
    useSimdLineScan(true, { minWindow: 0 });
    expect(lineScanner(1)).toBeDefined();
  });

  for (const [name, input] of [['any bytes', bytes], ['text-like lines', textish]] as const) {
    it(`gives the indexOf scan's output for ${name}, in DATA and BDAT mode, however split`, () => {
      fc.assert(
        fc.property(input, cuts, fc.constantFrom('data' as const, 'bdat' as const), (m, at, mode) => {
          const chunks = splitAt(m, at);
          const simd = run(true, mode, chunks);
          expect(simd).toEqual(run(false, mode, chunks));
          expect(simd.eightBit).toBe(hasEightBit(m));
          // Parts given as ranges of the whole input: the same bytes, on both scans.
          expect(runRanges(true, mode, m, at)).toEqual(simd);
          expect(runRanges(false, mode, m, at)).toEqual(simd);
        }),
        { numRuns: RUNS },
      );
    });
  }

  it('measures what the indexOf scan measures', () => {
    fc.assert(
      fc.property(textish, (m) => {
        useSimdLineScan(true, { minWindow: 0 });
        const simd = contentSize(m);
        useSimdLineScan(false);
        expect(simd).toBe(contentSize(m));
      }),
      { numRuns: RUNS },
    );
  });

  it('finds what needs a change at every offset of a 64 KiB window, including the lanes next to its end', () => {
    // One anomaly in clean CRLF text, moved over every position near the lane and window edges.
    const clean = Buffer.from('abcdefghi\r\n'.repeat(6000).slice(0, 65536), 'latin1');
    // Lanes are 16 bytes, steps 64: every lane and step edge, and the last steps of the window.
    const positions = [0, 1, 2, 14, 15, 16, 17, 31, 32, 33, 47, 48, 49, 62, 63, 64, 65, 127, 128, 65470, 65471, 65472, 65473, 65519, 65520, 65533, 65534, 65535];
    for (const at of positions) {
      for (const byte of [0x0a, 0x0d, 0x2e]) {
        const m = Buffer.from(clean);
        m[at] = byte;
        for (const mode of ['data', 'bdat'] as const) expect(run(true, mode, [m])).toEqual(run(false, mode, [m]));
      }
    }
  });

  it('finds a byte over 127 at every offset near the lane and window edges, and nothing left from a larger window before', () => {
    const clean = Buffer.from('abcdefghi\r\n'.repeat(6000).slice(0, 65536), 'latin1');
    const positions = [0, 1, 2, 14, 15, 16, 17, 30, 31, 32, 33, 47, 48, 49, 62, 63, 64, 65, 127, 128, 65471, 65472, 65503, 65504, 65519, 65520, 65533, 65534, 65535];
    for (const at of positions) {
      const m = Buffer.from(clean);
      m[at] = 0x80 + (at % 128);
      for (const mode of ['data', 'bdat'] as const) {
        expect(run(true, mode, [m]).eightBit, `byte at ${at}, ${mode}`).toBe(true);
        // the same window split at the byte and just after it
        expect(run(true, mode, splitAt(m, [at, at + 1])).eightBit, `split at ${at}, ${mode}`).toBe(true);
      }
    }
    // A window of 0xff bytes, then shorter clean ones: the scan reads past a
    // window's end, where the longer window's bytes would still be.
    const high = Buffer.alloc(65536, 0xff);
    for (const length of [4096, 4097, 4111, 4112, 4127, 4128, 4159, 4160, 4161, 65535]) {
      useSimdLineScan(true);
      new DataEncoder('bdat').encode(high);
      const encoder = new DataEncoder('bdat');
      encoder.encode(clean.subarray(0, length));
      expect(encoder.eightBit, `clean window of ${length} after a high one`).toBe(false);
    }
  });
  it('finds the first line DATA stuffs in a CRLF body (firstDotLine) where indexOf does, for any range, across its 64 KiB windows', () => {
    /** CRLF lines only (Plan.verbatim's bodies), some starting with "."; long ones cross windows. */
    const crlfLine = fc.tuple(fc.constantFrom('', '', '', '.', '..'), fc.string({ maxLength: 40 }), fc.nat({ max: 70_000 }))
      .map(([lead, body, pad]) => `${lead}${body.replace(/[\r\n]/g, 'x')}${pad > 60_000 ? 'y'.repeat(pad) : ''}\r\n`);
    const body = fc.array(crlfLine, { maxLength: 40 }).map((lines) => Buffer.from(lines.join(''), 'latin1'));
    fc.assert(
      fc.property(body, fc.nat(), fc.nat(), (b, x, y) => {
        const from = x % (b.length + 1);
        const to = from + (y % (b.length - from + 1));
        useSimdLineScan(false);
        const reference = firstDotLine(b, from, to);
        useSimdLineScan(true);
        expect(firstDotLine(b, from, to)).toBe(reference);
        // The definition: the "." after the first LF in [from, to).
        const lf = b.subarray(0, Math.min(b.length, to + 1)).indexOf('\n.', from);
        expect(reference).toBe(lf === -1 || lf >= to ? -1 : lf + 1);
      }),
      { numRuns: RUNS / 4 },
    );
    // The LF of "\n." at every offset of the first 64-byte steps (every lane), and on each side of a 64 KiB window seam, from several starts.
    const offsets = [...Array.from({ length: 140 }, (_, k) => k + 1), ...Array.from({ length: 8 }, (_, k) => 65532 + k)];
    for (const from of [0, 1, 7]) {
      for (const lf of offsets.map((k) => from + k)) {
        const b = Buffer.from(`${'a'.repeat(lf - 1)}\r\n.x\r\n${'b'.repeat(70_000)}\r\n`, 'latin1');
        for (const to of [lf, lf + 1, b.length]) {
          useSimdLineScan(true);
          expect(firstDotLine(b, from, to), `LF at ${lf}, range [${from}, ${to})`).toBe(to > lf ? lf + 1 : -1);
        }
      }
    }
  });
});
