// Delivery with a backlog: does a spool with many messages waiting deliver at the rate and memory of one
// with few? For each backlog size B: B messages queued in a fresh spool (the store's own enqueue, many
// calls in flight), then 4 worker processes (worker.mjs) deliver to the C sink at 1 ms latency; after a
// warm-up, a fixed number of deliveries is timed (msgs/s, the workers' CPU ms per message, from /proc)
// and each worker's peak RSS (VmHWM) is read before it stops. The backlog stays at least B minus the
// deliveries throughout. Checks that the sink counted exactly what the spool recorded delivered.
//   node bench/suites/queue/backlog.mjs [--backlogs 10000,40000,160000] [--timed 8000] [--warmup 2000] [--doc docs/queue.md]
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SinkControl, buildSink, startSink } from '../../lib/sink.js';
import { replaceDocBlock, stopChildren } from '../../../test/queue/script-helpers.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(here, '..', '..', '..');
const log = (...a) => console.error('  [backlog]', ...a);
const arg = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : fallback;
};
const BACKLOGS = arg('--backlogs', '10000,40000,160000').split(',').map(Number);
const TIMED = Number(arg('--timed', '8000'));
const WARMUP = Number(arg('--warmup', '2000'));
const WORKERS = 4;
const doc = arg('--doc');
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** A process's CPU time so far (user + system, ms; /proc's clock ticks of USER_HZ 100). */
function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** A process's peak resident set (VmHWM), MB. */
function peakRssMb(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) / 1024;
}

function message(i) {
  return `From: bench@example.test\r\nTo: sink@example.test\r\nSubject: backlog bench ${i}\r\nMessage-ID: <b${i}@bench.test>\r\n\r\n${'This is a small message body line for the queue benchmark.\r\n'.repeat(8)}`;
}

async function fill(store, count, inFlight) {
  let next = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < count) {
      const i = next++;
      await store.enqueue({ from: 'bench@example.test', to: 'sink@example.test', message: message(i) });
    }
  }));
}

function startWorkers(spec, port) {
  return Promise.all(Array.from({ length: WORKERS }, () => new Promise((resolve, reject) => {
    const child = fork(join(here, 'worker.mjs'), [spec, '127.0.0.1', String(port), '1'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`worker.mjs exited ${code}`)));
  })));
}

async function waitFor(ctl, count, deadline) {
  for (;;) {
    const { messages } = await ctl.stats();
    if (messages >= count) return;
    if (Date.now() > deadline) throw new Error(`only ${messages} of ${count} delivered in time`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function cell(B, sink, SpoolStore) {
  const dir = mkdtempSync(join(tmpdir(), 'smtplib-bench-backlog-'));
  try {
    const store = new SpoolStore(dir);
    await store.open();
    const f0 = Date.now();
    await fill(store, B + WARMUP + TIMED, 200);
    await store.close();
    const fillS = (Date.now() - f0) / 1000;
    const ctl = await SinkControl.connect(sink.ctrlPort);
    await ctl.config({ delay_us: 1000 });
    await ctl.reset();
    const children = await startWorkers(`spool:${dir}`, sink.port);
    const pids = children.map((c) => c.pid);
    const deadline = Date.now() + 600_000;
    for (const c of children) c.send('start');
    await waitFor(ctl, WARMUP, deadline);
    const t0 = performance.now();
    const cpu0 = pids.map(cpuMs);
    await waitFor(ctl, WARMUP + TIMED, deadline);
    const ms = performance.now() - t0;
    const cpu = pids.map(cpuMs).reduce((sum, c, i) => sum + c - cpu0[i], 0);
    const rss = pids.map(peakRssMb);
    const load = loadavg();
    await stopChildren(children);
    const { messages: received } = await ctl.stats();
    ctl.close();
    const delivered = readdirSync(join(dir, 'done')).filter((n) => n.startsWith('delivered-')).length;
    if (received !== delivered) throw new Error(`backlog ${B}: the sink got ${received}, the spool recorded ${delivered} delivered`);
    const result = { B, fillS, rate: TIMED / (ms / 1000), cpu: cpu / TIMED, rss: Math.max(...rss), rssAll: rss, load, received };
    log(`backlog ${B}: ${result.rate.toFixed(0)} msgs/s, CPU ${result.cpu.toFixed(3)} ms/msg, peak RSS per worker ${rss.map((r) => r.toFixed(1)).join(' / ')} MB; load ${load}; filled in ${fillS.toFixed(0)} s; ${received} delivered in all`);
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const { SpoolStore } = await import(join(ROOT, 'packages/queue/dist/index.js'));
const sink = await startSink(buildSink());
const started = Date.now();
const loadBefore = loadavg();
const results = [];
try {
  for (const B of BACKLOGS) results.push(await cell(B, sink, SpoolStore));
} finally {
  sink.proc.kill();
}
const f = (n) => Math.round(n).toLocaleString('en-US');
const first = results[0];
const last = results[results.length - 1];
const pct = (a, b) => `${a >= b ? '+' : ''}${(((a - b) / b) * 100).toFixed(0)} %`;
const command = `node bench/suites/queue/backlog.mjs --backlogs ${BACKLOGS.join(',')} --timed ${TIMED} --warmup ${WARMUP}${doc ? ` --doc ${doc}` : ''}`;
const block = [
  '<!-- backlog:begin -->',
  `Written by \`${command}\` on ${os.cpus().length} CPUs (load average ${loadBefore} at the start, ${loadavg()} at the end; ${((Date.now() - started) / 1000).toFixed(0)} s).`,
  `${WORKERS} worker processes (\`bench/suites/queue/worker.mjs\`, concurrency 40) deliver from a spool holding the backlog to the C sink at 1 ms latency; after ${f(WARMUP)} deliveries, ${f(TIMED)} are timed. CPU: the worker processes' user + system time over the timed deliveries. Peak RSS: each worker's VmHWM, the largest of the ${WORKERS}.`,
  '',
  '| messages queued at the start | still queued after the timed ones (the backlog) | msgs/s | CPU ms/msg | peak RSS per worker (MB) | load (1/5/15 min) at the end |',
  '| ---: | ---: | ---: | ---: | ---: | --- |',
  ...results.map((r) => `| ${f(r.B + WARMUP + TIMED)} | ${f(r.B)} | ${f(r.rate)} | ${r.cpu.toFixed(3)} | ${r.rss.toFixed(1)} | ${r.load} |`),
  '',
  `Largest backlog against the smallest: CPU per message ${pct(last.cpu, first.cpu)}, peak RSS ${pct(last.rss, first.rss)}, msgs/s ${pct(last.rate, first.rate)} (goal: CPU and RSS within 15 %).`,
  '<!-- backlog:end -->',
].join('\n');
console.log(block);
if (doc) replaceDocBlock(join(ROOT, doc), '<!-- backlog:begin -->', '<!-- backlog:end -->', block);
