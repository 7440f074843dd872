// Section G: reply parsing under hostile input. Every malformed, oversized or
// odd reply must end in a typed error with the connection destroyed, or parse
// safely; splitting the same bytes differently must never change the outcome.

import { afterEach, describe, expect, it } from 'vitest';
import { SMTP, SMTPConnectError, SMTPProtocolError } from 'smtplib';
import { clientOptions, esmtp, hostileServer, rejection, shape, type HostileServer, type Peer, type Split } from './kit.js';

let server: HostileServer | undefined;
let client: SMTP | undefined;
afterEach(async () => {
  client?.close();
  client = undefined;
  await server?.close();
  server = undefined;
});

const PROTOCOL = { name: 'SMTPProtocolError', code: 'ERR_SMTP_PROTOCOL' };

/** A server that greets, answers EHLO, and answers NOOP with `reply` (sent through `how`). */
async function noopServer(how: (peer: Peer) => Promise<void>): Promise<HostileServer> {
  return hostileServer(
    esmtp({
      on: async (line, peer) => {
        if (line !== 'NOOP') return undefined;
        await how(peer);
        return '';
      },
    }),
  );
}

/** The client closed the socket (it does not keep a desynchronized connection). */
async function clientClosed(s: HostileServer, n = 0): Promise<void> {
  const peer = await s.peer(n);
  expect(await peer.waitClosed(2000)).toBe(true);
}

