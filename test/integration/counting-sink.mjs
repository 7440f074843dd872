// A minimal counting SMTP sink as a child process for the 1 GiB streaming
// test, so the test process's RSS is the sender's alone (in the same process
// the sink's own socket reads, 1 GiB of 64 KiB buffers per run, were counted
// against the sender). Replies to commands and counts the octets of DATA (up
// to the end marker) or of BDAT chunks; never holds the message.
// Argument: "chunking" to offer CHUNKING. Prints "PORT <n>" when listening and
// "RECEIVED <octets>" after each message; exits when stdin ends.
import net from 'node:net';

const chunking = process.argv[2] === 'chunking';
const MARKER = Buffer.from('\r\n.\r\n');

const server = net.createServer((socket) => {
  let mode = 'cmd';
  let line = Buffer.alloc(0);
  let tail = Buffer.alloc(0); // DATA: the last octets of the previous read, for a marker split across reads
  let received = 0;
  let bdatLeft = 0;
  let bdatLast = false;
  const delivered = () => {
    process.stdout.write(`RECEIVED ${received}\n`);
    received = 0;
  };
  socket.write('220 sink\r\n');
  socket.on('data', (chunk) => {
    let buf = chunk;
    while (buf.length) {
      if (mode === 'data') {
        // Only the few octets around the read boundary are copied, never the read.
        const seam = Buffer.concat([tail, buf.subarray(0, MARKER.length - 1)]);
        const atSeam = tail.length ? seam.indexOf(MARKER) : -1;
        const end = atSeam !== -1 ? atSeam - tail.length : buf.indexOf(MARKER);
        if (end === -1) {
          received += buf.length;
          tail = Buffer.from(buf.length >= MARKER.length - 1 ? buf.subarray(buf.length - (MARKER.length - 1)) : Buffer.concat([tail, buf]).subarray(-(MARKER.length - 1)));
          return;
        }
        received += end + 2; // the CRLF before the marker ends the last line
        buf = buf.subarray(end + MARKER.length);
        tail = Buffer.alloc(0);
        mode = 'cmd';
        delivered();
        socket.write('250 ok\r\n');
        continue;
      }
      if (mode === 'bdat') {
        const take = Math.min(bdatLeft, buf.length);
        received += take;
        bdatLeft -= take;
        buf = buf.subarray(take);
        if (bdatLeft === 0) {
          mode = 'cmd';
          if (bdatLast) delivered();
          socket.write(bdatLast ? '250 queued\r\n' : '250 chunk\r\n');
        }
        continue;
      }
      const lf = buf.indexOf(0x0a);
      if (lf === -1) { line = Buffer.concat([line, buf]); return; }
      const text = Buffer.concat([line, buf.subarray(0, lf)]).toString('latin1').trim();
      line = Buffer.alloc(0);
      buf = buf.subarray(lf + 1);
      const verb = text.split(' ')[0].toUpperCase();
      if (verb === 'EHLO') socket.write(`250-sink\r\n250-PIPELINING\r\n${chunking ? '250-CHUNKING\r\n' : ''}250 8BITMIME\r\n`);
      else if (verb === 'DATA') { mode = 'data'; socket.write('354 go\r\n'); }
      else if (verb === 'BDAT') {
        const [, n, last] = text.split(' ');
        bdatLeft = Number(n);
        bdatLast = last === 'LAST';
        mode = 'bdat';
        if (bdatLeft === 0) { mode = 'cmd'; if (bdatLast) delivered(); socket.write('250 queued\r\n'); }
      }
      else if (verb === 'QUIT') { socket.end('221 bye\r\n'); return; }
      else socket.write('250 ok\r\n');
    }
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`PORT ${server.address().port}\n`));
process.stdin.on('end', () => server.close(() => process.exit(0)));
process.stdin.resume();
