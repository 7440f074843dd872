// Section H: connection lifecycle, desync, 421, timeouts. Short timeouts
// (300 ms) make every deadline observable; each test states the bound.

import { afterEach, describe, expect, it } from 'vitest';
import tls from 'node:tls';
import { Readable } from 'node:stream';
import { SMTP, SMTPConnectError, SMTPServerDisconnected, SMTPTimeoutError } from 'smtplib';
import { testPki } from '../support/certs.js';
import { clientOptions, esmtp, hostileServer, rejection, shape, sleep, type HostileServer, type Peer } from './kit.js';
import { LATE_MS } from '../support/timing.js';

let server: HostileServer | undefined;
let client: SMTP | undefined;
afterEach(async () => {
  client?.close();
  client = undefined;
  await server?.close();
  server = undefined;
});

const T = 300;
const MSG = 'Subject: t\r\n\r\nhello\r\n';
const DISCONNECTED = { name: 'SMTPServerDisconnected', code: 'ERR_SMTP_DISCONNECTED' };

/**
 * Times a call from before it starts: the clock must start before the client
 * arms its deadline, or a process descheduled between the two (a loaded CI
 * machine) measures less than the deadline that really elapsed.
 */
async function timed<T>(call: () => Promise<T>): Promise<{ ms: number; error: Error & Record<string, unknown> }> {
  const start = performance.now();
  const error = await rejection(call());
  return { ms: performance.now() - start, error };
}

/** The connection is dead: the peer saw the close and a new call fails without writing. */
async function dead(smtp: SMTP, peer: Peer): Promise<void> {
  expect(smtp.isConnected).toBe(false);
  expect(await peer.waitClosed(2000)).toBe(true);
  const before = peer.all.length;
  expect(shape(await rejection(smtp.noop()))).toMatchObject(DISCONNECTED);
  expect(shape(await rejection(smtp.sendmail('a@x.test', ['b@y.test'], MSG)))).toMatchObject(DISCONNECTED);
  expect(peer.all.length).toBe(before);
}

