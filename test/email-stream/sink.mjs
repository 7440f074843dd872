// smtp-server as a child process for the 1 GiB test, so the test process's RSS
// is the sender's alone: prints "PORT <n>" when listening, and "DONE <bytes> <sha256>"
// for each message received (the data as delivered, dot-unstuffed).
import { createHash } from 'node:crypto';
import { SMTPServer } from 'smtp-server';

const server = new SMTPServer({
  logger: false,
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  size: 0,
  onData(stream, _session, callback) {
    let bytes = 0;
    const hash = createHash('sha256');
    stream.on('data', (c) => { bytes += c.length; hash.update(c); });
    stream.on('end', () => {
      process.stdout.write(`DONE ${bytes} ${hash.digest('hex')}\n`);
      callback();
    });
  },
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`PORT ${server.server.address().port}\n`));
process.stdin.on('end', () => server.close(() => process.exit(0)));
process.stdin.resume();
