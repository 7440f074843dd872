// What recover()'s look for messages with no BullMQ job costs, with many messages pending: a
// redis-server (AOF, appendfsync always) on a loopback port, N messages enqueued, then W stores
// opened one after the other as W worker processes starting would (open() runs recover()).
// Prints the commands redis-server ran (INFO commandstats), its CPU (/proc) and the opening
// processes' wall time. Measures; judges nothing.
//   node packages/queue-redis/scripts/recover-cost.mjs [--messages 5000] [--workers 4] [--dist DIR]
// --dist: another build of this package's dist/ (to compare with an older one).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitForRedis } from '../../../test/queue/script-helpers.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const N = Number(arg('--messages', 5000));
const W = Number(arg('--workers', 4));
const dist = arg('--dist', fileURLToPath(new URL('../dist', import.meta.url)));
const { RedisStore } = await import(join(dist, 'index.js'));

const cpuMs = (pid) => {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};

const port = await freePort();
const dir = mkdtempSync(join(tmpdir(), 'recover-cost-'));
const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: 'ignore' });
try {
  if (!(await waitForRedis(port, 10_000))) throw new Error('redis-server did not start');
  const url = `redis://127.0.0.1:${port}`;
  const first = new RedisStore({ url, prefix: 'rc' });
  await first.open();
  let next = 0;
  await Promise.all(Array.from({ length: 100 }, async () => {
    while (next < N) {
      next++;
      await first.enqueue({ from: 'a@example.test', to: 'b@example.test', message: 'Subject: x\r\n\r\nbody\r\n' });
    }
  }));
  await first.close();
  const { Redis } = await import('ioredis');
  const r = new Redis({ port, host: '127.0.0.1' });
  // A minute has passed since the first store's scan (the new code's queue-wide mark of it gone).
  await r.del('rc:orphan-scan');
  await r.config('RESETSTAT');
  const cpu0 = cpuMs(server.pid);
  const t0 = performance.now();
  const stores = [];
  for (let i = 0; i < W; i++) {
    const store = new RedisStore({ url, prefix: 'rc' });
    await store.open();
    stores.push(store);
  }
  const ms = performance.now() - t0;
  const cpu = cpuMs(server.pid) - cpu0;
  const info = await r.info('commandstats');
  const calls = [...info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].filter((m) => !/^(config|info)$/.test(m[1])).map((m) => [m[1], Number(m[2])]).sort((a, b) => b[1] - a[1]);
  const total = calls.reduce((a, [, n]) => a + n, 0);
  console.log(`${W} stores opened on ${N.toLocaleString('en')} pending messages (${dist}): ${ms.toFixed(0)} ms, redis-server CPU ${cpu} ms, ${total.toLocaleString('en')} commands (${calls.slice(0, 5).map(([c, n]) => `${c} ${n}`).join(', ')})`);
  for (const store of stores) await store.close();
  await r.quit();
} finally {
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));
  rmSync(dir, { recursive: true, force: true });
}
