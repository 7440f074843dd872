// What V8 compiles in a queue worker process, and when: the spool cell of bench/suites/queue.js
// (4 worker processes, the C sink at 1 ms, 2 × M messages), with ONE of the workers run under
// `node --trace-opt --trace-deopt-verbose` and its output read back. Prints, for the cold window
// (the first M messages the sink counts, from fresh processes) and the warm one (the next M), how
// many functions TurboFan compiled and the compile times V8 reports (wall time on its background
// threads, so it grows with the machine's load: compare counts and shares, not ms across runs),
// the functions that took longest (with how often each was compiled: more than once means it was
// deoptimized and compiled again), and every deoptimization with its reason and source position.
//   node bench/suites/queue/compiles.mjs [--workers 4] [--messages 4000] [--top 25]   (KEEP=1: keep the raw trace, its path on stderr)
import { fork } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, closeSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSink, startSink, SinkControl } from '../../lib/sink.js';
import { stopChildren } from '../../../test/queue/script-helpers.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(here, '..', '..', '..');
const arg = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};
const WORKERS = arg('--workers', 4);
const M = arg('--messages', 4000);
const TOP = arg('--top', 25);
const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' / ');

const dir = mkdtempSync(join(tmpdir(), 'smtplib-compiles-'));
const traceFile = join(dir, 'trace.txt');
const sink = await startSink(buildSink());
const ctl = await SinkControl.connect(sink.ctrlPort);
const loadBefore = load();
let children = [];
try {
  await ctl.config({ delay_us: 1000 });
  const { SpoolStore } = await import(join(ROOT, 'packages/queue/dist/index.js'));
  const spoolDir = join(dir, 'spool');
  const store = new SpoolStore(spoolDir);
  await store.open();
  const message = (i) => `From: bench@example.test\r\nTo: sink@example.test\r\nSubject: queue bench ${i}\r\nMessage-ID: <c${i}@bench.test>\r\n\r\n${'This is a small message body line for the queue benchmark.\r\n'.repeat(8)}`;
  for (let i = 0; i < 2 * M; i += 200) {
    await Promise.all(Array.from({ length: Math.min(200, 2 * M - i) }, (_, j) => store.enqueue({ from: 'bench@example.test', to: 'sink@example.test', message: message(i + j) })));
  }
  await ctl.reset();
  const out = openSync(traceFile, 'w');
  children = await Promise.all(Array.from({ length: WORKERS }, (_, n) => new Promise((resolve, reject) => {
    const traced = n === 0;
    const child = fork(join(here, 'worker.mjs'), [`spool:${spoolDir}`, '127.0.0.1', String(sink.port), '1'], {
      stdio: ['ignore', traced ? out : 'ignore', 'inherit', 'ipc'],
      execArgv: traced ? ['--trace-opt', '--trace-deopt-verbose'] : [],
    });
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`worker exited ${code}`)));
  })));
  closeSync(out);
  for (const child of children) child.send('start');
  for (const until of [M, 2 * M]) {
    while ((await ctl.stats()).messages < until) await new Promise((r) => setTimeout(r, 5));
    // The traced worker writes a line into its trace where the window ends (worker.mjs, 'mark').
    children[0].send(`mark ${until}`);
  }
  await stopChildren(children);
  children = [];
  await store.close();
} finally {
  for (const child of children) child.kill('SIGKILL');
  ctl.close();
  sink.proc.kill();
}

