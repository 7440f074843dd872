// What a purge of finished messages costs (QueueStore.purge): N finished messages (half delivered,
// half bounced: a bounced one keeps its body) are made in one store, then two purges run: one whose
// cutoff is an hour ago (nothing old enough: the spool passes every done/ name over unread, Redis
// stops at the first page of {p}:ids), then one that removes them all. Prints each purge's time, per
// message, and this process's RSS and V8 heap before and at their peak during the purges (memory must
// not grow with N).
//   node bench/suites/queue/purge.mjs spool|redis [messages] [--write]
// --write puts the line, with this command, in docs/queue.md (block purge:<store>).
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, replaceDocBlock, waitForRedis } from '../../../test/queue/script-helpers.mjs';

const kind = process.argv[2] ?? 'spool';
const N = Number(process.argv[3] && !process.argv[3].startsWith('--') ? process.argv[3] : 5000);
const write = process.argv.includes('--write');
const dir = mkdtempSync(join(tmpdir(), 'purge-bench-'));
let redisProc;
let store;
if (kind === 'spool') {
  const { SpoolStore } = await import('../../../packages/queue/dist/index.js');
  store = new SpoolStore(join(dir, 'spool'));
} else {
  const port = await freePort();
  redisProc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: 'ignore' });
  if (!(await waitForRedis(port))) throw new Error('redis-server did not start (apt-get install redis-server)');
  const { RedisStore } = await import('../../../packages/queue-redis/dist/index.js');
  store = new RedisStore({ url: `redis://127.0.0.1:${port}` });
}
try {
  await store.open();
  const message = `From: a@example.test\r\nTo: b@example.test\r\nSubject: purge bench\r\n\r\n${'a line of the body\r\n'.repeat(50)}`;
  const worker = await store.registerWorker();
  for (let made = 0; made < N; ) {
    const batch = Math.min(500, N - made);
    await Promise.all(Array.from({ length: batch }, () => store.enqueue({ from: 'a@example.test', to: 'b@example.test', message })));
    const claims = [];
    while (claims.length < batch) claims.push(...(await store.claim(worker, batch - claims.length)));
    const now = Date.now();
    await Promise.all(claims.map((c, i) => {
      const state = i % 2 ? 'delivered' : 'bounced';
      return store.finish(worker, { ...c.message, attempts: 1, finishedAt: now, recipients: c.message.recipients.map((r) => ({ ...r, state, attempts: 1, finishedAt: now })) });
    }));
    made += batch;
  }
  await store.unregisterWorker(worker);
  const mb = (bytes) => (bytes / 1048576).toFixed(1);
  const rssBefore = process.memoryUsage().rss;
  const heapBefore = process.memoryUsage().heapUsed;
  let peak = rssBefore;
  let heapPeak = heapBefore;
  const sampler = setInterval(() => {
    const now = process.memoryUsage();
    peak = Math.max(peak, now.rss);
    heapPeak = Math.max(heapPeak, now.heapUsed);
  }, 5);
  let started = performance.now();
  const none = await store.purge({ finishedBefore: Date.now() - 3_600_000 });
  const scanMs = performance.now() - started;
  started = performance.now();
  const all = await store.purge({ finishedBefore: Date.now() + 1 });
  const purgeMs = performance.now() - started;
  clearInterval(sampler);
  const left = kind === 'spool' ? readdirSync(join(dir, 'spool', 'done')).length : (await store.stats()).messages.delivered;
  const line = `${kind}: ${N} finished messages; purge older than 1 h: ${none} removed in ${scanMs.toFixed(0)} ms; purge of all: ${all} removed in ${purgeMs.toFixed(0)} ms (${((purgeMs * 1000) / Math.max(1, all)).toFixed(0)} us a message), ${left} left; RSS ${mb(rssBefore)} MB before, peak ${mb(peak)} MB during (heap used ${mb(heapBefore)}, peak ${mb(heapPeak)}); load ${(await import('node:os')).loadavg()[0].toFixed(1)}`;
  console.log(line);
  if (write) {
    const begin = `<!-- purge:${kind}:begin -->`;
    const end = `<!-- purge:${kind}:end -->`;
    const command = `node bench/suites/queue/purge.mjs ${kind} ${N} --write`;
    replaceDocBlock(fileURLToPath(new URL('../../../docs/queue.md', import.meta.url)), begin, end, [begin, `Command: \`${command}\` (${new Date().toISOString().slice(0, 10)})`, '', line, end].join('\n'));
  }
  await store.close();
} finally {
  redisProc?.kill();
  // redis-server writes its AOF on the way out: its directory goes after it.
  if (redisProc) await new Promise((resolve) => redisProc.once('exit', resolve));
  rmSync(dir, { recursive: true, force: true });
}
