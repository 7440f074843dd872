// A queue worker process for the bench: our QueueWorker (spool or Redis store),
// delivering to the sink until SIGTERM. Sends "ready" when loaded, starts on "start".
//   node worker.mjs <store-spec> <host> <port> [transactions in flight per connection, default 1]
import { openStore } from '../../../test/queue/store-spec.mjs';

const [spec, host, port, inFlight = '1'] = process.argv.slice(2);
const { MailQueue } = await import('../../../packages/queue/dist/index.js');
const store = await openStore(spec);
const queue = new MailQueue(store);
const worker = queue.worker({
  smtp: { host, port: Number(port), tlsPolicy: 'none', maxConnections: 4, maxInFlightPerConnection: Number(inFlight) },
  concurrency: 40,
  pollIntervalMs: 20,
});
// Ready once everything is loaded and open; delivery starts when the bench says so, for every worker
// process at once (a worker that started while the others were still loading would deliver a
// small run alone, before the clock started).
process.send?.('ready');
process.on('message', (m) => {
  if (m === 'start') void worker.start();
  // compiles.mjs: a line in this process's stdout (its V8 trace) where a timed window ends.
  else if (typeof m === 'string' && m.startsWith('mark ')) console.log(`=== ${m} attempts ${worker.stats().attempts}`);
});
process.on('SIGTERM', async () => {
  await worker.stop();
  await queue.close();
  process.exit(0);
});
