// Bench suite for the durable queue (issue 13), picked up by bench/run.js and
// runnable alone (`node bench/suites/queue.js [--quick]`, its own sink):
// durable enqueue rate (spool and Redis, 1 and 100 calls in flight); delivery rate with 1, 2 and 4 worker
// processes at 1 ms server latency (the C sink), on the spool and on Redis
// (AOF, appendfsync always); beside nodemailer's pool driven by BullMQ
// workers. One more cell per store: 4 worker processes whose pools pipeline
// several transactions per connection (shown apart; the goals are judged on
// the default cells). Every delivery cell is timed twice, cold (the first half of its messages, from
// fresh processes) and warm (the second half, the processes in full flow): see timeWindows. Every
// cell checks the sink counted exactly one message per queued message (0 lost, 0 duplicates).
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SinkControl } from '../lib/sink.js';
import { freePort, stopChildren, waitForRedis } from '../../test/queue/script-helpers.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(here, '..', '..');
const log = (...a) => console.error('  [queue]', ...a);

/**
 * A process's CPU time so far (user + system, ms), from Linux's /proc (clock ticks of USER_HZ 100);
 * undefined elsewhere. Unlike msgs/s, CPU per message hardly depends on what else the machine runs.
 */
function cpuMs(pid, which = 'both') {
  try {
    // 'main': the process's main thread alone (its other threads: V8's compiler and GC helpers, libuv's threadpool).
    const stat = readFileSync(which === 'main' ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const user = Number(fields[11]);
    const sys = Number(fields[12]);
    return (which === 'user' ? user : which === 'sys' ? sys : user + sys) * 10; // 'both' and 'main': user + sys
  } catch {
    return undefined;
  }
}

/** CPU ms per message that the worker processes and redis-server spent from `before` to `after` (both cpuUsed). */
function cpuPerMessage(before, messages, which, after) {
  const key = which === 'both' ? 'ms' : which;
  if (after.some((a) => a[key] === undefined) || before.some((b) => b[key] === undefined)) return undefined;
  return after.reduce((sum, a, i) => sum + a[key] - before[i][key], 0) / messages;
}
const cpuUsed = (pids) => pids.map((pid) => ({ pid, ms: cpuMs(pid), user: cpuMs(pid, 'user'), sys: cpuMs(pid, 'sys'), main: cpuMs(pid, 'main') }));

async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'smtplib-bench-redis-'));
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: 'ignore' });
  // stop(): redis-server must be gone before its directory is (it writes its AOF on the way out; one
  // whose directory was removed first can stay up).
  const stop = () => new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.once('exit', resolve);
    proc.kill('SIGTERM');
    setTimeout(() => proc.kill('SIGKILL'), 5000).unref();
  }).then(() => rmSync(dir, { recursive: true, force: true }));
  if (await waitForRedis(port, 10_000)) return { url: `redis://127.0.0.1:${port}`, pid: proc.pid, stop };
  proc.kill('SIGKILL');
  throw new Error('redis-server did not start (apt-get install redis-server)');
}

function message(i) {
  return `From: bench@example.test\r\nTo: sink@example.test\r\nSubject: queue bench ${i}\r\nMessage-ID: <q${i}@bench.test>\r\n\r\n${'This is a small message body line for the queue benchmark.\r\n'.repeat(8)}`;
}

/** Forks `count` workers and waits until every one is loaded ("ready"); they deliver only once told to start. */
function startChildren(script, args, count) {
  return Promise.all(Array.from({ length: count }, () => new Promise((resolve, reject) => {
    const child = fork(script, args, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`${script} exited ${code}`)));
  })));
}

/** Tells every (ready) worker to start delivering; the clock starts here. */
function go(children) {
  const t0 = Date.now();
  for (const child of children) child.send('start');
  return t0;
}

/**
 * Times a delivery cell in two windows of `n` messages each (2n were queued): "cold", from `t0` (the
 * worker processes, fresh, told to start) until the sink has counted n messages; then "warm", from
 * there until it has counted 2n. The warm window starts with the workers in full flow (their hot code
 * compiled, their connections open, every pipeline busy), as the 1 KB cells of bench/run.js time
 * messages after a warm-up. Each window: ms and the CPU ms per message spent meanwhile by the processes
 * `pids` (see cpuUsed). Then waits a little more to catch duplicates.
 */
