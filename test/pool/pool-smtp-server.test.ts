// SMTPPool against the npm smtp-server on 127.0.0.1:0.
import { afterEach, describe, expect, it } from 'vitest';
import { SMTPPool, SMTPPoolError, SMTPException, SMTPAbortError, SMTPAuthenticationError } from '../../packages/smtplib/src/index.js';
import { message, sleep, startSmtpServer, type SmtpServerHandle } from './helpers.js';

let server: SmtpServerHandle | undefined;
let pool: SMTPPool | undefined;
afterEach(async () => {
  pool?.destroy();
  pool = undefined;
  await server?.close();
  server = undefined;
});

const base = (port: number) => ({ host: '127.0.0.1', port, localHostname: 'client.test', timeout: 5000 });

describe('SMTPPool with smtp-server', () => {
  it('sends many messages concurrently over at most maxConnections connections', async () => {
    server = await startSmtpServer();
    pool = new SMTPPool({ ...base(server.port), maxConnections: 3 });
    const connects: number[] = [];
    pool.on('connect', (event) => connects.push(event.id));
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => pool!.sendmail('a@example.test', [`r${i}@example.test`], message(i))));
    expect(server.messages).toHaveLength(50);
    expect(server.maxConcurrent).toBeLessThanOrEqual(3);
    expect(connects.length).toBeLessThanOrEqual(3);
    for (const [i, result] of results.entries()) {
      expect(result.accepted).toEqual([`r${i}@example.test`]);
      expect(result.refused.size).toBe(0);
      expect(result.reply.code).toBe(250);
      expect(result.attempts).toBe(1);
      expect(result.timings.totalMs).toBeGreaterThanOrEqual(result.timings.sendMs);
      expect(result.timings.queuedMs).toBeGreaterThanOrEqual(0);
    }
    const ids = new Set(server.messages.map((m) => /X-Soak-Id: (\d+)/.exec(m.body)![1]));
    expect(ids.size).toBe(50);
    const stats = pool.stats();
    expect(stats.sent).toBe(50);
    expect(stats.failed).toBe(0);
    expect(stats.queued).toBe(0);
    expect(stats.inFlight).toBe(0);
    await pool.close();
    await sleep(50);
    expect(pool.stats().connections.open).toBe(0);
  });

  it('recycles a connection after maxMessagesPerConnection', async () => {
    server = await startSmtpServer();
    pool = new SMTPPool({ ...base(server.port), maxConnections: 1, maxMessagesPerConnection: 5 });
    const reasons: string[] = [];
    pool.on('disconnect', (event) => reasons.push(event.reason));
    await Promise.all(Array.from({ length: 20 }, (_, i) => pool!.sendmail('a@example.test', 'b@example.test', message(i))));
    expect(server.messages).toHaveLength(20);
    // Each connection draws its limit from 80-100 % of 5: 4 or 5 messages.
    const perConnection = new Map<number, number>();
    for (const m of server.messages) perConnection.set(m.connection, (perConnection.get(m.connection) ?? 0) + 1);
    const counts = [...perConnection.values()];
    expect(counts.slice(0, -1).every((n) => n === 4 || n === 5)).toBe(true);
    expect(counts.at(-1)).toBeLessThanOrEqual(5);
    expect(server.connections).toBeGreaterThanOrEqual(4);
    expect(server.connections).toBeLessThanOrEqual(5);
    await pool.close();
    expect(reasons.filter((r) => r === 'max-messages').length).toBeGreaterThanOrEqual(3);
  });

  it('sendMessage() takes the envelope from the headers and removes Bcc', async () => {
    server = await startSmtpServer();
    pool = new SMTPPool(base(server.port));
    const result = await pool.sendMessage('From: Ann <ann@example.test>\r\nTo: bob@example.test\r\nBcc: hidden@example.test\r\nSubject: hi\r\n\r\nhello\r\n');
    expect(result.accepted).toEqual(['bob@example.test', 'hidden@example.test']);
    expect(server.messages[0]!.from).toBe('ann@example.test');
    expect(server.messages[0]!.to).toEqual(['bob@example.test', 'hidden@example.test']);
    expect(server.messages[0]!.body).not.toMatch(/hidden/);
  });

  it('logs in on every connection; bad credentials fail every queued send once, without retries', async () => {
    server = await startSmtpServer({ users: { user: 'secret' } });
    pool = new SMTPPool({ ...base(server.port), maxConnections: 2, auth: { user: 'user', pass: 'secret' } });
    await Promise.all([1, 2, 3].map((i) => pool!.sendmail('a@example.test', 'b@example.test', message(i))));
    expect(server.messages).toHaveLength(3);
    await pool.close();

    const before = server.authAttempts;
    pool = new SMTPPool({ ...base(server.port), maxConnections: 1, auth: { user: 'user', pass: 'wrong' }, retry: { minDelayMs: 1, maxDelayMs: 5 } });
    const outcomes = await Promise.allSettled([1, 2, 3].map((i) => pool!.sendmail('a@example.test', 'b@example.test', message(i))));
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      const error = (outcome as PromiseRejectedResult).reason;
      expect(error).toBeInstanceOf(SMTPAuthenticationError);
      expect(error.attempts).toBe(0); // the message never reached a server
      expect(error.connectAttempts).toBe(1);
    }
    expect(server.authAttempts - before).toBe(1);
  });

  it('applies the rate limit across the whole pool', async () => {
    // Bounds that hold however loaded the machine is (a slow machine only
    // delays sends, which the bucket never refuses): a burst of 5, then one
    // token per 40 ms, so the k-th send cannot finish before (k - 5) × 40 ms
    // after the pool (and its full bucket) was created.
    server = await startSmtpServer();
    const created = performance.now();
    pool = new SMTPPool({ ...base(server.port), maxConnections: 3, rateLimit: { messages: 5, intervalMs: 200 } });
    const done: number[] = [];
    await Promise.all(Array.from({ length: 15 }, (_, i) => pool!.sendmail('a@example.test', 'b@example.test', message(i)).then(() => done.push(performance.now() - created))));
    done.sort((a, b) => a - b);
    done.forEach((t, i) => expect(t, `send ${i + 1} done at ${t.toFixed(0)} ms`).toBeGreaterThanOrEqual((i + 1 - 5) * 40 - 2));
    expect(done[14]).toBeGreaterThanOrEqual(400 - 2);
    // 15 sends for a bucket of 5: some had to wait (each counted once), never more than those beyond the burst.
    expect(pool.stats().rateLimitWaits).toBeGreaterThanOrEqual(1);
    expect(pool.stats().rateLimitWaits).toBeLessThanOrEqual(10);
    expect(server.messages).toHaveLength(15);
  });

  it('maxQueued: sends beyond it reject at once with ERR_SMTP_POOL_FULL', async () => {
    server = await startSmtpServer();
    pool = new SMTPPool({ ...base(server.port), maxConnections: 1, maxQueued: 3 });
    const sends = Array.from({ length: 6 }, (_, i) => pool!.sendmail('a@example.test', 'b@example.test', message(i)));
    const outcomes = await Promise.allSettled(sends);
    const rejected = outcomes.filter((o) => o.status === 'rejected').map((o) => (o as PromiseRejectedResult).reason);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(3);
    expect(rejected).toHaveLength(3);
    for (const error of rejected) {
      expect(error).toBeInstanceOf(SMTPPoolError);
      expect(error).toBeInstanceOf(SMTPException);
      expect(error.code).toBe('ERR_SMTP_POOL_FULL');
      expect(error.deliveryStatus).toBe('not-delivered');
    }
    expect(server.messages).toHaveLength(3);
  });

  it('an aborted queued send rejects and is never sent', async () => {
    server = await startSmtpServer();
    pool = new SMTPPool({ ...base(server.port), maxConnections: 1, maxInFlightPerConnection: 1 });
    const controller = new AbortController();
    const first = pool.sendmail('a@example.test', 'b@example.test', message(1));
    const second = pool.sendmail('a@example.test', 'b@example.test', message(2), { signal: controller.signal });
    controller.abort(new Error('changed my mind'));
    await expect(second).rejects.toBeInstanceOf(SMTPAbortError);
    await expect(second).rejects.toMatchObject({ deliveryStatus: 'not-delivered' });
    await first;
    await pool.close();
    expect(server.messages.map((m) => /X-Soak-Id: (\d+)/.exec(m.body)![1])).toEqual(['1']);
  });

  it('close() finishes what is queued, QUITs, then refuses new sends', async () => {
    server = await startSmtpServer();
    pool = new SMTPPool({ ...base(server.port), maxConnections: 2 });
    const sends = Array.from({ length: 10 }, (_, i) => pool!.sendmail('a@example.test', 'b@example.test', message(i)));
    const closed = pool.close();
    await expect(pool.sendmail('a@example.test', 'b@example.test', message(99))).rejects.toMatchObject({ code: 'ERR_SMTP_POOL_CLOSED' });
    await closed;
    const results = await Promise.all(sends);
    expect(results).toHaveLength(10);
    expect(server.messages).toHaveLength(10);
    await sleep(50);
    expect(pool.stats().connections.open).toBe(0);
  });

  it('destroy() fails what is pending', async () => {
    server = await startSmtpServer();
    pool = new SMTPPool({ ...base(server.port), maxConnections: 1, maxInFlightPerConnection: 1 });
    const sends = Array.from({ length: 5 }, (_, i) => pool!.sendmail('a@example.test', 'b@example.test', message(i)));
    await sleep(0);
    pool.destroy(new Error('shutting down'));
    const outcomes = await Promise.allSettled(sends);
    expect(outcomes.every((o) => o.status === 'rejected')).toBe(true);
    expect(outcomes.filter((o) => (o as PromiseRejectedResult).reason.message === 'shutting down').length).toBeGreaterThanOrEqual(4);
    await expect(pool.sendmail('a@example.test', 'b@example.test', message(9))).rejects.toMatchObject({ code: 'ERR_SMTP_POOL_DESTROYED' });
  });

  it('closes idle connections after idleTimeout and retires old ones after maxConnectionAge', async () => {
    server = await startSmtpServer();
    pool = new SMTPPool({ ...base(server.port), idleTimeout: 100 });
    const reasons: string[] = [];
    pool.on('disconnect', (event) => reasons.push(event.reason));
    await pool.sendmail('a@example.test', 'b@example.test', message(1));
    expect(pool.stats().connections.open).toBe(1);
    await sleep(300);
    expect(pool.stats().connections.open).toBe(0);
    expect(reasons).toEqual(['idle']);
    await pool.close();

    pool = new SMTPPool({ ...base(server.port), maxConnectionAge: 100 });
    const before = server.connections;
    await pool.sendmail('a@example.test', 'b@example.test', message(2));
    await pool.sendmail('a@example.test', 'b@example.test', message(3));
    expect(server.connections - before).toBe(1);
    await sleep(150);
    await pool.sendmail('a@example.test', 'b@example.test', message(4));
    expect(server.connections - before).toBe(2);
  });

  it("emits 'connect', 'message' and 'idle'", async () => {
    server = await startSmtpServer({ rcptReply: (a) => (a.startsWith('bad') ? '550 5.1.1 no such user' : undefined) });
    pool = new SMTPPool(base(server.port));
    const events: string[] = [];
    pool.on('connect', () => events.push('connect'));
    pool.on('message', (event) => events.push(`message:${event.status}`));
    const idle = new Promise<void>((resolve) => pool!.once('idle', () => resolve()));
    const ok = await pool.sendmail('a@example.test', ['good@example.test', 'bad@example.test'], message(1));
    expect(ok.accepted).toEqual(['good@example.test']);
    expect(ok.refused.get('bad@example.test')?.code).toBe(550);
    expect(ok.attempts).toBe(1);
    await expect(pool.sendmail('a@example.test', 'bad@example.test', message(2))).rejects.toMatchObject({ name: 'SMTPRecipientsRefused', attempts: 1 });
    await idle;
    expect(events).toEqual(['connect', 'message:sent', 'message:failed']);
  });
});
