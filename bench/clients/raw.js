// The "raw" client: proves the sink is not the bottleneck. It pre-encodes N whole transactions
// (MAIL, RCPT, DATA + dot-stuffed message + ".", or MAIL, RCPT, BDAT n LAST + message), writes
// them in one go without waiting for any reply, and counts reply lines until all have arrived.
import net from 'node:net';
import { FROM, TO, dotStuff } from '../lib/messages.js';

export const label = 'raw pre-encoded stream';

function connect(host, port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port }, () => resolve(sock));
    sock.once('error', reject);
    sock.setNoDelay(true);
  });
}

function waitLines(sock, count, isEnd = null) {
  return new Promise((resolve, reject) => {
    let seen = 0;
    let text = '';
    const onData = (d) => {
      for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) seen++;
      if (isEnd) text += d.toString('latin1');
      if (isEnd ? isEnd(text) : seen >= count) {
        sock.off('data', onData);
        resolve(text);
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
  });
}

function encode(msg, n, bdat) {
  const env = Buffer.from(`MAIL FROM:<${FROM}>\r\nRCPT TO:<${TO}>\r\n`);
  const one = bdat
    ? Buffer.concat([env, Buffer.from(`BDAT ${msg.length} LAST\r\n`), msg])
    : Buffer.concat([env, Buffer.from('DATA\r\n'), dotStuff(msg), Buffer.from('.\r\n')]);
  return { stream: n === 1 ? one : Buffer.concat(Array(n).fill(one)), linesPerMsg: bdat ? 3 : 4 };
}

/** Returns { elapsedMs } for n messages; `beforeTimed` runs just before the clock starts. */
export async function runRaw({ host, port, n, warmup, msg, bdat, beforeTimed }) {
  const sock = await connect(host, port);
  await waitLines(sock, 0, (t) => /^220 /m.test(t));
  sock.write('EHLO bench.local\r\n');
  await waitLines(sock, 0, (t) => /^250 /m.test(t));
  if (warmup) {
    const w = encode(msg, warmup, bdat);
    const done = waitLines(sock, warmup * w.linesPerMsg);
    sock.write(w.stream);
    await done;
  }
  const { stream, linesPerMsg } = encode(msg, n, bdat);
  await beforeTimed();
  const t0 = performance.now();
  const done = waitLines(sock, n * linesPerMsg);
  sock.write(stream);
  await done;
  const elapsedMs = performance.now() - t0;
  sock.write('QUIT\r\n');
  sock.end();
  return { elapsedMs };
}
