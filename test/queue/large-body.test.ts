// A spooled body past 256 KiB is given to the pool as its file (`{ path,
// start }` of data/<id>), not read into memory; what the core would have
// learned by scanning it in memory - a byte over 127, hence BODY=8BITMIME -
// enqueue recorded when it wrote the file. Checked on the wire: the MAIL FROM
// the (scripted fault) server received, for small and large, 8-bit and ASCII
// messages, through enqueue() and enqueueMessage(), on a retry after a 421 at
// the end of data, and for a record written before enqueue recorded it.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MailQueue } from 'smtplib-queue';
import { bodyBytes } from './body-bytes.js';
import { startServer, type FaultServer } from './helpers.js';

const KiB = 1024;
let server: FaultServer | undefined;
let dir: string | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A message tagged `tag` whose body is `size` bytes of lines; `eightBit` puts an é (UTF-8) in every line. */
function message(tag: string, size: number, eightBit: boolean): Buffer {
  const head = `From: a@example.test\r\nTo: b@example.test\r\nSubject: ${tag}\r\nX-Soak-Id: ${tag}\r\n${eightBit ? 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n' : ''}\r\n`;
  const line = eightBit ? 'caf\u00e9 au lait, 78 bytes of text per line, repeated to the size asked for....\r\n' : 'cafe au lait, 78 bytes of text per line, repeated to the size asked for.....\r\n';
  const bytes = Buffer.from(line, 'utf8');
  const lines = Math.ceil(size / bytes.length);
  return Buffer.concat([Buffer.from(head), ...Array.from({ length: lines }, () => bytes)]);
}

/** Starts the server, recording every MAIL FROM line by connection; the first end of data of `failFirst` gets a 421. */
async function start(failFirst?: string): Promise<{ mails: string[] }> {
  const seen = { mails: [] as string[] };
  let failed = false;
  server = await startServer({
    fault: (ctx) => {
      if (ctx.stage === 'command' && ctx.verb === 'MAIL') seen.mails.push(ctx.line);
      if (failFirst && !failed && ctx.stage === 'end-of-data') {
        failed = true;
        return { reply: '421 4.3.2 closing' };
      }
      return undefined;
    },
  });
  return seen;
}

const smtp = () => ({ host: '127.0.0.1', port: server!.port, tlsPolicy: 'none' as const, retry: { attempts: 3, minDelayMs: 1, maxDelayMs: 5 } });

