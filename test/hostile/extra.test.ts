// Cases beyond the catalogue, from reading the client: 421 at every position
// of a pipelined group, servers that answer the DATA group out of step,
// AbortSignal at every phase, concurrent sends where one fails mid-group,
// and a valid reply followed by junk in the same segment.

import { afterEach, describe, expect, it } from 'vitest';
import { SMTP, SMTPAbortError } from 'smtplib';
import { clientOptions, esmtp, hostileServer, rejection, shape, sleep, type HostileServer, type Peer } from './kit.js';

let server: HostileServer | undefined;
let client: SMTP | undefined;
afterEach(async () => {
  client?.close();
  client = undefined;
  await server?.close();
  server = undefined;
});

const MSG = 'Subject: t\r\n\r\nBODY-MARKER\r\n';
const DISCONNECTED = { name: 'SMTPServerDisconnected', code: 'ERR_SMTP_DISCONNECTED' };

/** Greets, answers EHLO with `extensions`, then hands the rest to `rest`. */
function after(extensions: string[], rest: (peer: Peer) => Promise<void>) {
  return async (peer: Peer) => {
    await peer.send('220 mx.test\r\n');
    await peer.readLine();
    await peer.send(['mx.test', ...extensions].map((l, i, a) => `250${i === a.length - 1 ? ' ' : '-'}${l}\r\n`).join(''));
    await rest(peer);
  };
}

