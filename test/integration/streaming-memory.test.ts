// A 1 GB body streams with bounded memory: the process's RSS grows by less
// than 64 MB, by DATA (dot-stuffing every line) and by BDAT chunks. The sink
// counts bytes, never holds the message, and runs in a child process.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SMTP } from 'smtplib';
import { sampleRssGrowth } from '../support/rss.js';

const GB = 1024 * 1024 * 1024;
const LINE = Buffer.from('.a line that starts with a dot, so every line is stuffed on the DATA path ......\r\n');

/**
 * The counting sink (counting-sink.mjs) in a child process: the test
 * process's RSS is then the sender's alone. received() resolves to the octets
 * of the next message the sink reports.
 */
async function countingSink(chunking: boolean): Promise<{ port: number; received: () => Promise<number>; close: () => void }> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./counting-sink.mjs', import.meta.url)), chunking ? 'chunking' : ''], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (word: string): Promise<number> => {
    const { value, done } = await lines.next();
    if (done || !String(value).startsWith(`${word} `)) throw new Error(`counting sink: expected ${word}, got ${done ? 'end of output' : value}`);
    return Number(String(value).split(' ')[1]);
  };
  const port = await next('PORT');
  return { port, received: () => next('RECEIVED'), close: () => child.stdin!.end() };
}

async function* oneGigabyte(): AsyncIterable<Buffer> {
  const block = Buffer.concat(Array.from({ length: Math.floor(65536 / LINE.length) }, () => LINE));
  let sent = 0;
  while (sent < GB) {
    yield block;
    sent += block.length;
  }
}

describe('streaming a 1 GB body', () => {
  for (const chunking of [false, true]) {
    it(`${chunking ? 'BDAT' : 'DATA'}: RSS grows by less than 64 MB`, async () => {
      const sink = await countingSink(chunking);
      try {
        const smtp = await SMTP.connect({ host: '127.0.0.1', port: sink.port });
        const rss = sampleRssGrowth();
        const started = Date.now();
        try {
          await smtp.sendmail('a@example.org', 'b@example.org', oneGigabyte());
        } finally {
          rss.stop();
        }
        const seconds = (Date.now() - started) / 1000;
        console.log(`${chunking ? 'BDAT' : 'DATA'}: 1 GiB in ${seconds.toFixed(1)} s, RSS +${(rss.growth / 1e6).toFixed(1)} MB`);
        expect(await sink.received()).toBeGreaterThanOrEqual(GB);
        expect(rss.growth).toBeLessThan(64 * 1024 * 1024);
        await smtp.quit();
      } finally {
        sink.close();
      }
    }, 120_000);
  }
});
