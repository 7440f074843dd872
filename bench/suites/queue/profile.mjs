// Where a queued message's time goes: one worker process, one store, the C sink at 1 ms.
// Prints msgs/s, store calls per message with their mean latency, fsyncs per message
// (file and directory, counted in this process), every file call per message with its main-thread
// time, and for Redis the commands per
// message from INFO commandstats (every client, BullMQ's included) and redis-server's CPU per message.
// The worker's CPU is split into its main thread and its other threads, and those into libuv's
// threadpool (fsync, unlink of bodies) and V8's compiler and GC helpers.
//   node [--cpu-prof] bench/suites/queue/profile.mjs spool|redis [messages]   (--cpu-prof: a node flag; NODE_OPTIONS refuses it)
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSink, startSink, SinkControl } from '../../lib/sink.js';
import { freePort, waitForRedis } from '../../../test/queue/script-helpers.mjs';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const kind = process.argv[2] ?? 'spool';
const M = Number(process.argv[3] ?? 2000);

// Count fsyncs (files and directories): the spool makes them with the callback fs.fsync, taken
// when its module loads, so it is wrapped here before the store is imported.
const fsyncs = { n: 0 };
const fsync = fs.fsync;
const rawStat = fs.stat; // for threadpoolTids' burst, which must not count as the store's calls
fs.fsync = function (...args) { fsyncs.n++; return fsync.apply(this, args); };
// Every other file call too (spool: which ones a message costs, sync or on the threadpool), with the
// time each takes on the main thread: for a sync call the call itself, for a callback call only
// handing it to the threadpool.
const calls = {};
for (const name of ['open', 'close', 'read', 'write', 'fsync', 'rename', 'link', 'unlink', 'stat', 'readdir', 'readFile', 'openSync', 'closeSync', 'readSync', 'writeSync', 'fstatSync', 'statSync', 'renameSync', 'linkSync', 'unlinkSync', 'readdirSync']) {
  const fn = fs[name];
  calls[name] = { n: 0, ms: 0 };
  fs[name] = function (...args) {
    const t = performance.now();
    try {
      return fn.apply(this, args);
    } finally {
      calls[name].n++;
      calls[name].ms += performance.now() - t;
    }
  };
}

function redisCli(port, ...args) {
  return new Promise((resolve) => {
    const p = spawn('redis-cli', ['-p', String(port), ...args]);
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('close', () => resolve(out));
  });
}

const sink = await startSink(buildSink());
const ctl = await SinkControl.connect(sink.ctrlPort);
await ctl.config({ delay_us: 1000 });
const dir = mkdtempSync(join(tmpdir(), 'smtplib-qprof-'));
let redisProc;
let store;
const { MailQueue, SpoolStore } = await import(join(ROOT, 'packages/queue/dist/index.js'));
let port;
if (kind === 'redis') {
  port = await freePort();
  redisProc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: 'ignore' });
  if (!(await waitForRedis(port))) throw new Error('redis-server did not start (apt-get install redis-server)');
  const { RedisStore } = await import(join(ROOT, 'packages/queue-redis/dist/index.js'));
  store = new RedisStore({ url: `redis://127.0.0.1:${port}`, prefix: 'prof' });
} else {
  store = new SpoolStore(join(dir, 'spool'));
}
await store.open();
const body = `From: a@example.test\r\nTo: b@example.test\r\nSubject: profile\r\n\r\n${'A small message body line for the profile.\r\n'.repeat(8)}`;
for (let i = 0; i < M; i += 200) await Promise.all(Array.from({ length: Math.min(200, M - i) }, () => store.enqueue({ from: 'a@example.test', to: 'b@example.test', message: body })));

