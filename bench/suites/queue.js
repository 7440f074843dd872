// Bench suite for the durable queue (issue 13), picked up by bench/run.js:
// durable enqueue rate on the spool; delivery rate with 1, 2 and 4 worker
// processes at 1 ms server latency (the C sink), on the spool and on Redis
// (AOF, appendfsync always); beside nodemailer's pool driven by BullMQ
// workers. Every cell checks the sink counted exactly one message per
// queued message (0 lost, 0 duplicates).
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SinkControl } from '../lib/sink.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(here, '..', '..');
const log = (...a) => console.error('  [queue]', ...a);

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'smtplib-bench-redis-'));
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => s.write('PING\r\n'));
      s.once('data', (d) => { s.destroy(); resolve(String(d).startsWith('+PONG')); });
      s.once('error', () => resolve(false));
    });
    if (ok) return { url: `redis://127.0.0.1:${port}`, stop: () => { proc.kill('SIGTERM'); rmSync(dir, { recursive: true, force: true }); } };
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGKILL');
  throw new Error('redis-server did not start (apt-get install redis-server)');
}

function message(i) {
  return `From: bench@example.test\r\nTo: sink@example.test\r\nSubject: queue bench ${i}\r\nMessage-ID: <q${i}@bench.test>\r\n\r\n${'This is a small message body line for the queue benchmark.\r\n'.repeat(8)}`;
}

function startChildren(script, args, count) {
  return Promise.all(Array.from({ length: count }, () => new Promise((resolve, reject) => {
    const child = fork(script, args, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`${script} exited ${code}`)));
  })));
}

async function stopChildren(children) {
  await Promise.all(children.map((c) => new Promise((r) => {
    if (c.exitCode !== null) return r();
    c.removeAllListeners('exit');
    c.once('exit', r);
    c.kill('SIGTERM');
    setTimeout(() => c.kill('SIGKILL'), 5000).unref();
  })));
}

