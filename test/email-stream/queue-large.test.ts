// Messages larger than memory are queued AND delivered in bounded memory:
// MailQueue.enqueueMessage streams COUNT messages of SIZE each into a spool,
// then one QueueWorker (concurrency COUNT, COUNT connections) delivers them
// all at once to smtp-server in a child process (sink.mjs: hashes what it
// receives, so the RSS measured is the worker's). Each body past 256 KiB goes
// to the pool as its spool file, read while it is sent; the worker's RSS
// growth over the delivery must stay under BOUND. Before that (the spool read
// every claimed body whole and kept it until its attempt) the same run grew
// by about COUNT x SIZE. Every message arrives byte for byte (sha256).
// Run by .ci/suites/57-email-stream.sh (project email-stream).

import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MailQueue } from 'smtplib-queue';
import { sampleRssGrowth } from '../support/rss.js';
import { MB } from './one-gib.js';

const COUNT = 8;
const SIZE = 128 * MB;
const BOUND = 96 * MB;

/**
 * Message `n`: a header block, then SIZE bytes of 76-character lines (varied,
 * seeded by n) - what a base64 attachment looks like, with nothing the client
 * changes on the wire (CRLF line ends, no leading dot). Made on demand, 64 KiB
 * at a time; `hash` is fed the bytes as they are made.
 */
function message(n: number, hash: ReturnType<typeof createHash>) {
  const header = Buffer.from(`From: a@example.test\r\nTo: b${n}@example.test\r\nSubject: large ${n}\r\n\r\n`);
  const alphabet = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
  const lines = 64 * 1024 / 78;
  return {
    async *stream(): AsyncGenerator<Buffer> {
      hash.update(header);
      yield header;
      let seed = n * 2654435761 + 1;
      for (let left = Math.floor(SIZE / 78) * 78; left > 0; ) { // whole lines: the last one ends with CRLF too
        const block = Buffer.allocUnsafe(Math.min(left, Math.floor(lines) * 78));
        for (let i = 0; i < block.length; i++) {
          if (i % 78 === 76) { block[i] = 13; continue; }
          if (i % 78 === 77) { block[i] = 10; continue; }
          seed = (seed * 1103515245 + 12345) >>> 0;
          block[i] = alphabet[seed >>> 26]!;
        }
        left -= block.length;
        hash.update(block);
        yield block;
      }
    },
  };
}

describe('queued messages larger than memory', () => {
  it(`${COUNT} x ${SIZE / MB} MiB enqueued with enqueueMessage are delivered by one worker (concurrency ${COUNT}) with RSS growth under ${BOUND / MB} MB, byte for byte`, async () => {
    const sink = spawn(process.execPath, [fileURLToPath(new URL('./sink.mjs', import.meta.url))], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: sink.stdout! })[Symbol.asyncIterator]();
    const port = Number(((await lines.next()).value as string).split(' ')[1]);
    const dir = mkdtempSync(join(tmpdir(), 'queue-large-'));
    const queue = await MailQueue.open({ dir });
    try {
      const expected: string[] = [];
      let started = Date.now();
      for (let n = 0; n < COUNT; n++) {
        const hash = createHash('sha256');
        await queue.enqueueMessage(message(n, hash));
        expected.push(hash.digest('hex'));
      }
      const enqueueSeconds = (Date.now() - started) / 1000;

      const worker = queue.worker({ smtp: { host: '127.0.0.1', port, tlsPolicy: 'none', maxConnections: COUNT }, concurrency: COUNT });
      const rss = sampleRssGrowth();
      started = Date.now();
      let stats;
      try {
        stats = await worker.runUntilIdle();
      } finally {
        rss.stop(); // runUntilIdle() closed the worker's pool
      }
      const seconds = (Date.now() - started) / 1000;
      const received: string[] = [];
      let bytes = 0;
      for (let n = 0; n < COUNT; n++) {
        const [, size, digest] = ((await lines.next()).value as string).split(' ');
        bytes += Number(size);
        received.push(digest!);
      }
      console.log(`queue, ${COUNT} x ${SIZE / MB} MiB: enqueued in ${enqueueSeconds.toFixed(1)} s; delivered ${(bytes / MB).toFixed(0)} MB by one worker (concurrency ${COUNT}) in ${seconds.toFixed(1)} s, RSS growth ${(rss.growth / MB).toFixed(1)} MB`);
      expect(stats).toMatchObject({ delivered: COUNT });
      expect(received.sort()).toEqual(expected.sort());
      expect(rss.growth).toBeLessThan(BOUND);
    } finally {
      await queue.close();
      rmSync(dir, { recursive: true, force: true });
      sink.stdin!.end();
    }
  });
});
