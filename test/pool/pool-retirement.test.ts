// Issue 18, pool retirement: staggered limits, the replacement opened before
// the QUIT, and reuse bounded by time (Postfix's smtp_connection_reuse_time_limit)
// rather than by count by default.
import { afterEach, describe, expect, it } from 'vitest';
import { SMTPInvalidArgumentError, SMTPPool } from '../../packages/smtplib/src/index.js';
import { message, sleep, startFaultServer, startSmtpServer, type FaultServerHandle, type SmtpServerHandle } from './helpers.js';

let pool: SMTPPool | undefined;
let server: FaultServerHandle | SmtpServerHandle | undefined;
afterEach(async () => {
  pool?.destroy();
  pool = undefined;
  await server?.close();
  server = undefined;
});

const base = (port: number) => ({ host: '127.0.0.1', port, localHostname: 'client.test', timeout: 5000 });

describe('issue 18: pool retirement', () => {
  it('opens the replacement before the QUIT: the next connection is greeted before the retiring one says QUIT', async () => {
    const timeline: string[] = [];
    const fault = await startFaultServer({
      replyDelayMs: 5,
      fault: (c) => {
        if (c.stage === 'greeting') timeline.push(`open ${c.connection.id}`);
        if (c.verb === 'QUIT') timeline.push(`quit ${c.connection.id}`);
        return undefined;
      },
    });
    server = fault;
    pool = new SMTPPool({ ...base(fault.port), maxConnections: 1, maxMessagesPerConnection: 10 });
    let open = 0;
    let maxOpen = 0;
    pool.on('connect', () => (maxOpen = Math.max(maxOpen, ++open)));
    pool.on('disconnect', () => open--);
    await Promise.all(Array.from({ length: 40 }, (_, i) => pool!.sendmail('a@example.test', 'b@example.test', message(i))));
    await pool.close();
    const connections = fault.stats.connections;
    expect(connections).toBeGreaterThanOrEqual(4);
    for (let id = 1; id < connections; id++) {
      expect(timeline.indexOf(`open ${id + 1}`), timeline.join(', ')).toBeLessThan(timeline.indexOf(`quit ${id}`));
    }
    // Sockets stay below 2 × maxConnections: the replacement and the retiring one.
    expect(maxOpen).toBeLessThanOrEqual(2);
  });

  it('staggers retirement: connections opened together draw different limits, so they do not retire together', async () => {
    const smtp = await startSmtpServer();
    server = smtp;
    pool = new SMTPPool({ ...base(smtp.port), maxConnections: 4, maxMessagesPerConnection: 100, maxInFlightPerConnection: 1 });
    await Promise.all(Array.from({ length: 600 }, (_, i) => pool!.sendmail('a@example.test', 'b@example.test', message(i))));
    const perConnection = new Map<number, number>();
    for (const m of smtp.messages) perConnection.set(m.connection, (perConnection.get(m.connection) ?? 0) + 1);
    const firstFour = [1, 2, 3, 4].map((id) => perConnection.get(id) ?? 0);
    // Each limit is drawn from 80..100 (21 values): four equal draws have a chance of 1 in 9,261.
    expect(new Set(firstFour).size).toBeGreaterThan(1);
    for (const n of firstFour) {
      expect(n).toBeGreaterThanOrEqual(80);
      expect(n).toBeLessThanOrEqual(100);
    }
  });

  it('reuse is bounded by time by default, not by count: 150 messages go over one connection', async () => {
    const smtp = await startSmtpServer();
    server = smtp;
    pool = new SMTPPool({ ...base(smtp.port), maxConnections: 1 });
    for (let i = 0; i < 150; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => pool!.sendmail('a@example.test', 'b@example.test', message(i + j))));
    }
    expect(smtp.messages).toHaveLength(150);
    expect(smtp.connections).toBe(1);
  });

  it('maxConnectionAge retires a connection after its current sends (staggered), connectionTTL is its old name', async () => {
    const smtp = await startSmtpServer();
    server = smtp;
    pool = new SMTPPool({ ...base(smtp.port), maxConnections: 1, maxConnectionAge: 150 });
    const reasons: string[] = [];
    pool.on('disconnect', (event) => reasons.push(event.reason));
    await pool.sendmail('a@example.test', 'b@example.test', message(1));
    await sleep(60);
    await pool.sendmail('a@example.test', 'b@example.test', message(2)); // 60 ms < 120 ms (80 % of 150)
    expect(smtp.connections).toBe(1);
    await sleep(140);
    await pool.sendmail('a@example.test', 'b@example.test', message(3)); // 200 ms > 150 ms
    expect(smtp.connections).toBe(2);
    await sleep(20);
    expect(reasons).toEqual(['ttl']);
    expect(() => new SMTPPool({ ...base(smtp.port), maxConnectionAge: 1000, connectionTTL: 2000 })).toThrow(SMTPInvalidArgumentError);
  });
});
