// Transport.write's `written` callback, which lets the streamed DATA path
// reuse its output buffers: called exactly once, at once when the kernel took
// the bytes (a body pulled from an always-ready source may not yield to the
// event loop for a long time), and reuse is offered only on real sockets.
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { quotedata, SMTP } from 'smtplib';
import { Transport } from '../../packages/smtplib/src/wire/transport.js';

async function socketPair(): Promise<{ client: net.Socket; server: net.Socket; close: () => void }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', () => r()));
  const peer = await accepted;
  return { client, server: peer, close: () => { client.destroy(); peer.destroy(); server.close(); } };
}

describe('Transport.write(…, written)', () => {
  it('calls written once, synchronously when the socket took every byte, and again never', async () => {
    const { client, server, close } = await socketPair();
    try {
      server.resume();
      const transport = new Transport(client, { secure: false, unix: false });
      expect(transport.copiesWrites).toBe(true);
      let calls = 0;
      transport.write(Buffer.alloc(1000, 0x61), () => calls++);
      expect(calls).toBe(1); // before any tick
      transport.write([Buffer.from('a'), Buffer.from('b'), Buffer.alloc(0)], () => calls++);
      await new Promise((r) => setTimeout(r, 20));
      expect(calls).toBe(2);
    } finally {
      close();
    }
  });

  it('waits for the callback when the kernel buffer is full, and calls it once the bytes are taken', async () => {
    const { client, server, close } = await socketPair();
    try {
      server.pause();
      const transport = new Transport(client, { secure: false, unix: false });
      let calls = 0;
      const big = Buffer.alloc(32 * 1024 * 1024, 0x61); // more than loopback socket buffers hold
      transport.write(big, () => calls++);
      expect(calls).toBe(0);
      server.resume();
      await transport.drain(10_000);
      await new Promise((r) => setImmediate(r));
      expect(calls).toBe(1);
    } finally {
      close();
    }
  });

  it('a caller\'s Duplex (a connect hook) may keep what it is given: no reuse is offered', () => {
    expect(new Transport(new PassThrough(), { secure: false, unix: false, viaHook: true }).copiesWrites).toBe(false);
  });
});

describe('a DATA body over a socket', () => {
  it('is written from a few reused buffers, not a fresh one per chunk, and arrives intact (a stream, and a message in memory)', async () => {
    // A sink that records the message (it is small) and the client socket's writes.
    let message = Buffer.alloc(0);
    const server = net.createServer((socket) => {
      let mode = 'cmd';
      let buf = Buffer.alloc(0);
      let parts: Buffer[] = [];
      socket.write('220 sink\r\n');
      socket.on('data', (chunk: Buffer) => {
        if (mode === 'data') {
          // The client waits for the reply after the end marker, so it ends a read.
          parts.push(chunk);
          const last = Buffer.concat(parts.slice(-2));
          if (!last.subarray(-5).equals(Buffer.from('\r\n.\r\n'))) return;
          const all = Buffer.concat(parts);
          message = all.subarray(0, all.length - 3);
          parts = [];
          mode = 'cmd';
          socket.write('250 ok\r\n');
          return;
        }
        buf = Buffer.concat([buf, chunk]);
        for (;;) {
          const lf = buf.indexOf('\n');
          if (lf === -1) return;
          const verb = buf.subarray(0, lf).toString('latin1').trim().split(' ')[0]!.toUpperCase();
          buf = buf.subarray(lf + 1);
          if (verb === 'EHLO') socket.write('250-sink\r\n250 PIPELINING\r\n');
          else if (verb === 'DATA') { mode = 'data'; socket.write('354 go\r\n'); return; }
          else if (verb === 'QUIT') { socket.end('221 bye\r\n'); return; }
          else socket.write('250 ok\r\n');
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const written = new Set<ArrayBufferLike>();
    let bodyWrites = 0;
    const smtp = await SMTP.connect({
      host: '127.0.0.1',
      port,
      connect: async () => {
        const socket = net.connect(port, '127.0.0.1');
        await new Promise<void>((r) => socket.once('connect', () => r()));
        const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
        (socket as unknown as { write: (...args: unknown[]) => boolean }).write = (chunk: unknown, ...rest: unknown[]) => {
          if (Buffer.isBuffer(chunk) && chunk.length > 8192) { written.add(chunk.buffer); bodyWrites++; }
          return write(chunk, ...rest);
        };
        return socket;
      },
    });
    try {
      // A message in memory is encoded as it is written, into the same few buffers.
      const whole = Buffer.from('.a dotted line\n'.repeat(4000 * 50), 'latin1');
      await smtp.sendmail('a@example.org', 'b@example.org', whole);
      expect(bodyWrites).toBe(Math.ceil(whole.length / 65536)); // one write per 64 KiB window
      expect(written.size).toBeLessThanOrEqual(8);
      expect(message.equals(Buffer.from('..a dotted line\r\n'.repeat(4000 * 50), 'latin1'))).toBe(true);
      // Around the one-window boundary (encoded ahead below it, as written above it), with
      // a dot and a bare CR/LF right at the seam: the same bytes arrive either way.
      for (const size of [65535, 65536, 65537, 131073]) {
        const text = `${'a'.repeat(size - 5)}\n.\r.x`;
        await smtp.sendmail('a@example.org', 'b@example.org', Buffer.from(text, 'latin1'));
        expect(message.toString('latin1')).toBe(`${quotedata(text)}\r\n`);
      }
      written.clear();
      bodyWrites = 0;

      const block = Buffer.from('.a dotted line\n'.repeat(4000), 'latin1');
      async function* body(): AsyncIterable<Buffer> { for (let i = 0; i < 100; i++) yield block; }
      await smtp.sendmail('a@example.org', 'b@example.org', body());
      expect(bodyWrites).toBe(100);
      expect(written.size).toBeLessThanOrEqual(8);
      const expected = Buffer.from('..a dotted line\r\n'.repeat(4000 * 100), 'latin1');
      expect(message.equals(expected)).toBe(true);
    } finally {
      await smtp.quit().catch(() => {});
      server.close();
    }
  });
});
