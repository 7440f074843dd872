// J — secrets and logs: no password, token, or encoding of either in the
// debug transcript, the diagnostics channels, error messages, `command`
// fields, util.inspect or JSON.stringify of any object of ours (J1); a
// failed AUTH keeps the server's text but not our own command (J2).

import diagnostics from 'node:diagnostics_channel';
import { createHmac } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { b64, clientPfx, expectError, run, serverTls, smtplib, testPki } from './helpers.js';

const { SMTPAuthenticationError } = smtplib;

const USER = 'alice@example.org';
const PASSWORD = 'Pa55-w0rd-SECRET';
const TOKEN = 'ya29.TOKEN-SECRET-abcdef';

/** Every form in which a secret could leak. */
function secretForms(): string[] {
  const cram = `${USER} ${createHmac('md5', PASSWORD).update('<1.2@mx>').digest('hex')}`;
  return [
    PASSWORD,
    b64(PASSWORD),
    b64(`\0${USER}\0${PASSWORD}`),
    TOKEN,
    b64(TOKEN),
    b64(`user=${USER}\x01auth=Bearer ${TOKEN}\x01\x01`),
    b64(cram),
    cram.split(' ')[1]!,
    'PRIVATE KEY',
    'pfx-SECRET',
  ];
}

function expectClean(what: string, text: string): void {
  for (const secret of secretForms()) expect(text.includes(secret), `${what} contains ${JSON.stringify(secret)}`).toBe(false);
}

/** Collects everything published on the library's diagnostics channels. */
function captureChannels(): { events: unknown[]; stop(): void } {
  const events: unknown[] = [];
  const names = ['smtplib:connect', 'smtplib:command', 'smtplib:reply', 'smtplib:send', 'smtplib:error'];
  const listener = (message: unknown) => events.push(message);
  for (const n of names) diagnostics.subscribe(n, listener);
  return { events, stop: () => { for (const n of names) diagnostics.unsubscribe(n, listener); } };
}

const dump = (value: unknown) => `${inspect(value, { depth: 8, showHidden: false })}\n${safeJson(value)}`;
function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? '';
  } catch (e) {
    return `unserializable: ${(e as Error).message}`;
  }
}