describe('spool: a body past 256 KiB goes to the pool as its file, with BODY=8BITMIME when enqueue saw a byte over 127', () => {
  it('MAIL FROM for small and large, 8-bit and ASCII messages, enqueued whole and streamed: the file path declares what the Buffer path declares', async () => {
    const seen = await start();
    dir = mkdtempSync(join(tmpdir(), 'queue-large-body-'));
    const queue = await MailQueue.open({ dir });
    try {
      const cases = [
        { tag: 'small-8bit', size: 4 * KiB, eightBit: true, streamed: false },
        { tag: 'large-8bit', size: 600 * KiB, eightBit: true, streamed: false },
        { tag: 'large-8bit-streamed', size: 600 * KiB, eightBit: true, streamed: true },
        { tag: 'large-ascii', size: 600 * KiB, eightBit: false, streamed: false },
        { tag: 'large-ascii-streamed', size: 600 * KiB, eightBit: false, streamed: true },
      ];
      const sizes = new Map<string, number>();
      for (const c of cases) {
        const bytes = message(c.tag, c.size, c.eightBit);
        sizes.set(c.tag, bytes.length);
        const { id } = c.streamed
          ? await queue.enqueueMessage({ async *stream() { for (let i = 0; i < bytes.length; i += 64 * KiB) yield bytes.subarray(i, i + 64 * KiB); } })
          : await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: bytes });
        const body = await queue.store.body(id);
        expect(Buffer.isBuffer(body), c.tag).toBe(c.size < 256 * KiB);
      }
      await queue.flush({ smtp: smtp() });
      for (const c of cases) expect(server!.deliveries.get(`${c.tag} b@example.test`), c.tag).toBe(1);
      // One MAIL per message, in claim order; each names its size, so the line says which message it was.
      const byTag = new Map(cases.map((c) => [c.tag, seen.mails.find((line) => line.includes(` SIZE=${sizes.get(c.tag)}`))]));
      for (const c of cases) {
        expect(byTag.get(c.tag), c.tag).toBe(`MAIL FROM:<a@example.test> SIZE=${sizes.get(c.tag)}${c.eightBit ? ' BODY=8BITMIME' : ''}`);
      }
    } finally {
      await queue.close();
    }
  });

  it('the next attempt after a 421 at the end of data (deferred) reads the file again and declares BODY=8BITMIME again', async () => {
    const seen = await start('first');
    dir = mkdtempSync(join(tmpdir(), 'queue-large-body-'));
    const queue = await MailQueue.open({ dir });
    try {
      const bytes = message('retried', 600 * KiB, true);
      const { id } = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: bytes });
      await queue.flush({ smtp: smtp() });
      expect((await queue.get(id))?.state).toBe('deferred');
      // The next attempt (made due now by flush): body() reads data/<id>'s record line again and gives the file.
      await queue.flush({ smtp: smtp() });
      expect((await queue.get(id))?.state).toBe('delivered');
      expect(server!.deliveries.get('retried b@example.test')).toBe(1);
      expect(server!.stats.connections).toBe(2);
      expect(seen.mails).toEqual([0, 1].map(() => `MAIL FROM:<a@example.test> SIZE=${bytes.length} BODY=8BITMIME`));
    } finally {
      await queue.close();
    }
  });

  it('a record line longer than the first 64 KiB block (large metadata): read on to its end, for a small body and a large one', async () => {
    await start();
    dir = mkdtempSync(join(tmpdir(), 'queue-large-body-'));
    const queue = await MailQueue.open({ dir });
    try {
      const metadata = { note: 'x'.repeat(100 * KiB) };
      const small = message('long-record-small', 2 * KiB, false);
      const large = message('long-record-large', 600 * KiB, true);
      const ids = [];
      for (const bytes of [small, large]) ids.push((await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: bytes }, { metadata })).id);
      expect(await queue.store.body(ids[0]!)).toEqual(small);
      expect(await queue.store.body(ids[1]!)).toMatchObject({ path: join(dir, 'data', ids[1]!), eightBit: true });
      expect((await bodyBytes(await queue.store.body(ids[1]!))).equals(large)).toBe(true); // start is just past the long line
      await queue.flush({ smtp: smtp() });
      for (const tag of ['long-record-small', 'long-record-large']) expect(server!.deliveries.get(`${tag} b@example.test`), tag).toBe(1);
      for (const id of ids) expect((await queue.get(id))?.metadata).toEqual(metadata);
    } finally {
      await queue.close();
    }
  });

  it('a record without eightBit (written before enqueue recorded it): the file is scanned at the claim, BODY=8BITMIME still declared', async () => {
    const seen = await start();
    dir = mkdtempSync(join(tmpdir(), 'queue-large-body-'));
    const queue = await MailQueue.open({ dir });
    try {
      const bytes = message('older', 600 * KiB, true);
      const { id } = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: bytes });
      const path = join(dir, 'data', id);
      const file = readFileSync(path, 'latin1');
      const flag = ',"eightBit":true';
      expect(file.split('\n')[0]).toContain(flag);
      writeFileSync(path, file.replace(flag, ' '.repeat(flag.length)), 'latin1');
      expect(await queue.store.body(id)).toMatchObject({ path, eightBit: true });
      await queue.flush({ smtp: smtp() });
      expect(server!.deliveries.get('older b@example.test')).toBe(1);
      expect(seen.mails).toEqual([`MAIL FROM:<a@example.test> SIZE=${bytes.length} BODY=8BITMIME`]);
    } finally {
      await queue.close();
    }
  });
});
