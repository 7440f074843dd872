// The global rate limit, measured at the SMTP server (issue 13): K worker
// processes share one Redis queue limited to MAX messages per second; the
// server logs the arrival time and the sending worker (its EHLO name) of every
// message. Reported: the average rate, the busiest 1-second span (sliding, to
// the millisecond), the busiest 100 ms span, and the split between workers.
//   node test/queue/ratelimit/measure.mjs [--workers 4] [--max 100] [--seconds 30] [--doc docs/queue.md]
// Exit 1 when a message arrived twice or a 1-second span held more than 1.25 x MAX.
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFaultServer } from '../../soak/fault-server.js';
import { openStore } from '../store-spec.mjs';
import { replaceDocBlock } from '../script-helpers.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const arg = (name, fallback) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : fallback; };
const WORKERS = Number(arg('workers', 4));
const MAX = Number(arg('max', 100));
const SECONDS = Number(arg('seconds', 30));
const DOC = arg('doc', undefined);

const s = net.createServer();
await new Promise((r) => s.listen(0, '127.0.0.1', r));
const port = s.address().port;
await new Promise((r) => s.close(r));
const dir = mkdtempSync(join(tmpdir(), 'smtplib-rate-redis-'));
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 700));
const arrivals = [];
const server = await startFaultServer({ onDeliver: (d) => arrivals.push(d) });
const spec = `redis:redis://127.0.0.1:${port}#rate#30000#${MAX}/1000`;
const store = await openStore(spec);
// More than the run can take at the limit, so the limit (not the supply) sets the pace.
const total = MAX * (SECONDS + 5);
for (let i = 0; i < total; i += 200) {
  await Promise.all(Array.from({ length: Math.min(200, total - i) }, (_, j) => store.enqueue({ from: 'rate@example.test', to: 'x@example.test', message: `Subject: ${i + j}\r\nX-Soak-Id: r${i + j}\r\n\r\nrate\r\n` })));
}
const workers = await Promise.all(Array.from({ length: WORKERS }, (_, k) => new Promise((resolve) => {
  const child = fork(join(here, '../soak/worker.mjs'), [spec, String(server.port)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: { ...process.env, SOAK_CONCURRENCY: '40', SOAK_EHLO: `w${k}.example.test` } });
  child.once('message', () => resolve(child));
})));
const load = os.loadavg()[0];
const t0 = Date.now();
await new Promise((r) => setTimeout(r, SECONDS * 1000));
const t1 = Date.now();
for (const w of workers) w.kill('SIGKILL');
const loadAfter = os.loadavg()[0];

const inRun = arrivals.filter((a) => a.at >= t0 && a.at < t1).map((a) => a.at).sort((x, y) => x - y);
const busiest = (span) => {
  let best = 0;
  for (let i = 0, j = 0; i < inRun.length; i++) {
    while (j < inRun.length && inRun[j] - inRun[i] < span) j++;
    best = Math.max(best, j - i);
  }
  return best;
};
const perWorker = {};
for (const a of arrivals) if (a.at >= t0 && a.at < t1) perWorker[a.ehlo] = (perWorker[a.ehlo] ?? 0) + 1;
const first = inRun[0] ?? t0;
const result = {
  workers: WORKERS, limitPerSecond: MAX, seconds: SECONDS, delivered: inRun.length,
  averagePerSecond: Number((inRun.length / ((t1 - first) / 1000)).toFixed(1)),
  busiestOneSecond: busiest(1000), busiest100ms: busiest(100),
  perWorker: Object.fromEntries(Object.entries(perWorker).sort()),
  duplicates: [...server.deliveries.values()].filter((n) => n > 1).length,
  loadAverage: [Number(load.toFixed(1)), Number(loadAfter.toFixed(1))], cpus: os.cpus().length,
};
console.log(JSON.stringify(result, null, 2));
if (DOC && existsSync(DOC)) {
  const begin = `<!-- rate:${MAX}:begin -->`;
  const end = `<!-- rate:${MAX}:end -->`;
  const split = Object.entries(result.perWorker).map(([w, n]) => `${w.split('.')[0]} ${n}`).join(', ');
  const block = `${begin}\nCommand: \`node test/queue/ratelimit/measure.mjs --workers ${WORKERS} --max ${MAX} --seconds ${SECONDS}\` (${new Date().toISOString().slice(0, 10)}, ${result.cpus} CPUs, load average ${result.loadAverage[0]} at the start, ${result.loadAverage[1]} at the end)\n\n| worker processes | limit | run | delivered | average msgs/s | busiest 1 s span | busiest 100 ms span | per worker | duplicates |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |\n| ${WORKERS} | ${MAX}/s | ${SECONDS} s | ${result.delivered} | ${result.averagePerSecond} | ${result.busiestOneSecond} | ${result.busiest100ms} | ${split} | ${result.duplicates} |\n${end}`;
  replaceDocBlock(DOC, begin, end, block);
}
await store.close().catch(() => undefined);
await server.close();
redis.kill('SIGTERM');
await new Promise((r) => redis.once('exit', r));
rmSync(dir, { recursive: true, force: true });
process.exit(result.busiestOneSecond <= MAX * 1.25 && result.duplicates === 0 ? 0 : 1);
