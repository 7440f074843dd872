// Where the per-message CPU goes: `node bench/profile.js <label>` (after `npm run build`)
// sends 20,000 1 KB messages (awaited, 0 ms, one connection) from our client to the C sink
// under `node --cpu-prof`, and writes the top self-time functions into docs/perf-profile.md
// under "## <label>" (replacing that section, keeping the others: run it once before a
// change and once after). PROFILE_N changes the count.
// It then runs the same cell a second time for what V8's optimizing compiler (TurboFan)
// costs: `--no-concurrent-recompilation --single-threaded-gc --trace-opt` puts every
// compile on the main thread, where V8 times it ("completed compiling ... took"); the
// section lists the total and the functions that took longest. (In a normal run these
// compiles run on background threads, and their CPU is part of the process's: about a
// quarter of it over 20,000 messages.) Pin it for stable figures: `taskset -c 1 node ...`.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { buildSink, startSink, SinkControl, WORK_DIR } from './lib/sink.js';
import { smallMessage } from './lib/messages.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const label = process.argv[2] ?? 'profile';
const N = Number(process.env.PROFILE_N ?? 20_000);
const TOP = 25;
const TOP_COMPILES = 12;

const sink = await startSink(buildSink());
const ctl = await SinkControl.connect(sink.ctrlPort);
await ctl.config({ pipelining: 1, chunking: 1, size: 1, '8bitmime': 1, enh: 1, delay_us: 0, hash: 0 });
const msgFile = join(WORK_DIR, 'small.eml');
writeFileSync(msgFile, smallMessage());
const dir = mkdtempSync(join(tmpdir(), 'smtplib-prof-'));
const spec = { client: process.env.PROFILE_CLIENT ?? 'smtplib', kind: 'small', mode: 'awaited', n: N, warmup: 0, warmupMs: 0, targetMs: 0, minN: N, host: '127.0.0.1', port: sink.port, ctrlPort: sink.ctrlPort, msgFile };
const load0 = loadavg()[0];
const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '200', join(HERE, 'cell.js'), JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'], cwd: ROOT });
let out = '';
child.stdout.on('data', (d) => (out += d));
await new Promise((resolve) => child.on('close', resolve));
const compiles = await compileTimes();
ctl.close();
sink.proc.kill();

/** The cell again with each TurboFan compile on the main thread, timed by V8: name -> { ms, count }. */
async function compileTimes() {
  const traced = spawn(process.execPath, ['--no-concurrent-recompilation', '--single-threaded-gc', '--trace-opt', join(HERE, 'cell.js'), JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'], cwd: ROOT });
  let text = '';
  traced.stdout.on('data', (d) => (text += d));
  await new Promise((resolve) => traced.on('close', resolve));
  const byName = new Map();
  // "[completed compiling 0x... <JSFunction name (sfi = 0x...)> (target TURBOFAN) - took 0.006, 5.650, 0.089 ms]": prepare, execute, finalize.
  for (const m of text.matchAll(/^\[completed compiling \S+ <JSFunction ?(\S*?) ?\(sfi[^>]*>.*? - took ([\d.]+), ([\d.]+), ([\d.]+) ms\]/gm)) {
    const name = m[1] || '(anonymous)';
    const ms = Number(m[2]) + Number(m[3]) + Number(m[4]);
    const entry = byName.get(name) ?? { ms: 0, count: 0 };
    entry.ms += ms;
    entry.count++;
    byName.set(name, entry);
  }
  return byName;
}
const result = JSON.parse(out.split('\n').find((l) => l.startsWith('RESULT ')).slice(7));
if (result.error) throw new Error(result.error);
const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8'));
if (process.env.PROFILE_KEEP) writeFileSync(process.env.PROFILE_KEEP, JSON.stringify(profile)); // for a closer look (speedscope, Chrome DevTools)
rmSync(dir, { recursive: true, force: true });

// Self time per function: samples × their interval, attributed to the sampled node.
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
const deltas = profile.timeDeltas;
let total = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const node = byId.get(profile.samples[i]);
  const dt = (deltas[i + 1] ?? deltas[i] ?? 0) / 1000; // ms
  total += dt;
  const f = node.callFrame;
  const path = f.url.startsWith('file:') ? relative(ROOT, fileURLToPath(f.url)) : f.url;
  const where = f.url ? `${path.replace(/^packages\/smtplib\/dist\/esm\//, 'smtplib/')}:${f.lineNumber + 1}` : '';
  const key = `${f.functionName || '(anonymous)'}\t${where}`;
  self.set(key, (self.get(key) ?? 0) + dt);
}
const idle = [...self].filter(([k]) => k.startsWith('(idle)') || k.startsWith('(program)') || k.startsWith('(garbage collector)'));
const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP);
const ours = [...self].filter(([k]) => k.includes('smtplib/')).reduce((a, [, v]) => a + v, 0);
const commit = (() => { try { return execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim(); } catch { return '?'; } })();
const dirty = (() => { try { return execFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'packages/smtplib/src'], { encoding: 'utf8' }).trim() ? ' (with uncommitted changes to packages/smtplib/src)' : ''; } catch { return ''; } })();

