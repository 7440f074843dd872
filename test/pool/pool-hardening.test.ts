// Issue 11, "Pool and lifecycle" and "API traps", the SMTPPool items: each
// test is named after the item and failed on the main branch before the fix.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  SMTPAbortError,
  SMTPConnectError,
  SMTPException,
  SMTPInvalidArgumentError,
  SMTPPool,
  SMTPTLSError,
} from '../../packages/smtplib/src/index.js';
import { message, sleep, startFaultServer, type FaultServerHandle } from './helpers.js';
import { LATE_MS } from '../support/timing.js';

let pool: SMTPPool | undefined;
let server: FaultServerHandle | undefined;
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  pool?.destroy();
  pool = undefined;
  await server?.close();
  server = undefined;
  for (const close of closers.splice(0)) await close();
});

/** A loopback port where nothing listens. */
async function closedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** A TCP server that accepts and never says anything; records when each socket closes. */
async function silentServer() {
  const sockets: { openedAt: number; closedAt?: number; bytes: number }[] = [];
  const server = net.createServer((socket) => {
    const record: { openedAt: number; closedAt?: number; bytes: number } = { openedAt: performance.now(), bytes: 0 };
    sockets.push(record);
    socket.on('data', (d) => (record.bytes += d.length));
    socket.on('error', () => {});
    socket.on('close', () => (record.closedAt = performance.now()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  closers.push(() => new Promise<void>((resolve) => {
    server.close(() => resolve());
    // net.Server has no closeAllConnections (http.Server does); kept as written, typed honestly.
    (server as net.Server & { closeAllConnections?: () => void }).closeAllConnections?.();
  }));
  return { port: (server.address() as net.AddressInfo).port, sockets, server };
}

let dir: string;
let ca: string;
let key: string;
let cert: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'smtplib-pool-hard-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=pool hardening CA');
  ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'server.ext');
  ca = readFileSync(join(dir, 'ca.pem'), 'utf8');
  key = readFileSync(join(dir, 'server.key'), 'utf8');
  cert = readFileSync(join(dir, 'server.pem'), 'utf8');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Implicit TLS (TLS 1.3) in front of the scripted SMTP server. */
async function implicitTlsServer() {
  const smtp = await startFaultServer();
  const front = tls.createServer({ key, cert, minVersion: 'TLSv1.3' }, (secure) => {
    const upstream = net.connect(smtp.port, '127.0.0.1');
    secure.pipe(upstream).pipe(secure);
    secure.on('error', () => upstream.destroy());
    upstream.on('error', () => secure.destroy());
    secure.on('close', () => upstream.destroy());
  });
  front.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', () => resolve()));
  closers.push(async () => {
    await new Promise<void>((resolve) => front.close(() => resolve()));
    await smtp.close();
  });
  return { port: (front.address() as net.AddressInfo).port, smtp };
}

const settleAll = (sends: Promise<unknown>[]) =>
  Promise.all(sends.map((p) => p.then((value) => ({ ok: true as const, value }), (error) => ({ ok: false as const, error }))));

describe('issue 11: a dead destination fails every queued send promptly with that error', () => {
  it('connection refused: 5 queued sends all fail after connectAttempts (3) rounds, within seconds, with default retry settings', async () => {
    const port = await closedPort();
    pool = new SMTPPool({ host: '127.0.0.1', port, localHostname: 'client.test' });
    const started = performance.now();
    const outcomes = await settleAll(Array.from({ length: 5 }, (_, i) => pool!.sendmail('a@example.test', 'b@example.test', message(i))));
    const elapsed = performance.now() - started;
    for (const outcome of outcomes) {
      expect(outcome.ok).toBe(false);
      const error = (outcome as { error: SMTPConnectError & { connectAttempts: number; attempts: number } }).error;
      expect(error).toBeInstanceOf(SMTPConnectError);
      expect(error.message).toMatch(/refused/);
      expect(error.connectAttempts).toBe(3);
      expect(error.attempts).toBe(0); // a failed connection is no attempt of any message
      expect(error.deliveryStatus).toBe('not-delivered');
    }
    // Backoff between rounds with the default minDelayMs 1000: at most 1 s + 2 s (the bug this
    // guards against took 220 s), plus what a loaded machine adds to two timers and three connects.
    expect(elapsed).toBeLessThan(3_000 + 2 * LATE_MS);
    expect(pool.stats()).toMatchObject({ queued: 0, failed: 5 });
  });

  it('each failed connection counts against no message: 50 queued sends cost 3 connection rounds, not 3 × 50 attempts', async () => {
    const port = await closedPort();
    pool = new SMTPPool({ host: '127.0.0.1', port, localHostname: 'client.test', retry: { minDelayMs: 20, maxDelayMs: 40 } });
    const outcomes = await settleAll(Array.from({ length: 50 }, (_, i) => pool!.sendmail('a@example.test', 'b@example.test', message(i))));
    expect(outcomes.every((o) => !o.ok && o.error instanceof SMTPConnectError)).toBe(true);
    // The first round opens maxConnections (5) at once; the next two open one each.
    expect(pool.stats().connectFailures).toBeLessThanOrEqual(5 + 2);
  });

  it('the name does not resolve: every queued send fails at the first failure', async () => {
    pool = new SMTPPool({ host: 'no-such-host.invalid', port: 25, localHostname: 'client.test', tlsPolicy: 'none', retry: { minDelayMs: 20, maxDelayMs: 40 } });
    const outcomes = await settleAll(Array.from({ length: 5 }, (_, i) => pool!.sendmail('a@example.test', 'b@example.test', message(i))));
    for (const outcome of outcomes) {
      expect(outcome.ok).toBe(false);
      const error = (outcome as { error: SMTPConnectError & { connectAttempts: number } }).error;
      expect(error).toBeInstanceOf(SMTPConnectError);
      expect(error.message).toMatch(/could not be resolved/);
      // ENOTFOUND is final at once; a resolver that only times out (EAI_AGAIN) gets the rounds.
      expect(error.connectAttempts).toBeLessThanOrEqual(3);
    }
  });

  it('wrong TLS mode, plain SMTP to an implicit-TLS port: one greeting timeout fails every queued send (no retries)', async () => {
    const { port } = await implicitTlsServer();
    pool = new SMTPPool({ host: '127.0.0.1', port, localHostname: 'client.test', tlsPolicy: 'none', timeouts: { greeting: 300 } });
    const started = performance.now();
    const outcomes = await settleAll(Array.from({ length: 5 }, (_, i) => pool!.sendmail('a@example.test', 'b@example.test', message(i))));
    const elapsed = performance.now() - started;
    for (const outcome of outcomes) {
      expect(outcome.ok).toBe(false);
      const error = (outcome as { error: SMTPException & { connectAttempts: number } }).error;
      expect(error.message).toMatch(/implicit TLS/);
      expect(error.connectAttempts).toBe(1);
    }
    expect(elapsed).toBeLessThan(2_000); // one greeting deadline, not one per message and retry
  });

  it('wrong TLS mode, implicit TLS to a plain SMTP port: every queued send fails with the TLS error at once', async () => {
    server = await startFaultServer();
    pool = new SMTPPool({ host: '127.0.0.1', port: server.port, implicitTls: true, localHostname: 'client.test', tls: { ca } });
    const outcomes = await settleAll(Array.from({ length: 5 }, (_, i) => pool!.sendmail('a@example.test', 'b@example.test', message(i))));
    expect(outcomes.every((o) => !o.ok && o.error instanceof SMTPTLSError && (o.error as SMTPTLSError & { connectAttempts?: number }).connectAttempts === 1)).toBe(true);
    expect(server.stats.connections).toBeLessThanOrEqual(5); // one round, opened together
  });

  it('a destination that comes back within the rounds delivers, and connections still open carry the queue', async () => {
    const port = await closedPort();
    pool = new SMTPPool({ host: '127.0.0.1', port, localHostname: 'client.test', retry: { minDelayMs: 150, maxDelayMs: 150 }, maxConnections: 1 });
    const send = pool.sendmail('a@example.test', 'b@example.test', message('late'));
    await sleep(30); // the first round has failed; the server starts before the second
    server = await startFaultServer();
    await new Promise<void>((resolve, reject) => {
      // re-listen on the same port
      const s = net.createServer();
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => s.close(() => resolve()));
    });
    const proxy = net.createServer((socket) => {
      const upstream = net.connect(server!.port, '127.0.0.1');
      socket.pipe(upstream).pipe(socket);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', () => resolve()));
    closers.push(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
    const result = await send;
    expect(result.accepted).toEqual(['b@example.test']);
    expect(result.attempts).toBe(1);
    expect(pool.stats().connectFailures).toBeGreaterThanOrEqual(1);
  });
});

describe('issue 11: the pool never hands one TLS session ticket to several connections (RFC 8446 §C.4)', () => {
  it('concurrent connections opened after the first resume at most as many times as tickets were issued', async () => {
    const { port } = await implicitTlsServer();
    // How many tickets does this server issue per connection? (OpenSSL's default is 2.)
    const perConnection = await new Promise<number>((resolve, reject) => {
      let tickets = 0;
      const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {});
      socket.on('session', () => tickets++);
      socket.on('error', reject);
      socket.once('data', () => setTimeout(() => {
        socket.end('QUIT\r\n');
        resolve(tickets);
      }, 50));
    });
    expect(perConnection).toBeGreaterThan(0);

    pool = new SMTPPool({ host: '127.0.0.1', port, implicitTls: true, tls: { ca }, localHostname: 'client.test', maxConnections: 5, maxInFlightPerConnection: 1, timeout: 5000 });
    const connects: { id: number; tlsResumed: boolean }[] = [];
    pool.on('connect', (event) => connects.push(event));
    await pool.sendmail('a@example.test', 'b@example.test', message('first'));
    await sleep(50); // the first connection's tickets have arrived
    await Promise.all(Array.from({ length: 5 }, (_, i) => pool!.sendmail('a@example.test', 'b@example.test', message(`burst-${i}`))));
    expect(connects.length).toBe(5); // the first + 4 opened together
    const resumed = connects.slice(1).filter((c) => c.tlsResumed).length;
    expect(resumed).toBeGreaterThanOrEqual(1); // resumption still works
    expect(resumed).toBeLessThanOrEqual(perConnection); // but no ticket went to two connections
  });
});

describe('issue 11: AbortSignal honoured by pool connection opens', () => {
  it('destroy() ends a connection being opened at once, not at its greeting deadline', async () => {
    const silent = await silentServer();
    pool = new SMTPPool({ host: '127.0.0.1', port: silent.port, localHostname: 'client.test', tlsPolicy: 'none' }); // greeting deadline 60 s
    const send = pool.sendmail('a@example.test', 'b@example.test', message(1)).catch((e) => e);
    while (silent.sockets.length === 0) await sleep(5);
    await sleep(20);
    const destroyedAt = performance.now();
    pool.destroy();
    const error = await send;
    expect(error).toBeInstanceOf(SMTPException);
    for (let i = 0; i < 100 && silent.sockets[0]!.closedAt === undefined; i++) await sleep(10);
    expect(silent.sockets[0]!.closedAt).toBeDefined();
    expect(silent.sockets[0]!.closedAt! - destroyedAt).toBeLessThan(LATE_MS); // not the 60 s greeting deadline
    expect(pool.stats().connections.opening).toBe(0);
  });

  it('an already-aborted signal writes nothing: no connection is opened, and an open one carries no command', async () => {
    server = await startFaultServer();
    pool = new SMTPPool({ host: '127.0.0.1', port: server.port, localHostname: 'client.test' });
    const controller = new AbortController();
    controller.abort(new Error('changed my mind'));
    const before = await pool.sendmail('a@example.test', 'b@example.test', message(1), { signal: controller.signal }).catch((e) => e);
    expect(before).toBeInstanceOf(SMTPAbortError);
    expect(before.deliveryStatus).toBe('not-delivered');
    expect(server.stats.connections).toBe(0);
    await pool.sendmail('a@example.test', 'b@example.test', message(2));
    const commands = server.stats.commands;
    const after = await pool.sendmail('a@example.test', 'b@example.test', message(3), undefined, undefined, { signal: controller.signal }).catch((e) => e);
    expect(after).toBeInstanceOf(SMTPAbortError);
    await sleep(20);
    expect(server.stats.commands).toBe(commands);
    const next = await pool.sendmail('a@example.test', 'b@example.test', message(4));
    expect(next.attempts).toBe(1);
    expect(server.stats.connections).toBe(1); // the connection stayed usable
  });
});

describe('issue 11: SMTPPool.sendmail takes the same call-options shape as SMTP.sendmail', () => {
  it('positional (mailOptions, rcptOptions, { signal }) as SMTP.sendmail, or one { mailOptions, rcptOptions, signal }', async () => {
    const lines: string[] = [];
    server = await startFaultServer({ fault: (c) => {
      if (c.verb === 'MAIL' || c.verb === 'RCPT') lines.push(c.line);
      return undefined;
    } });
    pool = new SMTPPool({ host: '127.0.0.1', port: server.port, localHostname: 'client.test' });
    const signal = new AbortController().signal;
    // (the scripted server offers 8BITMIME and SIZE, no RCPT extension)
    await pool.sendmail('a@example.test', 'b@example.test', message(1), ['BODY=8BITMIME'], [], { signal });
    await pool.sendmail('a@example.test', 'b@example.test', message(2), { mailOptions: { body: '8BITMIME' }, signal });
    await pool.sendmail('a@example.test', 'b@example.test', message(3), { body: '8BITMIME' });
    await pool.sendmail('a@example.test', 'b@example.test', message(4), undefined, undefined, { signal });
    expect(lines.filter((l) => l.startsWith('MAIL'))).toEqual([
      expect.stringMatching(/^MAIL FROM:<a@example.test> .*BODY=8BITMIME/),
      expect.stringMatching(/^MAIL FROM:<a@example.test> .*BODY=8BITMIME/),
      expect.stringMatching(/^MAIL FROM:<a@example.test> .*BODY=8BITMIME/),
      expect.stringMatching(/^MAIL FROM:<a@example.test>( SIZE=\d+)?$/),
    ]);
  });

  it('an options object with an unknown key is SMTPInvalidArgumentError, before anything is queued', async () => {
    server = await startFaultServer();
    pool = new SMTPPool({ host: '127.0.0.1', port: server.port, localHostname: 'client.test' });
    const signal = new AbortController().signal;
    // @ts-expect-error a typo'd key
    await expect(pool.sendmail('a@example.test', 'b@example.test', message(1), { sigal: signal })).rejects.toBeInstanceOf(SMTPInvalidArgumentError);
    // @ts-expect-error a mail option in the recipient options' place
    await expect(pool.sendmail('a@example.test', 'b@example.test', message(1), {}, { size: 1 })).rejects.toBeInstanceOf(SMTPInvalidArgumentError);
    // @ts-expect-error mail options where the call options go
    await expect(pool.sendmail('a@example.test', 'b@example.test', message(1), undefined, undefined, { size: 10 })).rejects.toBeInstanceOf(SMTPInvalidArgumentError);
    expect(server.stats.connections).toBe(0);
  });
});