describe('H. connection lifecycle, desync, 421, timeouts', () => {
  it('H1 a server that never greets: greeting timeout, typed error, socket destroyed', async () => {
    server = await hostileServer(async (peer) => { await peer.waitClosed(5000); });
    const { ms, error } = await timed(() => SMTP.connect(clientOptions(server!, { timeout: T })));
    expect(error).toBeInstanceOf(SMTPTimeoutError);
    expect(shape(error)).toMatchObject({ name: 'SMTPTimeoutError', code: 'ERR_SMTP_TIMEOUT', phase: 'greeting', timeout: T });
    expect(ms).toBeGreaterThanOrEqual(T - 5);
    expect(ms).toBeLessThan(T + LATE_MS);
    const peer = await server.peer();
    expect(await peer.waitClosed(1000)).toBe(true);
    expect(peer.all.length).toBe(0);
    // The greeting deadline is configurable on its own.
    const t2 = await timed(() => SMTP.connect(clientOptions(server!, { timeout: undefined, timeouts: { greeting: 150 } })));
    expect(shape(t2.error.cause)).toMatchObject({ phase: 'greeting', timeout: 150 });
    expect(t2.ms).toBeLessThan(150 + LATE_MS);
  });

  it('H2 a slow drip cannot extend a deadline: greeting, a reply, and a 300-line EHLO all end at the absolute deadline', async () => {
    // Greeting, one byte every 50 ms (an idle timer would never fire).
    server = await hostileServer((peer) => peer.drip('220 mx.test ESMTP slow greeting\r\n', 50));
    let r = await timed(() => SMTP.connect(clientOptions(server!, { timeout: T })));
    expect(shape(r.error.cause)).toMatchObject({ name: 'SMTPTimeoutError', phase: 'greeting' });
    expect(r.ms).toBeLessThan(T + LATE_MS);
    await server.close();

    // NOOP's "250 OK" one byte every 100 ms.
    server = await hostileServer(esmtp({ on: async (line, peer) => (line === 'NOOP' ? (await peer.drip('250 2.0.0 OK\r\n', 100), '') : undefined) }));
    client = await SMTP.connect(clientOptions(server, { timeout: T }));
    r = await timed(() => client!.noop());
    expect(r.error).toBeInstanceOf(SMTPTimeoutError);
    expect(shape(r.error)).toMatchObject({ name: 'SMTPTimeoutError', code: 'ERR_SMTP_TIMEOUT', phase: 'command', timeout: T });
    expect(r.ms).toBeGreaterThanOrEqual(T - 5);
    expect(r.ms).toBeLessThan(T + LATE_MS);
    await dead(client, await server.peer());
    await server.close();

    // A 300-line EHLO, one line every 20 ms (6 s in all).
    server = await hostileServer(esmtp({
      on: async (line, peer) => {
        if (!line.startsWith('EHLO')) return undefined;
        for (let i = 0; i < 300 && !peer.ended; i++) { await peer.send(`250-X-${i}\r\n`); await sleep(20); }
        return '250 done\r\n';
      },
    }));
    client = await SMTP.connect(clientOptions(server, { timeout: T }));
    r = await timed(() => client!.ehlo());
    expect(shape(r.error)).toMatchObject({ name: 'SMTPTimeoutError', phase: 'command' });
    expect(r.ms).toBeLessThan(T + LATE_MS);
    expect(client.isConnected).toBe(false);
  });

  it('H3 an unsolicited reply is never paired with the next command: fail closed; a lone unsolicited 421 closes', async () => {
    // In the greeting's segment: the client has not written anything and never will.
    server = await hostileServer(async (peer) => { await peer.send('220 mx.test\r\n250 unsolicited\r\n'); await peer.serveLines(() => '250 ok\r\n'); });
    client = new SMTP(clientOptions(server));
    await client.connect().catch(() => undefined);
    const peer = await server.peer();
    const error = await rejection(client.ehlo());
    expect(shape(error)).toMatchObject(DISCONNECTED);
    expect(shape(error.cause)).toMatchObject({ name: 'SMTPProtocolError', code: 'ERR_SMTP_PROTOCOL' });
    expect(await peer.waitClosed(1000)).toBe(true);
    expect(peer.text).toBe('');
    await server.close();

    // Between commands, after a pause.
    server = await hostileServer(esmtp({
      on: async (line, peer) => {
        if (!line.startsWith('EHLO')) return undefined;
        setTimeout(() => void peer.send('250 stray\r\n'), 100);
        return '250 mx.test\r\n';
      },
    }));
    client = await SMTP.connect(clientOptions(server));
    await client.ehlo();
    await sleep(200);
    const p2 = await server.peer();
    const e2 = await rejection(client.noop());
    expect(shape(e2)).toMatchObject(DISCONNECTED);
    expect(shape(e2.cause)).toMatchObject({ name: 'SMTPProtocolError' });
    expect(p2.text).toBe('EHLO client.test\r\n');
    await server.close();

    // A lone 421 (the server timed us out): closed, not an error to pair.
    server = await hostileServer(esmtp({
      on: async (line, peer) => {
        if (!line.startsWith('EHLO')) return undefined;
        setTimeout(() => void peer.send('421 4.4.2 idle timeout\r\n'), 100);
        return '250 mx.test\r\n';
      },
    }));
    client = await SMTP.connect(clientOptions(server));
    await client.ehlo();
    await sleep(200);
    const e3 = await rejection(client.noop());
    expect(shape(e3)).toMatchObject(DISCONNECTED);
    expect(e3.message).toMatch(/421/);
    await dead(client, await server.peer());
  });

  const GREETINGS: Array<[string, number]> = [
    ['554 5.3.2 No SMTP service here\r\n', 554],
    ['421 4.3.2 busy\r\n', 421],
    ['500 what\r\n', 500],
    ['501 no\r\n', 501],
    ['530 auth first\r\n', 530],
    ['221 bye\r\n', 221],
    ['354 go\r\n', 354],
    ['250 ok\r\n', 250],
    ['554-multi\r\n554 line\r\n', 554],
  ];
  for (const [greeting, code] of GREETINGS) {
    it(`H5 greeting ${JSON.stringify(greeting)}: SMTPConnectError ${code}${code === 554 ? ', QUIT sent' : ', nothing sent'}, socket closed`, async () => {
      server = await hostileServer(async (peer) => { await peer.send(greeting); await peer.serveLines((l) => (l === 'QUIT' ? '221 bye\r\n' : '500 no\r\n')); });
      const error = await rejection(SMTP.connect(clientOptions(server)));
      expect(error).toBeInstanceOf(SMTPConnectError);
      expect(shape(error)).toMatchObject({ name: 'SMTPConnectError', code: 'ERR_SMTP_CONNECT', smtpCode: code });
      const peer = await server.peer();
      expect(await peer.waitClosed(2000)).toBe(true);
      expect(peer.text).toBe(code === 554 ? 'QUIT\r\n' : '');
    });
  }

  it('H5 a multi-line 220 greeting is fine', async () => {
    server = await hostileServer(esmtp({ greeting: '220-mx.test ESMTP\r\n220-policy text\r\n220 ready\r\n' }));
    client = await SMTP.connect(clientOptions(server));
    expect(client.greeting!.lines).toEqual(['mx.test ESMTP', 'policy text', 'ready']);
    expect((await client.sendmail('a@x.test', ['b@y.test'], MSG)).size).toBe(0);
  });

  // 421 as the answer to each step. `run` drives the client to that step and
  // returns the outcome; the expected wire is what the client wrote in all.
  const SMTP_421 = '421 4.4.2 mx.test closing connection\r\n';
  interface Step421 { name: string; pipelining?: boolean; extensions?: string[]; answer: (line: string, state: { rcpt: number }) => boolean; run: (c: SMTP) => Promise<unknown>; wire: string }
  const STEPS: Step421[] = [
    { name: 'EHLO (via sendmail)', answer: (l) => l.startsWith('EHLO'), run: (c) => c.sendmail('a@x.test', ['b@y.test'], MSG), wire: 'EHLO client.test\r\n' },
    { name: 'AUTH', extensions: ['AUTH PLAIN'], answer: (l) => l.startsWith('AUTH'), run: (c) => c.login('u', 'p'), wire: 'EHLO client.test\r\nAUTH PLAIN AHUAcA==\r\n' },
    { name: 'MAIL (lock-step)', pipelining: false, answer: (l) => l.startsWith('MAIL'), run: (c) => c.sendmail('a@x.test', ['b@y.test', 'c@y.test'], MSG), wire: 'EHLO client.test\r\nMAIL FROM:<a@x.test>\r\n' },
    { name: 'MAIL (pipelined)', answer: (l) => l.startsWith('MAIL'), run: (c) => c.sendmail('a@x.test', ['b@y.test', 'c@y.test'], MSG), wire: 'EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n' },
    { name: 'first RCPT (lock-step)', pipelining: false, answer: (l, s) => l.startsWith('RCPT') && ++s.rcpt === 1, run: (c) => c.sendmail('a@x.test', ['b@y.test', 'c@y.test', 'd@y.test'], MSG), wire: 'EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n' },
    { name: 'middle RCPT (lock-step)', pipelining: false, answer: (l, s) => l.startsWith('RCPT') && ++s.rcpt === 2, run: (c) => c.sendmail('a@x.test', ['b@y.test', 'c@y.test', 'd@y.test'], MSG), wire: 'EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\n' },
    { name: 'last RCPT (lock-step)', pipelining: false, answer: (l, s) => l.startsWith('RCPT') && ++s.rcpt === 3, run: (c) => c.sendmail('a@x.test', ['b@y.test', 'c@y.test', 'd@y.test'], MSG), wire: 'EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nRCPT TO:<d@y.test>\r\n' },
    { name: 'middle RCPT (pipelined)', answer: (l, s) => l.startsWith('RCPT') && ++s.rcpt === 2, run: (c) => c.sendmail('a@x.test', ['b@y.test', 'c@y.test', 'd@y.test'], MSG), wire: 'EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nRCPT TO:<d@y.test>\r\nDATA\r\n' },
    { name: 'DATA (lock-step)', pipelining: false, answer: (l) => l === 'DATA', run: (c) => c.sendmail('a@x.test', ['b@y.test'], MSG), wire: 'EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n' },
    { name: 'DATA (pipelined)', answer: (l) => l === 'DATA', run: (c) => c.sendmail('a@x.test', ['b@y.test'], MSG), wire: 'EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n' },
    { name: 'the final dot', answer: (l) => l === '.', run: (c) => c.sendmail('a@x.test', ['b@y.test'], MSG), wire: `EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n${MSG}.\r\n` },
    { name: 'BDAT LAST', extensions: ['PIPELINING', 'CHUNKING'], answer: (l) => l.startsWith('BDAT'), run: (c) => c.sendmail('a@x.test', ['b@y.test'], MSG), wire: `EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nBDAT ${MSG.length} LAST\r\n${MSG}` },
    { name: 'RSET', answer: (l) => l === 'RSET', run: (c) => c.rset(), wire: 'RSET\r\n' },
    { name: 'NOOP', answer: (l) => l === 'NOOP', run: (c) => c.noop(), wire: 'NOOP\r\n' },
    { name: 'VRFY', answer: (l) => l.startsWith('VRFY'), run: (c) => c.verify('x@y.test'), wire: 'EHLO client.test\r\nVRFY x@y.test\r\n' },
  ];
  for (const step of STEPS) {
    it(`H6 421 in reply to ${step.name}: typed 421 outcome, no further commands, socket closed, connection dead`, async () => {
      const state = { rcpt: 0 };
      server = await hostileServer(async (peer) => {
        await peer.send('220 mx.test ESMTP\r\n');
        for (;;) {
          const line = await peer.readLine();
          if (line === undefined) return;
          if (step.answer(line, state)) { await peer.send(SMTP_421); await peer.waitClosed(3000); peer.close(); return; }
          if (line.startsWith('EHLO')) await peer.send(['mx.test', ...(step.extensions ?? ['PIPELINING'])].map((l, i, a) => `250${i === a.length - 1 ? ' ' : '-'}${l}\r\n`).join(''));
          else if (line === 'DATA') { await peer.send('354 go\r\n'); const d = await peer.readData(); if (d && step.answer('.', state)) { await peer.send(SMTP_421); await peer.waitClosed(3000); return; } await peer.send('250 ok\r\n'); }
          else if (line.startsWith('BDAT')) { await peer.readBytes(Number(line.split(' ')[1])); await peer.send('250 ok\r\n'); }
          else await peer.send('250 ok\r\n');
        }
      });
      client = await SMTP.connect(clientOptions(server, { pipelining: step.pipelining ?? true }));
      const outcome = await step.run(client).then((value) => ({ value }), (error: unknown) => ({ error }));
      if ('error' in outcome) {
        const e = outcome.error as Record<string, unknown>;
        // Either the disconnection itself, or a reply error carrying the 421.
        if (e.name === 'SMTPServerDisconnected') expect(String(e.message)).toMatch(/421/);
        else expect(shape(e)).toMatchObject({ smtpCode: 421 });
        if (/MAIL|RCPT|DATA|dot|BDAT|EHLO/.test(step.name)) expect(shape(e)).toMatchObject({ ...DISCONNECTED, deliveryStatus: 'not-delivered' });
      } else {
        // Low-level calls return the reply, as smtplib does.
        expect([...(outcome.value as Iterable<unknown>)][0]).toBe(421);
      }
      const peer = await server.peer();
      await dead(client, peer);
      expect(peer.text).toBe(step.wire);
    });
  }

  it('H6 STARTTLS answered with 421: typed error with code 421, nothing sent after, connection dead', async () => {
    server = await hostileServer(esmtp({ extensions: ['STARTTLS'], on: (l) => (l === 'STARTTLS' ? SMTP_421 : undefined) }));
    client = await SMTP.connect(clientOptions(server, { tls: { ca: testPki().ca } }));
    const error = await rejection(client.starttls());
    expect(shape(error)).toMatchObject({ smtpCode: 421 });
    const peer = await server.peer();
    await dead(client, peer);
    expect(peer.text).toBe('EHLO client.test\r\nSTARTTLS\r\n');
  });

  for (const how of ['FIN', 'RST'] as const) {
    it(`H7 server ${how} after reading 1 kB of body: SMTPServerDisconnected, not-delivered, no unhandled error`, async () => {
      // Larger than the loopback socket buffers, so the end marker cannot have left the client.
      const body = `Subject: big\r\n\r\n${'0123456789abcdef'.repeat(24 * 1024 * 1024 / 16)}\r\n`;
      for (const input of [body, Readable.from(Array.from({ length: 384 }, () => Buffer.from('x'.repeat(64 * 1024) + '\r\n')))]) {
        server = await hostileServer(esmtp({
          on: async (line, peer) => {
            if (line !== 'DATA') return undefined;
            await peer.send('354 go\r\n');
            await peer.readBytes(1024);
            peer.stopReading();
            if (how === 'RST') peer.reset(); else { peer.halfClose(); await sleep(50); peer.close(); }
            return '';
          },
        }));
        client = await SMTP.connect(clientOptions(server, { timeout: 3000 }));
        const { error, ms } = await timed(() => client!.sendmail('a@x.test', ['b@y.test'], input));
        expect(error).toBeInstanceOf(SMTPServerDisconnected);
        expect(shape(error)).toMatchObject({ ...DISCONNECTED, deliveryStatus: 'not-delivered' });
        expect(ms).toBeLessThan(2500);
        expect(client.isConnected).toBe(false);
        client.close();
        await server.close();
      }
      server = undefined;
    });
  }

  for (const how of ['FIN', 'RST'] as const) {
    it(`H8 ${how} after the whole body and ".", before the reply: delivery state unknown`, async () => {
      server = await hostileServer(esmtp({
        onData: async (_data, peer) => {
          if (how === 'RST') peer.reset(); else peer.close();
          return '';
        },
      }));
      client = await SMTP.connect(clientOptions(server));
      const error = await rejection(client.sendmail('a@x.test', ['b@y.test'], MSG));
      expect(error).toBeInstanceOf(SMTPServerDisconnected);
      expect(shape(error)).toMatchObject({ ...DISCONNECTED, deliveryStatus: 'unknown' });
      expect(error.message).toMatch(/may have been delivered/);
      const peer = await server.peer();
      await dead(client, peer);
      // No automatic retry: one MAIL on the wire.
      expect(peer.text.match(/MAIL FROM/g)!.length).toBe(1);
    });
  }

  it('H9 a server that stops reading during DATA: the write deadline fires, not-delivered, connection destroyed', async () => {
    const big = `Subject: big\r\n\r\n${'z'.repeat(1000)}\r\n`.repeat(16 * 1024); // ~16 MB
    for (const input of [() => big, () => Readable.from((function* () { for (let i = 0; i < 256; i++) yield Buffer.from(`${'w'.repeat(65534)}\r\n`); })())]) {
      server = await hostileServer(esmtp({
        on: async (line, peer) => {
          if (line !== 'DATA') return undefined;
          await peer.send('354 go\r\n');
          peer.stopReading();
          await peer.waitClosed(5000);
          return '';
        },
      }));
      client = await SMTP.connect(clientOptions(server, { timeout: T }));
      const { error, ms } = await timed(() => client!.sendmail('a@x.test', ['b@y.test'], input()));
      expect(error).toBeInstanceOf(SMTPTimeoutError);
      expect(shape(error)).toMatchObject({ name: 'SMTPTimeoutError', code: 'ERR_SMTP_TIMEOUT', phase: 'data-write', deliveryStatus: 'not-delivered' });
      expect(ms).toBeLessThan(T + 1000);
      expect(client.isConnected).toBe(false);
      const peer = await server.peer();
      peer.resumeReading();
      expect(await peer.waitClosed(2000)).toBe(true);
      client.close();
      await server.close();
    }
    server = undefined;
  });

  it('H9 BDAT LAST of a large in-memory message to a server that stops reading: data-write timeout, not-delivered', async () => {
    // The whole message is one BDAT LAST chunk (chunkSize above its size), so the
    // end-of-data reply is owed before the body leaves this process; until the
    // last byte is flushed, a lost reply must still mean "not delivered".
    const big = `Subject: big\r\n\r\n${'y'.repeat(998)}\r\n`.repeat(16 * 1024);
    server = await hostileServer(esmtp({
      extensions: ['PIPELINING', 'CHUNKING'],
      on: async (line, peer) => {
        if (!line.startsWith('BDAT')) return undefined;
        peer.stopReading();
        await peer.waitClosed(5000);
        return '';
      },
    }));
    client = await SMTP.connect(clientOptions(server, { timeout: T, chunkSize: 64 * 1024 * 1024 }));
    const { error, ms } = await timed(() => client!.sendmail('a@x.test', ['b@y.test'], big));
    expect(shape(error)).toMatchObject({ name: 'SMTPTimeoutError', code: 'ERR_SMTP_TIMEOUT', phase: 'data-write', deliveryStatus: 'not-delivered' });
    expect(ms).toBeLessThan(T + 1000);
    expect(client.isConnected).toBe(false);
    (await server.peer()).resumeReading();
    client.close();
    await server.close();
    server = undefined;
  });

  it('H10 after a timeout the connection is never reused: the late 250 cannot answer the next command', async () => {
    server = await hostileServer(esmtp({ onData: async () => { await sleep(T + 200); return '250 2.0.0 late\r\n'; } }));
    client = await SMTP.connect(clientOptions(server, { timeout: T }));
    const first = await rejection(client.sendmail('a@x.test', ['b@y.test'], MSG));
    expect(shape(first)).toMatchObject({ name: 'SMTPTimeoutError', phase: 'data-end', deliveryStatus: 'unknown' });
    const peer = await server.peer();
    const mark = peer.all.length;
    const second = await rejection(client.sendmail('a@x.test', ['c@y.test'], MSG));
    expect(shape(second)).toMatchObject(DISCONNECTED);
    expect(peer.all.length).toBe(mark);
    await dead(client, peer);
  });

  it('H11 QUIT never answered, or answered with RST: quit() settles within the quit deadline and the socket is destroyed', async () => {
    server = await hostileServer(esmtp({ on: (l) => (l === 'QUIT' ? '' : undefined) }));
    client = await SMTP.connect(clientOptions(server, { timeout: T }));
    const r = await timed(() => client!.quit());
    expect(shape(r.error)).toMatchObject({ name: 'SMTPTimeoutError', phase: 'quit' });
    expect(r.ms).toBeLessThan(T + LATE_MS);
    expect(await (await server.peer()).waitClosed(1500)).toBe(true);
    expect(client.isConnected).toBe(false);
    await server.close();

    server = await hostileServer(esmtp({ on: (l, peer) => { if (l === 'QUIT') { peer.reset(); return ''; } return undefined; } }));
    client = await SMTP.connect(clientOptions(server, { timeout: T }));
    const start = performance.now();
    await client.quit().catch((e: Error) => expect(shape(e)).toMatchObject(DISCONNECTED));
    expect(performance.now() - start).toBeLessThan(T + LATE_MS);
    expect(client.isConnected).toBe(false);
    await server.close();

    // `await using` teardown: bounded, and does not replace the block's own error.
    server = await hostileServer(esmtp({ on: (l) => (l === 'QUIT' ? '' : l === 'NOOP' ? '550 nope\r\n' : undefined) }));
    const c = await SMTP.connect(clientOptions(server, { timeout: T }));
    const t0 = performance.now();
    const blockError = await rejection((async () => {
      await using smtp = c;
      const reply = await smtp.noop();
      throw new Error(`block failed with ${reply.code}`);
    })());
    expect(blockError.message).toBe('block failed with 550');
    expect(performance.now() - t0).toBeLessThan(T + LATE_MS);
    expect(c.isConnected).toBe(false);
  });

  it('H13 pipelined replies in one segment, in separate segments, and with 421 for the second RCPT', async () => {
    for (const mode of ['one segment', 'separate', 'byte'] as const) {
      server = await hostileServer(async (peer) => {
        await peer.send('220 mx.test\r\n');
        await peer.readLine();
        await peer.send('250-mx.test\r\n250 PIPELINING\r\n');
        const group = await peer.readUntil('DATA\r\n');
        expect(group!.toString()).toBe('MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n');
        const replies = ['250 2.1.0 sender\r\n', '250 2.1.5 b\r\n', '550 5.1.1 c unknown\r\n', '354 go\r\n'];
        if (mode === 'one segment') await peer.send(replies.join(''));
        else for (const r of replies) { await peer.send(r, { split: mode === 'byte' ? 'byte' : 'whole' }); await sleep(5); }
        await peer.readData();
        await peer.send('250 2.0.0 queued\r\n');
        await peer.serveLines(() => '221 bye\r\n');
      });
      client = await SMTP.connect(clientOptions(server));
      const result = await client.deliver('a@x.test', ['b@y.test', 'c@y.test'], MSG);
      expect(result.accepted).toEqual(['b@y.test']);
      expect(result.refused.get('c@y.test')!.code).toBe(550);
      expect([...result.reply]).toEqual([250, '2.0.0 queued']);
      client.close();
      await server.close();
    }
    // 421 for the second RCPT: the rest of the queue fails, the connection dies, no body.
    server = await hostileServer(async (peer) => {
      await peer.send('220 mx.test\r\n');
      await peer.readLine();
      await peer.send('250-mx.test\r\n250 PIPELINING\r\n');
      await peer.readUntil('DATA\r\n');
      await peer.send('250 ok\r\n250 ok\r\n421 4.3.0 going down\r\n');
      await peer.waitClosed(3000);
    });
    client = await SMTP.connect(clientOptions(server));
    const error = await rejection(client.sendmail('a@x.test', ['b@y.test', 'c@y.test', 'd@y.test'], MSG));
    expect(shape(error)).toMatchObject({ ...DISCONNECTED, deliveryStatus: 'not-delivered' });
    const peer = await server.peer();
    await dead(client, peer);
    expect(peer.text).toBe('EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nRCPT TO:<d@y.test>\r\nDATA\r\n');
  });

  it('H13 no pipelining before the EHLO reply, nor across STARTTLS or AUTH', async () => {
    const pki = testPki();
    const events: string[] = [];
    server = await hostileServer(async (peer) => {
      await peer.send('220 mx.test\r\n');
      for (;;) {
        const line = await peer.readLine();
        if (line === undefined) return;
        // Anything the client sent before this reply would already be pending.
        events.push(`${line}|pending=${peer.pending.length}`);
        if (line.startsWith('EHLO')) { await sleep(100); events.push(`after-wait pending=${peer.pending.length}`); await peer.send(`250-mx.test\r\n250-PIPELINING\r\n250-AUTH PLAIN\r\n${peer.socket instanceof tls.TLSSocket ? '' : '250-STARTTLS\r\n'}250 8BITMIME\r\n`); }
        else if (line === 'STARTTLS') { await sleep(50); if (!(await peer.upgradeTls('220 go\r\n', { key: pki.server.key, cert: pki.server.cert }))) return; }
        else if (line.startsWith('AUTH')) { await sleep(100); events.push(`auth pending=${peer.pending.length}`); await peer.send('235 ok\r\n'); }
        else if (line === 'DATA') { await peer.send('354 go\r\n'); await peer.readData(); await peer.send('250 ok\r\n'); }
        else if (line === 'QUIT') { await peer.send('221 bye\r\n'); return; }
        else await peer.send('250 ok\r\n');
      }
    });
    client = await SMTP.connect(clientOptions(server, { tlsPolicy: 'required', tls: { ca: pki.ca, servername: 'localhost' } }));
    await client.login('u', 'p');
    await client.sendmail('a@x.test', ['b@y.test'], MSG);
    await client.quit();
    expect(events).toEqual([
      'EHLO client.test|pending=0',
      'after-wait pending=0',
      'STARTTLS|pending=0',
      'EHLO client.test|pending=0',
      'after-wait pending=0',
      'AUTH PLAIN AHUAcA==|pending=0',
      'auth pending=0',
      expect.stringMatching(/^MAIL FROM:<a@x.test>\|pending=\d+$/),
      'RCPT TO:<b@y.test>|pending=6',
      'DATA|pending=0',
      'QUIT|pending=0',
    ]);
    const peer = await server.peer();
    expect(peer.injected.length).toBe(0);
  });

  it('H15 connect deadline: a DNS lookup that never answers and a connect hook that never connects are both bounded', async () => {
    const lookupNever = (() => undefined) as unknown as NonNullable<Exclude<ConstructorParameters<typeof SMTP>[0], string>>['lookup'];
    let r = await timed(() => SMTP.connect({ host: 'mx.never.test', port: 25, localHostname: 'client.test', timeout: T, tlsPolicy: 'none', lookup: lookupNever }));
    expect(r.error).toBeInstanceOf(SMTPTimeoutError);
    expect(shape(r.error)).toMatchObject({ name: 'SMTPTimeoutError', code: 'ERR_SMTP_TIMEOUT', phase: 'connect', timeout: T });
    expect(r.ms).toBeLessThan(T + LATE_MS);
    r = await timed(() => SMTP.connect({ host: 'mx.never.test', port: 25, localHostname: 'client.test', timeout: T, tlsPolicy: 'none', connect: () => new Promise(() => undefined) }));
    expect(shape(r.error)).toMatchObject({ name: 'SMTPTimeoutError', phase: 'connect' });
    expect(r.ms).toBeLessThan(T + LATE_MS);
    // Only the connect phase's own deadline applies, whatever the others are.
    r = await timed(() => SMTP.connect({ host: 'mx.never.test', port: 25, localHostname: 'client.test', timeouts: { connect: 200, greeting: 60_000 }, tlsPolicy: 'none', lookup: lookupNever }));
    expect(shape(r.error)).toMatchObject({ phase: 'connect', timeout: 200 });
    expect(r.ms).toBeLessThan(200 + LATE_MS);
  });

  it('H16 a refused EHLO whose text looks like capabilities switches nothing on', async () => {
    const commands: string[] = [];
    server = await hostileServer(esmtp({
      on: (line) => {
        commands.push(line);
        return line.startsWith('EHLO') ? '550-mx.test\r\n550-PIPELINING\r\n550-CHUNKING\r\n550-SIZE 10\r\n550 AUTH PLAIN\r\n' : undefined;
      },
    }));
    client = await SMTP.connect(clientOptions(server));
    const reply = await client.ehlo();
    expect(reply.code).toBe(550);
    expect(client.doesEsmtp).toBe(false);
    expect(client.esmtpFeatures.size).toBe(0);
    expect(client.hasExtn('pipelining')).toBe(false);
    expect(client.hasExtn('size')).toBe(false);
    expect(shape(await rejection(client.login('u', 'p')))).toMatchObject({ name: 'SMTPNotSupportedError' });
    // sendmail falls back to HELO and sends lock-step, without SIZE or BDAT.
    client.ehloResp = null;
    await client.sendmail('a@x.test', ['b@y.test'], 'x'.repeat(50));
    expect(commands).toEqual(['EHLO client.test', 'EHLO client.test', 'HELO client.test', 'MAIL FROM:<a@x.test>', 'RCPT TO:<b@y.test>', 'DATA']);
  });
});
