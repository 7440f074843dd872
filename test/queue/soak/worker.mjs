// One queue worker process for the crash soak, the hosts test and the rate
// measurement: opens the store named by the spec, delivers to the test's SMTP
// server until SIGTERM (or its SIGKILL).
//   node worker.mjs <store-spec> <smtp-port> [<smtp-host>]
// SOAK_EHLO names the worker in its EHLO (the server logs it with each
// delivery); SOAK_CONCURRENCY sets its concurrency (default 20).
import { openStore } from '../store-spec.mjs';

const [spec, port, host = '127.0.0.1'] = process.argv.slice(2);
const { MailQueue } = await import('../../../packages/queue/dist/index.js');
const store = await openStore(spec);
store.on('error', () => undefined); // reconnects are expected while Redis restarts or the link is down
const queue = new MailQueue(store);
const worker = queue.worker({
  smtp: { host, port: Number(port), tlsPolicy: 'none', maxConnections: 3, retry: { minDelayMs: 10, maxDelayMs: 50 }, timeout: 60_000, ...(process.env.SOAK_EHLO ? { localHostname: process.env.SOAK_EHLO } : {}) },
  schedule: { minBackoffMs: 50, maxBackoffMs: 400, greylistDelayMs: 50 },
  concurrency: Number(process.env.SOAK_CONCURRENCY ?? 20),
  pollIntervalMs: 50,
  recoverIntervalMs: 300,
});
worker.on('error', () => undefined);
await worker.start();
process.send?.({ ready: true, worker: worker.id });
console.log(`ready ${worker.id}`);
process.on('SIGTERM', async () => {
  await worker.stop();
  await queue.close().catch(() => undefined);
  process.exit(0);
});