const section = [
  `## ${label}`,
  '',
  `\`node bench/profile.js ${label}\` at commit ${commit}${dirty}, ${new Date().toISOString()}: ${N} messages of ${smallMessage().length} B, awaited, one connection, ` +
    `sink at 0 ms, load average ${load0.toFixed(1)} (2 CPUs). Timed part: ${(result.cpuMs / N * 1000).toFixed(1)} µs CPU per message (${result.cpuMs.toFixed(0)} ms for ${N}), ` +
    `${Math.round(N / result.elapsedMs * 1000)} msg/s. Profile: ${total.toFixed(0)} ms sampled; in smtplib's own code ${ours.toFixed(0)} ms ` +
    `(${(ours / total * 100).toFixed(0)} %); idle/program/GC ${idle.map(([k, v]) => `${k.split('\t')[0]} ${v.toFixed(0)} ms`).join(', ')}.`,
  '',
  '| self ms | % | function | where |',
  '| ---: | ---: | --- | --- |',
  ...rows.map(([k, v]) => { const [fn, where] = k.split('\t'); return `| ${v.toFixed(1)} | ${(v / total * 100).toFixed(1)} | \`${fn}\` | ${where ? `\`${where}\`` : ''} |`; }),
  '',
  ...compileSection(compiles),
].join('\n');

function compileSection(byName) {
  const all = [...byName].sort((a, b) => b[1].ms - a[1].ms);
  const ms = all.reduce((a, [, e]) => a + e.ms, 0);
  const count = all.reduce((a, [, e]) => a + e.count, 0);
  return [
    `TurboFan, the same cell run again with \`--no-concurrent-recompilation --single-threaded-gc --trace-opt\`: ${count} compiles of ${all.length} functions, ${ms.toFixed(0)} ms in total; the longest:`,
    '',
    '| compile ms | compiles | function |',
    '| ---: | ---: | --- |',
    ...all.slice(0, TOP_COMPILES).map(([name, e]) => `| ${e.ms.toFixed(1)} | ${e.count} | \`${name}\` |`),
    '',
  ];
}

const docFile = join(ROOT, 'docs', 'perf-profile.md');
const header = '# Where the CPU per message goes\n\nGenerated by `bench/profile.js` (see its header): one section per run, named by its label. Self time = time the sampled function itself was on the CPU (not its callees).\n';
let doc = existsSync(docFile) ? readFileSync(docFile, 'utf8') : header;
const start = doc.indexOf(`\n## ${label}\n`);
if (start >= 0) {
  const next = doc.indexOf('\n## ', start + 1);
  doc = doc.slice(0, start + 1) + section + (next >= 0 ? doc.slice(next + 1) : '');
} else {
  doc = doc.trimEnd() + '\n\n' + section;
}
writeFileSync(docFile, doc);
console.log(section);