async function timeWindows(count, n, t0, timeoutMs, pids, cpuAtStart) {
  const windows = [];
  let start = t0;
  let cpu0 = cpuAtStart;
  for (const until of [n, 2 * n]) {
    for (;;) {
      const done = await count();
      if (done >= until) break;
      if (Date.now() - t0 > timeoutMs) throw new Error(`only ${done} of ${until} messages arrived in ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const end = Date.now();
    const cpu1 = cpuUsed(pids);
    const per = (which) => cpuPerMessage(cpu0, n, which, cpu1);
    windows.push({ ms: end - start, rate: n / ((end - start) / 1000), cpu: per('both'), user: per('user'), sys: per('sys'), main: per('main') });
    start = end;
    cpu0 = cpu1;
  }
  await new Promise((r) => setTimeout(r, 300));
  return { cold: windows[0], warm: windows[1], received: await count() };
}

/** Messages the sink has counted since its last reset: the progress of every cell that sends mail. */
const sinkCount = (ctl) => () => ctl.stats().then((st) => st.messages);

/** Jobs completed by the no-op BullMQ workers, from what each reports (bullmq-noop-worker.mjs). */
function reportedCount(children) {
  const completed = new Map();
  for (const child of children) child.on('message', (m) => { if (m?.completed !== undefined) completed.set(child.pid, m.completed); });
  return async () => [...completed.values()].reduce((a, b) => a + b, 0);
}

/** Enqueues `count` messages, `inFlight` calls at a time; returns msgs/s. */
async function enqueueRate(store, count, inFlight) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < count) {
      const i = next++;
      await store.enqueue({ from: 'bench@example.test', to: 'sink@example.test', message: message(i) });
    }
  }));
  return count / ((performance.now() - t0) / 1000);
}

/** The two timed windows of every delivery cell (timeWindows), in table order; the goal is judged on the first. */
const WINDOWS = ['warm', 'cold'];

/** Transactions a pool connection may have in flight in the "pipelined" cell (QueueWorker's default is 1). */
const PIPELINED = 4;

const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' / ');

/** One line per cell: both windows' msgs/s and CPU per message (all of the processes', user, system; their main threads). */
const describe = (c) => ['cold', 'warm'].map((w) =>
  `${w} ${c[w].rate.toFixed(0)} msgs/s, CPU ${c[w].cpu?.toFixed(3)} ms/msg (user ${c[w].user?.toFixed(3)}, sys ${c[w].sys?.toFixed(3)}; main threads ${c[w].main?.toFixed(3)})`).join('; ') + `; ${c.duplicates} dup.`;

/**
 * `only`: run just these cells while iterating (names: enqueue, spool-1, spool-2, spool-4, spool-pipelined,
 * redis-1 ..., nodemailer-1, nodemailer-2, nodemailer-4, bullmq-4, pool-4); prints one line per cell and writes no docs.
 */
export async function run({ quick, host, port, ctrlPort, only, messages, writeDocs = true }) {
  const want = (name) => !only || only.includes(name);
  const { SpoolStore } = await import(join(ROOT, 'packages/queue/dist/index.js'));
  const { RedisStore } = await import(join(ROOT, 'packages/queue-redis/dist/index.js'));
  const { Queue } = await import('bullmq');
  const ctl = await SinkControl.connect(ctrlPort);
  const E = quick ? 500 : 5000; // enqueue count
  const M = messages ?? (quick ? 300 : 4000); // delivery count per cell
  const timeout = quick ? 60_000 : 300_000;
  const loadBefore = load();
  const started = Date.now();
  const enqueue = [];
  const cells = {}; // cells[kind][workers] = { rate, duplicates, unrecorded }
  const dir = mkdtempSync(join(tmpdir(), 'smtplib-bench-spool-'));
  const redis = await startRedis();
  try {
    // 1. durable enqueue: one call at a time (each waits for its own fsyncs), and 100 calls in flight
    //    (their directory fsyncs shared: group commit). Resolved = durable in both.
    for (const inFlight of want('enqueue') ? [1, 100] : []) {
      const spool = new SpoolStore(join(dir, `enqueue-${inFlight}`));
      await spool.open();
      const n = inFlight === 1 ? Math.ceil(E / 5) : E;
      enqueue.push({ store: 'spool (fsync of file and directory)', inFlight, n, rate: await enqueueRate(spool, n, inFlight) });
      await spool.close();
      const onRedis = new RedisStore({ url: redis.url, prefix: `enqueue${inFlight}` });
      await onRedis.open();
      enqueue.push({ store: 'Redis (AOF, appendfsync always)', inFlight, n, rate: await enqueueRate(onRedis, n, inFlight) });
      await onRedis.close();
    }
    for (const e of enqueue) log(`enqueue ${e.store}, ${e.inFlight} in flight: ${e.rate.toFixed(0)} msgs/s`);

    await ctl.config({ delay_us: 1000 });
    // 2. delivery: our queue, spool and Redis, 1/2/4 worker processes
    //    The extra cell ("pipelined"): 4 worker processes whose pools pipeline up to PIPELINED
    //    transactions per connection (still 4 connections and 40 messages in flight per process).
    for (const kind of ['spool', 'redis']) {
      cells[kind] = {};
      for (const [key, workers, inFlight] of [[1, 1, 1], [2, 2, 1], [4, 4, 1], ['pipelined', 4, PIPELINED]]) {
        const name = `${kind}-${key}`;
        if (!want(name)) continue;
        const spec = kind === 'spool' ? `spool:${join(dir, name)}` : `redis:${redis.url}#${name}#30000`;
        const store = kind === 'spool' ? new SpoolStore(spec.slice(6)) : new RedisStore({ url: redis.url, prefix: name });
        await store.open();
        await enqueueRate(store, 2 * M, 200); // the cold window's M, then the warm window's M
        await ctl.reset();
        const children = await startChildren(join(here, 'queue/worker.mjs'), [spec, host, String(port), String(inFlight)], workers);
        const pids = [...children.map((c) => c.pid), redis.pid];
        const cpu0 = cpuUsed(pids);
        const t0 = go(children);
        const { cold, warm, received } = await timeWindows(sinkCount(ctl), M, t0, timeout, pids, cpu0);
        await stopChildren(children);
        const stats = await store.stats();
        await store.close();
        cells[kind][key] = { cold, warm, duplicates: received - 2 * M, unrecorded: 2 * M - stats.messages.delivered };
        log(`${kind} ${key}: ${describe(cells[kind][key])}; load ${load()}`);
        if (received !== 2 * M || stats.messages.delivered !== 2 * M) throw new Error(`queue ${kind} ${key}: sink got ${received} of ${2 * M}, ${stats.messages.delivered} recorded delivered`);
      }
    }
    // 3. the usual user's build: nodemailer pool + BullMQ workers
    cells.nodemailer = {};
    for (const workers of [1, 2, 4]) {
      const name = `nm${workers}`;
      if (!want(`nodemailer-${workers}`)) continue;
      const q = new Queue(name, { connection: { host: '127.0.0.1', port: Number(new URL(redis.url).port) } });
      for (let i = 0; i < 2 * M; i += 500) {
        await q.addBulk(Array.from({ length: Math.min(500, 2 * M - i) }, (_, j) => ({ name: 'mail', data: { from: 'bench@example.test', to: ['sink@example.test'], raw: message(i + j) }, opts: { removeOnComplete: true } })));
      }
      await ctl.reset();
      const children = await startChildren(join(here, 'queue/nodemailer-bullmq-worker.mjs'), [redis.url, name, host, String(port)], workers);
      const pids = [...children.map((c) => c.pid), redis.pid];
      const cpu0 = cpuUsed(pids);
      const t0 = go(children);
      const { cold, warm, received } = await timeWindows(sinkCount(ctl), M, t0, timeout, pids, cpu0);
      await stopChildren(children);
      await q.close();
      cells.nodemailer[workers] = { cold, warm, duplicates: received - 2 * M };
      log(`nodemailer+bullmq ${workers}: ${describe(cells.nodemailer[workers])}; load ${load()}`);
    }
    // 4. the floor of the Redis cells: BullMQ alone, the same jobs and workers as (3), a processor that does nothing
    if (want('bullmq-4')) {
      const name = 'noop4';
      const q = new Queue(name, { connection: { host: '127.0.0.1', port: Number(new URL(redis.url).port) } });
      for (let i = 0; i < 2 * M; i += 500) {
        await q.addBulk(Array.from({ length: Math.min(500, 2 * M - i) }, (_, j) => ({ name: 'mail', data: { from: 'bench@example.test', to: ['sink@example.test'], raw: message(i + j) }, opts: { removeOnComplete: true } })));
      }
      const children = await startChildren(join(here, 'queue/bullmq-noop-worker.mjs'), [redis.url, name], 4);
      const count = reportedCount(children);
      const pids = [...children.map((c) => c.pid), redis.pid];
      const cpu0 = cpuUsed(pids);
      const t0 = go(children);
      // Workers report their counts at most every 10 ms: a window ends up to 10 ms after its mark.
      const { cold, warm } = await timeWindows(count, M, t0, timeout, pids, cpu0);
      await stopChildren(children);
      const left = await q.getJobCountByTypes('waiting', 'active', 'delayed', 'prioritized');
      await q.close();
      if (left !== 0) throw new Error(`bullmq floor: ${left} jobs not completed`);
      cells.bullmq = { 4: { cold, warm, duplicates: 0 } };
      log(`bullmq alone 4: ${describe(cells.bullmq[4])}; load ${load()}`);
    }
    // 5. the floor: the same pool in 4 processes with no queue (how much of a queue cell's CPU is the pool's)
    if (want('pool-4')) {
      await ctl.reset();
      const children = await startChildren(join(here, 'queue/pool-worker.mjs'), [host, String(port), String((2 * M) / 4)], 4);
      const pids = children.map((c) => c.pid);
      const cpu0 = cpuUsed(pids);
      const t0 = go(children);
      const { cold, warm, received } = await timeWindows(sinkCount(ctl), M, t0, timeout, pids, cpu0);
      await stopChildren(children);
      cells.pool = { 4: { cold, warm, duplicates: received - 2 * M } };
      log(`pool alone 4: ${describe(cells.pool[4])}; load ${load()}`);
    }
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
    await ctl.config({ delay_us: 0 });
    ctl.close();
  }
  const loadAfter = load();
  if (only) {
    return Object.entries(cells).flatMap(([kind, byKey]) => Object.entries(byKey).map(([key, c]) =>
      `${kind}-${key}: ${describe(c)}`)).join('\n') + `\nload ${loadBefore} -> ${loadAfter}`;
  }

  const f = (x) => Math.round(x).toLocaleString('en-US');
  // A cell's figures in one window (warm or cold); dup. and unrecorded count the whole cell (both windows).
  const cell = (c, w) => `${f(c[w].rate)} (${c.duplicates} dup.${c.unrecorded !== undefined ? `, ${c.unrecorded} unrecorded` : ''}${c[w].cpu !== undefined ? `; ${c[w].cpu.toFixed(2)} ms CPU` : ''})`;
  const ratio = (a, b, w) => `${(a[w].rate / b[w].rate).toFixed(1)}x`;
  const windowName = { warm: `warm: the next ${f(M)}`, cold: `cold: the first ${f(M)}` };
  const delivery = [
    '| worker processes | messages timed | smtplib-queue, spool | smtplib-queue, Redis | nodemailer pool + BullMQ | ours ÷ nodemailer (spool / Redis) |',
    '| ---: | --- | ---: | ---: | ---: | ---: |',
    ...[1, 2, 4].flatMap((n) => WINDOWS.map((w) => `| ${n} | ${windowName[w]} | ${cell(cells.spool[n], w)} | ${cell(cells.redis[n], w)} | ${cell(cells.nodemailer[n], w)} | ${ratio(cells.spool[n], cells.nodemailer[n], w)} / ${ratio(cells.redis[n], cells.nodemailer[n], w)} |`)),
  ];
  const enqueueTable = [
    '| store | enqueue calls in flight | messages | durable msgs/s |',
    '| --- | ---: | ---: | ---: |',
    ...enqueue.map((e) => `| ${e.store} | ${e.inFlight} | ${f(e.n)} | ${f(e.rate)} |`),
  ];
  const pipelined = [
    `| worker processes | transactions in flight per connection | messages timed | smtplib-queue, spool | smtplib-queue, Redis | ÷ nodemailer+BullMQ with 4 workers, same window (spool / Redis) |`,
    '| ---: | ---: | --- | ---: | ---: | ---: |',
    ...WINDOWS.map((w) => `| 4 | ${PIPELINED} | ${windowName[w]} | ${cell(cells.spool.pipelined, w)} | ${cell(cells.redis.pipelined, w)} | ${ratio(cells.spool.pipelined, cells.nodemailer[4], w)} / ${ratio(cells.redis.pipelined, cells.nodemailer[4], w)} |`),
  ];
  const allCells = [...Object.values(cells.spool), ...Object.values(cells.redis), ...Object.values(cells.nodemailer), ...Object.values(cells.pool)];
  const duplicates = allCells.reduce((n, c) => n + c.duplicates, 0);
  // Issue 13's goals, judged from this run's own figures.
  const met = (ok) => (ok ? 'met' : 'missed');
  const spoolEnqueue = enqueue.find((e) => e.store.startsWith('spool') && e.inFlight === 100);
  const vsNodemailer = (kind, w) => cells[kind][4][w].rate / cells.nodemailer[4][w].rate;
  const cpuLine = (w) => {
    const [s, r, n] = [cells.spool[4][w].cpu, cells.redis[4][w].cpu, cells.nodemailer[4][w].cpu];
    return s !== undefined && r !== undefined && n !== undefined
      ? ` CPU per message with 4 workers: spool ${s.toFixed(2)} ms, Redis ${r.toFixed(2)} ms, nodemailer+BullMQ ${n.toFixed(2)} ms (nodemailer's ÷ ours: ${(n / s).toFixed(2)}× / ${(n / r).toFixed(2)}×).`
      : '';
  };
  const goals = [
    `- Goal: enqueue ≥ 2,000 durable msgs/s on the spool (100 calls in flight): ${f(spoolEnqueue.rate)} msgs/s, ${met(spoolEnqueue.rate >= 2000)}.`,
    `- Goal: delivery with 4 workers at 1 ms ≥ 3× nodemailer+BullMQ, judged on the warm window: spool ${vsNodemailer('spool', 'warm').toFixed(2)}×, ${met(vsNodemailer('spool', 'warm') >= 3)}; Redis ${vsNodemailer('redis', 'warm').toFixed(2)}×, ${met(vsNodemailer('redis', 'warm') >= 3)}.` + cpuLine('warm'),
    `  The cold window (fresh processes, the same run): spool ${vsNodemailer('spool', 'cold').toFixed(2)}×, Redis ${vsNodemailer('redis', 'cold').toFixed(2)}×.` + cpuLine('cold'),
    `- Goal: 0 duplicates in every cell: ${duplicates}, ${met(duplicates === 0)}.`,
  ];
  const floor = cells.pool[4];
  const queuePart = (w) =>
    floor[w].cpu !== undefined && cells.spool[4][w].cpu !== undefined && cells.redis[4][w].cpu !== undefined
      ? `${w}, spool ${(cells.spool[4][w].cpu - floor[w].cpu).toFixed(2)} ms, Redis ${(cells.redis[4][w].cpu - floor[w].cpu).toFixed(2)} ms`
      : `${w}, not measured (no /proc)`;
  const poolLine = `Floor: the same pool with no queue (4 processes, each an SMTPPool of 4 connections with one message in flight on each, 40 sendmail calls at a time, ${f((2 * M) / 4)} messages each, timed in the same two windows: \`bench/suites/queue/pool-worker.mjs\`): ` +
    WINDOWS.map((w) => `${w} ${cell(floor, w)}`).join(', ') + `. So of the 4-worker cells' CPU per message, the queue's own part (redis-server's included) is: ${WINDOWS.map(queuePart).join('; ')}.`;
  // The Redis floor: BullMQ's own cost per job. A store that runs each message as a BullMQ job pays it
  // on top of its SMTP side, so with the SMTP side at the pool floor this bounds what 4 workers can reach.
  const bull = cells.bullmq?.[4];
  const bound = (w) => cells.nodemailer[4][w].cpu / (bull[w].cpu + floor[w].cpu);
  const bullLine = !bull || bull.warm.cpu === undefined || floor.warm.cpu === undefined
    ? 'Floor of the Redis cells (BullMQ alone): not measured in this run.'
    : `Floor of the Redis cells: BullMQ alone, the nodemailer cell's 4 BullMQ worker processes (concurrency 40, the same jobs) with a processor that does nothing (\`bench/suites/queue/bullmq-noop-worker.mjs\`; each reports its completed jobs, at most every 10 ms): ` +
      WINDOWS.map((w) => `${w} ${f(bull[w].rate)} jobs/s, ${bull[w].cpu.toFixed(2)} ms CPU per job`).join('; ') + ' (redis-server included). ' +
      `A Redis store that runs each message as a BullMQ job pays at least that per message on top of its SMTP side. With the SMTP side at the pool floor above, 4 workers can use no less CPU per message than the two floors together, so nodemailer+BullMQ's CPU ÷ that sum is the most such a store could reach: ` +
      WINDOWS.map((w) => `${w} ${bound(w).toFixed(2)}×`).join(', ') + ` (the goal asks 3×). Our Redis store's own part above BullMQ alone: ` +
      WINDOWS.map((w) => `${w} ${(cells.redis[4][w].cpu - floor[w].cpu - bull[w].cpu).toFixed(2)} ms`).join(', ') + ' per message (its claim, mark and outcome scripts, each a round trip and an AOF write).';
  // The spool's floor: the kernel's part of its CPU. Every message costs the spool's file operations
  // (claim rename, end-of-data mark, outcome link, removal of the claim, the mark and the delivered
  // body, shared fsyncs): their system time above the pool floor's is a cost that no change to the
  // queue's JavaScript removes, only fewer file operations per message.
  const spool4 = cells.spool[4];
  const kernel = (w) => spool4[w].sys - floor[w].sys;
  const spoolBound = (w) => cells.nodemailer[4][w].cpu / (floor[w].cpu + kernel(w));
  const spoolLine = spool4.warm.sys === undefined || floor.warm.sys === undefined || cells.nodemailer[4].warm.cpu === undefined
    ? 'Floor of the spool cells (the kernel\'s part): not measured in this run (no /proc).'
    : `Floor of the spool cells: the kernel's part of their CPU. System time per message, 4 workers: spool ${WINDOWS.map((w) => `${w} ${spool4[w].sys.toFixed(3)} ms`).join(', ')}; the pool floor above ${WINDOWS.map((w) => `${w} ${floor[w].sys.toFixed(3)} ms`).join(', ')}. ` +
      `The difference, ${WINDOWS.map((w) => `${w} ${kernel(w).toFixed(3)} ms`).join(', ')} per message, is the kernel's work, in the worker processes' own system calls, for the spool's file operations (a claim's rename, the end-of-data mark's link, the outcome's link into \`done/\`, the removal of the claim, the mark and the delivered body, and their shared fsyncs: \`node bench/suites/queue/profile.mjs spool\` counts them per message); the kernel's own threads (the file system's journal, writeback) work for them too and are not counted. ` +
      `It is not removed by any change to the queue's JavaScript, only by fewer file operations per message: with these, and the queue's JavaScript costing nothing, 4 workers could use no less CPU per message than the pool floor plus that kernel time, so nodemailer+BullMQ's CPU ÷ that sum bounds what they could reach (from above: the uncounted kernel threads only lower it): ` +
      WINDOWS.map((w) => `${w} ${spoolBound(w).toFixed(2)}×`).join(', ') + ' (the goal asks 3×).';
  const section = [
    '## Durable queue (smtplib-queue)',
    '',
    `Command: \`node bench/suites/queue.js${quick ? ' --quick' : ''}\` (also run by \`npm run bench\`). ${quick ? 'QUICK run (small counts). ' : ''}` +
      `${os.cpus().length} CPUs, load average (1 / 5 / 15 min) ${loadBefore} at the start and ${loadAfter} at the end; ${((Date.now() - started) / 1000).toFixed(0)} s.`,
    '',
    'Enqueue: a call resolves once the message is durable (spool: the message file fsynced, then its directory; Redis: the write in the AOF, fsynced). ' +
      'With one call in flight each pays its own fsyncs; with 100 in flight the spool shares directory fsyncs between them (group commit) and Redis fsyncs once per event-loop turn for all clients.',
    '',
    ...enqueueTable,
    '',
    `Delivery: ${f(2 * M)} messages queued per cell and timed in two windows of ${f(M)}: "cold", from the moment every worker process (loaded, its store open, nothing sent yet) is told to start until the sink has ${f(M)} messages; "warm", from there until it has all ${f(2 * M)}, the workers already in full flow (connections open, every pipeline busy, their hottest code compiled), as the 1 KB cells of \`bench/run.js\` time messages after a warm-up on the same connection. Both builds are timed alike. The goal is judged on the warm window: a queue worker is a long-running process, and what it pays once when it starts (much of it V8 compiling its hot code, on every side; each process pays it over only ${f(M)} / workers messages here) is not a cost per message; the cold window stays beside it, from the same run. The warm window is not yet the steady state either: V8 still compiles functions in it (\`node bench/suites/queue/compiles.mjs\` counts them per window). Sink reply latency 1 ms; each worker process: 4 connections, 40 messages in flight (ours: QueueWorker concurrency 40 over an SMTPPool of 4 connections, one message in flight on each, every message in one write; nodemailer: a BullMQ Worker with concurrency 40 over nodemailer's pool, maxConnections 4). ` +
      'Redis with AOF and appendfsync always. "dup." = messages the sink received more than once; "unrecorded" = messages the store does not show delivered at the end (both count the whole cell, both windows); ' +
      '"ms CPU" = CPU time per message of the worker processes and redis-server together (from /proc; the sink\'s and the kernel\'s own threads not counted), over the same window: unlike msgs/s it hardly changes with what else the machine runs, and where a cell is bound by the CPU its msgs/s ratio tends to the inverse of this.',
    '',
    ...delivery,
    '',
    `Pipelined: the same 4 worker processes, 4 connections and 40 messages in flight each, with the pool allowed ${PIPELINED} transactions in flight per connection (\`smtp: { maxInFlightPerConnection: ${PIPELINED} }\`; QueueWorker's default is 1): whole messages then follow each other on a connection without waiting for the reply before. nodemailer's pool sends one message at a time per connection and has no such setting, so its cell above is the comparison. The trade-off: a connection lost mid-run leaves every message whose end of data it carried \`unknown\` (up to ${PIPELINED}), not one. The goal below is judged on the default cells.`,
    '',
    ...pipelined,
    '',
    poolLine,
    '',
    bullLine,
    '',
    spoolLine,
    '',
    `Duplicates over every cell: ${duplicates}.`,
    '',
    ...goals,
  ].join('\n');
  // The same section into docs/queue.md's bench block (a generated block, never typed); a quick run's
  // small counts only show that everything works, and a development run (some cells: --only, other
  // counts: --messages, or bench/run.js with BENCH_ONLY/BENCH_SECTIONS) is not the table, so neither
  // replaces it.
  const doc = join(ROOT, 'docs', 'queue.md');
  if (!quick && writeDocs && !only && messages === undefined && existsSync(doc)) {
    const text = readFileSync(doc, 'utf8');
    const begin = '<!-- bench:queue:begin -->';
    const end = '<!-- bench:queue:end -->';
    const a = text.indexOf(begin);
    const b = text.indexOf(end);
    if (a >= 0 && b > a) writeFileSync(doc, text.slice(0, a) + begin + '\n' + section.replace(/^## .*\n\n/, '') + '\n' + text.slice(b));
  }
  return section;
}

// Standalone: node bench/suites/queue.js [--quick] [--only spool-4,nodemailer-4] [--messages N]  (starts its own sink;
// only a full run, without --quick, --only or --messages, rewrites docs/queue.md's bench block)
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { buildSink, startSink } = await import('../lib/sink.js');
  const sink = await startSink(buildSink());
  try {
    const arg = (name) => {
      const at = process.argv.indexOf(name);
      return at > 0 ? process.argv[at + 1] : undefined;
    };
    const only = arg('--only')?.split(',');
    const messages = arg('--messages') ? Number(arg('--messages')) : undefined;
    console.log(await run({ quick: process.argv.includes('--quick'), host: '127.0.0.1', port: sink.port, ctrlPort: sink.ctrlPort, only, messages }));
  } finally {
    sink.proc.kill();
  }
}
