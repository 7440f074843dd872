// smtplib's beforeCommit hook (the core change the queue needs): awaited
// after the server took the envelope and before the end of data (the final
// dot, or BDAT LAST) is written; if it throws, the end of data never is.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SMTP, SMTPPool, SMTPDataError } from 'smtplib';
import { startServer, taggedMessage, type FaultServer } from './helpers.js';

/**
 * A minimal ESMTP server with PIPELINING and CHUNKING that logs each command and each message it got
 * (`bodies`: their text). With `holdReplies`, MAIL's and RCPT's replies are held until a BDAT chunk has
 * come: a client that waits for them before writing BDAT (a message not sent whole) then waits for ever.
 */
function chunkingServer(options: { holdReplies?: boolean } = {}): Promise<{ port: number; log: string[]; bodies: string[]; close(): Promise<void> }> {
  const log: string[] = [];
  const bodies: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffer = Buffer.alloc(0);
    let need = 0;
    let held = '';
    const reply = (text: string): void => {
      if (options.holdReplies) held += text;
      else socket.write(text);
    };
    socket.write('220 chunk.test ESMTP\r\n');
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (need > 0) {
          if (buffer.length < need) return;
          log.push(`body ${need}`);
          bodies.push(buffer.subarray(0, need).toString('latin1'));
          buffer = buffer.subarray(need);
          need = 0;
          socket.write(`${held}250 2.0.0 got it\r\n`);
          held = '';
          continue;
        }
        const end = buffer.indexOf('\r\n');
        if (end < 0) return;
        const line = buffer.subarray(0, end).toString('latin1');
        buffer = buffer.subarray(end + 2);
        log.push(line);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') socket.write('250-chunk.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n');
        else if (verb === 'BDAT') need = Number(line.split(' ')[1]);
        else if (verb === 'QUIT') socket.end('221 bye\r\n');
        else if (verb === 'MAIL' || verb === 'RCPT') reply('250 2.0.0 ok\r\n');
        else socket.write('250 2.0.0 ok\r\n');
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: (server.address() as net.AddressInfo).port,
    log,
    bodies,
    close: () => new Promise<void>((done) => { for (const s of sockets) s.destroy(); server.close(() => done()); }),
  })));
}

describe('beforeCommit (smtplib core)', () => {
  let server: FaultServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('DATA: runs after 354 and the body, before the final dot', async () => {
    server = await startServer();
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, tlsPolicy: 'none' });
    const { tag, message } = taggedMessage();
    const seen: number[] = [];
    const result = await smtp.deliver('a@example.test', ['b@example.test'], message, {
      beforeCommit: async () => {
        await new Promise((r) => setTimeout(r, 30));
        seen.push(server!.stats.messages);
      },
    });
    expect(seen).toEqual([0]);
    expect(result.accepted).toEqual(['b@example.test']);
    expect(server.deliveries.get(`${tag} b@example.test`)).toBe(1);
    await smtp.quit();
  });

  it('DATA: when it throws, the final dot is never written and the send fails as not delivered', async () => {
    server = await startServer();
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, tlsPolicy: 'none' });
    const failure = await smtp.deliver('a@example.test', ['b@example.test'], taggedMessage().message, {
      beforeCommit: () => { throw new Error('disk full'); },
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(SMTPDataError);
    expect(failure).toMatchObject({ deliveryStatus: 'not-delivered' });
    expect((failure as Error).message).toMatch(/beforeCommit failed: disk full/);
    await new Promise((r) => setTimeout(r, 50));
    expect(server.stats.messages).toBe(0);
    smtp.close();
  });

  it('BDAT: the message never rides with the envelope; the hook runs before BDAT LAST', async () => {
    const chunk = await chunkingServer();
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: chunk.port, tlsPolicy: 'none' });
    let logAtHook: string[] = [];
    await smtp.deliver('a@example.test', ['b@example.test'], taggedMessage().message, {
      beforeCommit: () => { logAtHook = [...chunk.log]; },
    });
    expect(logAtHook.some((l) => l.startsWith('RCPT'))).toBe(true);
    expect(logAtHook.some((l) => l.startsWith('BDAT'))).toBe(false);
    expect(chunk.log.some((l) => /^BDAT \d+ LAST$/.test(l))).toBe(true);
    // Without the hook the whole message goes with MAIL and RCPT (one round trip).
    chunk.log.length = 0;
    await smtp.deliver('a@example.test', ['b@example.test'], taggedMessage().message);
    expect(chunk.log.slice(0, 3).map((l) => l.split(' ')[0])).toEqual(['MAIL', 'RCPT', 'BDAT']);
    await smtp.quit();
    await chunk.close();
  });

  it('SMTPPool passes it to every attempt, and pipelined sends each run theirs before their own dot', async () => {
    server = await startServer();
    const pool = new SMTPPool({ host: '127.0.0.1', port: server.port, tlsPolicy: 'none', maxConnections: 1, maxInFlightPerConnection: 5 });
    const order: string[] = [];
    const sends = Array.from({ length: 5 }, (_, i) => {
      const { tag, message } = taggedMessage();
      return pool.sendmail('a@example.test', ['b@example.test'], message, {
        beforeCommit: () => { order.push(`${i}:${server!.deliveries.has(`${tag} b@example.test`)}`); },
      });
    });
    await Promise.all(sends);
    await pool.close();
    expect(order.sort()).toEqual(['0:false', '1:false', '2:false', '3:false', '4:false']);
    expect(server.stats.messages).toBe(5);
  });
});

