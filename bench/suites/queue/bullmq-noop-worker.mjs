// The floor of the Redis cells: a BullMQ Worker exactly as in nodemailer-bullmq-worker.mjs
// (concurrency 40, the same jobs), whose processor does nothing. What it costs per job is BullMQ's
// own handling of a job (fetching, locking, completing: ioredis in the worker, Lua in redis-server)
// with no mail sent. Nothing reaches the sink, so the worker reports how many jobs it has completed
// (at most every 10 ms, while it completes any) to the bench, which times the windows by that.
//   node bullmq-noop-worker.mjs <redis-url> <queue-name>
import { Worker } from 'bullmq';

const [url, name] = process.argv.slice(2);
const u = new URL(url);
let completed = 0;
let reportPending = false;
const worker = new Worker(name, async () => {}, { connection: { host: u.hostname, port: Number(u.port), maxRetriesPerRequest: null }, concurrency: 40, autorun: false });
worker.on('completed', () => {
  completed++;
  if (reportPending) return;
  reportPending = true;
  setTimeout(() => {
    reportPending = false;
    process.send?.({ completed });
  }, 10);
});
await worker.waitUntilReady();
process.send?.('ready');
process.on('message', (m) => {
  if (m === 'start') void worker.run();
});
process.on('SIGTERM', async () => {
  await worker.close();
  process.exit(0);
});