// Time every store call the worker makes.
const storeCalls = {};
for (const name of ['claim', 'body', 'markCommitting', 'finish', 'recover', 'nextDueAt']) {
  const fn = store[name].bind(store);
  storeCalls[name] = { n: 0, ms: 0, items: 0 };
  store[name] = async (...args) => {
    const t = performance.now();
    try {
      const out = await fn(...args);
      if (name === 'claim') storeCalls[name].items += out.length;
      return out;
    } finally {
      storeCalls[name].n++;
      storeCalls[name].ms += performance.now() - t;
    }
  };
}
if (kind === 'redis') await redisCli(port, 'CONFIG', 'RESETSTAT');
fsyncs.n = 0;
for (const c of Object.values(calls)) Object.assign(c, { n: 0, ms: 0 });
const dirSyncs0 = store.dirSyncs ?? 0;
await ctl.reset();
const queue = new MailQueue(store);
const worker = queue.worker({ smtp: { host: '127.0.0.1', port: sink.port, tlsPolicy: 'none', maxConnections: 4 }, concurrency: 40, pollIntervalMs: 20 });
// CPU from Linux's /proc (clock ticks of USER_HZ 100, as ms): redis-server's (the scripts and
// BullMQ's commands run there), and this process's main thread apart from its other threads (V8's
// compiler and GC helpers, libuv's threadpool: fsyncs, file writes, unlinks).
const ticksMs = (path) => {
  const stat = fs.readFileSync(path, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
};
const redisCpuMs = () => (redisProc ? ticksMs(`/proc/${redisProc.pid}/stat`) : 0);
const mainCpuMs = () => ticksMs(`/proc/self/task/${process.pid}/stat`);
// The same per thread. Node 20 names every thread "node", so the threadpool's are found by what they
// do: after the run, a burst of async stat() calls (threadpool work and little else) is timed per
// thread, and the threads that gain CPU in it are libuv's; the others are V8's (GC and compiler
// helpers, and the platform's own).
const threadCpuMs = () => {
  const byTid = {};
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      byTid[tid] = ticksMs(`/proc/self/task/${tid}/stat`);
    } catch {
      // the thread ended meanwhile
    }
  }
  return byTid;
};
async function threadpoolTids() {
  const before = threadCpuMs();
  let n = 0;
  await new Promise((resolve) => {
    const next = () => (++n > 40_000 ? resolve() : rawStat(dir, next));
    for (let i = 0; i < 4; i++) next();
  });
  const after = threadCpuMs();
  return new Set(Object.keys(after).filter((tid) => tid !== String(process.pid) && after[tid] - (before[tid] ?? 0) >= 20));
}
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const redisCpu0 = redisCpuMs();
const main0 = mainCpuMs();
const threads0 = threadCpuMs();
await worker.start();
for (;;) {
  if ((await ctl.stats()).messages >= M) break;
  await new Promise((r) => setTimeout(r, 10));
}
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const redisCpu = redisCpuMs() - redisCpu0;
const mainCpu = mainCpuMs() - main0;
const threads1 = threadCpuMs();
await worker.stop();
const st = await ctl.stats();
console.log(`${kind}: ${M} messages, 1 worker in process, sink 1 ms: ${(M / (ms / 1000)).toFixed(0)} msgs/s; sink reply batches ${st.batches ?? '?'}; this process's CPU ${((cpu.user + cpu.system) / 1000 / M).toFixed(2)} ms/msg (user ${(cpu.user / 1000 / M).toFixed(2)}, system ${(cpu.system / 1000 / M).toFixed(2)}; main thread ${(mainCpu / M).toFixed(2)}, other threads ${((cpu.user + cpu.system) / 1000 / M - mainCpu / M).toFixed(2)})${redisProc ? `; redis-server's CPU ${(redisCpu / M).toFixed(3)} ms/msg` : ''}`);
{
  const pool = await threadpoolTids();
  const split = { 'main thread': 0, 'libuv threadpool': 0, 'V8 helpers': 0 };
  for (const [tid, ms] of Object.entries(threads1)) split[tid === String(process.pid) ? 'main thread' : pool.has(tid) ? 'libuv threadpool' : 'V8 helpers'] += ms - (threads0[tid] ?? 0);
  console.log(`  CPU by thread, ms/msg: ${Object.entries(split).map(([name, ms]) => `${name} ${(ms / M).toFixed(3)}`).join(', ')} (threadpool threads: ${pool.size}, told apart by a burst of async stat() after the run)`);
}
for (const [name, c] of Object.entries(storeCalls)) if (c.n) console.log(`  ${name.padEnd(15)} ${(c.n / M).toFixed(3)} calls/msg  mean ${(c.ms / c.n).toFixed(2)} ms${name === 'claim' ? `  (${(c.items / c.n).toFixed(1)} messages per claim)` : ''}`);
if (kind === 'spool') console.log(`  file fsyncs/msg ${((fsyncs.n - (store.dirSyncs - dirSyncs0)) / M).toFixed(2)}  dir fsyncs/msg ${((store.dirSyncs - dirSyncs0) / M).toFixed(2)}`);
const fileCalls = Object.entries(calls).filter(([, c]) => c.n > 0);
if (fileCalls.length) console.log(`  file calls/msg ${(fileCalls.reduce((n, [, c]) => n + c.n, 0) / M).toFixed(2)} (main-thread us each): ${fileCalls.map(([name, c]) => `${name} ${(c.n / M).toFixed(2)} (${((1000 * c.ms) / c.n).toFixed(1)})`).join(', ')}`);
if (kind === 'redis') {
  const info = await redisCli(port, 'INFO', 'commandstats');
  let total = 0;
  const rows = [];
  for (const line of info.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (!m || m[1] === 'info' || m[1] === 'config') continue;
    total += Number(m[2]);
    rows.push([m[1], Number(m[2])]);
  }
  rows.sort((a, b) => b[1] - a[1]);
  console.log(`  Redis commands/msg ${(total / M).toFixed(1)} (blocking waits included): ${rows.map(([n, c]) => `${n} ${(c / M).toFixed(2)}`).join(', ')}`);
}
await queue.close();
// redis-server must be gone before its directory is: it writes its AOF on the way out, and one
// whose directory was removed first stayed up (nine were found running minutes later).
if (redisProc && redisProc.exitCode === null) {
  await new Promise((resolve) => {
    redisProc.once('exit', resolve);
    redisProc.kill();
    setTimeout(() => redisProc.kill('SIGKILL'), 5000).unref();
  });
}
ctl.close();
sink.proc.kill();
rmSync(dir, { recursive: true, force: true });
