// What an idle spool worker costs beside a deferred backlog, and how soon it sees a message another
// process queues. For each size: a fresh spool holding that many messages deferred by an hour (real
// enqueues), one QueueWorker in this process (default options) left idle; after queue/ has settled,
// this process's CPU and the passes over queue/ it makes (opendir of queue/) over the timed seconds;
// then another SpoolStore on the same directory enqueues a message due now, and the time until the
// worker claims it is taken (from the call to that enqueue; its SMTP target then refuses the connection).
//   node bench/suites/queue/idle.mjs [deferred=10000,100000] [--seconds 70] [--dist <packages/queue/dist>] [--doc docs/queue.md]
// --dist loads the queue from another build (to compare with an older one); --doc writes the table,
// with this command, into the file's idle block (<!-- idle:begin --> ... <!-- idle:end -->).
import fs from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countOpendirs, freePort, replaceDocBlock } from '../../../test/queue/script-helpers.mjs';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const flag = (name) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const positional = process.argv.slice(2).filter((arg, i, all) => !arg.startsWith('--') && !['--dist', '--doc', '--seconds'].includes(all[i - 1]));
const sizes = (positional[0] ?? '10000,100000').split(',').map(Number);
// Past a minute by default: a resting listing is made again at least once a minute (UNCHANGED_REST_MS).
const seconds = Number(flag('--seconds') ?? 70);
const dist = resolve(flag('--dist') ?? join(ROOT, 'packages/queue/dist'));
const doc = flag('--doc');
const { SpoolStore, MailQueue } = await import(join(dist, 'index.js'));

const cpuMs = (since) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};

const startedAt = Date.now();
const loadAtStart = loadavg().map((l) => l.toFixed(1)).join(' / ');
const port = await freePort(); // nothing listens there: connections are refused at once
const rows = [];
for (const size of sizes) {
  const dir = fs.mkdtempSync(join(tmpdir(), 'smtplib-bench-idle-'));
  try {
    const store = new SpoolStore(dir);
    await store.open();
    const later = Date.now() + 3_600_000;
    const enqueueStart = Date.now();
    for (let i = 0; i < size; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, size - i) }, (_, j) => store.enqueue({ from: 'bench@example.test', to: 'sink@example.test', message: `Subject: deferred ${i + j}\r\n\r\nbody\r\n` }, { notBefore: later })));
    }
    const enqueueMs = Date.now() - enqueueStart;
    const queue = new MailQueue(store);
    const worker = queue.worker({ smtp: { host: '127.0.0.1', port, tlsPolicy: 'none' } });
    await worker.start();
    await new Promise((r) => setTimeout(r, 3000)); // queue/ unchanged for 3 s; the worker's first listings made
    const passes = countOpendirs(join(dir, 'queue'));
    const before = process.cpuUsage();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const idleCpu = cpuMs(before);
    const idlePasses = passes.count;
    passes.restore();
    // Another process's message, due now.
    const other = new SpoolStore(dir);
    await other.open();
    // Claimed: the worker's store emits the message's transition to active.
    const claimed = new Promise((r) => store.on('transition', (event) => { if (event.to === 'active') r({ id: event.id, at: Date.now() }); }));
    const queuedAt = Date.now();
    const { id } = await other.enqueue({ from: 'bench@example.test', to: 'sink@example.test', message: 'Subject: now\r\n\r\nbody\r\n' });
    const seen = await Promise.race([claimed, new Promise((r) => setTimeout(() => r(undefined), 30_000))]);
    const seenMs = seen?.id === id ? seen.at - queuedAt : undefined;
    await other.close();
    await worker.stop();
    await queue.close();
    rows.push({ size, enqueueMs, idleCpu, idlePasses, seenMs });
    console.log(`${size} deferred: idle CPU ${idleCpu.toFixed(0)} ms over ${seconds} s, ${idlePasses} passes over queue/; another process's message claimed ${seenMs ?? 'more than 30,000'} ms after it was queued`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (doc) {
  const command = `node bench/suites/queue/idle.mjs ${sizes.join(',')} --seconds ${seconds}${flag('--dist') ? ` --dist ${flag('--dist')}` : ''} --doc ${doc}`;
  const block = [
    `Command: \`${command}\` (${new Date().toISOString().slice(0, 10)}, ${Math.round((Date.now() - startedAt) / 1000)} s; ${availableParallelism()} CPUs; load average ${loadAtStart} at the start, ${loadavg().map((l) => l.toFixed(1)).join(' / ')} at the end). One worker (default options: pollIntervalMs 500) idle in this process beside a spool of messages deferred by an hour; CPU is this process's over the timed ${seconds} s, after 3 s of rest; "passes" are its reads of \`queue/\` in that time; the last column is how long after another SpoolStore queued a message due now (from the call to its enqueue) the worker claimed it.`,
    '',
    '| messages deferred | idle CPU over the timed seconds | passes over `queue/` | another process\'s message claimed after |',
    '| ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.size.toLocaleString('en-US')} | ${r.idleCpu.toFixed(0)} ms | ${r.idlePasses} | ${r.seenMs === undefined ? 'not within 30 s' : `${r.seenMs} ms`} |`),
  ].join('\n');
  replaceDocBlock(doc, '<!-- idle:begin -->', '<!-- idle:end -->', ['<!-- idle:begin -->', block, '<!-- idle:end -->'].join('\n'));
  console.log(`wrote ${doc}`);
}
process.exit(rows.every((r) => r.seenMs !== undefined) ? 0 : 1);