describe('more hostile cases', () => {
  for (const bdat of [false, true]) {
    for (let position = 0; position < 5; position++) {
      it(`421 at position ${position} of a pipelined ${bdat ? 'MAIL/RCPT×3/BDAT LAST' : 'MAIL/RCPT×3/DATA'} group, with replies after it in the same segment`, async () => {
        server = await hostileServer(after(bdat ? ['PIPELINING', 'CHUNKING'] : ['PIPELINING'], async (peer) => {
          await peer.readUntil(bdat ? MSG : 'DATA\r\n');
          const replies = ['250 ok\r\n', '250 ok\r\n', '250 ok\r\n', '250 ok\r\n', bdat ? '250 queued\r\n' : '354 go\r\n'];
          replies[position] = '421 4.3.2 shutting down\r\n';
          await peer.send(replies.join(''));
          await peer.waitClosed(3000);
        }));
        client = await SMTP.connect(clientOptions(server));
        const error = await rejection(client.sendmail('a@x.test', ['b@y.test', 'c@y.test', 'd@y.test'], MSG));
        expect(shape(error)).toMatchObject({ ...DISCONNECTED, deliveryStatus: 'not-delivered' });
        expect(error.message).toMatch(/421/);
        const peer = await server.peer();
        expect(await peer.waitClosed(2000)).toBe(true);
        const group = `EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nRCPT TO:<d@y.test>\r\n`;
        // Nothing after the group: no body after DATA, no RSET, no QUIT on a closing connection.
        expect(peer.text).toBe(bdat ? `${group}BDAT ${MSG.length} LAST\r\n${MSG}` : `${group}DATA\r\n`);
        expect(client.isConnected).toBe(false);
      });
    }
  }

  it('an extra reply shifts the DATA group: no body is sent and the connection is closed', async () => {
    for (const segmented of [false, true]) {
      server = await hostileServer(after(['PIPELINING'], async (peer) => {
        await peer.readUntil('DATA\r\n');
        const replies = ['250 mail ok\r\n', '250 extra!\r\n', '250 rcpt ok\r\n', '354 go\r\n'];
        if (segmented) for (const r of replies) { await peer.send(r); await sleep(20); }
        else await peer.send(replies.join(''));
        await peer.serveLines(() => '250 ok\r\n', 1000);
      }));
      client = await SMTP.connect(clientOptions(server));
      const error = await rejection(client.sendmail('a@x.test', ['b@y.test'], MSG));
      expect(['SMTPDataError', 'SMTPServerDisconnected', 'SMTPProtocolError']).toContain(error.name);
      expect(error.deliveryStatus).toBe('not-delivered');
      const peer = await server.peer();
      await sleep(100);
      expect(peer.text).not.toContain('BODY-MARKER');
      expect(client.isConnected).toBe(false);
      client.close();
      await server.close();
    }
    server = undefined;
  });

  it('250 instead of 354 to DATA, and 354 to MAIL or RCPT: never a body', async () => {
    const variants: Array<[string, string[]]> = [
      ['250 to DATA', ['250 ok\r\n', '250 ok\r\n', '250 not 354\r\n']],
      ['354 to MAIL', ['354 what\r\n', '250 ok\r\n', '354 go\r\n']],
      ['354 to RCPT', ['250 ok\r\n', '354 what\r\n', '354 go\r\n']],
    ];
    for (const [name, replies] of variants) {
      server = await hostileServer(after(['PIPELINING'], async (peer) => {
        await peer.readUntil('DATA\r\n');
        await peer.send(replies.join(''));
        await peer.serveLines((l) => (l === '.' ? '250 ok\r\n' : '250 ok\r\n'), 1000);
      }));
      client = await SMTP.connect(clientOptions(server));
      const error = await rejection(client.sendmail('a@x.test', ['b@y.test'], MSG));
      expect(error.deliveryStatus, name).toBe('not-delivered');
      expect(String(error.code), name).toMatch(/^ERR_SMTP_/);
      await sleep(50);
      expect((await server.peer()).text, name).not.toContain('BODY-MARKER');
      client.close();
      await server.close();
    }
    server = undefined;
  });

  it('an early "250" while the client is still writing a large body: fail closed, not delivered', async () => {
    server = await hostileServer(after(['PIPELINING'], async (peer) => {
      await peer.readUntil('DATA\r\n');
      await peer.send('250 ok\r\n250 ok\r\n354 go\r\n');
      await peer.readBytes(4096);
      peer.stopReading();
      await peer.send('250 2.0.0 queued (before the end of data!)\r\n');
      await peer.waitClosed(3000);
    }));
    client = await SMTP.connect(clientOptions(server, { timeout: 2000 }));
    const error = await rejection(client.sendmail('a@x.test', ['b@y.test'], `Subject: big\r\n\r\n${'x'.repeat(998)}\r\n`.repeat(24 * 1024)));
    expect(String(error.code)).toMatch(/^ERR_SMTP_(DISCONNECTED|PROTOCOL)$/);
    expect(error.deliveryStatus).toBe('not-delivered');
    expect(client.isConnected).toBe(false);
  });

  it('a valid reply and junk in one segment: the command gets its reply, then the connection dies (same as split)', async () => {
    for (const split of ['whole', 'byte'] as const) {
      server = await hostileServer(esmtp({ on: async (l, peer) => (l === 'NOOP' ? (await peer.send('250 2.0.0 ok\r\nJUNK\r\n', { split }), '') : undefined) }));
      client = await SMTP.connect(clientOptions(server));
      const reply = await client.noop();
      expect([...reply]).toEqual([250, '2.0.0 ok']);
      await sleep(50);
      expect(client.isConnected, split).toBe(false);
      expect(shape(await rejection(client.noop()))).toMatchObject(DISCONNECTED);
      await server.close();
    }
    server = undefined;
  });

  describe('AbortSignal at every phase', () => {
    const aborted = { name: 'SMTPAbortError', code: 'ERR_SMTP_ABORTED' };

    it('already aborted: rejected before anything is written, not delivered, connection still usable', async () => {
      server = await hostileServer(esmtp());
      client = await SMTP.connect(clientOptions(server));
      await client.ehlo();
      const peer = await server.peer();
      await sleep(20);
      const before = peer.all.length;
      const controller = new AbortController();
      controller.abort(new Error('user cancelled'));
      const error = await rejection(client.sendmail('a@x.test', ['b@y.test'], MSG, undefined, undefined, { signal: controller.signal }));
      expect(error).toBeInstanceOf(SMTPAbortError);
      expect(shape(error)).toMatchObject({ ...aborted, deliveryStatus: 'not-delivered' });
      expect((error.cause as Error).message).toBe('user cancelled');
      await sleep(20);
      expect(peer.all.length).toBe(before);
      expect((await client.noop()).code).toBe(250);
    });

    it('during connect (DNS never answers) and during the greeting', async () => {
      const c1 = new SMTP({ host: 'mx.never.test', port: 25, localHostname: 'client.test', tlsPolicy: 'none', lookup: (() => undefined) as never });
      let controller = new AbortController();
      setTimeout(() => controller.abort(), 50);
      expect(shape(await rejection(c1.connect(undefined, undefined, { signal: controller.signal })))).toMatchObject(aborted);

      server = await hostileServer(async (peer) => { await peer.waitClosed(3000); });
      const c2 = new SMTP(clientOptions(server));
      controller = new AbortController();
      setTimeout(() => controller.abort(), 50);
      const start = performance.now();
      expect(shape(await rejection(c2.connect(undefined, undefined, { signal: controller.signal })))).toMatchObject(aborted);
      expect(performance.now() - start).toBeLessThan(1000);
      expect(await (await server.peer()).waitClosed(1000)).toBe(true);
    });

    const phases: Array<{ name: string; status: string; hold: (line: string) => boolean; body?: () => string }> = [
      { name: 'waiting for the MAIL reply', status: 'not-delivered', hold: (l) => l.startsWith('MAIL') },
      { name: 'waiting for the 354', status: 'not-delivered', hold: (l) => l === 'DATA' },
      { name: 'writing the body to a server that stopped reading', status: 'not-delivered', hold: () => false, body: () => `Subject: big\r\n\r\n${'y'.repeat(998)}\r\n`.repeat(24 * 1024) },
      { name: 'waiting for the reply to the end of data', status: 'unknown', hold: (l) => l === '.' },
    ];
    for (const phase of phases) {
      it(`while ${phase.name}: SMTPAbortError, deliveryStatus ${phase.status}, connection destroyed`, async () => {
        server = await hostileServer(async (peer) => {
          await peer.send('220 mx.test\r\n');
          for (;;) {
            const line = await peer.readLine();
            if (line === undefined) return;
            if (phase.hold(line)) { await peer.waitClosed(3000); return; }
            if (line.startsWith('EHLO')) await peer.send('250 mx.test\r\n');
            else if (line === 'DATA') {
              await peer.send('354 go\r\n');
              if (phase.body) { peer.stopReading(); await peer.waitClosed(3000); return; }
              await peer.readData();
              if (phase.hold('.')) { await peer.waitClosed(3000); return; }
              await peer.send('250 ok\r\n');
            } else await peer.send('250 ok\r\n');
          }
        });
        client = await SMTP.connect(clientOptions(server, { timeout: 5000 }));
        const controller = new AbortController();
        setTimeout(() => controller.abort(new Error('stop')), 150);
        const start = performance.now();
        const error = await rejection(client.sendmail('a@x.test', ['b@y.test'], phase.body?.() ?? MSG, undefined, undefined, { signal: controller.signal }));
        expect(performance.now() - start).toBeLessThan(1000);
        expect(error).toBeInstanceOf(SMTPAbortError);
        expect(shape(error)).toMatchObject({ ...aborted, deliveryStatus: phase.status });
        expect(client.isConnected).toBe(false);
        const peer = await server.peer();
        peer.resumeReading();
        expect(await peer.waitClosed(1000)).toBe(true);
      });
    }
  });

  it('concurrent sendmail calls pipelined into each other: one refused mid-group, one 421 mid-group', async () => {
    // Call 2's recipient is refused; calls 1 and 3 are delivered.
    const bodies: string[] = [];
    let accepted = 0;
    server = await hostileServer(esmtp({
      on: (l) => {
        if (l.startsWith('MAIL')) accepted = 0;
        if (l === 'RCPT TO:<bad@y.test>') return '550 5.1.1 no such user\r\n';
        if (l.startsWith('RCPT')) accepted++;
        // A correct server: DATA with no accepted recipient is refused.
        if (l === 'DATA' && accepted === 0) return '554 5.5.1 no valid recipients\r\n';
        return undefined;
      },
      onData: (data) => { bodies.push(data.toString()); return undefined; },
    }));
    client = await SMTP.connect(clientOptions(server));
    const results = await Promise.allSettled([
      client.sendmail('a@x.test', ['r1@y.test'], 'Subject: 1\r\n\r\none\r\n'),
      client.sendmail('a@x.test', ['bad@y.test'], 'Subject: 2\r\n\r\ntwo\r\n'),
      client.sendmail('a@x.test', ['r3@y.test'], 'Subject: 3\r\n\r\nthree\r\n'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(shape((results[1] as PromiseRejectedResult).reason)).toMatchObject({ name: 'SMTPRecipientsRefused', deliveryStatus: 'not-delivered' });
    expect(bodies.map((b) => b.split('\r\n')[0])).toEqual(['Subject: 1', 'Subject: 3']);
    expect(client.isConnected).toBe(true);
    await server.close();

    // Call 2's MAIL gets 421: call 1 delivered, calls 2 and 3 fail as not delivered, nothing of them reaches DATA.
    const bodies2: string[] = [];
    let mails = 0;
    server = await hostileServer(esmtp({
      on: (l) => (l.startsWith('MAIL') && ++mails === 2 ? '421 4.3.2 going down\r\n' : undefined),
      onData: (data) => { bodies2.push(data.toString()); return undefined; },
    }));
    client = await SMTP.connect(clientOptions(server));
    const r2 = await Promise.allSettled([
      client.sendmail('a@x.test', ['r1@y.test'], 'Subject: 1\r\n\r\none\r\n'),
      client.sendmail('a@x.test', ['r2@y.test'], 'Subject: 2\r\n\r\ntwo\r\n'),
      client.sendmail('a@x.test', ['r3@y.test'], 'Subject: 3\r\n\r\nthree\r\n'),
    ]);
    expect(r2.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
    for (const r of r2.slice(1)) expect(shape((r as PromiseRejectedResult).reason)).toMatchObject({ ...DISCONNECTED, deliveryStatus: 'not-delivered' });
    expect(bodies2.map((b) => b.split('\r\n')[0])).toEqual(['Subject: 1']);
    expect(client.isConnected).toBe(false);
    const peer = await server.peer();
    expect(peer.text).not.toContain('two');
    expect(peer.text).not.toContain('three');
  });
});