describe('G. reply parsing under hostile input', () => {
  it('G1 a 10 MB reply line without CRLF, and a 100 kB line with CRLF, are protocol errors; the socket is destroyed', async () => {
    let sent = 0;
    server = await noopServer(async (peer) => {
      await peer.send('250 ');
      sent = await peer.flood(() => Buffer.alloc(64 * 1024, 0x41), 10 * 1024 * 1024);
    });
    client = await SMTP.connect(clientOptions(server));
    const error = await rejection(client.noop());
    expect(error).toBeInstanceOf(SMTPProtocolError);
    expect(shape(error)).toMatchObject(PROTOCOL);
    expect(error.message).toMatch(/longer than the limit/);
    expect(client.isConnected).toBe(false);
    await clientClosed(server);
    // The client stopped reading long before the 10 MB were out.
    expect(sent).toBeLessThan(10 * 1024 * 1024);
    await server.close();

    server = await noopServer((peer) => peer.send(`250 ${'B'.repeat(100 * 1024)}\r\n`));
    client = await SMTP.connect(clientOptions(server));
    expect(shape(await rejection(client.noop()))).toMatchObject(PROTOCOL);
    expect(client.isConnected).toBe(false);
    await clientClosed(server);
    await server.close();

    // As the greeting: a typed connect error whose cause is the protocol error.
    server = await hostileServer(async (peer) => { await peer.send('220 '); await peer.flood(() => Buffer.alloc(65536, 0x43), 10 * 1024 * 1024); });
    const e = await rejection(SMTP.connect(clientOptions(server)));
    expect(e).toBeInstanceOf(SMTPConnectError);
    expect(shape(e)).toMatchObject({ name: 'SMTPConnectError', code: 'ERR_SMTP_CONNECT', smtpCode: -1 });
    expect(shape(e.cause)).toMatchObject(PROTOCOL);
  });

  it('G2 an endless multi-line reply of short lines hits the line-count / size cap and fails closed', async () => {
    let lines = 0;
    server = await noopServer(async (peer) => {
      await peer.flood(() => { lines += 512; return Buffer.from('250-x\r\n'.repeat(512)); }, 64 * 1024 * 1024);
    });
    client = await SMTP.connect(clientOptions(server));
    const error = await rejection(client.noop());
    expect(shape(error)).toMatchObject(PROTOCOL);
    expect(error.message).toMatch(/more lines than the limit/);
    await clientClosed(server);
    expect(lines).toBeLessThan(64 * 1024 * 1024 / 7);
    await server.close();
    // Long-ish lines: the 1 MiB total cap comes first.
    server = await noopServer((peer) => peer.flood(() => Buffer.from(`250-${'y'.repeat(4000)}\r\n`), 64 * 1024 * 1024).then(() => undefined));
    client = await SMTP.connect(clientOptions(server));
    const e2 = await rejection(client.noop());
    expect(shape(e2)).toMatchObject(PROTOCOL);
    expect(e2.message).toMatch(/reply is longer than the limit/);
  });

  it('G3 a huge but legal EHLO (5,000 lines, 63 AUTH mechanisms, repeats, unknown keywords) is accepted in linear time', async () => {
    const mechanisms = Array.from({ length: 63 }, (_, i) => `X_${i}`);
    const extensions = [
      'PIPELINING',
      ...Array.from({ length: 4990 }, (_, i) => `X-UNKNOWN-${i} some params ${i}`),
      `AUTH ${mechanisms.slice(0, 30).join(' ')}`,
      `AUTH ${mechanisms.slice(30).join(' ')} PLAIN`,
      'AUTH=LOGIN PLAIN',
      'SIZE 1000',
      'SIZE 2000',
      'VERY-NEW-EXTENSION with=odd;params',
    ];
    server = await hostileServer(esmtp({ extensions }));
    client = await SMTP.connect(clientOptions(server));
    const started = performance.now();
    const reply = await client.ehlo();
    const elapsed = performance.now() - started;
    expect(reply.code).toBe(250);
    expect(reply.lines.length).toBe(extensions.length + 1);
    expect(client.doesEsmtp).toBe(true);
    expect(client.capabilities.authMechanisms).toEqual([...mechanisms, 'PLAIN', 'LOGIN']);
    expect(client.capabilities.get('x-unknown-4989')).toBe('some params 4989');
    expect(client.capabilities.get('very-new-extension')).toBe('with=odd;params');
    expect(client.capabilities.maxSize).toBe(2000);
    expect(elapsed).toBeLessThan(1000);
    await server.close();
    // Over the 10,000-line cap: a typed error, not an endless buffer.
    server = await hostileServer(esmtp({ extensions: Array.from({ length: 10_001 }, (_, i) => `X-${i}`) }));
    client = await SMTP.connect(clientOptions(server));
    expect(shape(await rejection(client.ehlo()))).toMatchObject(PROTOCOL);
    expect(client.isConnected).toBe(false);
  });

  const BAD = ['XXX ok', '0', '01', '012', '1234 ok', '25 ok', '250ok', '099 ok', '600 ok', '100 ok', ' 250 ok', '2a0 ok', '250\tok', '', '250_ok', '-250 ok', '\x00250 ok'];
  for (const bad of BAD) {
    it(`G4 bad status line ${JSON.stringify(bad)} is a protocol error and the connection is not reused`, async () => {
      server = await noopServer((peer) => peer.send(`${bad}\r\n`));
      client = await SMTP.connect(clientOptions(server));
      const error = await rejection(client.noop());
      expect(error).toBeInstanceOf(SMTPProtocolError);
      expect(shape(error)).toMatchObject(PROTOCOL);
      expect(error).not.toHaveProperty('smtpCode');
      expect(client.isConnected).toBe(false);
      expect(shape(await rejection(client.noop()))).toMatchObject({ name: 'SMTPServerDisconnected', code: 'ERR_SMTP_DISCONNECTED' });
      await clientClosed(server);
      const peer = await server.peer();
      expect(peer.text).toBe('NOOP\r\n');
    });
  }

  it('G4 legal forms parse: "250" with no text, "250 " and a multi-line reply ending in "250"', async () => {
    const replies = ['250\r\n', '250 \r\n', '250-a\r\n250\r\n', '250-\r\n250 b\r\n'];
    let i = 0;
    server = await noopServer((peer) => peer.send(replies[i++]!));
    client = await SMTP.connect(clientOptions(server));
    expect([...(await client.noop())]).toEqual([250, '']);
    expect([...(await client.noop())]).toEqual([250, '']);
    expect((await client.noop()).lines).toEqual(['a', '']);
    expect((await client.noop()).lines).toEqual(['', 'b']);
    expect(client.isConnected).toBe(true);
  });

  it('G5 a code change inside a multi-line reply (250-first / 354 second) is a protocol error', async () => {
    for (const bad of ['250-first\r\n354 second\r\n', '250-first\r\n251 second\r\n', '550-no\r\n250 yes\r\n']) {
      server = await noopServer((peer) => peer.send(bad));
      client = await SMTP.connect(clientOptions(server));
      const error = await rejection(client.noop());
      expect(shape(error)).toMatchObject(PROTOCOL);
      expect(error.message).toMatch(/reply code changed/);
      expect(client.isConnected).toBe(false);
      await server.close();
    }
    server = undefined;
  });

  const SIZES: Array<[string[], number | undefined]> = [
    [['SIZE'], undefined],
    [['SIZE abc'], undefined],
    [['SIZE -1'], undefined],
    [['SIZE 0'], undefined],
    [['SIZE 1e3'], undefined],
    [['SIZE 0x10'], undefined],
    [['SIZE 99999999999999999999999'], undefined],
    [['SIZE 9007199254740993'], undefined],
    [['SIZE 5000', 'SIZE 10'], 10],
    [['SIZE  5000 '], 5000],
  ];
  for (const [lines, max] of SIZES) {
    it(`G7 malformed SIZE ${JSON.stringify(lines)}: ${max === undefined ? 'no declared limit' : `limit ${max}`}, never SIZE=NaN`, async () => {
      const commands: string[] = [];
      server = await hostileServer(esmtp({ extensions: ['PIPELINING', ...lines], on: (line) => { commands.push(line); return undefined; } }));
      client = await SMTP.connect(clientOptions(server));
      await client.ehlo();
      expect(client.capabilities.maxSize).toBe(max);
      const body = 'Subject: t\r\n\r\n' + 'x'.repeat(40) + '\r\n';
      if (max === undefined || max >= 100) {
        await client.sendmail('a@x.test', ['b@y.test'], body);
        const mail = commands.find((c) => c.startsWith('MAIL'))!;
        expect(mail).toBe(`MAIL FROM:<a@x.test> SIZE=${Buffer.byteLength(body)}`);
      } else {
        expect(shape(await rejection(client.sendmail('a@x.test', ['b@y.test'], body)))).toMatchObject({ name: 'SMTPDataError', smtpCode: 552 });
        expect(commands.filter((c) => c.startsWith('MAIL'))).toEqual([]);
      }
    });
  }

  it('G8 byte-at-a-time, by-line and random splits give exactly the transcript and results of whole writes', async () => {
    const run = async (split: Split, seed: number) => {
      server = await hostileServer(async (peer) => {
        const send = (s: string) => peer.send(s, { split, seed, gapMs: 0 });
        await send('220-mx.test ESMTP\r\n220-second line\r\n220 ready\r\n');
        for (;;) {
          const line = await peer.readLine();
          if (line === undefined) return;
          if (line.startsWith('EHLO')) await send('250-mx.test\r\n250-PIPELINING\r\n250-AUTH LOGIN PLAIN\r\n250-SIZE 100000\r\n250 8BITMIME\r\n');
          else if (line === 'AUTH LOGIN') await send('334 VXNlcm5hbWU6\r\n');
          else if (line === Buffer.from('user').toString('base64')) await send('334 UGFzc3dvcmQ6\r\n');
          else if (line === Buffer.from('pass').toString('base64')) await send('235 2.7.0 ok\r\n');
          else if (line.startsWith('MAIL') || line.startsWith('RCPT')) await send('250 2.1.0 ok\r\n');
          else if (line.startsWith('RCPT')) await send('250 ok\r\n');
          else if (line === 'DATA') {
            await send('354 go\r\n');
            await peer.readUntil('\r\n.\r\n');
            await send('250-2.0.0 queued\r\n250 2.0.0 as 1234\r\n');
          } else if (line === 'QUIT') { await send('221 2.0.0 bye\r\n'); peer.close(); return; }
          else await send('500 5.5.1 what\r\n');
        }
      });
      client = await SMTP.connect(clientOptions(server));
      const greeting = client.greeting!.message;
      const ehlo = (await client.ehlo()).message;
      const login = [...(await client.login('user', 'pass', { mechanism: 'LOGIN' }))];
      const result = await client.deliver('a@x.test', ['b@y.test', 'c@y.test'], 'Subject: t\r\n\r\nhi\r\n.dot\r\n');
      const quit = [...(await client.quit())];
      const peer = await server.peer();
      await peer.waitClosed();
      const out = { greeting, ehlo, login, reply: [...result.reply], accepted: result.accepted, quit, wire: peer.text };
      await server.close();
      return out;
    };
    const reference = await run('whole', 1);
    expect(reference.reply).toEqual([250, '2.0.0 queued\n2.0.0 as 1234']);
    for (const [split, seed] of [['byte', 1], ['line', 1], ['random', 1], ['random', 2], ['random', 3], ['random', 99]] as Array<[Split, number]>) {
      expect(await run(split, seed), `${split}/${seed}`).toEqual(reference);
    }
    server = undefined;
  });

  it('G9 Latin-1, invalid UTF-8, NUL, ANSI escapes and a bare CR in reply text are decoded safely; a bare CR never ends a line', async () => {
    const texts = [
      Buffer.from('550 caf\xe9 \xff\xfe latin\r\n', 'latin1'),
      Buffer.from([...Buffer.from('550 bad '), 0xc3, 0x28, 0xa0, 0xa1, ...Buffer.from(' utf8\r\n')]),
      Buffer.from('550 nul\x00here\r\n', 'latin1'),
      Buffer.from('550 \x1b[31mred\x1b[0m \x1b]0;title\x07\r\n', 'latin1'),
      Buffer.from('550 bare\rRCPT TO:<x@y>\r\n', 'latin1'),
      Buffer.from('550 del\x7f \x08back\r\n', 'latin1'),
    ];
    let i = 0;
    server = await hostileServer(esmtp({ on: (line) => (line.startsWith('RCPT') ? texts[i++]!.toString('latin1') : undefined) }));
    client = await SMTP.connect(clientOptions(server));
    const seen: string[] = [];
    for (let n = 0; n < texts.length; n++) {
      await client.mail('a@x.test');
      const reply = await client.rcpt('b@y.test');
      expect(reply.code).toBe(550);
      expect(reply.lines.length).toBe(1);
      expect(reply.message).not.toMatch(/[\x00-\x08\x0a-\x1f\x7f]/);
      seen.push(reply.message);
      await client.rset();
    }
    expect(seen[0]).toBe('café ÿþ latin');
    expect(seen[1]).toBe('bad Ã(\u00a0¡ utf8');
    expect(seen[2]).toBe('nul?here');
    expect(seen[3]).toBe('?[31mred?[0m ?]0;title?');
    expect(seen[4]).toBe('bare?RCPT TO:<x@y>');
    expect(seen[5]).toBe('del? ?back');
    // The same text in an error message: controls are gone there too.
    i = 4;
    const error = await rejection(client.sendmail('a@x.test', ['b@y.test'], 'x'));
    expect(error.message).not.toMatch(/[\x00-\x08\x0a-\x1f\x7f]/);
    expect(client.isConnected).toBe(true);
  });
});
