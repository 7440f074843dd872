// Where a delivered message's CPU goes with the Redis store, beside the usual user's build (nodemailer's
// pool driven by BullMQ workers): bench/suites/queue.js's 4-worker delivery cells (the same worker
// processes, C sink at 1 ms, redis-server with AOF and appendfsync always), run once each, with
//   - CPU per message of the worker processes and of redis-server (/proc), and their read and write
//     system calls per message (/proc/<pid>/io);
//   - redis-server's time per message by script (SLOWLOG with every command logged: a script's time
//     includes the commands it calls), named from BullMQ's own script files for BullMQ's and by their
//     first key for this store's, and the commands per message (INFO commandstats, inner calls included);
//   - with --cpu-prof, the worker processes' busy CPU split by layer (a sample goes to the nearest
//     package on its stack: smtplib, BullMQ, this store, the queue's worker; time in ioredis to the
//     package that called it, or to reading replies), from V8 CPU profiles of the delivery window
//     (the profiler slows the run).
// Measures; judges nothing. --write puts the tables into docs/queue.md's cost block.
//   node packages/queue-redis/scripts/cost-split.mjs [--workers 4] [--messages 4000[,16000...]] [--cpu-prof] [--write]
import { createHash } from 'node:crypto';
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSink, startSink, SinkControl } from '../../../bench/lib/sink.js';
import { freePort, replaceDocBlock, stopChildren, waitForRedis } from '../../../test/queue/script-helpers.mjs';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const W = arg('--workers', 4);
// One or more run sizes (--messages 4000,16000): each worker process's start-up work (V8 compiling
// the hot code, on other threads too) is spread over more messages in a longer run.
const SIZES = process.argv.includes('--messages') ? process.argv[process.argv.indexOf('--messages') + 1].split(',').map(Number) : [4000];
// SLOWLOG keeps every command of a cell (some 50 a message with the ones scripts call): only cells up to this size.
const SLOWLOG_MAX = 5000;
const PROFILE = process.argv.includes('--cpu-prof');
const WRITE = process.argv.includes('--write');
const log = (...a) => console.error('  [cost-split]', ...a);

