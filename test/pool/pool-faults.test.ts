// SMTPPool against a scripted server: 421, 451, 5xx, drops at chosen points.
// Each test checks the client's outcome against what the server delivered.
import { afterEach, describe, expect, it } from 'vitest';
import { SMTPPool, SMTPDataError, SMTPSenderRefused, SMTPConnectError, SMTPServerDisconnected } from '../../packages/smtplib/src/index.js';
import { message, sleep, startFaultServer, type FaultContext, type FaultDecision, type FaultServerHandle } from './helpers.js';
import net from 'node:net';

let server: FaultServerHandle | undefined;
let pool: SMTPPool | undefined;
afterEach(async () => {
  pool?.destroy();
  pool = undefined;
  await server?.close();
  server = undefined;
});

const options = (port: number) => ({
  host: '127.0.0.1',
  port,
  localHostname: 'client.test',
  timeout: 5000,
  retry: { attempts: 3, minDelayMs: 1, maxDelayMs: 10 },
});

/** Misbehaves once, at the first step matching `when`. */
function once(when: (ctx: FaultContext) => boolean, decision: FaultDecision) {
  let done = false;
  return (ctx: FaultContext) => {
    if (done || !when(ctx)) return undefined;
    done = true;
    return decision;
  };
}

const delivered = (s: FaultServerHandle, id: string | number, rcpt = 'b@example.test') => s.deliveries.get(`${id} ${rcpt}`) ?? 0;