// Reading the trace: "completed compiling <JSFunction name ...> (target TURBOFAN) - took a, b, c ms"
// (b: the part on a background thread), "[bailout (kind: ..., reason: ...): begin. deoptimizing
// <JSFunction name ...>" followed by ";;; deoptimize at <file:line:col>".
const windows = [{ name: `cold (the first ${M.toLocaleString('en-US')} messages)`, compiles: new Map(), deopts: [], attempts: 0 }, { name: `warm (the next ${M.toLocaleString('en-US')})`, compiles: new Map(), deopts: [], attempts: 0 }];
let at = 0;
let pending;
let attemptsBefore = 0;
for (const line of readFileSync(traceFile, 'utf8').split('\n')) {
  const mark = /^=== mark \d+ attempts (\d+)/.exec(line);
  if (mark) {
    windows[at].attempts = Number(mark[1]) - attemptsBefore;
    attemptsBefore = Number(mark[1]);
    at = Math.min(at + 1, windows.length - 1);
    continue;
  }
  const compiled = /completed compiling .*?<JSFunction (\S*) .*?took ([\d.]+), ([\d.]+), ([\d.]+) ms/.exec(line);
  if (compiled) {
    const [, name, a, b, c] = compiled;
    const entry = windows[at].compiles.get(name || '(anonymous)') ?? { n: 0, ms: 0 };
    entry.n++;
    entry.ms += Number(a) + Number(b) + Number(c);
    windows[at].compiles.set(name || '(anonymous)', entry);
    continue;
  }
  const bailout = /\[bailout \(kind: ([^,]+), reason: ([^)]+)\): begin\. deoptimizing \S+ <JSFunction (\S*)/.exec(line);
  if (bailout) {
    pending = { kind: bailout[1], reason: bailout[2], name: bailout[3], where: '' };
    windows[at].deopts.push(pending);
    continue;
  }
  const where = /;;; deoptimize at <(.*)>/.exec(line);
  if (where && pending && !pending.where) pending.where = where[1].replace(/file:\/\/\S*?\/(packages|node_modules)\//g, '$1/');
}
const short = (file) => file.replace(/ inlined at /g, ' ← ');
const lines = [
  `Command: \`node bench/suites/queue/compiles.mjs --workers ${WORKERS} --messages ${M}\`. ${os.cpus().length} CPUs, load average ${loadBefore} at the start and ${load()} at the end; node ${process.version}. One of ${WORKERS} spool worker processes traced (--trace-opt --trace-deopt-verbose); the windows end where the sink counted ${M.toLocaleString('en-US')} and ${(2 * M).toLocaleString('en-US')} messages.`,
  '',
  '| window | attempts by the traced worker | TurboFan compiles | functions compiled more than once | compile ms (V8\'s own timing, wall) | deoptimizations |',
  '| --- | ---: | ---: | ---: | ---: | ---: |',
  ...windows.map((w) => {
    const all = [...w.compiles.values()];
    return `| ${w.name} | ${w.attempts.toLocaleString('en-US')} | ${all.reduce((n, e) => n + e.n, 0)} | ${all.filter((e) => e.n > 1).length} | ${all.reduce((n, e) => n + e.ms, 0).toFixed(0)} | ${w.deopts.length} |`;
  }),
  '',
  `Longest compiles, both windows (× how often compiled):`,
  '',
  '| function | compiles | ms | share |',
  '| --- | ---: | ---: | ---: |',
];
const both = new Map();
for (const w of windows) for (const [name, e] of w.compiles) {
  const sum = both.get(name) ?? { n: 0, ms: 0 };
  sum.n += e.n;
  sum.ms += e.ms;
  both.set(name, sum);
}
const total = [...both.values()].reduce((n, e) => n + e.ms, 0);
for (const [name, e] of [...both].sort((a, b) => b[1].ms - a[1].ms).slice(0, TOP)) lines.push(`| ${name} | ${e.n} | ${e.ms.toFixed(0)} | ${((100 * e.ms) / total).toFixed(0)}% |`);
lines.push('', 'Deoptimizations:', '', '| window | function | kind | reason | at |', '| --- | --- | --- | --- | --- |');
for (const w of windows) for (const d of w.deopts) lines.push(`| ${w.name.split(' ')[0]} | ${d.name} | ${d.kind} | ${d.reason} | ${short(d.where)} |`);
console.log(lines.join('\n'));
if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true });
else console.error(traceFile);