/** utime + stime of a /proc stat file, in clock ticks of USER_HZ 100, as ms. */
function ticksMs(path) {
  const s = readFileSync(path, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}
/** A process's CPU (all threads, and its main thread alone) and its read and write system calls. */
function stat(pid) {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return { cpu: ticksMs(`/proc/${pid}/stat`), main: ticksMs(`/proc/${pid}/task/${pid}/stat`), r: Number(/syscr: (\d+)/.exec(io)[1]), w: Number(/syscw: (\d+)/.exec(io)[1]) };
}
const used = (pids, before) => pids.map((pid, i) => {
  const now = stat(pid);
  return { cpu: now.cpu - before[i].cpu, main: now.main - before[i].main, r: now.r - before[i].r, w: now.w - before[i].w };
}).reduce((a, b) => ({ cpu: a.cpu + b.cpu, main: a.main + b.main, r: a.r + b.r, w: a.w + b.w }));

/** Talks RESP to redis-server directly (one command at a time): replies as nested arrays, strings, numbers. */
async function redisClient(port) {
  const { Redis } = await import('ioredis');
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
  await r.connect();
  return r;
}

/** BullMQ's scripts by the SHA-1 ioredis sends for them (name without the key count). */
function bullmqScripts() {
  const require = createRequire(join(ROOT, 'packages/queue-redis/package.json'));
  const dir = join(require.resolve('bullmq/package.json'), '..', 'dist', 'cjs', 'scripts');
  const out = new Map();
  for (const file of readdirSync(dir).filter((f) => /-\d+\.js$/.test(f))) {
    const mod = require(join(dir, file));
    for (const value of Object.values(mod)) if (value && typeof value.content === 'string') out.set(createHash('sha1').update(value.content).digest('hex'), value.name);
  }
  return out;
}

/** This store's scripts, told apart by their first key (see redis-store.ts). */
function ourScript(argv) {
  const firstKey = String(argv[3] ?? '');
  // The claim and outcome scripts both take due, active, held, then (msg, lock, marks) per message;
  // after the keys the claim has 2 + 3 per message arguments, the outcome 7 per message.
  if (firstKey.endsWith(':due')) {
    const keys = Number(argv[2]);
    // SLOWLOG keeps 32 arguments of a command, the last saying how many more there were.
    const more = /^\.\.\. \((\d+) more arguments\)$/.exec(String(argv[argv.length - 1]));
    const length = more ? argv.length - 1 + Number(more[1]) : argv.length;
    return length - 3 - keys === 7 * ((keys - 3) / 3) ? 'store: outcome (FINISH_IF_OWNED, per batch)' : 'store: claim (CLAIM_IF_OWNED, per batch)';
  }
  if (firstKey.endsWith(':lock')) return 'store: end-of-data marks (MARK_IF_OWNED, per batch)';
  if (/:dest:/.test(firstKey)) return 'store: destination slots (TAKE_SLOTS)';
  return firstKey.startsWith('bull:') ? 'BullMQ: other scripts' : `store: other script (${firstKey})`;
}

const message = (i) => `From: bench@example.test\r\nTo: sink@example.test\r\nSubject: queue bench ${i}\r\nMessage-ID: <q${i}@bench.test>\r\n\r\n${'This is a small message body line for the queue benchmark.\r\n'.repeat(8)}`;

/** Samples of the delivery window (from the first to the last sample under one of `markers`), by layer. */
function layers(dir, markers) {
  // The nearest package frame above the leaf owns a sample; ioredis (and msgpackr, denque) frames
  // only say the time went into the Redis client, on behalf of the owner above them.
  const owner = (url) => {
    if (/\/node_modules\/bullmq\//.test(url)) return 'BullMQ (its job handling, and the Redis client under it)';
    if (/\/node_modules\/nodemailer\//.test(url)) return 'nodemailer';
    if (url.includes('/packages/smtplib/')) return 'smtplib (pool, SMTP)';
    if (url.includes('/packages/queue-redis/')) return 'this store (queue-redis)';
    if (url.includes('/packages/queue/')) return 'queue worker and records';
    return undefined;
  };
  const client = (url) => /\/node_modules\/(ioredis|@ioredis|msgpackr|denque|cluster-key-slot|standard-as-callback)\//.test(url);
  const total = new Map();
  let busy = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const p = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const memo = new Map();
    const layer = (id) => {
      if (memo.has(id)) return memo.get(id);
      const fn = nodes.get(id).callFrame.functionName;
      let out = ['(idle)', '(garbage collector)', '(program)'].includes(fn) ? fn : undefined;
      let inClient = false;
      for (let x = id; !out && x !== undefined; x = parent.get(x)) {
        const url = nodes.get(x).callFrame.url;
        if (client(url)) inClient = true;
        else out = owner(url);
      }
      if (inClient && out === 'this store (queue-redis)') out = 'Redis client (ioredis) sending this store\'s scripts';
      else if (inClient && out === undefined) out = 'Redis client (ioredis) reading replies (BullMQ\'s and the store\'s)';
      out ??= 'Node.js (socket reads, timers, promise jobs)';
      memo.set(id, out);
      return out;
    };
    const marked = (id) => {
      for (let x = id; x !== undefined; x = parent.get(x)) if (markers.includes(nodes.get(x).callFrame.functionName)) return true;
      return false;
    };
    let first = -1;
    let last = -1;
    for (let i = 0; i < p.samples.length; i++) if (marked(p.samples[i])) (first < 0 && (first = i), (last = i));
    for (let i = Math.max(first, 0); i <= last; i++) {
      const l = layer(p.samples[i]);
      if (l === '(idle)') continue;
      total.set(l, (total.get(l) ?? 0) + p.timeDeltas[i]);
      busy += p.timeDeltas[i];
    }
  }
  return { busy, rows: [...total].sort((a, b) => b[1] - a[1]) };
}

async function cell(kind, M, { sink, ctl, port, url, shas }) {
  const prefix = kind === 'redis' ? `cost${M}` : `costnm${M}`;
  let store;
  let q;
  if (kind === 'redis') {
    const { RedisStore } = await import(join(ROOT, 'packages/queue-redis/dist/index.js'));
    store = new RedisStore({ url, prefix });
    await store.open();
    let next = 0;
    await Promise.all(Array.from({ length: 200 }, async () => {
      while (next < M) {
        const i = next++;
        await store.enqueue({ from: 'bench@example.test', to: 'sink@example.test', message: message(i) });
      }
    }));
  } else {
    const { Queue } = await import('bullmq');
    q = new Queue(prefix, { connection: { host: '127.0.0.1', port } });
    for (let i = 0; i < M; i += 500) await q.addBulk(Array.from({ length: Math.min(500, M - i) }, (_, j) => ({ name: 'mail', data: { from: 'bench@example.test', to: ['sink@example.test'], raw: message(i + j) }, opts: { removeOnComplete: true } })));
  }
  const profDir = PROFILE ? mkdtempSync(join(tmpdir(), 'cost-split-prof-')) : undefined;
  const script = join(ROOT, 'bench/suites/queue', kind === 'redis' ? 'worker.mjs' : 'nodemailer-bullmq-worker.mjs');
  const args = kind === 'redis' ? [`redis:${url}#${prefix}#30000`, '127.0.0.1', String(sink.port)] : [url, prefix, '127.0.0.1', String(sink.port)];
  await ctl.reset();
  const children = await Promise.all(Array.from({ length: W }, () => new Promise((resolve, reject) => {
    const child = fork(script, args, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [] });
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`${script} exited ${code}`)));
  })));
  const r = await redisClient(port);
  const slowlog = M <= SLOWLOG_MAX;
  if (slowlog) await r.config('SET', 'slowlog-log-slower-than', '0');
  // Commands called by scripts are logged too (client "?:0"), some 50 per message in all.
  if (slowlog) await r.config('SET', 'slowlog-max-len', String(M * 100));
  await r.slowlog('RESET');
  await r.config('RESETSTAT');
  const pids = children.map((c) => c.pid);
  const w0 = pids.map(stat);
  const r0 = [stat(sink.redisPid)];
  // What the delivery adds to the append-only file (the enqueues came before).
  const aofBytes = async () => Number(/aof_current_size:(\d+)/.exec(await r.info('persistence'))[1]);
  const aof0 = await aofBytes();
  const t0 = Date.now();
  for (const c of children) c.send('start');
  for (;;) {
    if ((await ctl.stats()).messages >= M) break;
    if (Date.now() - t0 > 300_000) throw new Error(`${kind}: not all ${M} messages arrived in 300 s`);
    await new Promise((res) => setTimeout(res, 10));
  }
  const ms = Date.now() - t0;
  const workers = used(pids, w0);
  const redis = used([sink.redisPid], r0);
  const aof = (await aofBytes()) - aof0;
  // Both read at once: idle workers keep polling after the last message.
  const [info] = await Promise.all([r.info('commandstats'), r.config('SET', 'slowlog-log-slower-than', '-1')]);
  const entries = slowlog ? await r.slowlog('GET', '-1') : [];
  await r.slowlog('RESET');
  await r.config('SET', 'slowlog-max-len', '128');
  await r.config('SET', 'slowlog-log-slower-than', '10000');
  await r.quit();
  await stopChildren(children);
  await store?.close();
  await q?.close();
  // SLOWLOG: [id, time, microseconds, [command, args...], ...]; a script's time includes its inner commands.
  const byScript = new Map();
  let logged = 0;
  for (const [, , us, argv, client] of entries) {
    if (String(client) === '?:0') continue; // called by a script: in that script's time
    const command = String(argv[0]).toLowerCase();
    if (['config', 'slowlog', 'info'].includes(command)) continue;
    let name = command;
    if (command === 'evalsha' || command === 'eval') {
      const sha = command === 'evalsha' ? String(argv[1]) : createHash('sha1').update(String(argv[1])).digest('hex');
      name = shas.has(sha) ? `BullMQ: ${shas.get(sha).replace(/-\d+$/, '')}` : ourScript(argv);
    } else name = `plain command: ${command}`;
    const row = byScript.get(name) ?? { calls: 0, us: 0 };
    row.calls++;
    row.us += Number(us);
    logged += Number(us);
    byScript.set(name, row);
  }
  let commands = 0;
  for (const line of info.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m && !/^(config|slowlog|info)/.test(m[1])) commands += Number(m[2]);
  }
  const profile = profDir ? layers(profDir, kind === 'redis' ? ['claim', 'finish'] : ['processJob']) : undefined;
  if (profDir) rmSync(profDir, { recursive: true, force: true });
  const received = (await ctl.stats()).messages;
  if (received !== M) throw new Error(`${kind}: the sink got ${received} of ${M}`);
  return { kind, M, rate: M / (ms / 1000), workers, redis, aof, byScript, logged, commands, profile };
}

