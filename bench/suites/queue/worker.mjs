// A queue worker process for the bench: our QueueWorker (spool or Redis store),
// delivering to the sink until SIGTERM. Prints "ready" when started.
//   node worker.mjs <store-spec> <host> <port>
import { openStore } from '../../../test/queue/store-spec.mjs';

const [spec, host, port] = process.argv.slice(2);
const { MailQueue } = await import('../../../packages/queue/dist/index.js');
const store = await openStore(spec);
const queue = new MailQueue(store);
const worker = queue.worker({
  smtp: { host, port: Number(port), tlsPolicy: 'none', maxConnections: 4 },
  concurrency: 40,
  pollIntervalMs: 20,
});
await worker.start();
process.send?.('ready');
process.on('SIGTERM', async () => {
  await worker.stop();
  await queue.close();
  process.exit(0);
});
