// Hostile input for the parser: random damage to valid messages, and inputs
// built to be slow (deep nesting, many parts, huge headers, long runs, no
// line ends). parseMessage must return a tree for all of them within bounded
// time and memory; reading the content may only throw our typed errors.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EmailError, parseMessage, type EmailMessage } from 'smtplib-email';
import { compose, messageSpec } from './helpers.js';
import { HARD_CASES } from './hard-cases.js';

/** Reads everything a caller could read; returns the number of parts. */
function exercise(msg: EmailMessage): number {
  let parts = 0;
  for (const part of msg.walk()) {
    parts++;
    part.getContentType();
    part.getFilename();
    part.getBody();
    [...part.iterAttachments()];
    for (const name of new Set(part.keys().map((k) => k.toLowerCase()))) part.getAll(name);
    try {
      part.getContent();
    } catch (error) {
      // Only our typed errors (a multipart has no content of its own).
      expect(error).toBeInstanceOf(EmailError);
    }
  }
  return parts;
}

const seeds = [...Object.values(HARD_CASES)];

describe('hostile input', () => {
  it('random damage to valid messages: always a tree, never an exception', async () => {
    const generated = await Promise.all(fc.sample(messageSpec, { numRuns: 20, seed: 9 }).map((s) => compose(s).asBytes()));
    const corpus = [...seeds, ...generated];
    const damage = fc.record({
      index: fc.nat(corpus.length - 1),
      edits: fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom('flip', 'cut', 'dup', 'crlf', 'nul', 'boundary', 'colon', 'eq'), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
    });
    let runs = 0;
    fc.assert(fc.property(damage, ({ index, edits }) => {
      let bytes = corpus[index]!;
      for (const [at, kind, value] of edits) {
        const pos = Math.floor(at * bytes.length);
        switch (kind) {
          case 'flip': bytes = Buffer.concat([bytes.subarray(0, pos), Buffer.from([value]), bytes.subarray(pos + 1)]); break;
          case 'cut': bytes = bytes.subarray(0, pos); break;
          case 'dup': bytes = Buffer.concat([bytes.subarray(0, pos), bytes.subarray(pos - Math.min(pos, value)), bytes.subarray(pos)]); break;
          case 'crlf': bytes = Buffer.concat([bytes.subarray(0, pos), Buffer.from('\r\n'), bytes.subarray(pos)]); break;
          case 'nul': bytes = Buffer.concat([bytes.subarray(0, pos), Buffer.from([0]), bytes.subarray(pos)]); break;
          case 'boundary': bytes = Buffer.concat([bytes.subarray(0, pos), Buffer.from('\r\n--=_' + value.toString(16) + '--\r\n'), bytes.subarray(pos)]); break;
          case 'colon': bytes = Buffer.concat([bytes.subarray(0, pos), Buffer.from(':'), bytes.subarray(pos)]); break;
          case 'eq': bytes = Buffer.concat([bytes.subarray(0, pos), Buffer.from('=?utf-8?b?'), bytes.subarray(pos)]); break;
        }
      }
      const msg = parseMessage(bytes);
      expect(exercise(msg)).toBeGreaterThan(0);
      for (const part of msg.walk()) for (const d of part.defects) expect(typeof d.kind).toBe('string');
      runs++;
    }), { numRuns: 400, seed: 10 });
    expect(runs).toBe(400);
  });

  const MB = 1024 * 1024;
  const slowCases: Record<string, () => Buffer> = {
    'nesting 5,000 multiparts deep': () => {
      let head = 'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n';
      for (let i = 1; i < 5000; i++) head += `--b${i - 1}\r\nContent-Type: multipart/mixed; boundary="b${i}"\r\n\r\n`;
      return Buffer.from(head + 'deep\r\n');
    },
    'nesting 5,000 message/rfc822 deep': () => Buffer.from('Content-Type: message/rfc822\r\n\r\n'.repeat(5000) + 'x'),
    '20,000 empty parts': () => Buffer.from('Content-Type: multipart/mixed; boundary=b\r\n\r\n' + '--b\r\n\r\n'.repeat(20_000) + '--b--\r\n'),
    'one 4 MB header line': () => Buffer.from('Subject: ' + 'a'.repeat(4 * MB) + '\r\n\r\nbody'),
    '200,000 header fields': () => Buffer.from('X-A: b\r\n'.repeat(200_000) + '\r\nbody'),
    '1 MB of continuation lines': () => Buffer.from('Subject: x\r\n' + ' y\r\n'.repeat(MB / 4) + '\r\n'),
    '4 MB with no line end at all': () => Buffer.alloc(4 * MB, 0x61),
    'boundary text everywhere but never at a line start': () => Buffer.from('Content-Type: multipart/mixed; boundary=a\r\n\r\n' + 'x--a'.repeat(MB)),
    '2 MB of spaces in quoted-printable': () => Buffer.from('Content-Transfer-Encoding: quoted-printable\r\n\r\n' + ' '.repeat(2 * MB) + 'x'),
    'address header of 200,000 commas and angle brackets': () => Buffer.from('To: ' + '<,'.repeat(100_000) + '"(' .repeat(50_000) + '\r\n\r\n'),
    '100,000 encoded words': () => Buffer.from('Subject: ' + '=?utf-8?b?w6k=?= '.repeat(100_000) + '\r\n\r\n'),
    'RFC 2231 with 50,000 sections': () => Buffer.from('Content-Type: text/plain; ' + Array.from({ length: 50_000 }, (_, i) => `name*${i}*=%41`).join('; ') + '\r\n\r\nx'),
    '4 MB of random bytes': () => { let x = 1; const b = Buffer.alloc(4 * MB); for (let i = 0; i < b.length; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24; } return b; },
  };

  it.each(Object.keys(slowCases))('%s: parsed and read within 5 s, heap growth bounded', (name) => {
    const input = slowCases[name]!();
    const heapBefore = process.memoryUsage().heapUsed;
    const started = performance.now();
    const msg = parseMessage(input);
    const parts = exercise(msg);
    const elapsed = performance.now() - started;
    const grown = process.memoryUsage().heapUsed - heapBefore;
    expect(parts).toBeGreaterThan(0);
    expect(elapsed).toBeLessThan(5000);
    // Parts are views of the input: what the parse adds stays within a small multiple of it (plus per-part objects).
    expect(grown).toBeLessThan(input.length * 4 + parts * 4096 + 64 * MB);
  });

  it('nesting beyond maxDepth is kept as an opaque body with NestingTooDeepDefect', () => {
    const msg = parseMessage(slowCases['nesting 5,000 message/rfc822 deep']!());
    const all = [...msg.walk()];
    expect(all.length).toBeLessThanOrEqual(42);
    expect(all.some((p) => p.defects.some((d) => d.kind === 'NestingTooDeepDefect'))).toBe(true);
  });
});
