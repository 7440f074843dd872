// A message with a 1 GiB attachment (1.35 GiB written) is parsed from a
// stream with bounded memory: the input goes to a nameless temporary file,
// only the headers and the tree are held, the attachment is decoded as a
// stream and hashes equal to the original, and the untouched message writes
// itself back byte for byte. RSS growth over the whole run must stay under
// 64 MB. Run by .ci/suites/57-email-stream.sh (project email-stream).

import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EmailMessage, parseMessage } from 'smtplib-email';
import { sampleRssGrowth } from '../support/rss.js';
import { GiB, MB, oneGiB } from './one-gib.js';

async function hashOf(stream: AsyncIterable<unknown>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe('parsing a 1 GiB attachment from a stream', () => {
  it('holds RSS growth under 64 MB, decodes the attachment to the original bytes, and writes the input back byte for byte', async () => {
    const original = await hashOf(oneGiB());
    const msg = new EmailMessage({ boundarySeed: 'parse-big' });
    msg.set('From', 'alice@example.com');
    msg.set('To', 'bob@example.com');
    msg.set('Subject', 'one gibibyte, parsed');
    msg.setContent('The data is attached.\n');
    msg.addAttachment({ stream: oneGiB }, { filename: 'big.bin' });
    const spillDir = mkdtempSync(join(tmpdir(), 'email-parse-big-'));

    const rss = sampleRssGrowth();
    try {
      // The input, hashed on its way into the parser.
      const inputHash = createHash('sha256');
      let inputBytes = 0;
      const input = (async function* () {
        for await (const chunk of msg.stream()) {
          inputHash.update(chunk as Buffer);
          inputBytes += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
      })();
      let started = Date.now();
      const parsed = await parseMessage(input, { tempDir: spillDir });
      const parseSeconds = (Date.now() - started) / 1000;
      expect(readdirSync(spillDir)).toEqual([]); // the spill file has no name
      expect(inputBytes).toBeGreaterThan(GiB * 4 / 3);

      const attachments = [...parsed.iterAttachments()];
      expect(attachments.length).toBe(1);
      expect(attachments[0]!.getFilename()).toBe('big.bin');
      started = Date.now();
      expect(await hashOf(attachments[0]!.getContent({ stream: true }))).toBe(original);
      const decodeSeconds = (Date.now() - started) / 1000;
      expect(attachments[0]!.defects).toEqual([]);

      expect(await hashOf(parsed.stream())).toBe(inputHash.digest('hex'));
      await parsed[Symbol.asyncDispose]();
      console.log(`parse 1 GiB attachment: ${(inputBytes / MB).toFixed(0)} MB input parsed in ${parseSeconds.toFixed(1)} s, attachment decoded+hashed in ${decodeSeconds.toFixed(1)} s, RSS growth ${(rss.growth / MB).toFixed(1)} MB`);
    } finally {
      rss.stop();
      rmSync(spillDir, { recursive: true, force: true });
    }
    expect(rss.growth).toBeLessThan(64 * MB);
  });
});
