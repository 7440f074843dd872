// What recovering one dead worker costs the live worker that recovers it (SpoolStore.recover(), awaited
// in a QueueWorker's loop: its deliveries wait meanwhile). A spool is filled with N queued messages;
// then, for each K, a child process registers a worker, claims K messages and is SIGKILLed (as
// test/queue/crash-child.mjs does), and this process times one recover() of its directory: wall time,
// this process's CPU, and the passes over queue/ it made (opendirSync calls on queue/, counted). The
// K messages go back to queue/, so each row sees N queued.
//   node bench/suites/queue/recover.mjs [queued=100000] [claims=50,200] [--dist <packages/queue/dist>] [--doc docs/queue.md]
// --dist loads SpoolStore from another build (e.g. a copy of an older dist, to compare); --doc writes
// the table, with this command, into the file's recover block (<!-- recover:begin --> ... <!-- recover:end -->).
import { fork } from 'node:child_process';
import fs from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { countOpendirs, replaceDocBlock } from '../../../test/queue/script-helpers.mjs';

const flag = (name) => {
  const at = process.argv.indexOf(name);
  return at < 0 ? undefined : process.argv[at + 1];
};
const distDir = resolve(flag('--dist') ?? new URL('../../../packages/queue/dist', import.meta.url).pathname);
const { SpoolStore } = await import(pathToFileURL(join(distDir, 'index.js')).href);

if (process.argv[2] === '--child') {
  // The worker that dies: registers, claims K, and is killed before it records anything.
  const [, , , dir, k] = process.argv;
  const store = new SpoolStore(dir);
  await store.open();
  const worker = await store.registerWorker();
  let claimed = 0;
  while (claimed < Number(k)) {
    const got = (await store.claim(worker, Number(k) - claimed)).length;
    if (got === 0) break;
    claimed += got;
  }
  process.send({ claimed }, () => process.kill(process.pid, 'SIGKILL'));
} else {
  const positional = process.argv.slice(2).filter((arg, i, all) => !arg.startsWith('--') && all[i - 1] !== '--dist' && all[i - 1] !== '--doc');
  const doc = flag('--doc');
  const startedAt = Date.now();
  const loadAtStart = loadavg().map((l) => l.toFixed(1)).join(' / ');
  const queued = Number(positional[0] ?? 100_000);
  const claimSizes = (positional[1] ?? '50,200').split(',').map(Number);
  const dir = fs.mkdtempSync(join(tmpdir(), 'recover-bench-'));
  const queueDir = join(dir, 'queue');
  const passes = countOpendirs(queueDir);
  const store = new SpoolStore(dir);
  try {
    await store.open();
    const message = `From: a@example.test\r\nTo: b@example.test\r\nSubject: recover bench\r\n\r\n${'a line of the body\r\n'.repeat(20)}`;
    const filling = performance.now();
    const inFlight = 256;
    for (let made = 0; made < queued; made += inFlight) {
      await Promise.all(Array.from({ length: Math.min(inFlight, queued - made) }, () => store.enqueue({ from: 'a@example.test', to: 'b@example.test', message })));
    }
    console.log(`filled ${queued} queued messages in ${((performance.now() - filling) / 1000).toFixed(1)} s; SpoolStore from ${distDir}`);
    const rows = [];
    for (const k of claimSizes) {
      const claimed = await new Promise((done, fail) => {
        const child = fork(new URL(import.meta.url).pathname, ['--child', dir, String(k), '--dist', distDir], { stdio: 'inherit' });
        let got;
        child.on('message', (m) => (got = m.claimed));
        child.on('exit', (code, signal) => (signal === 'SIGKILL' && got !== undefined ? done(got) : fail(new Error(`child ended ${code ?? signal} before claiming`))));
      });
      const load = loadavg()[0];
      const passesBefore = passes.count;
      const cpu = process.cpuUsage();
      const started = performance.now();
      const settled = await store.recover();
      const wallMs = performance.now() - started;
      const used = process.cpuUsage(cpu);
      rows.push({ queued, claims: claimed, settled, 'passes over queue/': passes.count - passesBefore, 'wall ms': Math.round(wallMs), 'CPU ms': Math.round((used.user + used.system) / 1000), load: load.toFixed(1) });
    }
    console.table(rows);
    await store.close();
    if (doc) {
      const command = `node bench/suites/queue/recover.mjs ${queued} ${claimSizes.join(',')}${flag('--dist') ? ` --dist ${flag('--dist')}` : ''}`;
      const head = Object.keys(rows[0]);
      const table = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---:').join(' | ')} |`, ...rows.map((row) => `| ${head.map((h) => (typeof row[h] === 'number' ? row[h].toLocaleString('en-US') : row[h])).join(' | ')} |`)];
      const block = [
        `Command: \`${command}\` (${new Date().toISOString().slice(0, 10)}, ${Math.round((Date.now() - startedAt) / 1000)} s; ${availableParallelism()} CPUs; load average ${loadAtStart} at the start, ${loadavg().map((l) => l.toFixed(1)).join(' / ')} at the end; "load" in the table: the 1-minute load average as that recovery began). Each row: a worker process that claimed the messages and was SIGKILLed, then one \`recover()\` in this process; CPU is this process's.`,
        '',
        ...table,
      ].join('\n');
      replaceDocBlock(doc, '<!-- recover:begin -->', '<!-- recover:end -->', ['<!-- recover:begin -->', block, '<!-- recover:end -->'].join('\n'));
    }
  } finally {
    passes.restore();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
