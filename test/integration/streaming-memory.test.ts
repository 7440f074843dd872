// A 1 GB body streams with bounded memory: the process's RSS grows by less
// than 64 MB, by DATA (dot-stuffing every line) and by BDAT chunks. The sink
// counts bytes and never holds the message.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { SMTP } from 'smtplib';

const GB = 1024 * 1024 * 1024;
const LINE = Buffer.from('.a line that starts with a dot, so every line is stuffed on the DATA path ......\r\n');

/** A minimal counting SMTP sink: replies to commands, counts DATA (to the end marker) or BDAT octets. */
async function countingSink(chunking: boolean): Promise<{ port: number; received: () => number; close: () => void }> {
  let received = 0;
  const server = net.createServer((socket) => {
    let mode: 'cmd' | 'data' | 'bdat' = 'cmd';
    let pending = Buffer.alloc(0);
    let bdatLeft = 0;
    let bdatLast = false;
    socket.write('220 sink\r\n');
    socket.on('data', (chunk: Buffer) => {
      let buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      pending = Buffer.alloc(0);
      while (buf.length) {
        if (mode === 'data') {
          const end = buf.indexOf('\r\n.\r\n');
          if (end === -1) {
            received += Math.max(0, buf.length - 4);
            pending = Buffer.from(buf.subarray(Math.max(0, buf.length - 4)));
            return;
          }
          received += end + 2;
          buf = buf.subarray(end + 5);
          mode = 'cmd';
          socket.write('250 ok\r\n');
          continue;
        }
        if (mode === 'bdat') {
          const take = Math.min(bdatLeft, buf.length);
          received += take;
          bdatLeft -= take;
          buf = buf.subarray(take);
          if (bdatLeft === 0) { mode = 'cmd'; socket.write(bdatLast ? '250 queued\r\n' : '250 chunk\r\n'); }
          continue;
        }
        const lf = buf.indexOf('\n');
        if (lf === -1) { pending = Buffer.from(buf); return; }
        const line = buf.subarray(0, lf).toString('latin1').trim();
        buf = buf.subarray(lf + 1);
        const verb = line.split(' ')[0]!.toUpperCase();
        if (verb === 'EHLO') socket.write(`250-sink\r\n250-PIPELINING\r\n${chunking ? '250-CHUNKING\r\n' : ''}250 8BITMIME\r\n`);
        else if (verb === 'DATA') { mode = 'data'; socket.write('354 go\r\n'); }
        else if (verb === 'BDAT') { const [, n, last] = line.split(' '); bdatLeft = Number(n); bdatLast = last === 'LAST'; mode = 'bdat'; if (bdatLeft === 0) { mode = 'cmd'; socket.write('250 queued\r\n'); } }
        else if (verb === 'QUIT') { socket.end('221 bye\r\n'); return; }
        else socket.write('250 ok\r\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, received: () => received, close: () => server.close() };
}

async function* oneGigabyte(): AsyncIterable<Buffer> {
  const block = Buffer.concat(Array.from({ length: Math.floor(65536 / LINE.length) }, () => LINE));
  let sent = 0;
  while (sent < GB) {
    yield block;
    sent += block.length;
  }
}

describe('streaming a 1 GB body', () => {
  for (const chunking of [false, true]) {
    it(`${chunking ? 'BDAT' : 'DATA'}: RSS grows by less than 64 MB`, async () => {
      const sink = await countingSink(chunking);
      const smtp = await SMTP.connect({ host: '127.0.0.1', port: sink.port });
      global.gc?.();
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
      const started = Date.now();
      try {
        await smtp.sendmail('a@example.org', 'b@example.org', oneGigabyte());
      } finally {
        clearInterval(sampler);
      }
      peak = Math.max(peak, process.memoryUsage().rss);
      const seconds = (Date.now() - started) / 1000;
      console.log(`${chunking ? 'BDAT' : 'DATA'}: 1 GiB in ${seconds.toFixed(1)} s, RSS +${((peak - before) / 1e6).toFixed(1)} MB`);
      expect(sink.received()).toBeGreaterThanOrEqual(GB);
      expect(peak - before).toBeLessThan(64 * 1024 * 1024);
      await smtp.quit();
      sink.close();
    }, 120_000);
  }
});