const sinkProc = await startSink(buildSink());
const ctl = await SinkControl.connect(sinkProc.ctrlPort);
const port = await freePort();
const dir = mkdtempSync(join(tmpdir(), 'cost-split-redis-'));
const redisProc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--auto-aof-rewrite-percentage', '0'], { stdio: 'ignore' });
const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' / ');
const results = [];
const loadBefore = load();
try {
  if (!(await waitForRedis(port))) throw new Error('redis-server did not start (apt-get install redis-server)');
  await ctl.config({ delay_us: 1000 });
  const ctx = { sink: { port: sinkProc.port, redisPid: redisProc.pid }, ctl, port, url: `redis://127.0.0.1:${port}`, shas: bullmqScripts() };
  for (const M of SIZES) {
    for (const kind of ['redis', 'nodemailer']) {
      results.push(await cell(kind, M, ctx));
      log(`${kind}, ${M} messages: ${results.at(-1).rate.toFixed(0)} msgs/s`);
    }
  }
} finally {
  await new Promise((res) => {
    if (redisProc.exitCode !== null) return res();
    redisProc.once('exit', res);
    redisProc.kill();
    setTimeout(() => redisProc.kill('SIGKILL'), 5000).unref();
  });
  rmSync(dir, { recursive: true, force: true });
  await ctl.config({ delay_us: 0 }).catch(() => undefined);
  ctl.close();
  sinkProc.proc.kill();
}

