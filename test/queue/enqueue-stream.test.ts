// MailQueue.enqueueMessage streams a message into the spool: only the header
// block is held in memory, the rest goes to the store's temp file as it is
// read (then fsync, rename), so a message larger than memory can be queued.
import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MailQueue, QueueError, SpoolStore } from 'smtplib-queue';
import { bodyBytes } from './body-bytes.js';

const MiB = 1024 * 1024;

async function spoolQueue(): Promise<{ queue: MailQueue; store: SpoolStore; dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'smtplib-enqueue-stream-'));
  const store = new SpoolStore(dir);
  await store.open();
  const queue = new MailQueue(store);
  return { queue, store, dir, cleanup: async () => { await queue.close(); await rm(dir, { recursive: true, force: true }); } };
}

/** Bytes in the spool's tmp/ right now (the message being written). */
function tmpBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(join(dir, 'tmp'))) {
    try {
      total += statSync(join(dir, 'tmp', name)).size;
    } catch {
      // renamed away meanwhile
    }
  }
  return total;
}

describe('MailQueue.enqueueMessage streams into the spool', () => {
  it('a 32 MiB message is written while it is read: when chunk k is asked for, the k before it are already in tmp/', async () => {
    const { queue, store, dir, cleanup } = await spoolQueue();
    try {
      const header = 'From: a@example.test\r\nTo: b@example.test\r\nBcc: hidden@example.test\r\nSubject: big\r\n\r\n';
      const chunks = 32;
      const onDiskWhenAsked: number[] = [];
      const expected = createHash('sha256').update('From: a@example.test\r\nTo: b@example.test\r\nSubject: big\r\n\r\n');
      const message = {
        async *stream(): AsyncGenerator<Uint8Array | string> {
          yield header;
          for (let k = 0; k < chunks; k++) {
            onDiskWhenAsked.push(tmpBytes(dir));
            const chunk = Buffer.alloc(MiB, 0x61 + (k % 26)); // a fresh MiB each time, never kept by the test
            chunk.write('\r\n', MiB - 2);
            expected.update(chunk);
            yield chunk;
          }
        },
      };
      const { id } = await queue.enqueueMessage(message);
      // The spy on the store's input: chunk k was asked for only after the chunks before it had been written.
      for (let k = 1; k < chunks; k++) expect(onDiskWhenAsked[k]).toBeGreaterThanOrEqual(k * MiB);
      const stored = await queue.get(id);
      expect(stored?.recipients.map((r) => r.address).sort()).toEqual(['b@example.test', 'hidden@example.test']);
      // Past 256 KiB the body is given as its spool file (read by the pool while it sends), never read whole.
      const file = await store.body(id);
      expect(Buffer.isBuffer(file)).toBe(false);
      expect(file).toMatchObject({ path: join(dir, 'data', id), eightBit: false });
      const body = await bodyBytes(file);
      expect(stored?.size).toBe(body.length);
      expect(body.length).toBe(header.length - 'Bcc: hidden@example.test\r\n'.length + chunks * MiB);
      expect(createHash('sha256').update(body).digest('hex')).toBe(expected.digest('hex'));
      expect(await readdir(join(dir, 'tmp'))).toEqual([]);
    } finally {
      await cleanup();
    }
  });

  it('a header block split across chunks of a few bytes is found; Bcc is removed and the body is kept byte for byte', async () => {
    const { queue, store, cleanup } = await spoolQueue();
    try {
      const text = 'From: a@example.test\r\nTo: b@example.test\r\nBcc: c@example.test,\r\n d@example.test\r\nSubject: s\r\n\r\nline 1\r\n\r\nBcc: not-a-header@example.test\r\n';
      const message = {
        async *stream(): AsyncGenerator<string> {
          for (let i = 0; i < text.length; i += 5) yield text.slice(i, i + 5);
        },
      };
      const { id } = await queue.enqueueMessage(message);
      expect((await queue.get(id))?.recipients.map((r) => r.address).sort()).toEqual(['b@example.test', 'c@example.test', 'd@example.test']);
      expect((await bodyBytes(await store.body(id))).toString()).toBe('From: a@example.test\r\nTo: b@example.test\r\nSubject: s\r\n\r\nline 1\r\n\r\nBcc: not-a-header@example.test\r\n');
    } finally {
      await cleanup();
    }
  });

  it('an empty stream is refused and leaves nothing behind', async () => {
    const { store, dir, cleanup } = await spoolQueue();
    try {
      const empty = (async function* (): AsyncGenerator<Uint8Array> {})();
      const error = await store.enqueueStream({ from: 'a@example.test', to: 'b@example.test', message: empty }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(QueueError);
      expect((error as QueueError).code).toBe('ERR_QUEUE_INVALID');
      expect(await readdir(join(dir, 'tmp'))).toEqual([]);
      expect(await readdir(join(dir, 'data'))).toEqual([]);
      expect(await readdir(join(dir, 'queue'))).toEqual([]);
    } finally {
      await cleanup();
    }
  });

  it('a store without enqueueStream is given the whole message (what RedisStore gets), the same bytes', async () => {
    const { queue, store, cleanup } = await spoolQueue();
    try {
      Object.defineProperty(store, 'enqueueStream', { value: undefined });
      const calls: unknown[] = [];
      const enqueue = store.enqueue.bind(store);
      store.enqueue = (input, options) => {
        calls.push(input.message);
        return enqueue(input, options);
      };
      const message = { async *stream(): AsyncGenerator<string> { yield 'From: a@example.test\r\nTo: b@example.test\r\nBcc: x@example.test\r\n'; yield '\r\nbody\r\n'; } };
      const { id } = await queue.enqueueMessage(message);
      expect(calls).toHaveLength(1);
      expect(Buffer.isBuffer(calls[0])).toBe(true);
      expect((await bodyBytes(await store.body(id))).toString()).toBe('From: a@example.test\r\nTo: b@example.test\r\n\r\nbody\r\n');
    } finally {
      await cleanup();
    }
  });
});
