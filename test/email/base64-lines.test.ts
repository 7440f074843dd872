// Base64 written into Buffers (content/base64-lines.ts): the bytes equal
// Node's base64 of the whole input cut into 76-character lines, whatever the
// input's length (0, 1, around multiples of 3 and 57, around the
// CHUNK_LINES output chunk) and however it is split into chunks; output
// chunks hold exactly CHUNK_LINES lines (the last, from end(), fewer) and end
// on a line end; a chunk may be reused by the caller once its output is read;
// file attachments (read into two reused Buffers) come back byte for byte
// through parseMessage.

import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EmailMessage, parseMessage } from 'smtplib-email';
import {
  Base64LineWriter,
  base64LinesBuffer,
  base64LinesLength,
  CHUNK_BYTES,
  CHUNK_LINES,
} from '../../packages/email/src/content/base64-lines.js';
import { readSourceReusing } from '../../packages/email/src/content/sources.js';

/** The oracle: Node's base64 of the whole input, cut with a regular expression. */
function expected(bytes: Uint8Array, sep: string): string {
  const text = Buffer.from(bytes).toString('base64');
  return (text.match(/.{1,76}/g) ?? []).map((line) => line + sep).join('');
}

function varied(n: number, salt = 0): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = ((i + salt) * 2654435761) >>> 24;
  return out;
}

const LENGTHS = [0, 1, 2, 3, 4, 5, 56, 57, 58, 59, 113, 114, 115, 171, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, CHUNK_BYTES + 57, 3 * CHUNK_BYTES + 56];

function writeAll(chunks: Uint8Array[], sep: string): Buffer[] {
  const writer = new Base64LineWriter(sep);
  const out: Buffer[] = [];
  for (const chunk of chunks) out.push(...writer.write(chunk));
  const tail = writer.end();
  if (tail) out.push(tail);
  return out;
}


/** `data` cut into consecutive chunks of the given lengths (past the end: empty), and the rest. */
function splitAt(data: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const cut of cuts) {
    chunks.push(data.subarray(at, at + cut));
    at = Math.min(data.length, at + cut);
  }
  chunks.push(data.subarray(at));
  return chunks;
}
describe('base64 lines into Buffers', () => {
  it('base64LinesBuffer equals the oracle, and its length is base64LinesLength, for lengths around 3, 57 and the chunk', () => {
    for (const sep of ['\r\n', '\n']) {
      for (const n of LENGTHS) {
        const data = varied(n, n);
        const out = base64LinesBuffer(data, sep);
        expect(out.length, `${n} bytes`).toBe(base64LinesLength(n, sep.length));
        expect(out.toString('latin1'), `${n} bytes`).toBe(expected(data, sep));
      }
    }
  });

  it('every line is at most 76 characters and ends with CRLF; only the last may be shorter', () => {
    for (const n of LENGTHS) {
      const text = base64LinesBuffer(varied(n), '\r\n').toString('latin1');
      if (n === 0) { expect(text).toBe(''); continue; }
      expect(text.endsWith('\r\n')).toBe(true);
      const lines = text.slice(0, -2).split('\r\n');
      for (const line of lines.slice(0, -1)) expect(line.length).toBe(76);
      expect(lines.at(-1)!.length).toBeGreaterThan(0);
      expect(lines.at(-1)!.length).toBeLessThanOrEqual(76);
      expect(text.includes('\r') && !/\r(?!\n)|(?<!\r)\n/.test(text)).toBe(true);
    }
  });

  it('any split of the input into chunks gives the oracle\'s bytes, in chunks of whole lines', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 3000 }), fc.array(fc.nat(300), { maxLength: 40 }), fc.constantFrom('\r\n', '\n'), (data, cuts, sep) => {
      const out = writeAll(splitAt(data, cuts), sep);
      expect(Buffer.concat(out).toString('latin1')).toBe(expected(data, sep));
      for (const piece of out) {
        expect(piece.length).toBeGreaterThan(0);
        expect(piece.toString('latin1').endsWith(sep)).toBe(true);
      }
    }), { numRuns: 300, seed: 13 });
  });

  it('any split of a large input (several chunks) gives the oracle\'s bytes, every chunk but the last exactly CHUNK_LINES lines', () => {
    const data = varied(3 * CHUNK_BYTES + 4321, 9);
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 2 * CHUNK_BYTES }), { maxLength: 8 }), fc.constantFrom('\r\n', '\n'), (cuts, sep) => {
      const out = writeAll(splitAt(data, cuts), sep);
      expect(Buffer.concat(out).toString('latin1')).toBe(expected(data, sep));
      for (const piece of out.slice(0, -1)) expect(piece.length).toBe(CHUNK_LINES * (76 + sep.length));
      expect(out.at(-1)!.length).toBeLessThanOrEqual(CHUNK_LINES * (76 + sep.length));
    }), { numRuns: 40, seed: 5 });
  });

  it('a large chunk comes out in chunks of CHUNK_LINES lines (131,040 bytes with CRLF), whatever was held from the last chunk', () => {
    const data = varied(5 * CHUNK_BYTES + 1000);
    for (const first of [0, 1, 56, 57, 100]) {
      const out = writeAll([data.subarray(0, first), data.subarray(first)], '\r\n');
      expect(Buffer.concat(out).toString('latin1')).toBe(expected(data, '\r\n'));
      for (const piece of out.slice(0, -1)) expect(piece.length).toBe(CHUNK_LINES * 78);
      expect(out.at(-1)!.length).toBeLessThanOrEqual(CHUNK_LINES * 78);
      expect(CHUNK_LINES * 78).toBe(131_040);
    }
  });

  it('the caller may overwrite a chunk once its output is read (the writer copies what it holds back)', () => {
    const data = varied(10_000, 7);
    const reused = Buffer.alloc(1000);
    const writer = new Base64LineWriter('\r\n');
    const out: Buffer[] = [];
    for (let at = 0; at < data.length; at += 1000) {
      data.copy(reused, 0, at, at + 1000);
      out.push(...writer.write(reused));
      reused.fill(0xff);
    }
    out.push(writer.end()!);
    expect(Buffer.concat(out).toString('latin1')).toBe(expected(data, '\r\n'));
  });
});

