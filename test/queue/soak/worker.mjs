// One queue worker process for the crash soak: opens the store named by the
// spec, delivers to the fault server until SIGTERM (or its SIGKILL).
//   node worker.mjs <store-spec> <smtp-port>
import { openStore } from '../store-spec.mjs';

const [spec, port] = process.argv.slice(2);
const { MailQueue } = await import('../../../packages/queue/dist/index.js');
const store = await openStore(spec);
store.on('error', () => undefined); // reconnects are expected while Redis restarts
const queue = new MailQueue(store);
const worker = queue.worker({
  smtp: { host: '127.0.0.1', port: Number(port), tlsPolicy: 'none', maxConnections: 3, retry: { minDelayMs: 10, maxDelayMs: 50 }, timeout: 60_000 },
  schedule: { minBackoffMs: 50, maxBackoffMs: 400, greylistDelayMs: 50 },
  concurrency: Number(process.env.SOAK_CONCURRENCY ?? 20),
  pollIntervalMs: 50,
  recoverIntervalMs: 300,
});
worker.on('error', () => undefined);
await worker.start();
process.send?.({ ready: true, worker: worker.id });
process.on('SIGTERM', async () => {
  await worker.stop();
  await queue.close().catch(() => undefined);
  process.exit(0);
});
