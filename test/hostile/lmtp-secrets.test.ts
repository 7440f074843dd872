// Sections I (LMTP) and J (secrets and logs).

import { afterEach, describe, expect, it } from 'vitest';
import dc from 'node:diagnostics_channel';
import { inspect } from 'node:util';
import { LMTP, SMTP, SMTPAuthenticationError, SMTPDataError, SMTPHeloError, CONNECT_CHANNEL, COMMAND_CHANNEL, REPLY_CHANNEL, SEND_CHANNEL, ERROR_CHANNEL } from 'smtplib';
import { clientOptions, esmtp, hostileServer, rejection, shape, type HostileServer } from './kit.js';

let server: HostileServer | undefined;
let client: SMTP | undefined;
afterEach(async () => {
  client?.close();
  client = undefined;
  await server?.close();
  server = undefined;
});

const MSG = 'Subject: t\r\n\r\nhello\r\n';

describe('I. LMTP', () => {
  it('I1 one reply per accepted recipient, in RCPT order, only for accepted recipients', async () => {
    for (const pipelining of [true, false]) {
      const commands: string[] = [];
      server = await hostileServer(esmtp({
        extensions: ['PIPELINING', '8BITMIME'],
        on: (line) => { commands.push(line); return line === 'RCPT TO:<r2@y.test>' ? '550 5.1.1 r2 unknown\r\n' : undefined; },
        onData: () => '250 2.0.0 <r1@y.test> delivered\r\n452 4.2.2 <r3@y.test> mailbox full\r\n',
      }));
      client = new LMTP(clientOptions(server, { pipelining }));
      await client.connect();
      const result = await client.deliver('a@x.test', ['r1@y.test', 'r2@y.test', 'r3@y.test'], MSG);
      expect(result.accepted).toEqual(['r1@y.test']);
      expect(Object.fromEntries([...result.refused].map(([k, v]) => [k, v.code]))).toEqual({ 'r2@y.test': 550, 'r3@y.test': 452 });
      expect([...result.recipientReplies!.keys()]).toEqual(['r1@y.test', 'r3@y.test']);
      expect([...result.recipientReplies!.values()].map((r) => r.code)).toEqual([250, 452]);
      expect([...result.reply]).toEqual([250, '2.0.0 <r1@y.test> delivered']);
      expect(commands[0]).toBe('LHLO client.test');
      expect(client.isConnected).toBe(true);
      // Every reply after the data was consumed: the next command is in step.
      expect((await client.noop()).code).toBe(250);
      client.close();
      await server.close();
    }
    server = undefined;
  });

  it('I1 every accepted recipient refused after the data: SMTPDataError listing each; one reply short: data-end timeout, unknown', async () => {
    server = await hostileServer(esmtp({ onData: () => '550 5.2.0 r1 no\r\n451 4.3.0 r2 later\r\n' }));
    client = new LMTP(clientOptions(server));
    await client.connect();
    const error = await rejection(client.sendmail('a@x.test', ['r1@y.test', 'r2@y.test'], MSG));
    expect(error).toBeInstanceOf(SMTPDataError);
    expect(shape(error)).toMatchObject({ name: 'SMTPDataError', smtpCode: 550, deliveryStatus: 'not-delivered' });
    expect(error.message).toContain('r1@y.test: 550');
    expect(error.message).toContain('r2@y.test: 451');
    await server.close();

    server = await hostileServer(esmtp({ onData: () => '250 2.0.0 r1 ok\r\n' }));
    client = new LMTP(clientOptions(server, { timeout: 300 }));
    await client.connect();
    const short = await rejection(client.sendmail('a@x.test', ['r1@y.test', 'r2@y.test'], MSG));
    expect(shape(short)).toMatchObject({ name: 'SMTPTimeoutError', phase: 'data-end', deliveryStatus: 'unknown' });
    expect(client.isConnected).toBe(false);
  });

  it('I3 LMTP sends LHLO only, never EHLO or HELO, and does not fall back when LHLO is refused', async () => {
    const commands: string[] = [];
    server = await hostileServer(esmtp({
      on: (line) => {
        commands.push(line);
        if (/^(EHLO|HELO)/.test(line)) return '500 5.5.1 LMTP only\r\n';
        return undefined;
      },
    }));
    client = new LMTP(clientOptions(server));
    await client.connect();
    await client.sendmail('a@x.test', ['b@y.test'], MSG);
    expect(commands.filter((c) => /^(EHLO|HELO|LHLO)/.test(c))).toEqual(['LHLO client.test']);
    await server.close();

    const seen: string[] = [];
    server = await hostileServer(esmtp({ on: (line) => { seen.push(line); return /^(LHLO|EHLO|HELO)/.test(line) ? '500 5.5.1 no\r\n' : undefined; } }));
    client = new LMTP(clientOptions(server));
    await client.connect();
    const error = await rejection(client.sendmail('a@x.test', ['b@y.test'], MSG));
    expect(error).toBeInstanceOf(SMTPHeloError);
    expect(shape(error)).toMatchObject({ name: 'SMTPHeloError', code: 'ERR_SMTP_HELO', smtpCode: 500, deliveryStatus: 'not-delivered' });
    expect(seen).toEqual(['LHLO client.test']);
  });
});

