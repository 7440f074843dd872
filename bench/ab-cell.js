// A/B of one 1 KB cell between two builds, for "did this regress?" questions: the same sink,
// the two trees taking turns (old, new, then new, old, ...), each run a fresh child process
// running that tree's own bench/cell.js (so each uses its own smtplib build).
//   node bench/ab-cell.js <old-tree> <new-tree> [awaited|queued] [delayMs] [rounds]
// e.g. a worktree of the previous commit, built (`git worktree add ../old HEAD~5 && cd ../old &&
// npm ci && npm run build`), against this one. Prints each round's CPU per message (the timed
// part) and the medians of CPU and msg/s. Counts as in bench/run.js: at 0 ms 4,000 messages after
// 3,000 warm-up, at other delays 1,000 after 1,000. Only ratios within one run mean anything.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { smallMessage } from './lib/messages.js';
import { buildSink, SinkControl, startSink, WORK_DIR } from './lib/sink.js';

const [oldTree, newTree, mode = 'queued', delayArg = '0', roundsArg = '5'] = process.argv.slice(2);
if (!oldTree || !newTree) {
  console.error('usage: node bench/ab-cell.js <old-tree> <new-tree> [awaited|queued] [delayMs] [rounds]');
  process.exit(64);
}
const trees = { old: resolve(oldTree), new: resolve(newTree) };
const delayMs = Number(delayArg);
const rounds = Number(roundsArg);
mkdirSync(WORK_DIR, { recursive: true });
const msgFile = join(WORK_DIR, 'ab-small.eml');
writeFileSync(msgFile, smallMessage());

const sink = await startSink(buildSink());
const ctl = await SinkControl.connect(sink.ctrlPort);
await ctl.config({ pipelining: 1, chunking: 1, size: 1, '8bitmime': 1, enh: 1, delay_us: delayMs * 1000, hash: 0 });
const runs = { old: [], new: [] };
for (let r = 0; r < rounds; r++) {
  for (const which of r % 2 ? ['new', 'old'] : ['old', 'new']) {
    const spec = { client: 'smtplib', kind: 'small', mode, n: delayMs ? 1000 : 4000, warmup: delayMs ? 1000 : 3000, warmupMs: 1e9, targetMs: 0, minN: 0, host: '127.0.0.1', port: sink.port, ctrlPort: sink.ctrlPort, msgFile };
    const child = spawnSync(process.execPath, [join(trees[which], 'bench', 'cell.js'), JSON.stringify(spec)], { encoding: 'utf8' });
    const line = child.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) throw new Error(`${which}: no RESULT line (${child.stderr.slice(0, 300)})`);
    const out = JSON.parse(line.slice(7));
    runs[which].push({ us: (out.cpuMs / out.n) * 1000, rate: (out.n / out.elapsedMs) * 1000 });
  }
}
const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
for (const which of ['old', 'new']) {
  const us = runs[which].map((x) => x.us);
  console.log(`${which} (${trees[which]}): CPU µs/msg ${us.map((x) => x.toFixed(1)).join(' ')}; median ${median(us).toFixed(1)} µs, ${median(runs[which].map((x) => x.rate)).toFixed(0)} msg/s`);
}
ctl.close();
sink.proc.kill();
