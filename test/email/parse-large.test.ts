// parseMessage of large inputs: a stream past `spillThreshold` goes to a
// nameless temporary file and a large { path } is read where it is; the tree
// and headers are in memory, bodies stay ranges of the file. Here the
// threshold is set to 0 so every message of the round-trip corpus takes the
// file path, and each must give the same tree and the same bytes as the
// in-memory parse. The 1 GiB case with its RSS bound is in
// test/email-stream/parse-big.test.ts.

import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ContentUnavailableError, EmailMessage, parseMessage, ParseLimitError } from 'smtplib-email';
import { HARD_CASES } from './hard-cases.js';
import { compose, messageSpec, treeViewOf } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'email-parse-large-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stream of `bytes` in chunks of `size` (the parser must not depend on where chunks end). */
function chunked(bytes: Buffer, size: number): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
  return Readable.from(chunks);
}

async function collect(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** Descriptors of this process that point at a file in `where` (deleted or not). */
function openFilesIn(where: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try { return readlinkSync(`/proc/self/fd/${fd}`).startsWith(where); } catch { return false; }
  }).length;
}

describe('parseMessage through a file (spillThreshold 0)', () => {
  it('stream and { path } give the in-memory tree and write the input back byte for byte (generated and hard cases)', async () => {
    const samples = await Promise.all(fc.sample(messageSpec, { numRuns: 60, seed: 14 }).map((s) => compose(s).asBytes()));
    const all = [...samples, ...Object.values(HARD_CASES), ...samples.slice(0, 10).map((b) => Buffer.from(b.toString('latin1').replace(/\r\n/g, '\n'), 'latin1'))];
    let i = 0;
    for (const bytes of all) {
      const expected = treeViewOf(parseMessage(bytes));
      const fromStream = await parseMessage(chunked(bytes, 1 + (i % 97)), { spillThreshold: 0, tempDir: dir });
      const file = join(dir, `m${i++}.eml`);
      writeFileSync(file, bytes);
      const fromPath = await parseMessage({ path: file }, { spillThreshold: 0 });
      for (const parsed of [fromStream, fromPath]) {
        expect((await parsed.asBytes()).equals(bytes)).toBe(true);
        expect((await collect(parsed.stream())).equals(bytes)).toBe(true);
        expect(parsed.smtpRequirements()).toEqual(parseMessage(bytes).smtpRequirements());
        expect(treeViewOf(parsed)).toEqual(expected);
        parsed.dispose();
      }
    }
    console.log(`parse through a file: ${all.length} messages, same trees and bytes as in memory`);
  });

  it('the temporary file has no name from the start, and dispose() closes it; its bodies are unreadable afterwards', async () => {
    const spillDir = mkdtempSync(join(dir, 'spill-'));
    const msg = new EmailMessage({ boundarySeed: 'spill' });
    msg.set('From', 'a@example.com');
    msg.setContent('text\n');
    msg.addAttachment(Buffer.alloc(300_000, 9), { filename: 'x.bin' });
    const bytes = await msg.asBytes();
    const before = openFilesIn(spillDir);
    const parsed = await parseMessage(chunked(bytes, 65536), { spillThreshold: 100_000, tempDir: spillDir });
    expect(readdirSync(spillDir)).toEqual([]); // unlinked right after it was opened
    expect(openFilesIn(spillDir)).toBe(before + 1);
    const [attachment] = [...parsed.iterAttachments()];
    expect((attachment!.getContent() as Buffer).equals(Buffer.alloc(300_000, 9))).toBe(true);
    await parsed[Symbol.asyncDispose]();
    expect(openFilesIn(spillDir)).toBe(before);
    expect(() => attachment!.getContent()).toThrow(ContentUnavailableError);

    // Under the threshold: parsed in memory, no file at all.
    const small = await parseMessage(chunked(bytes, 65536), { tempDir: spillDir });
    expect(openFilesIn(spillDir)).toBe(before);
    expect((await small.asBytes()).equals(bytes)).toBe(true);
  });

  it('a stream past maxBytes is refused with ParseLimitError and leaves no file open', async () => {
    const spillDir = mkdtempSync(join(dir, 'limit-'));
    const big = Buffer.alloc(1_000_000, 0x61);
    await expect(parseMessage(chunked(big, 65536), { spillThreshold: 1000, maxBytes: 500_000, tempDir: spillDir })).rejects.toBeInstanceOf(ParseLimitError);
    expect(openFilesIn(spillDir)).toBe(0);
    expect(readdirSync(spillDir)).toEqual([]);
  });
});

describe('getContent({ stream: true })', () => {
  it('decodes base64 and quoted-printable while reading, equal to getContent(), in memory and from a file', async () => {
    const binary = Buffer.alloc(3_000_001);
    for (let i = 0; i < binary.length; i++) binary[i] = (i * 2654435761) >>> 24;
    const text = `${'Grüße, naïve café = ok   \n'.repeat(20_000)}${'x'.repeat(5000)} trailing\n`;
    const msg = new EmailMessage({ boundarySeed: 'dec' });
    msg.set('From', 'a@example.com');
    msg.setContent(text, { cte: 'quoted-printable' });
    msg.addAttachment(binary, { filename: 'b.bin' });
    const bytes = await msg.asBytes();
    for (const parsed of [parseMessage(bytes), await parseMessage(chunked(bytes, 10_007), { spillThreshold: 0, tempDir: dir })]) {
      const [body, attachment] = [...parsed.walk()].slice(1);
      expect(body!.get('content-transfer-encoding')).toBe('quoted-printable');
      const textStream = await collect(body!.getContent({ stream: true }));
      expect(textStream.toString('utf8').replace(/\r\n/g, '\n')).toBe(text);
      const digest = createHash('sha256').update(await collect(attachment!.getContent({ stream: true }))).digest('hex');
      expect(digest).toBe(createHash('sha256').update(binary).digest('hex'));
      expect(attachment!.defects).toEqual([]);
      parsed.dispose();
    }
  });

  it('damaged base64 read as a stream records the same defect kinds as getContent()', async () => {
    const damaged = Buffer.from('Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\nR!EVG\r\nRw\r\n');
    const inMemory = parseMessage(damaged);
    const decoded = inMemory.getContent() as Buffer;
    const streamed = parseMessage(damaged);
    expect((await collect(streamed.getContent({ stream: true }))).equals(decoded)).toBe(true);
    expect(streamed.defects.map((d) => d.kind).sort()).toEqual(inMemory.defects.map((d) => d.kind).sort());
  });
});

describe('limits against hostile input', () => {
  it('more parts than maxParts: the rest stays the last part\'s body, with a defect; the bytes still round-trip', async () => {
    const parts = Array.from({ length: 50 }, (_, i) => `--b\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n`).join('');
    const bytes = Buffer.from(`Content-Type: multipart/mixed; boundary=b\r\n\r\n${parts}--b--\r\n`);
    const parsed = parseMessage(bytes, { maxParts: 10 });
    expect(parsed.defects.map((d) => d.kind)).toContain('TooManyPartsDefect');
    expect([...parsed.iterParts()].length).toBeLessThanOrEqual(10);
    expect((await parsed.asBytes()).equals(bytes)).toBe(true);
    expect([...parseMessage(bytes).iterParts()].length).toBe(50);
  });
});