describe('beforeCommitSync (smtplib core)', () => {
  let server: FaultServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('BDAT: a small message still rides whole; the hook runs once, before any of it is written', async () => {
    const chunk = await chunkingServer({ holdReplies: true });
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: chunk.port, tlsPolicy: 'none' });
    const { tag, message } = taggedMessage();
    const logAtHook: string[][] = [];
    const result = await smtp.deliver('a@example.test', ['b@example.test'], message, {
      beforeCommitSync: () => { logAtHook.push([...chunk.log]); },
    });
    expect(result.accepted).toEqual(['b@example.test']);
    expect(logAtHook).toHaveLength(1);
    expect(logAtHook[0]!.some((l) => l.startsWith('MAIL'))).toBe(false);
    // The server answers MAIL and RCPT only once the body is in: the client did not wait for them.
    expect(chunk.log.slice(-4).map((l) => l.split(' ')[0])).toEqual(['MAIL', 'RCPT', 'BDAT', 'body']);
    expect(chunk.bodies.at(-1)).toContain(tag);
    await smtp.quit();
    await chunk.close();
  });

  it('BDAT whole: when it throws, nothing of the message is written, the send is not delivered, the connection goes on', async () => {
    const chunk = await chunkingServer();
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: chunk.port, tlsPolicy: 'none' });
    const failure = await smtp.deliver('a@example.test', ['b@example.test'], taggedMessage().message, {
      beforeCommitSync: () => { throw new Error('claim lost'); },
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(SMTPDataError);
    expect(failure).toMatchObject({ deliveryStatus: 'not-delivered' });
    expect((failure as Error).message).toMatch(/^beforeCommitSync failed: claim lost; the end of data was not written$/);
    expect(chunk.log.some((l) => l.startsWith('MAIL'))).toBe(false);
    const { tag, message } = taggedMessage();
    await smtp.deliver('a@example.test', ['b@example.test'], message);
    expect(chunk.bodies).toHaveLength(1);
    expect(chunk.bodies[0]).toContain(tag);
    await smtp.quit();
    await chunk.close();
  });

  it('DATA: runs after the body, just before the final dot; when it throws the dot is never written', async () => {
    server = await startServer();
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, tlsPolicy: 'none' });
    const { tag, message } = taggedMessage();
    const seen: number[] = [];
    const order: string[] = [];
    await smtp.deliver('a@example.test', ['b@example.test'], message, {
      beforeCommit: () => { order.push('beforeCommit'); },
      beforeCommitSync: () => { order.push('beforeCommitSync'); seen.push(server!.stats.messages); },
    });
    expect(order).toEqual(['beforeCommit', 'beforeCommitSync']);
    expect(seen).toEqual([0]);
    expect(server.deliveries.get(`${tag} b@example.test`)).toBe(1);
    const failure = await smtp.deliver('a@example.test', ['b@example.test'], taggedMessage().message, {
      beforeCommitSync: () => { throw new Error('disk full'); },
    }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ deliveryStatus: 'not-delivered' });
    expect((failure as Error).message).toMatch(/beforeCommitSync failed: disk full; the end of data was not written and the connection was closed/);
    await new Promise((r) => setTimeout(r, 50));
    expect(server.stats.messages).toBe(1);
    smtp.close();
  });

  it('SMTPPool: messages chained whole on one connection each run theirs before any of their bytes leave', async () => {
    const chunk = await chunkingServer();
    const pool = new SMTPPool({ host: '127.0.0.1', port: chunk.port, tlsPolicy: 'none', maxConnections: 1, maxInFlightPerConnection: 5 });
    const early: string[] = [];
    const calls: string[] = [];
    const sends = Array.from({ length: 5 }, () => {
      const { tag, message } = taggedMessage();
      return pool.sendmail('a@example.test', ['b@example.test'], message, {
        beforeCommitSync: () => {
          calls.push(tag);
          if (chunk.bodies.some((b) => b.includes(tag))) early.push(tag);
        },
      });
    });
    await Promise.all(sends);
    await pool.close();
    expect(calls).toHaveLength(5);
    expect(early).toEqual([]);
    expect(chunk.bodies).toHaveLength(5);
    await chunk.close();
  });

  it('SMTPPool: a chained message whose hook throws is never written (not delivered); the messages around it are', async () => {
    const chunk = await chunkingServer();
    const pool = new SMTPPool({ host: '127.0.0.1', port: chunk.port, tlsPolicy: 'none', maxConnections: 1, maxInFlightPerConnection: 5 });
    const tags: string[] = [];
    const sends = Array.from({ length: 5 }, (_, i) => {
      const { tag, message } = taggedMessage();
      tags.push(tag);
      return pool.sendmail('a@example.test', ['b@example.test'], message, {
        beforeCommitSync: () => {
          if (i === 2) throw new Error('claim lost');
        },
      }).then(() => 'sent', (error: { deliveryStatus?: string }) => error.deliveryStatus);
    });
    const outcomes = await Promise.all(sends);
    await pool.close();
    expect(outcomes).toEqual(['sent', 'sent', 'not-delivered', 'sent', 'sent']);
    expect(chunk.bodies).toHaveLength(4);
    expect(chunk.bodies.some((b) => b.includes(tags[2]!))).toBe(false);
    await chunk.close();
  });

  it('is checked as a send option by SMTPPool.sendmail (a misspelt key is refused)', async () => {
    const pool = new SMTPPool({ host: '127.0.0.1', port: 9, tlsPolicy: 'none' });
    await expect(pool.sendmail('a@example.test', ['b@example.test'], 'x', { beforeCommitSync: () => undefined, beforeComitSync: () => undefined } as never)).rejects.toThrow(/beforeComitSync/);
    await pool.close();
  });
});
