// A queue worker process for test/queue/spool-writing.test.ts: delivers from a spool to the given
// SMTP port until the test kills it with SIGKILL. Prints its worker id once it has started.
//   node writing-child.mjs <spool dir> <port> <concurrency> <maxConnections>
import { openStore } from './store-spec.mjs';

const [dir, port, concurrency, connections] = process.argv.slice(2);
const { MailQueue } = await import('../../packages/queue/dist/index.js');
const store = await openStore(`spool:${dir}`);
const queue = new MailQueue(store);
const worker = queue.worker({
  smtp: { host: '127.0.0.1', port: Number(port), tlsPolicy: 'none', maxConnections: Number(connections) },
  concurrency: Number(concurrency),
  pollIntervalMs: 20,
});
await worker.start();
process.stdout.write('started\n');
setInterval(() => undefined, 60_000);
