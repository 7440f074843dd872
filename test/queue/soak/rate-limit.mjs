// The global rate limit, measured at the SMTP server: K worker processes share
// one Redis queue limited to MAX messages per second; the server's delivery
// count is sampled every 50 ms and the busiest 1-second window is reported.
//   node test/queue/soak/rate-limit.mjs [--workers 4] [--max 100] [--seconds 30] [--doc docs/queue.md]
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFaultServer } from '../../soak/fault-server.js';
import { openStore } from '../store-spec.mjs';

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
const server = await startFaultServer({});
const spec = `redis:redis://127.0.0.1:${port}#rate#30000#${MAX}/1000`;
const store = await openStore(spec);
const total = MAX * (SECONDS + 5);
for (let i = 0; i < total; i += 200) {
  await Promise.all(Array.from({ length: Math.min(200, total - i) }, (_, j) => store.enqueue({ from: 'rate@example.test', to: 'x@example.test', message: `Subject: ${i + j}\r\nX-Soak-Id: r${i + j}\r\n\r\nrate\r\n` })));
}
const workers = await Promise.all(Array.from({ length: WORKERS }, () => new Promise((resolve) => {
  const child = fork(join(here, 'worker.mjs'), [spec, String(server.port)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: { ...process.env, SOAK_CONCURRENCY: '40' } });
  child.once('message', () => resolve(child));
})));
const samples = [];
const t0 = Date.now();
while (Date.now() - t0 < SECONDS * 1000) {
  samples.push([Date.now() - t0, server.stats.messages]);
  await new Promise((r) => setTimeout(r, 50));
}
samples.push([Date.now() - t0, server.stats.messages]);
for (const w of workers) w.kill('SIGKILL');
let busiest = 0;
for (let i = 0; i < samples.length; i++) {
  let j = i;
  while (j + 1 < samples.length && samples[j + 1][0] - samples[i][0] <= 1000) j++;
  busiest = Math.max(busiest, samples[j][1] - samples[i][1]);
}
const delivered = samples.at(-1)[1];
const first = samples.find(([, n]) => n > 0)?.[0] ?? 0;
const average = delivered / ((samples.at(-1)[0] - first) / 1000);
const result = { workers: WORKERS, limitPerSecond: MAX, seconds: SECONDS, delivered, averagePerSecond: Number(average.toFixed(1)), busiestOneSecond: busiest, duplicates: [...server.deliveries.values()].filter((n) => n > 1).length };
console.log(JSON.stringify(result, null, 2));
if (DOC && existsSync(DOC)) {
  const begin = `<!-- rate:${MAX}:begin -->`;
  const end = `<!-- rate:${MAX}:end -->`;
  const text = readFileSync(DOC, 'utf8');
  const block = `${begin}\nCommand: \`node test/queue/soak/rate-limit.mjs --workers ${WORKERS} --max ${MAX} --seconds ${SECONDS}\` (${new Date().toISOString().slice(0, 10)})\n\n| worker processes | limit | run | delivered | average msgs/s | busiest 1 s window | duplicates |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n| ${WORKERS} | ${MAX}/s | ${SECONDS} s | ${delivered} | ${result.averagePerSecond} | ${busiest} | ${result.duplicates} |\n${end}`;
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  writeFileSync(DOC, a >= 0 && b > a ? text.slice(0, a) + block + text.slice(b + end.length) : `${text}\n${block}\n`);
}
await store.close().catch(() => undefined);
await server.close();
redis.kill('SIGTERM');
setTimeout(() => { rmSync(dir, { recursive: true, force: true }); process.exit(busiest <= MAX * 2 && result.duplicates === 0 ? 0 : 1); }, 300);