/** Waits until the sink has counted `n` messages; returns ms since `t0`. Then waits a little more to catch duplicates. */
async function waitForSink(ctl, n, t0, timeoutMs) {
  for (;;) {
    const st = await ctl.stats();
    if (st.messages >= n) break;
    if (Date.now() - t0 > timeoutMs) throw new Error(`only ${st.messages} of ${n} messages arrived in ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const ms = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 300));
  return { ms, received: (await ctl.stats()).messages };
}

export async function run({ quick, host, port, ctrlPort }) {
  const { MailQueue, SpoolStore } = await import(join(ROOT, 'packages/queue/dist/index.js'));
  const { RedisStore } = await import(join(ROOT, 'packages/queue-redis/dist/index.js'));
  const { Queue } = await import('bullmq');
  const ctl = await SinkControl.connect(ctrlPort);
  const E = quick ? 500 : 5000; // enqueue count
  const M = quick ? 300 : 4000; // delivery count per cell
  const rows = [];
  const timeout = quick ? 60_000 : 300_000;

  // 1. durable enqueue rate (spool): 100 enqueues in flight at a time
  const dir = mkdtempSync(join(tmpdir(), 'smtplib-bench-spool-'));
  {
    const queue = await MailQueue.open({ dir: join(dir, 'enqueue') });
    const t0 = performance.now();
    for (let i = 0; i < E; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, E - i) }, (_, j) => queue.enqueue({ from: 'bench@example.test', to: 'sink@example.test', message: message(i + j) })));
    }
    const ms = performance.now() - t0;
    await queue.close();
    rows.push({ cell: `spool: durable enqueue (fsync), ${E} messages, 100 in flight`, rate: E / (ms / 1000), extra: '' });
    log(`enqueue: ${(E / (ms / 1000)).toFixed(0)} msgs/s`);
  }

  await ctl.config({ delay_us: 1000 });
  const redis = await startRedis();
  try {
    // 2. delivery: our queue, spool and Redis, 1/2/4 worker processes
    for (const kind of ['spool', 'redis']) {
      for (const workers of [1, 2, 4]) {
        const spec = kind === 'spool' ? `spool:${join(dir, `${kind}-${workers}`)}` : `redis:${redis.url}#bench${workers}#30000`;
        let store;
        if (kind === 'spool') { store = new SpoolStore(spec.slice(6)); } else { store = new RedisStore({ url: redis.url, prefix: `bench${workers}` }); }
        await store.open();
        for (let i = 0; i < M; i += 200) {
          await Promise.all(Array.from({ length: Math.min(200, M - i) }, (_, j) => store.enqueue({ from: 'bench@example.test', to: 'sink@example.test', message: message(i + j) })));
        }
        await ctl.reset();
        const children = await startChildren(join(here, 'queue/worker.mjs'), [spec, host, String(port)], workers);
        const t0 = Date.now();
        const { ms, received } = await waitForSink(ctl, M, t0, timeout);
        await stopChildren(children);
        const stats = await store.stats();
        await store.close();
        const ok = received === M && stats.messages.delivered === M;
        rows.push({ cell: `smtplib-queue (${kind}), ${workers} worker process(es)`, rate: M / (ms / 1000), extra: `${received - M} duplicates, ${M - stats.messages.delivered} not recorded delivered${ok ? '' : ' (FAILED)'}` });
        log(`${kind} ${workers}: ${(M / (ms / 1000)).toFixed(0)} msgs/s`);
        if (!ok) throw new Error(`queue ${kind} ${workers}: sink got ${received} of ${M}, ${stats.messages.delivered} recorded delivered`);
      }
    }
    // 3. the usual user's build: nodemailer pool + BullMQ workers
    for (const workers of [1, 2, 4]) {
      const name = `nm${workers}`;
      const q = new Queue(name, { connection: { host: '127.0.0.1', port: Number(new URL(redis.url).port) } });
      for (let i = 0; i < M; i += 500) {
        await q.addBulk(Array.from({ length: Math.min(500, M - i) }, (_, j) => ({ name: 'mail', data: { from: 'bench@example.test', to: ['sink@example.test'], raw: message(i + j) }, opts: { removeOnComplete: true } })));
      }
      await ctl.reset();
      const children = await startChildren(join(here, 'queue/nodemailer-bullmq-worker.mjs'), [redis.url, name, host, String(port)], workers);
      const t0 = Date.now();
      const { ms, received } = await waitForSink(ctl, M, t0, timeout);
      await stopChildren(children);
      await q.close();
      rows.push({ cell: `nodemailer pool + BullMQ, ${workers} worker process(es)`, rate: M / (ms / 1000), extra: `${received - M} duplicates` });
      log(`nodemailer+bullmq ${workers}: ${(M / (ms / 1000)).toFixed(0)} msgs/s`);
    }
  } finally {
    redis.stop();
    rmSync(dir, { recursive: true, force: true });
    await ctl.config({ delay_us: 0 });
    ctl.close();
  }

  const table = ['| cell | msgs/s | check |', '| --- | ---: | --- |', ...rows.map((r) => `| ${r.cell} | ${r.rate.toFixed(0)} | ${r.extra} |`)];
  const ours4 = rows.find((r) => r.cell === 'smtplib-queue (redis), 4 worker process(es)');
  const nm4 = rows.find((r) => r.cell === 'nodemailer pool + BullMQ, 4 worker process(es)');
  const section = [
    '## Durable queue (smtplib-queue)',
    '',
    `Sink reply latency 1 ms; ${M} messages per delivery cell (each worker: 4 connections, 40 messages in flight); Redis with AOF and appendfsync always. ` +
      `${quick ? 'QUICK run (small counts). ' : ''}Command: \`${quick ? 'BENCH_QUICK=1 ' : ''}BENCH_ONLY=suites BENCH_SUITES=queue npm run bench\`.`,
    '',
    ...table,
    '',
    ours4 && nm4 ? `4 workers: smtplib-queue on Redis ${(ours4.rate / nm4.rate).toFixed(1)}x nodemailer pool + BullMQ.` : '',
  ].join('\n');
  // The same table into docs/queue.md's bench block (a generated block, never typed).
  const doc = join(ROOT, 'docs', 'queue.md');
  if (existsSync(doc)) {
    const text = readFileSync(doc, 'utf8');
    const begin = '<!-- bench:queue:begin -->';
    const end = '<!-- bench:queue:end -->';
    const a = text.indexOf(begin);
    const b = text.indexOf(end);
    if (a >= 0 && b > a) writeFileSync(doc, text.slice(0, a) + begin + '\n' + section.replace(/^## .*\n\n/, '') + '\n' + text.slice(b));
  }
  return section;
}
