// The queue cells' floor: the same SMTPPool a QueueWorker makes (4 connections, one message in flight on
// each, 40 sendmail calls at a time) sending `count` messages with no queue at all, so the bench can show
// how much of a queue cell's CPU per message is the pool's own. Sends "ready" when loaded, starts on "start",
// stays until SIGTERM (as worker.mjs).
//   node pool-worker.mjs <host> <port> <count>
const [host, port, count] = process.argv.slice(2);
const { SMTPPool } = await import('../../../packages/smtplib/dist/esm/index.js');
const pool = new SMTPPool({ host, port: Number(port), tlsPolicy: 'none', maxConnections: 4, maxInFlightPerConnection: 1, retry: { attempts: 1 } });
pool.on('error', () => undefined);
// The bench's message (bench/suites/queue.js message()), as a queue worker gets it from its store: a Buffer.
const message = (i) => Buffer.from(`From: bench@example.test\r\nTo: sink@example.test\r\nSubject: queue bench ${i}\r\nMessage-ID: <p${process.pid}-${i}@bench.test>\r\n\r\n${'This is a small message body line for the queue benchmark.\r\n'.repeat(8)}`);
process.send?.('ready');
process.once('message', (m) => {
  if (m !== 'start') return;
  let next = 0;
  for (let lane = 0; lane < 40; lane++) {
    void (async () => {
      while (next < Number(count)) {
        const i = next++;
        await pool.sendmail('bench@example.test', ['sink@example.test'], message(i)).catch((error) => console.error('pool-worker:', error.message));
      }
    })();
  }
});
process.on('SIGTERM', async () => {
  await pool.close();
  process.exit(0);
});
