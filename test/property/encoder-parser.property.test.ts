// Property tests (fast-check) for the two byte-level engines: the DATA
// encoder and the reply parser. Inputs are biased towards the bytes that
// matter (CR, LF, ".", NUL, digits, "-", " ") and split at arbitrary points.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { contentSize, DataEncoder, decodeData, ENCODE_WINDOW, measureContent } from '../../packages/smtplib/src/protocol/data-encoder.js';
import { ReplyParser } from '../../packages/smtplib/src/protocol/reply-parser.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 400);

/** Bytes drawn mostly from the interesting alphabet. */
const interestingByte = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(0x0d, 0x0a, 0x2e, 0x00, 0x20) },
  { weight: 3, arbitrary: fc.constantFrom(0x61, 0x62, 0x41, 0x30) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
);
const messageBytes = fc.array(interestingByte, { maxLength: 200 }).map((a) => Buffer.from(a));

/** Splits `buf` at the given cut points (any, unsorted, duplicates allowed → empty chunks). */
function splitAt(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let start = 0;
  for (const p of points) { out.push(buf.subarray(start, p)); start = p; }
  out.push(buf.subarray(start));
  return out;
}
const cuts = fc.array(fc.nat(), { maxLength: 20 });

function encode(mode: 'data' | 'bdat', chunks: Buffer[]): { wire: Buffer; content: number } {
  const encoder = new DataEncoder(mode);
  const out: Buffer[] = [];
  for (const c of chunks) out.push(...encoder.encode(c));
  out.push(encoder.end());
  return { wire: Buffer.concat(out), content: encoder.contentBytes };
}

function normalize(m: Buffer): Buffer {
  let t = m.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n');
  if (t.length && !t.endsWith('\r\n')) t += '\r\n';
  return Buffer.from(t, 'latin1');
}

