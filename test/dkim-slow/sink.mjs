// A receiver in its own process, so the sender's memory is measured alone:
// a minimal ESMTP server offering CHUNKING (RFC 3030) that writes each
// message's BDAT octets, as received, to <dir>/<n>.eml with back-pressure.
// (BDAT carries the message unstuffed; DATA and dot-stuffing are covered by
// test/dkim at ordinary sizes.) Prints "port N", then "stored PATH" per message.
import { createWriteStream } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

const dir = process.argv[2];
let count = 0;

const server = net.createServer((socket) => {
  let pending = Buffer.alloc(0);
  let left = 0;
  let last = false;
  let out;
  socket.write('220 dkim sink ESMTP\r\n');
  const reply = (text) => socket.write(`${text}\r\n`);
  const finish = () => {
    const path = out.path;
    out.end(() => {
      process.stdout.write(`stored ${path}\n`);
      reply('250 2.0.0 stored');
      socket.resume();
    });
    socket.pause();
    out = undefined;
  };
  socket.on('data', (chunk) => {
    let buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    pending = Buffer.alloc(0);
    while (buf.length) {
      if (left > 0) {
        const take = buf.subarray(0, Math.min(left, buf.length));
        left -= take.length;
        buf = buf.subarray(take.length);
        if (!out.write(take)) { socket.pause(); out.once('drain', () => socket.resume()); }
        if (left === 0) {
          if (last) { pending = Buffer.from(buf); finish(); return; }
          reply('250 2.0.0 chunk');
        }
        continue;
      }
      const lf = buf.indexOf('\n');
      if (lf === -1) { pending = Buffer.from(buf); return; }
      const line = buf.subarray(0, lf).toString('latin1').trim();
      buf = buf.subarray(lf + 1);
      const [verb, n, flag] = line.split(' ');
      switch (verb.toUpperCase()) {
        case 'EHLO': reply('250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 CHUNKING'); break;
        case 'BDAT':
          out ??= createWriteStream(join(dir, `${count++}.eml`));
          left = Number(n);
          last = (flag ?? '').toUpperCase() === 'LAST';
          if (left === 0 && last) { pending = Buffer.from(buf); finish(); return; }
          break;
        case 'QUIT': socket.end('221 bye\r\n'); return;
        default: reply('250 2.0.0 ok');
      }
    }
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`port ${server.address().port}\n`));
