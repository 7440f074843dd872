// Outcomes that must stay honest at the edges (principle 7): a send already
// delivered to some recipients is never reported as not delivered because
// its retry for the others could not run; a connection cut in the middle of
// the TLS handshake is a transient failure, not a verdict on the destination.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SMTPPool } from '../../packages/smtplib/src/index.js';
import { testPki } from '../support/certs.js';
import { message, sleep, startFaultServer, type FaultServerHandle } from './helpers.js';

let server: FaultServerHandle | undefined;
let pool: SMTPPool | undefined;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  pool?.destroy();
  pool = undefined;
  await server?.close();
  server = undefined;
  for (const close of closers.splice(0)) await close();
});

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await sleep(10);
  if (!condition()) throw new Error(`timed out waiting for ${what}`);
}

describe('a send partly delivered, whose retry for the other recipients never runs', () => {
  // b@ is refused with 451 at RCPT, a@ gets the message; b@ waits for a retry
  // (long backoff). Whatever ends that wait, a@'s delivery is reported.
  const start = async () => {
    server = await startFaultServer({ rcptReply: (rcpt) => (rcpt.startsWith('b@') ? '451 4.2.0 greylisted' : undefined) });
    pool = new SMTPPool({ host: '127.0.0.1', port: server.port, localHostname: 'client.test', retry: { attempts: 3, minDelayMs: 30_000, maxDelayMs: 30_000 } });
    const controller = new AbortController();
    const send = pool.sendmail('x@example.test', ['a@example.test', 'b@example.test'], message('partial'), { signal: controller.signal });
    // The first attempt is over on both sides: delivered, and the send back in the queue waiting for its retry.
    await until(() => server!.stats.messages === 1 && pool!.stats().inFlight === 0 && pool!.stats().queued === 1, 'the first attempt');
    expect(server.deliveries.get('partial a@example.test')).toBe(1);
    return { send, controller };
  };

  it('pool.destroy(): resolves with a@ accepted and b@ refused (not a rejection that says nothing was delivered)', async () => {
    const { send } = await start();
    pool!.destroy();
    const result = await send;
    expect(result.accepted).toEqual(['a@example.test']);
    expect([...result.refused.keys()]).toEqual(['b@example.test']);
  });

  it("the caller's abort while waiting for the retry: the same", async () => {
    const { send, controller } = await start();
    controller.abort(new Error('enough'));
    const result = await send;
    expect(result.accepted).toEqual(['a@example.test']);
    expect([...result.refused.keys()]).toEqual(['b@example.test']);
  });
});

describe('a connection cut during the TLS handshake', () => {
  it('is retried as a connection failure, not taken as a TLS verdict that fails every waiting send', async () => {
    const pki = testPki();
    server = await startFaultServer({ tls: { key: pki.server.key, cert: pki.server.cert } });
    // The first connection answers STARTTLS with 220 and is cut at the ClientHello; later ones reach the server.
    let connections = 0;
    const front = net.createServer((socket) => {
      socket.on('error', () => {});
      if (++connections === 1) {
        socket.write('220 front ESMTP\r\n');
        let said = '';
        socket.on('data', (chunk) => {
          said += chunk.toString('latin1');
          if (said.endsWith('STARTTLS\r\n')) { socket.write('220 2.0.0 go ahead\r\n'); said = 'tls'; return; }
          if (said === 'tls' || said.startsWith('tls')) { socket.destroy(); return; }
          if (/^EHLO .*\r\n$/.test(said)) { socket.write('250-front\r\n250 STARTTLS\r\n'); said = ''; }
        });
        return;
      }
      const upstream = net.connect(server!.port, '127.0.0.1');
      socket.pipe(upstream).pipe(socket);
      upstream.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', () => resolve()));
    closers.push(() => new Promise<void>((resolve) => front.close(() => resolve())));
    pool = new SMTPPool({
      host: '127.0.0.1',
      port: (front.address() as net.AddressInfo).port,
      localHostname: 'client.test',
      tlsPolicy: 'required',
      tls: { ca: pki.ca },
      maxConnections: 1,
      retry: { minDelayMs: 5, maxDelayMs: 10 },
    });
    const errors: Error[] = [];
    pool.on('error', (error) => errors.push(error));
    const result = await pool.sendmail('a@example.test', 'b@example.test', message('after-cut'));
    expect(result.accepted).toEqual(['b@example.test']);
    expect(result.attempts).toBe(1);
    expect(pool.stats().connectFailures).toBe(1);
    expect(errors[0]?.message).toMatch(/TLS|socket disconnected/i);
    expect(server.deliveries.get('after-cut b@example.test')).toBe(1);
  });
});