describe('DATA encoder properties', () => {
  it('only CRLF line ends, no lone "." line before the end marker, decodeData(encode(m)) == normalize(m)', () => {
    fc.assert(
      fc.property(messageBytes, cuts, (m, c) => {
        const { wire, content } = encode('data', splitAt(m, c));
        const text = wire.toString('latin1');
        expect(/\r(?!\n)|(?<!\r)\n/.test(text)).toBe(false);
        expect(text.endsWith('.\r\n')).toBe(true);
        const body = text.slice(0, -3);
        expect(body === '' || body.endsWith('\r\n')).toBe(true);
        // Every line of the body that starts with "." was stuffed: no line is ".", none starts with a single "."
        for (const line of body.split('\r\n').slice(0, -1)) expect(line.startsWith('.') ? line.startsWith('..') : true).toBe(true);
        expect(body.includes('\r\n.\r\n')).toBe(false);
        expect(decodeData(wire).equals(normalize(m))).toBe(true);
        expect(content).toBe(normalize(m).length);
      }),
      { numRuns: RUNS },
    );
  });

  it('identical output for any split of the same input (data and bdat)', () => {
    fc.assert(
      fc.property(messageBytes, cuts, cuts, fc.constantFrom('data' as const, 'bdat' as const), (m, c1, c2, mode) => {
        const a = encode(mode, splitAt(m, c1));
        const b = encode(mode, splitAt(m, c2));
        const whole = encode(mode, [m]);
        expect(a.wire.equals(whole.wire)).toBe(true);
        expect(b.wire.equals(whole.wire)).toBe(true);
        expect(a.content).toBe(whole.content);
      }),
      { numRuns: RUNS },
    );
  });

  it('byte-at-a-time encoding equals whole encoding', () => {
    fc.assert(
      fc.property(messageBytes, (m) => {
        const bytes = [...m].map((x) => Buffer.from([x]));
        expect(encode('data', bytes).wire.equals(encode('data', [m]).wire)).toBe(true);
        expect(encode('bdat', bytes).wire.equals(encode('bdat', [m]).wire)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('BDAT mode normalizes line ends without stuffing and without an end marker; contentBytes is the exact octet count', () => {
    fc.assert(
      fc.property(messageBytes, cuts, (m, c) => {
        const { wire, content } = encode('bdat', splitAt(m, c));
        expect(wire.equals(normalize(m))).toBe(true);
        expect(content).toBe(wire.length);
      }),
      { numRuns: RUNS },
    );
  });
  it('reusable output (streamed DATA): every piece keeps its bytes until released, and the output equals a fresh encoder\'s', () => {
    // Messages of several KB (the ring is used for outputs of 4 KiB and up),
    // built by repeating an interesting pattern, split anywhere, with pieces
    // released late and out of step with encode() calls, as a socket does.
    const bigMessage = fc
      .tuple(fc.array(interestingByte, { minLength: 1, maxLength: 64 }), fc.integer({ min: 1, max: 600 }))
      .map(([pattern, times]) => Buffer.concat(Array.from({ length: times }, () => Buffer.from(pattern))));
    const bigCuts = fc.array(fc.nat(), { maxLength: 8 });
    fc.assert(
      fc.property(bigMessage, bigCuts, fc.array(fc.nat({ max: 10 }), { minLength: 1, maxLength: 20 }), (m, c, lags) => {
        const chunks = splitAt(m, c);
        const encoder = new DataEncoder('data', { reuseOutput: true });
        const outstanding: { piece: Buffer; copy: Buffer }[] = [];
        const wire: Buffer[] = [];
        const releaseOldest = () => {
          const { piece, copy } = outstanding.shift()!;
          expect(piece.equals(copy)).toBe(true); // not overwritten while lent
          encoder.release(piece);
        };
        chunks.forEach((chunk, n) => {
          for (const piece of encoder.encode(chunk)) {
            const copy = Buffer.from(piece);
            wire.push(copy);
            outstanding.push({ piece, copy });
          }
          while (outstanding.length > lags[n % lags.length]!) releaseOldest();
        });
        while (outstanding.length) releaseOldest();
        wire.push(encoder.end());
        expect(encoder.lentSlots).toBe(0);
        expect(Buffer.concat(wire).equals(encode('data', chunks).wire)).toBe(true);
      }),
      { numRuns: Math.max(50, RUNS / 4) },
    );
  });
  it('measure() counts what encode() produces, for any split; contentSize() is the content a DATA or BDAT encoding declares', () => {
    fc.assert(
      fc.property(messageBytes, cuts, (m, c) => {
        const chunks = splitAt(m, c);
        for (const mode of ['data', 'bdat'] as const) {
          const measured = new DataEncoder(mode);
          for (const chunk of chunks) measured.measure(chunk);
          measured.end();
          expect(measured.contentBytes).toBe(encode(mode, chunks).content);
        }
        expect(contentSize(m)).toBe(normalize(m).length);
      }),
      { numRuns: RUNS },
    );
  });
  it('measureContent() gives what DATA declares before MAIL: the content size, whether a byte is over 127, and content == length exactly when the encoding changes nothing but leading dots', () => {
    fc.assert(
      fc.property(messageBytes, (m) => {
        const { wire, content } = encode('data', [m]);
        const measured = measureContent(m);
        expect(measured.contentBytes).toBe(content);
        expect(measured.eightBit).toBe(m.some((b) => b > 127));
        // The transaction writes a body whose content is its length as it is, up to its
        // first line starting with "." (Plan.verbatim): that must be the encoding's prefix.
        if (measured.contentBytes === m.length) {
          expect(normalize(m).equals(m)).toBe(true);
          const firstDot = m[0] === 0x2e ? 0 : m.indexOf('\n.') + 1 || m.length;
          expect(wire.subarray(0, firstDot).equals(m.subarray(0, firstDot))).toBe(true);
        } else expect(normalize(m).equals(m)).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });
  it('measureContent() of a text body of many windows, with the SIMD scan: its length, and a bare LF or a missing last line end counted', () => {
    // 64-byte lines: no window boundary falls between a CR and its LF.
    const line = `${'x'.repeat(62)}\r\n`;
    const text = Buffer.from(line.repeat((3 * ENCODE_WINDOW) / line.length + 7), 'latin1');
    expect(measureContent(text)).toEqual({ contentBytes: text.length, eightBit: false });
    const dotted = Buffer.concat([text.subarray(0, 2 * ENCODE_WINDOW + 640), Buffer.from('.dot\r\n'), text.subarray(2 * ENCODE_WINDOW + 640)]);
    expect(measureContent(dotted).contentBytes).toBe(dotted.length); // stuffing is not content (RFC 1870)
    const bareLf = Buffer.concat([text.subarray(0, 2 * ENCODE_WINDOW + 640), Buffer.from('\n\xe9', 'latin1'), text.subarray(2 * ENCODE_WINDOW + 640, -2)]);
    expect(measureContent(bareLf)).toEqual({ contentBytes: bareLf.length + 1 + 2, eightBit: true });
    expect(measureContent(bareLf).contentBytes).toBe(encode('data', [bareLf]).content);
  });
});

// --- reply parser -----------------------------------------------------------------

const replyText = fc.array(fc.oneof(fc.constantFrom(0x20, 0x2d, 0x09, 0x0d, 0x00, 0x1b, 0xc3, 0xa9, 0xff), fc.integer({ min: 0x21, max: 0x7e })), { maxLength: 30 })
  .map((a) => Buffer.from(a.filter((b) => b !== 0x0a)));
const code = fc.integer({ min: 200, max: 599 });
/** One well-formed reply (possibly multi-line) as bytes. */
const goodReply = fc.tuple(code, fc.array(replyText, { minLength: 1, maxLength: 6 }), fc.boolean()).map(([c, lines, bareLf]) =>
  Buffer.concat(lines.map((t, i) => Buffer.concat([Buffer.from(`${c}${i === lines.length - 1 ? ' ' : '-'}`), t, Buffer.from(bareLf ? '\n' : '\r\n')]))),
);
/** Anything at all: good replies, mutated replies, raw noise. */
const anyStream = fc.array(
  fc.oneof(
    { weight: 4, arbitrary: goodReply },
    { weight: 2, arbitrary: goodReply.chain((r) => fc.tuple(fc.nat(r.length), fc.integer({ min: 0, max: 255 })).map(([i, b]) => { const x = Buffer.from(r); x[i % x.length] = b; return x; })) },
    { weight: 1, arbitrary: fc.array(interestingByte, { maxLength: 40 }).map((a) => Buffer.from(a)) },
  ),
  { maxLength: 8 },
).map((parts) => Buffer.concat(parts));

type Outcome = { replies: Array<{ code: number; lines: readonly string[] }>; error?: string };
function parseAll(chunks: Buffer[], limits = {}): Outcome {
  const parser = new ReplyParser(limits);
  const replies: Outcome['replies'] = [];
  try {
    for (const c of chunks) for (const r of parser.push(c)) replies.push({ code: r.code, lines: r.lines });
  } catch (error) {
    expect((error as Error).name).toBe('SMTPProtocolError');
    expect((error as { code?: string }).code).toBe('ERR_SMTP_PROTOCOL');
    for (const r of (error as { replies?: Array<{ code: number; lines: readonly string[] }> }).replies ?? []) replies.push({ code: r.code, lines: r.lines });
    return { replies, error: (error as Error).message };
  }
  return { replies };
}

describe('reply parser properties', () => {
  it('any split of the same bytes gives the same replies (and the same error, if any)', () => {
    fc.assert(
      fc.property(anyStream, cuts, (stream, c) => {
        const whole = parseAll([stream]);
        const split = parseAll(splitAt(stream, c));
        const bytes = parseAll([...stream].map((b) => Buffer.from([b])));
        expect(split).toEqual(whole);
        expect(bytes).toEqual(whole);
      }),
      { numRuns: RUNS },
    );
  });

  it('never throws anything but SMTPProtocolError, also with tiny limits', () => {
    fc.assert(
      fc.property(anyStream, cuts, fc.integer({ min: 4, max: 64 }), fc.integer({ min: 4, max: 256 }), fc.integer({ min: 1, max: 5 }), (stream, c, line, reply, count) => {
        parseAll(splitAt(stream, c), { maxLineLength: line, maxReplyLength: reply, maxReplyLines: count });
      }),
      { numRuns: RUNS },
    );
  });

  it('well-formed replies parse to their code and lines; text never holds a control character', () => {
    fc.assert(
      fc.property(fc.array(goodReply, { minLength: 1, maxLength: 5 }), cuts, (replies, c) => {
        const out = parseAll(splitAt(Buffer.concat(replies), c));
        expect(out.error).toBeUndefined();
        expect(out.replies.length).toBe(replies.length);
        out.replies.forEach((r, i) => {
          expect(r.code).toBe(Number(replies[i]!.subarray(0, 3).toString()));
          for (const l of r.lines) expect(/[\x00-\x08\x0a-\x1f\x7f]/.test(l)).toBe(false);
        });
      }),
      { numRuns: RUNS },
    );
  });
});