const names = { redis: 'smtplib-queue, Redis store', nodemailer: 'nodemailer pool + BullMQ' };
const name = (c) => `${names[c.kind]}, ${c.M.toLocaleString('en-US')} msgs`;
const f2 = (x) => x.toFixed(2);
const f3 = (x) => x.toFixed(3);
const lines = [
  `Command: \`node packages/queue-redis/scripts/cost-split.mjs --workers ${W} --messages ${SIZES.join(',')}${PROFILE ? ' --cpu-prof' : ''}\`. ` +
    `${os.cpus().length} CPUs, load average (1 / 5 / 15 min) ${loadBefore} at the start and ${load()} at the end. ` +
    `${W} worker processes, ${SIZES.map((m) => m.toLocaleString('en-US')).join(' and ')} messages per cell, sink latency 1 ms, redis-server with AOF and appendfsync always (automatic AOF rewrites off, so the AOF only grows and its growth is what was written: with them on, a rewrite in the 16,000-message cell made the growth negative) and, in cells of up to ${SLOWLOG_MAX.toLocaleString('en-US')} messages, every command in its SLOWLOG (which costs it CPU)${PROFILE ? '; the workers under the V8 profiler (slower)' : ''}. One run; msgs/s moves with the machine, CPU per message much less.`,
  '',
  '| cell | msgs/s | CPU ms/msg: workers (their main threads) | redis-server | system calls/msg, workers (read / write) | redis-server (read / write) | Redis commands/msg (inner calls included) | AOF bytes/msg |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...results.map(({ M, ...c }) => `| ${name({ M, ...c })} | ${Math.round(c.rate).toLocaleString('en-US')} | ${f3(c.workers.cpu / M)} (${f3(c.workers.main / M)}) | ${f3(c.redis.cpu / M)} | ${f2(c.workers.r / M)} / ${f2(c.workers.w / M)} | ${f2(c.redis.r / M)} / ${f2(c.redis.w / M)} | ${(c.commands / M).toFixed(1)} | ${Math.round(c.aof / M).toLocaleString('en-US')} |`),
  '',
  'redis-server\'s time per message by what ran (SLOWLOG: a script\'s time includes the commands it calls; fsyncs and socket I/O are not in it; wall-clock time, so it includes any time redis-server waited for a CPU: compare the shares within a cell rather than the µs across cells):',
  '',
  '| cell | what ran | calls/msg | µs/msg | share |',
  '| --- | --- | ---: | ---: | ---: |',
  ...results.flatMap((c) => [...c.byScript].sort((a, b) => b[1].us - a[1].us).filter(([, v]) => v.us / c.logged >= 0.005).map(([k, v]) => `| ${name(c)} | ${k} | ${f2(v.calls / c.M)} | ${(v.us / c.M).toFixed(1)} | ${((100 * v.us) / c.logged).toFixed(0)}% |`)),
];
if (PROFILE) {
  lines.push('', 'Worker processes\' main threads, busy CPU by layer (V8 CPU profiles of the delivery window, which sample the main thread only; a sample goes to the nearest package on its stack, time in ioredis to the package that called it; ms/msg under the profiler):', '', '| cell | layer | ms/msg | share |', '| --- | --- | ---: | ---: |');
  for (const c of results) for (const [k, us] of c.profile.rows) lines.push(`| ${name(c)} | ${k} | ${f3(us / 1000 / c.M)} | ${((100 * us) / c.profile.busy).toFixed(0)}% |`);
}
const block = lines.join('\n');
console.log(block);
if (WRITE) replaceDocBlock(join(ROOT, 'docs', 'queue.md'), '<!-- cost:redis:begin -->', '<!-- cost:redis:end -->', `<!-- cost:redis:begin -->\n${block}\n<!-- cost:redis:end -->`);
