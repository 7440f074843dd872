// RedisStore.open() while Redis is down: a worker (re)started during a Redis
// restart waits for it (ioredis keeps reconnecting) instead of dying of the
// first refused connection; with nothing there it fails after connectTimeoutMs
// with a typed error that says what to check.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RedisStore } from 'smtplib-queue-redis';
import { redisAvailable } from './redis-server.js';

const missing = redisAvailable();
if (missing && process.env.CI === 'true') throw new Error(missing);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe.skipIf(Boolean(missing))('RedisStore.open() and a Redis that is not up yet', () => {
  it('waits for a Redis that starts after open() was called', async () => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'smtplib-redis-late-'));
    let redis: ChildProcess | undefined;
    const store = new RedisStore({ url: `redis://127.0.0.1:${port}`, prefix: 'late', connectTimeoutMs: 20_000 });
    try {
      const opening = store.open();
      let opened = false;
      void opening.then(() => { opened = true; }, () => undefined);
      await new Promise((r) => setTimeout(r, 700));
      expect(opened).toBe(false);
      redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      await opening;
      const { id } = await store.enqueue({ from: 'a@example.test', to: 'b@example.test', message: 'Subject: after the wait\r\n\r\nbody\r\n' });
      expect((await store.get(id))?.state).toBe('queued');
    } finally {
      await store.close().catch(() => undefined);
      redis?.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives up after connectTimeoutMs with ERR_QUEUE_STORE naming the address', async () => {
    const port = await freePort();
    const store = new RedisStore({ url: `redis://:secret-pass@127.0.0.1:${port}`, prefix: 'none', connectTimeoutMs: 800 });
    const error = await store.open().then(() => undefined, (e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_QUEUE_STORE' });
    expect(String((error as Error).message)).toContain(`127.0.0.1:${port}`);
    expect(String((error as Error).message)).not.toContain('secret-pass');
  });
});
