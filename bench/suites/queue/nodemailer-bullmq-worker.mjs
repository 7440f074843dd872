// The usual user's build of the same job: BullMQ workers, each sending with
// nodemailer's pooled transport (maxConnections 4, concurrency 40).
//   node nodemailer-bullmq-worker.mjs <redis-url> <queue-name> <host> <port>
import { Worker } from 'bullmq';
import nodemailer from 'nodemailer';

const [url, name, host, port] = process.argv.slice(2);
const u = new URL(url);
const transport = nodemailer.createTransport({ pool: true, host, port: Number(port), secure: false, ignoreTLS: true, maxConnections: 4, maxMessages: Infinity, logger: false });
const worker = new Worker(name, async (job) => {
  await transport.sendMail({ envelope: { from: job.data.from, to: job.data.to }, raw: job.data.raw });
}, { connection: { host: u.hostname, port: Number(u.port), maxRetriesPerRequest: null }, concurrency: 40, autorun: false });
await worker.waitUntilReady();
// As bench/suites/queue/worker.mjs: ready when loaded, processing when the bench says "start".
process.send?.('ready');
process.once('message', (m) => {
  if (m === 'start') void worker.run();
});
process.on('SIGTERM', async () => {
  await worker.close();
  transport.close();
  process.exit(0);
});
