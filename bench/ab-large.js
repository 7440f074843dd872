// A/B of the 20 MB cell between two builds (bench/ab-cell.js's twin for the large message): the
// same sink, the trees taking turns (old, new, then new, old, ...), each run a fresh child process
// sending 3 messages awaited through that tree's own smtplib build, as bench/run.js's large cell.
//   node bench/ab-large.js <old-tree> <new-tree> [rounds]     BODY=text|dots  CHUNKING=0|1
// Besides MB/s it reads the sink's scheduler counters (/proc/<pid>/schedstat, Linux) around the
// timed part: the sink's own CPU ("run"), its time waiting for a CPU ("wait": other processes),
// and the rest, "sleep": time the sink had nothing to read, i.e. serial steps of the client
// (its scan before MAIL, round trips, reply handling). On a shared machine MB/s swings with the
// load; sleep per message, while wait stays near 0, is the client's own cost. Medians printed.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashOf, largeMessage, largeTextMessage } from './lib/messages.js';
import { buildSink, SinkControl, startSink, WORK_DIR } from './lib/sink.js';

if (process.argv[2] === '--cell') {
  const spec = JSON.parse(process.argv[3]);
  const adapter = await import(join(spec.tree, 'bench', 'clients', 'smtplib.js'));
  const msg = readFileSync(spec.msgFile);
  const ctl = await SinkControl.connect(spec.ctrlPort);
  const sched = () => readFileSync(`/proc/${spec.sinkPid}/schedstat`, 'utf8').split(' ').map(Number);
  const session = await adapter.open({ host: '127.0.0.1', port: spec.port });
  await ctl.reset();
  const s0 = sched();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < spec.n; i++) await session.send(msg);
  const elapsedMs = performance.now() - t0;
  const s1 = sched();
  const c = process.cpuUsage(c0);
  const stats = await ctl.stats();
  await session.close();
  ctl.close();
  const runMs = (s1[0] - s0[0]) / 1e6;
  const waitMs = (s1[1] - s0[1]) / 1e6;
  const out = { n: spec.n, elapsedMs, cpuMs: (c.user + c.system) / 1000, runMs, waitMs, sleepMs: elapsedMs - runMs - waitMs, rssKB: process.resourceUsage().maxRSS, stats };
  process.stdout.write(`RESULT ${JSON.stringify(out)}\n`);
  process.exit(0);
}

const [oldTree, newTree, roundsArg = '7'] = process.argv.slice(2);
if (!oldTree || !newTree) {
  console.error('usage: node bench/ab-large.js <old-tree> <new-tree> [rounds]   (BODY=text|dots CHUNKING=0|1)');
  process.exit(64);
}
const trees = { old: resolve(oldTree), new: resolve(newTree) };
const dots = process.env.BODY === 'dots';
mkdirSync(WORK_DIR, { recursive: true });
const msg = dots ? largeMessage(20 * 1024 * 1024) : largeTextMessage(20 * 1024 * 1024);
const msgFile = join(WORK_DIR, 'ab-large.eml');
writeFileSync(msgFile, msg);
const sink = await startSink(buildSink());
const hash = hashOf(msg, sink.hashAlgo);
const ctl = await SinkControl.connect(sink.ctrlPort);
await ctl.config({ pipelining: 1, chunking: Number(process.env.CHUNKING ?? 0), size: 1, '8bitmime': 1, enh: 1, delay_us: 0, hash: 1 });
const runs = { old: [], new: [] };
for (let r = 0; r < Number(roundsArg); r++) {
  for (const which of r % 2 ? ['new', 'old'] : ['old', 'new']) {
    const spec = { tree: trees[which], n: 3, port: sink.port, ctrlPort: sink.ctrlPort, msgFile, sinkPid: sink.proc.pid };
    const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--cell', JSON.stringify(spec)], { encoding: 'utf8' });
    const line = child.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) throw new Error(`${which}: no RESULT line (${child.stderr.slice(0, 300)})`);
    const out = JSON.parse(line.slice(7));
    if (out.stats.last_len !== msg.length || out.stats.last_hash !== hash) throw new Error(`${which}: the sink did not get the message byte for byte`);
    runs[which].push(out);
  }
}
const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`20 MB ${dots ? 'a dot on every line' : 'text'}, ${process.env.CHUNKING === '1' ? 'CHUNKING' : 'DATA'}, ${roundsArg} rounds; load average at the end ${load}`);
for (const which of ['old', 'new']) {
  const xs = runs[which];
  const per = (k) => median(xs.map((o) => o[k] / o.n)).toFixed(2);
  console.log(
    `${which} (${trees[which]}): MB/s ${median(xs.map((o) => (o.n * msg.length) / 1e3 / o.elapsedMs)).toFixed(1)}; per message: sink run ${per('runMs')} ms, ` +
      `wait ${per('waitMs')} ms, sleep ${per('sleepMs')} ms [${xs.map((o) => (o.sleepMs / o.n).toFixed(1)).join(' ')}]; client CPU ${per('cpuMs')} ms; peak RSS ${median(xs.map((o) => o.rssKB / 1024)).toFixed(1)} MB`,
  );
}
ctl.close();
sink.proc.kill();
