// How a client's CPU per message settles as V8 warms up, on one connection (for development;
// the machine is shared, so only ratios within one run mean anything).
//   node bench/warmup-curve.js [clients] [delayMs] [total] [block] [rounds]
// defaults: smtplib,lean  1  5000  500  2. Each round runs every client in turn, each in a fresh
// child process that sends `total` 1 KB messages (awaited, the sink waiting `delayMs` before each
// reply) and measures every block of `block` messages: CPU per message of the whole process and
// of its main thread alone (the rest is V8's background threads: optimizing-compiler jobs and
// concurrent GC), from /proc/self/task/*/schedstat (ns). Printed: the median over the rounds of
// each block, per client. Why: bench/run.js times the 1 ms cell over messages 1,000 to 2,000 of
// one connection (after 1,000 warm-up messages; 0 ms: 3,000 to 7,000), and whether a client's
// code has been optimized by then decides much of its figure there.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSink, startSink, SinkControl, WORK_DIR } from './lib/sink.js';
import { smallMessage } from './lib/messages.js';

const SELF = fileURLToPath(import.meta.url);

/** CPU ns since the thread started: [whole process, main thread]. */
function cpuNs() {
  let all = 0;
  let main = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    const ns = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    all += ns;
    if (Number(tid) === process.pid) main = ns;
  }
  return [all, main];
}

if (process.argv[2] === '--child') {
  const { client, port, total, block, msgFile } = JSON.parse(process.argv[3]);
  const adapter = await import(`./clients/${client}.js`);
  const msg = readFileSync(msgFile);
  const session = await adapter.open({ host: '127.0.0.1', port });
  const blocks = [];
  for (let b = 0; b < total / block; b++) {
    const [a0, m0] = cpuNs();
    for (let i = 0; i < block; i++) await session.send(msg);
    const [a1, m1] = cpuNs();
    blocks.push([(a1 - a0) / 1e3 / block, (m1 - m0) / 1e3 / block]);
  }
  await session.close();
  process.stdout.write('BLOCKS ' + JSON.stringify(blocks) + '\n');
  process.exit(0);
}

const clients = (process.argv[2] ?? 'smtplib,lean').split(',');
const delayMs = Number(process.argv[3] ?? 1);
const total = Number(process.argv[4] ?? 5000);
const block = Number(process.argv[5] ?? 500);
const rounds = Number(process.argv[6] ?? 2);
const sink = await startSink(buildSink());
const ctl = await SinkControl.connect(sink.ctrlPort);
await ctl.config({ pipelining: 1, chunking: 1, size: 1, '8bitmime': 1, enh: 1, delay_us: delayMs * 1000, hash: 0 });
const msgFile = join(WORK_DIR, 'small.eml');
writeFileSync(msgFile, smallMessage());
const load0 = os.loadavg()[0];
const runs = Object.fromEntries(clients.map((c) => [c, []]));
for (let r = 0; r < rounds; r++) {
  for (const client of clients) {
    const spec = { client, port: sink.port, total, block, msgFile };
    const child = spawnSync(process.execPath, [SELF, '--child', JSON.stringify(spec)], { encoding: 'utf8' });
    const line = child.stdout.split('\n').find((l) => l.startsWith('BLOCKS '));
    if (!line) throw new Error(`${client}: no result (${child.stderr.slice(0, 300)})`);
    runs[client].push(JSON.parse(line.slice(7)));
  }
}
const load1 = os.loadavg()[0];
ctl.close();
sink.proc.kill();

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`CPU µs per message by block of ${block} (whole process / main thread), ${delayMs} ms reply delay, median of ${rounds} rounds; load ${load0.toFixed(1)} → ${load1.toFixed(1)}`);
console.log('messages'.padEnd(12), ...clients.map((c) => c.padStart(18)));
for (let b = 0; b < total / block; b++) {
  const cells = clients.map((c) => `${median(runs[c].map((x) => x[b][0])).toFixed(0)} / ${median(runs[c].map((x) => x[b][1])).toFixed(0)}`.padStart(18));
  console.log(`${b * block}-${(b + 1) * block}`.padEnd(12), ...cells);
}