describe('file and stream attachments through the writer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'email-b64-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('readSourceReusing reads a file range in chunks of the size asked, into two Buffers used in turn', async () => {
    // 5000 bytes: above Buffer's 4 KiB pool, so each Buffer has its own ArrayBuffer.
    const path = join(dir, 'range.bin');
    const data = varied(100_000);
    writeFileSync(path, data);
    const seen: Buffer[] = [];
    const buffers = new Set<ArrayBuffer>();
    for await (const chunk of readSourceReusing({ kind: 'file', path, start: 123, end: 90_000 }, 5000)) {
      buffers.add(chunk.buffer as ArrayBuffer);
      expect(chunk.length).toBeLessThanOrEqual(5000);
      seen.push(Buffer.from(chunk));
    }
    expect(Buffer.concat(seen).equals(data.subarray(123, 90_000))).toBe(true);
    expect(buffers.size).toBe(2);
  });

  it('readSourceReusing: a chunk is not overwritten by the read ahead while the consumer holds it; leaving early closes the file', async () => {
    const path = join(dir, 'ahead.bin');
    const data = varied(50_000, 5);
    writeFileSync(path, data);
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    const seen: Buffer[] = [];
    for await (const chunk of readSourceReusing({ kind: 'file', path }, 4096)) {
      const copy = Buffer.from(chunk);
      await new Promise((resolve) => setTimeout(resolve, 2)); // the read ahead completes meanwhile
      expect(Buffer.compare(chunk, copy)).toBe(0);
      seen.push(copy);
      if (seen.length === 5) break;
    }
    expect(Buffer.concat(seen).equals(data.subarray(0, 5 * 4096))).toBe(true);
    expect(fds()).toBe(before);
  });

  it('a file attachment of each length comes back byte for byte, its body in lines of exactly 76 characters but the last', async () => {
    for (const n of LENGTHS) {
      const path = join(dir, `a${n}.bin`);
      const data = varied(n, 3);
      writeFileSync(path, data);
      const msg = new EmailMessage({ boundarySeed: 'b64' });
      msg.set('Subject', `file of ${n}`);
      msg.setContent('see attached\n');
      msg.addAttachment({ path }, { filename: 'a.bin' });
      const bytes = await msg.asBytes();
      const streamed = Buffer.concat(await msg.stream().toArray());
      expect(streamed.equals(bytes), `${n}: stream() and asBytes() agree`).toBe(true);
      const body = bytes.toString('latin1').split('Content-Disposition: attachment; filename=a.bin\r\n\r\n')[1]!.split('\r\n--')[0]!;
      expect(body, `${n} bytes`).toBe(expected(data, '\r\n'));
      const [attachment] = [...parseMessage(bytes).iterAttachments()];
      expect(Buffer.compare(attachment!.getContent() as Buffer, data), `${n} bytes`).toBe(0);
    }
  });

  it('a stream attachment in chunks that are not multiples of 3 or 57, pushing the same Buffer again and again, comes back byte for byte', async () => {
    const block = varied(65_536, 11);
    const total = 7 * 65_536 + 13;
    const stream = () => {
      let left = total;
      return new Readable({
        read() {
          if (left === 0) { this.push(null); return; }
          const n = Math.min(left, block.length);
          left -= n;
          this.push(block.subarray(0, n));
        },
      });
    };
    const msg = new EmailMessage({ boundarySeed: 'b64' });
    msg.setContent('see attached\n');
    msg.addAttachment({ stream }, { filename: 'b.bin' });
    const out = await msg.stream().toArray();
    const [attachment] = [...parseMessage(Buffer.concat(out)).iterAttachments()];
    const got = attachment!.getContent() as Buffer;
    expect(got.length).toBe(total);
    for (let at = 0; at < total; at += 65_536) expect(Buffer.compare(got.subarray(at, Math.min(total, at + 65_536)), block.subarray(0, Math.min(65_536, total - at)))).toBe(0);
  });
});
