// A 1 GiB attachment streams with bounded memory: an EmailMessage whose
// attachment is opened as a stream ({ stream: () => Readable }) is sent by
// sendMessage() to smtp-server (in a child process, sink.mjs, counting and
// hashing what it receives, so the RSS measured is the sender's), and the process's RSS grows by less than 64 MB. The hash of what
// arrived equals the hash of a second serialization (deterministic output).
// Run by .ci/suites/57-email-stream.sh (project email-stream): about a minute.

import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SMTP } from 'smtplib';
import { EmailMessage } from 'smtplib-email';
import { sampleRssGrowth } from '../support/rss.js';
import { GiB, MB, oneGiB } from './one-gib.js';

describe('a 1 GiB attachment', () => {
  it('is sent by sendMessage() with RSS growth under 64 MB, and arrives as the message writes itself', async () => {
    const sink = spawn(process.execPath, [fileURLToPath(new URL('./sink.mjs', import.meta.url))], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: sink.stdout! })[Symbol.asyncIterator]();
    const port = Number(((await lines.next()).value as string).split(' ')[1]);
    try {
      const msg = new EmailMessage({ boundarySeed: 'big' });
      msg.set('From', 'alice@example.com');
      msg.set('To', 'bob@example.com');
      msg.set('Subject', 'one gibibyte');
      msg.setContent('The data is attached.\n');
      msg.addAttachment({ stream: oneGiB }, { filename: 'big.bin' });

      const smtp = await SMTP.connect({ host: '127.0.0.1', port });
      const rss = sampleRssGrowth();
      const started = Date.now();
      try {
        await smtp.sendMessage(msg);
      } finally {
        rss.stop();
        await smtp.quit().catch(() => {});
      }
      const seconds = (Date.now() - started) / 1000;
      const [, receivedText, digest] = ((await lines.next()).value as string).split(' ');
      const received = Number(receivedText);
      console.log(`1 GiB attachment: ${(received / MB).toFixed(0)} MB on the wire in ${seconds.toFixed(1)} s, RSS growth ${(rss.growth / MB).toFixed(1)} MB`);
      expect(received).toBeGreaterThan(GiB * 4 / 3);
      expect(rss.growth).toBeLessThan(64 * MB);

      // The same bytes again, from a second serialization (smtp-server gives the data dot-unstuffed).
      const again = createHash('sha256');
      for await (const chunk of msg.stream()) again.update(chunk as Buffer);
      expect(digest).toBe(again.digest('hex'));
    } finally {
      sink.stdin!.end();
    }
  });
});