describe('SMTPPool delivery semantics', () => {
  it('421 at MAIL: retried on a new connection, delivered once', async () => {
    server = await startFaultServer({ fault: once((c) => c.verb === 'MAIL', { reply: '421 4.3.2 shutting down' }) });
    pool = new SMTPPool(options(server.port));
    const result = await pool.sendmail('a@example.test', 'b@example.test', message(1));
    expect(result.attempts).toBe(2);
    expect(result.accepted).toEqual(['b@example.test']);
    expect(delivered(server, 1)).toBe(1);
    expect(server.stats.connections).toBe(2);
    expect(pool.stats().retried).toBe(1);
  });

  it('451 at the end of data: retried, delivered once', async () => {
    server = await startFaultServer({ fault: once((c) => c.stage === 'end-of-data', { reply: '451 4.3.0 try again' }) });
    pool = new SMTPPool(options(server.port));
    const result = await pool.sendmail('a@example.test', 'b@example.test', message(2));
    expect(result.attempts).toBe(2);
    expect(delivered(server, 2)).toBe(1);
    expect(server.stats.connections).toBe(1); // a 451 leaves the connection usable
  });

  it('a permanent 5xx is never retried', async () => {
    server = await startFaultServer({ fault: once((c) => c.stage === 'end-of-data', { reply: '554 5.6.0 content rejected' }) });
    pool = new SMTPPool(options(server.port));
    const error = await pool.sendmail('a@example.test', 'b@example.test', message(3)).catch((e) => e);
    expect(error).toBeInstanceOf(SMTPDataError);
    expect(error.smtpCode).toBe(554);
    expect(error.attempts).toBe(1);
    expect(error.deliveryStatus).toBe('not-delivered');
    expect(delivered(server, 3)).toBe(0);
    expect(pool.stats().retried).toBe(0);
  });

  it("a drop after the end of data is 'unknown' and not retried (the server did deliver it)", async () => {
    server = await startFaultServer({ fault: once((c) => c.stage === 'end-of-data', { drop: 'after-delivery' }) });
    pool = new SMTPPool(options(server.port));
    const error = await pool.sendmail('a@example.test', 'b@example.test', message(4)).catch((e) => e);
    expect(error).toBeInstanceOf(SMTPServerDisconnected);
    expect(error.deliveryStatus).toBe('unknown');
    expect(error.attempts).toBe(1);
    expect(delivered(server, 4)).toBe(1);
  });

  it("retryUnknown: true retries it, and the message is then delivered twice (the documented risk)", async () => {
    server = await startFaultServer({ fault: once((c) => c.stage === 'end-of-data', { drop: 'after-delivery' }) });
    pool = new SMTPPool({ ...options(server.port), retry: { attempts: 3, minDelayMs: 1, maxDelayMs: 10, retryUnknown: true } });
    const result = await pool.sendmail('a@example.test', 'b@example.test', message(5));
    expect(result.attempts).toBe(2);
    expect(delivered(server, 5)).toBe(2);
  });

  it('a drop in the middle of the data is retried (certainly not delivered); a stream is replayed through a function', async () => {
    server = await startFaultServer({ fault: once((c) => c.stage === 'data', { drop: true }) });
    pool = new SMTPPool(options(server.port));
    let streams = 0;
    // The end of data is written only after the server has had time to drop.
    const body = async function* () {
      streams++;
      yield 'From: a@example.test\r\nX-Soak-Id: 6\r\nSubject: streamed\r\n\r\nline one\r\n';
      await sleep(40);
      yield 'line two\r\n';
    };
    const result = await pool.sendmail('a@example.test', 'b@example.test', () => body());
    expect(result.attempts).toBe(2);
    expect(streams).toBe(2);
    expect(delivered(server, 6)).toBe(1);
  });

  it('a stream given directly is sent at most once (it cannot be replayed)', async () => {
    server = await startFaultServer({ fault: once((c) => c.stage === 'data', { drop: true }) });
    pool = new SMTPPool(options(server.port));
    const body = async function* () {
      yield 'From: a@example.test\r\nX-Soak-Id: 16\r\n\r\nline one\r\n';
      await sleep(40);
      yield 'line two\r\n';
    };
    const error = await pool.sendmail('a@example.test', 'b@example.test', body()).catch((e) => e);
    expect(error).toBeInstanceOf(SMTPServerDisconnected);
    expect(error.deliveryStatus).toBe('not-delivered');
    expect(error.attempts).toBe(1);
    expect(delivered(server, 16)).toBe(0);
  });

  it('4xx at RCPT: those recipients alone are retried, and the outcomes merged', async () => {
    const tried = new Map<string, number>();
    server = await startFaultServer({
      rcptReply: (rcpt) => {
        const n = (tried.get(rcpt) ?? 0) + 1;
        tried.set(rcpt, n);
        if (rcpt === 'later@example.test' && n === 1) return '451 4.2.1 mailbox busy';
        if (rcpt === 'never@example.test') return '550 5.1.1 no such user';
        if (rcpt === 'busy@example.test') return '452 4.2.2 over quota';
        return undefined;
      },
    });
    pool = new SMTPPool(options(server.port));
    const to = ['now@example.test', 'later@example.test', 'never@example.test', 'busy@example.test'];
    const result = await pool.sendmail('a@example.test', to, message(7));
    expect(result.accepted.sort()).toEqual(['later@example.test', 'now@example.test']);
    expect(result.refused.get('never@example.test')?.code).toBe(550);
    expect(result.refused.get('busy@example.test')?.code).toBe(452); // out of attempts
    expect(result.attempts).toBe(3);
    expect(tried.get('now@example.test')).toBe(1); // never sent twice
    expect(tried.get('never@example.test')).toBe(1); // permanent: not retried
    expect(tried.get('busy@example.test')).toBe(3);
    expect(delivered(server, 7, 'now@example.test')).toBe(1);
    expect(delivered(server, 7, 'later@example.test')).toBe(1);
    expect(delivered(server, 7, 'busy@example.test')).toBe(0);
  });

  it('a 421 on a connection carrying several pipelined sends: the others are retried and each is delivered once', async () => {
    let mails = 0;
    server = await startFaultServer({ fault: (c) => (c.verb === 'MAIL' && ++mails === 3 ? { reply: '421 4.3.2 going away' } : undefined) });
    pool = new SMTPPool({ ...options(server.port), maxConnections: 1 });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => pool!.sendmail('a@example.test', 'b@example.test', message(`p${i}`))));
    for (let i = 0; i < 8; i++) expect(delivered(server, `p${i}`)).toBe(1);
    expect(results.some((r) => r.attempts === 2)).toBe(true);
    expect(server.stats.connections).toBe(2);
  });

  it("a server's unsolicited 421 while idle is absorbed: the next send goes on a new connection", async () => {
    server = await startFaultServer();
    pool = new SMTPPool(options(server.port));
    const reasons: string[] = [];
    pool.on('disconnect', (event) => reasons.push(event.reason));
    await pool.sendmail('a@example.test', 'b@example.test', message(8));
    server.sayToAll('421 4.3.2 idle too long');
    await sleep(50);
    expect(reasons).toEqual(['lost']);
    const result = await pool.sendmail('a@example.test', 'b@example.test', message(9));
    expect(result.attempts).toBe(1);
    expect(server.stats.connections).toBe(2);
  });

  it('an idle connection gets NOOP before reuse; a failed NOOP costs no attempt', async () => {
    server = await startFaultServer({ fault: once((c) => c.verb === 'NOOP', { reply: '421 4.3.2 bye' }) });
    pool = new SMTPPool({ ...options(server.port), noopAfterIdleMs: 30 });
    await pool.sendmail('a@example.test', 'b@example.test', message(10));
    await pool.sendmail('a@example.test', 'b@example.test', message(11)); // reused at once: no NOOP
    expect(server.stats.connections).toBe(1);
    await sleep(60);
    const result = await pool.sendmail('a@example.test', 'b@example.test', message(12));
    expect(result.attempts).toBe(1);
    expect(server.stats.connections).toBe(2);
    expect(delivered(server, 12)).toBe(1);
  });

  it('a crash of the server under load: every send settles once, nothing is lost or doubled', async () => {
    server = await startFaultServer({ replyDelayMs: 2 });
    pool = new SMTPPool({ ...options(server.port), maxConnections: 3, retry: { attempts: 5, minDelayMs: 1, maxDelayMs: 10 } });
    const sends = Array.from({ length: 60 }, (_, i) => pool!.sendmail('a@example.test', 'b@example.test', message(`c${i}`)).then(
      (r) => ({ ok: true as const, r }),
      (e) => ({ ok: false as const, e }),
    ));
    await sleep(20);
    server.dropAll();
    const outcomes = await Promise.all(sends);
    for (const [i, outcome] of outcomes.entries()) {
      const n = delivered(server, `c${i}`);
      if (outcome.ok) expect(n).toBe(1);
      else if (outcome.e.deliveryStatus === 'unknown') expect(n).toBeLessThanOrEqual(1);
      else expect(n).toBe(0);
    }
    expect(outcomes.filter((o) => o.ok).length).toBeGreaterThan(50);
  });

  it('gives up after retry.attempts with the last error and its attempts', async () => {
    server = await startFaultServer({ fault: (c) => (c.verb === 'MAIL' ? { reply: '451 4.3.0 greylisted' } : undefined) });
    pool = new SMTPPool(options(server.port));
    const error = await pool.sendmail('a@example.test', 'b@example.test', message(13)).catch((e) => e);
    expect(error).toBeInstanceOf(SMTPSenderRefused);
    expect(error.smtpCode).toBe(451);
    expect(error.attempts).toBe(3);
    expect(pool.stats()).toMatchObject({ failed: 1, retried: 2 });
  });

  it("connection refused: retried connectAttempts rounds with backoff, then rejected; 'error' is emitted only when listened to", async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    pool = new SMTPPool(options(port)); // no 'error' listener: must not throw
    const error = await pool.sendmail('a@example.test', 'b@example.test', message(14)).catch((e) => e);
    expect(error).toBeInstanceOf(SMTPConnectError);
    expect(error.attempts).toBe(0); // never reached a server
    expect(error.connectAttempts).toBe(3);
    expect(pool.stats().connectFailures).toBe(3);
    pool.destroy();

    pool = new SMTPPool({ ...options(port), connectAttempts: 1 });
    const seen: Error[] = [];
    pool.on('error', (e) => seen.push(e));
    await expect(pool.sendmail('a@example.test', 'b@example.test', message(15))).rejects.toBeInstanceOf(SMTPConnectError);
    expect(seen).toHaveLength(1);
  });

  it('pipelining: a connection carrying several sends needs about one round trip per message', async () => {
    // Counted, not timed (the machine may be loaded): the server answers in
    // batches (every reply it owes after 15 ms, one write), so each batch is
    // a round trip as the client sees it.
    const rtt = 15;
    server = await startFaultServer({ replyDelayMs: rtt });
    const roundTrips = async (maxInFlightPerConnection: number) => {
      const p = new SMTPPool({ ...options(server!.port), chunking: false, maxConnections: 1, maxInFlightPerConnection });
      await p.sendmail('a@example.test', 'b@example.test', message('warm'));
      const before = server!.stats.replyBatches;
      const started = performance.now();
      await Promise.all(Array.from({ length: 20 }, (_, i) => p.sendmail('a@example.test', 'b@example.test', message(`t${maxInFlightPerConnection}-${i}`))));
      const elapsed = performance.now() - started;
      const batches = server!.stats.replyBatches - before;
      await p.close();
      return { batches, elapsed };
    };
    const serial = await roundTrips(1);
    const pipelined = await roundTrips(10);
    console.log(`20 messages, one connection: one in flight ${serial.batches} round trips (${serial.elapsed.toFixed(0)} ms), ten in flight ${pipelined.batches} (${pipelined.elapsed.toFixed(0)} ms)`);
    // One in flight: MAIL+RCPT+DATA in one round trip, then the data: 2 per message.
    expect(serial.batches).toBeGreaterThanOrEqual(40);
    // Ten in flight: the next envelope rides with the previous end of data, so about one per message.
    expect(pipelined.batches).toBeLessThanOrEqual(20 * 1.25);
    for (let i = 0; i < 20; i++) expect(delivered(server, `t10-${i}`)).toBe(1);
  });
});