describe('J1 redaction in traces, errors, inspect and JSON', () => {
  const mechanisms: [string, string, (c: smtplib.SMTP) => Promise<unknown>, string][] = [
    ['PLAIN (initial response)', 'PLAIN', (c) => c.login(USER, PASSWORD), `C: AUTH PLAIN ${b64(`\0${USER}\0${PASSWORD}`)}\nS: 535 5.7.8 no\n`],
    ['LOGIN (two 334 steps)', 'LOGIN', (c) => c.login(USER, PASSWORD), `C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: ${b64(USER)}\nS: 334 UGFzc3dvcmQ6\nC: ${b64(PASSWORD)}\nS: 535 5.7.8 no\n`],
    ['CRAM-MD5', 'CRAM-MD5', (c) => c.login(USER, PASSWORD, { mechanism: 'CRAM-MD5' }), `C: AUTH CRAM-MD5\nS: 334 ${b64('<1.2@mx>')}\nC: ${b64(`${USER} ${createHmac('md5', PASSWORD).update('<1.2@mx>').digest('hex')}`)}\nS: 535 5.7.8 no\n`],
    ['XOAUTH2', 'XOAUTH2', (c) => c.login(USER, '', { token: TOKEN, mechanism: 'XOAUTH2' }), `C: AUTH XOAUTH2 ${b64(`user=${USER}\x01auth=Bearer ${TOKEN}\x01\x01`)}\nS: 535 5.7.8 no\n`],
    ['PLAIN via putcmd/docmd (raw AUTH line)', 'PLAIN', (c) => c.docmd('AUTH', `PLAIN ${b64(`\0${USER}\0${PASSWORD}`)}`).then((r) => { if (r.code !== 235) throw new SMTPAuthenticationError(r.code, r.message); }), `C: AUTH PLAIN ${b64(`\0${USER}\0${PASSWORD}`)}\nS: 535 5.7.8 no\n`],
  ];
  for (const [name, advertised, call, tail] of mechanisms) {
    it(`J1 ${name}: debug log, channels, error (message, command, inspect, JSON) and the client object hold no secret`, async () => {
      const channels = captureChannels();
      let client: smtplib.SMTP | undefined;
      const out = await run(
        `S: 220 mx ESMTP\nC: EHLO client.test\nS: 250-mx\nS: 250 AUTH ${advertised}\n${tail}`,
        async (connect) => {
          client = await connect();
          client.setDebugLevel(2);
          await client.ehlo();
          await call(client);
        },
        { cls: smtplib.SMTP_SSL, server: { tls: serverTls(), implicitTls: true } },
      ).finally(() => channels.stop());
      expect(out.server.mismatch).toBeUndefined();
      expect(out.error).toBeInstanceOf(SMTPAuthenticationError);
      // The secrets really crossed the wire (so the checks below mean something).
      expect(out.wire).toMatch(/AUTH/);
      expect(out.debug.some((l) => l.includes('AUTH'))).toBe(true);
      expectClean('debug log', out.debug.join('\n'));
      expectClean('diagnostics channels', dump(channels.events));
      expectClean('error', `${out.error!.message}\n${out.error!.stack}\n${String(out.error!.command)}\n${dump(out.error)}`);
      expectClean('client', dump(client));
    });
  }

  it('J1 util.inspect and JSON.stringify of a client configured with a client key, pfx passphrase and password-bearing options', () => {
    const p = testPki();
    const client = new smtplib.SMTP({ host: 'mail.example.test', tls: { ca: p.ca, key: p.client.key, cert: p.client.cert, pfx: clientPfx('pfx-SECRET'), passphrase: 'pfx-SECRET' } });
    expectClean('client', dump(client));
  });

  it('J1 util.inspect and JSON.stringify of a pool with credentials', async () => {
    const pool = new smtplib.SMTPPool({ host: 'mail.example.test', auth: { user: USER, password: PASSWORD, token: TOKEN } } as never);
    try {
      expectClean('pool', dump(pool));
    } finally {
      await (pool as unknown as { close?: () => Promise<void> }).close?.();
    }
  });

  it('J1 mechanism objects print only their name', async () => {
    for (const m of [
      smtplib.plainMechanism({ user: USER, password: PASSWORD }),
      smtplib.loginMechanism({ user: USER, password: PASSWORD }),
      smtplib.cramMd5Mechanism({ user: USER, password: PASSWORD }),
      smtplib.xoauth2Mechanism({ user: USER, token: TOKEN }),
      smtplib.oauthBearerMechanism({ user: USER, token: TOKEN }),
      smtplib.scramMechanism('SCRAM-SHA-256', { user: USER, password: PASSWORD }),
    ]) {
      expectClean(m.name, `${dump(m)}\n${String(m)}`);
    }
  });
});

describe('J2 failed AUTH error text', () => {
  it('J2 the server echoes our base64 back in its 535: the server text is kept, our command is not added, `command` is masked', async () => {
    const echoed = b64(`\0${USER}\0${PASSWORD}`);
    const out = await run(
      `S: 220 mx ESMTP\nC: EHLO client.test\nS: 250-mx\nS: 250 AUTH PLAIN\nC: AUTH PLAIN ${echoed}\nS: 535 5.7.8 bad credentials for ${echoed}\n`,
      async (connect) => {
        const c = await connect();
        await c.ehlo();
        await c.login(USER, PASSWORD);
      },
      { cls: smtplib.SMTP_SSL, server: { tls: serverTls(), implicitTls: true } },
    );
    expectError(out.error, SMTPAuthenticationError, 'ERR_SMTP_AUTH', 'AUTH PLAIN failed: 535 5.7.8 bad credentials for');
    expect((out.error as InstanceType<typeof SMTPAuthenticationError>).smtpCode).toBe(535);
    expect((out.error as InstanceType<typeof SMTPAuthenticationError>).smtpError).toContain('bad credentials for');
    expect((out.error as InstanceType<typeof SMTPAuthenticationError>).command).toBe('AUTH PLAIN ****');
    // Our own AUTH line appears at most as often as the server itself echoed it (once), never added by us.
    expect(out.error!.message.split(echoed).length - 1).toBeLessThanOrEqual(1);
    expect(out.error!.message).not.toContain(`AUTH PLAIN ${echoed}`);
    expect(out.error!.message).not.toContain(PASSWORD);
  });
});