describe('J. secrets and logs', () => {
  const USER = 'alice@example.test';
  const PASSWORD = 'S3cr3t-pässwörd!';
  const TOKEN = 'ya29.TOKEN-abcdef-0123456789';

  /** Strings that must never appear in a log line, an error or a diagnostics event. */
  function secrets(extra: string[]): string[] {
    const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
    return [
      PASSWORD,
      TOKEN,
      b64(PASSWORD),
      b64(`\0${USER}\0${PASSWORD}`),
      b64(`user=${USER}\x01auth=Bearer ${TOKEN}\x01\x01`),
      b64(`n,a=${USER},\x01auth=Bearer ${TOKEN}\x01\x01`),
      ...extra,
    ].filter((s) => s.length >= 8);
  }

  const CASES: Array<{ mech: string; options: Record<string, unknown>; ext: string }> = [
    { mech: 'PLAIN', options: { mechanism: 'PLAIN' }, ext: 'AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER' },
    { mech: 'PLAIN (no initial response)', options: { mechanism: 'PLAIN', initialResponseOk: false }, ext: 'AUTH PLAIN' },
    { mech: 'LOGIN', options: { mechanism: 'LOGIN' }, ext: 'AUTH LOGIN' },
    { mech: 'CRAM-MD5', options: { mechanism: 'CRAM-MD5' }, ext: 'AUTH CRAM-MD5' },
    { mech: 'XOAUTH2', options: { mechanism: 'XOAUTH2', token: TOKEN }, ext: 'AUTH XOAUTH2' },
    { mech: 'OAUTHBEARER', options: { mechanism: 'OAUTHBEARER', token: TOKEN }, ext: 'AUTH OAUTHBEARER' },
  ];

  for (const { mech, options, ext } of CASES) {
    for (const outcome of ['success', 'failure'] as const) {
      it(`J1 ${mech} ${outcome}: debug log (levels 1 and 2), diagnostics events and errors hold no secret`, async () => {
        const clientLines: string[] = [];
        server = await hostileServer(async (peer) => {
          await peer.send('220 mx.test\r\n');
          const steps = 0;
          for (;;) {
            const line = await peer.readLine();
            if (line === undefined) return;
            if (line.startsWith('EHLO')) { await peer.send(`250-mx.test\r\n250 ${ext}\r\n`); continue; }
            if (line === 'QUIT') { await peer.send('221 bye\r\n'); peer.close(); return; }
            clientLines.push(line);
            const name = /^AUTH (\S+)/.exec(line)?.[1] ?? '';
            const needed = name === 'LOGIN' ? 2 : 1;
            let got = /^AUTH \S+ \S+/.test(line) ? 1 : 0;
            const prompts = name === 'LOGIN' ? ['VXNlcm5hbWU6', 'UGFzc3dvcmQ6'] : name === 'CRAM-MD5' ? [Buffer.from('<1896.697170952@mx.test>').toString('base64')] : [''];
            while (got < needed) {
              await peer.send(`334 ${prompts[got] ?? ''}\r\n`);
              const response = await peer.readLine();
              if (response === undefined) return;
              clientLines.push(response);
              got++;
            }
            void steps;
            await peer.send(outcome === 'success' ? '235 2.7.0 ok\r\n' : '535 5.7.8 authentication failed\r\n');
          }
        });
        const log: string[] = [];
        const events: unknown[] = [];
        const onEvent = (message: unknown) => events.push(message);
        const names = [CONNECT_CHANNEL, COMMAND_CHANNEL, REPLY_CHANNEL, SEND_CHANNEL, ERROR_CHANNEL];
        for (const n of names) dc.subscribe(n, onEvent);
        try {
          for (const level of [1, 2]) {
            client = await SMTP.connect(clientOptions(server, { debugLevel: level, debugOutput: (l) => log.push(l) }));
            const result = await client.login(USER, PASSWORD, options).then(() => undefined, (e: unknown) => e);
            if (outcome === 'success') expect(result).toBeUndefined();
            else {
              expect(result).toBeInstanceOf(SMTPAuthenticationError);
              expect(shape(result)).toMatchObject({ name: 'SMTPAuthenticationError', code: 'ERR_SMTP_AUTH', smtpCode: 535 });
              const e = result as SMTPAuthenticationError;
              expect(e.command).toMatch(/^AUTH [A-Z0-9-]+( \*\*\*\*)?$/);
              const dump = [e.message, String(e.stack), inspect(e, { depth: 6, showHidden: true }), JSON.stringify(e), String(e.command)].join('\n');
              for (const s of secrets(clientLines.filter((l) => l !== '*' && !/^AUTH [A-Z0-9-]+$/.test(l)).map((l) => l.replace(/^AUTH \S+ /, '')))) expect(dump).not.toContain(s);
            }
            await client.quit();
          }
        } finally {
          for (const n of names) dc.unsubscribe(n, onEvent);
        }
        // What the client really sent as secret material: the AUTH argument and each response line.
        const sent = clientLines.filter((l) => l !== '*' && !/^AUTH [A-Z0-9-]+$/.test(l)).map((l) => l.replace(/^AUTH \S+ /, ''));
        expect(sent.length).toBeGreaterThan(0);
        const everything = [...log, inspect(events, { depth: 8 })].join('\n');
        for (const s of secrets(sent)) expect(everything, s).not.toContain(s);
        expect(log.some((l) => l.includes('****'))).toBe(true);
        expect(log.some((l) => /^\d\d:\d\d:\d\d\.\d{6} send: 'AUTH/.test(l))).toBe(true);
      });
    }
  }

  it('J2 a failed AUTH keeps the server text but the client adds none of its own sent command', async () => {
    let argument = '';
    server = await hostileServer(esmtp({
      extensions: ['AUTH PLAIN'],
      on: (line) => {
        if (!line.startsWith('AUTH')) return undefined;
        argument = line.slice('AUTH PLAIN '.length);
        return `535 5.7.8 bad credentials for <${argument}>\r\n`;
      },
    }));
    client = await SMTP.connect(clientOptions(server));
    const error = await rejection(client.login(USER, PASSWORD));
    expect(shape(error)).toMatchObject({ name: 'SMTPAuthenticationError', code: 'ERR_SMTP_AUTH', smtpCode: 535 });
    expect(error.smtpError).toBe(`5.7.8 bad credentials for <${argument}>`);
    expect(error.command).toBe('AUTH PLAIN ****');
    // The secret appears once: inside the server's own text, never from the client.
    expect(error.message.split(argument).length - 1).toBe(1);
    expect(error.message).not.toContain(`AUTH PLAIN ${argument}`);
    expect(error.message).not.toContain(PASSWORD);
  });
});
