// D — authentication: where cleartext mechanisms may run (D1, D2, D11), one
// attempt per login (D4), hostile challenges (D5, D7), success only on 235
// (D8), NUL in PLAIN (D10), CRAM-MD5 opt-in (D12); wire transcripts against
// the RFC test vectors of each mechanism; SCRAM-SHA-256-PLUS with
// tls-exporter against a server that checks the proof and the binding; and
// OAuth token callbacks.

import net from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { b64, directTo, expectError, lookupTo, run, serverTls, smtplib, testPki, tunnel } from './helpers.js';
import { startScramPlusServer } from './scram-plus-server.js';

const { SMTP_SSL, LMTP, SMTPNotSupportedError, SMTPAuthenticationError, SMTPInvalidArgumentError } = smtplib;

/** A remote peer (through a tunnel) with plaintext by explicit policy. */
const plaintextRemote = (over: smtplib.SMTPOptions = {}) => (port: number): smtplib.SMTPOptions => ({
  host: 'mail.example.test',
  port,
  tlsPolicy: 'none',
  connect: tunnel(port),
  ...over,
});

const ehloWith = (auth: string) => `S: 220 mx ESMTP
C: EHLO client.test
S: 250-mx
S: 250 AUTH ${auth}
`;

const REFUSAL = 'refusing to send credentials';

describe('D1/D11 no cleartext mechanisms without TLS to a remote peer', () => {
  const cases: [string, (c: smtplib.SMTP) => Promise<unknown>, string][] = [
    ['login() with PLAIN LOGIN advertised', (c) => c.login('user', 'secret'), 'PLAIN LOGIN'],
    ['login() with only LOGIN advertised (D11 stripped list)', (c) => c.login('user', 'secret'), 'LOGIN'],
    ['login() with a token and XOAUTH2 OAUTHBEARER advertised', (c) => c.login('user', '', { token: 'tok-SECRET' }), 'XOAUTH2 OAUTHBEARER'],
    ["login() naming mechanism 'PLAIN'", (c) => c.login('user', 'secret', { mechanism: 'PLAIN' }), 'PLAIN CRAM-MD5'],
    ["auth('PLAIN', callable)", (c) => c.auth('PLAIN', () => '\0user\0secret'), 'PLAIN'],
    ["auth('XOAUTH2', mechanism object)", (c) => c.auth('XOAUTH2', smtplib.xoauth2Mechanism({ user: 'user', token: 'tok-SECRET' })), 'XOAUTH2'],
    ["auth('OAUTHBEARER', factory)", (c) => c.auth('OAUTHBEARER', () => smtplib.oauthBearerMechanism({ user: 'user', token: 'tok-SECRET' })), 'OAUTHBEARER'],
  ];
  for (const [name, call, advertised] of cases) {
    it(`D1 ${name}: refused before anything is written`, async () => {
      const out = await run(ehloWith(advertised) + 'S: <read-until-close>', async (connect) => {
        const c = await connect();
        await c.ehlo();
        try {
          await call(c);
        } finally {
          expect(c.isConnected).toBe(true);
        }
      }, { client: plaintextRemote() });
      expectError(out.error, SMTPNotSupportedError, 'ERR_SMTP_NOT_SUPPORTED', REFUSAL, 'over an unencrypted connection to mail.example.test', 'allowCleartextAuth');
      expect(out.wire).toBe('EHLO client.test\r\n');
    });
  }

  it('D1 a custom mechanism that declares sendsCleartext is refused the same way', async () => {
    const custom: smtplib.SaslMechanism = { name: 'X-CLEAR', sendsCleartext: true, start: () => Buffer.from('secret'), step: () => Buffer.alloc(0) };
    const out = await run(ehloWith('X-CLEAR') + 'S: <read-until-close>', async (connect) => {
      const c = await connect();
      await c.ehlo();
      await c.auth('X-CLEAR', custom);
    }, { client: plaintextRemote() });
    expectError(out.error, SMTPNotSupportedError, 'ERR_SMTP_NOT_SUPPORTED', REFUSAL);
    expect(out.wire).toBe('EHLO client.test\r\n');
  });

  it('D1 allowCleartextAuth is the explicit opt-out: PLAIN is then sent', async () => {
    const out = await run(ehloWith('PLAIN LOGIN') + `C: AUTH PLAIN ${b64('\0user\0secret')}\nS: 235 ok\n`, async (connect) => {
      const c = await connect();
      await c.ehlo();
      return (await c.login('user', 'secret')).code;
    }, { client: plaintextRemote({ allowCleartextAuth: true }) });
    expect(out.error).toBeNull();
    expect(out.value).toBe(235);
  });

  it('D1 a challenge-response mechanism (SCRAM) is allowed in plaintext, and preferred over PLAIN', async () => {
    const out = await run(ehloWith('PLAIN SCRAM-SHA-256') + 'S: <read-until-close>', async (connect) => {
      const c = await connect();
      await c.ehlo();
      await c.login('user', 'secret');
    }, { client: plaintextRemote({ timeout: 800 }) });
    expect(out.error).toBeInstanceOf(smtplib.SMTPTimeoutError);
    expect(out.wire).toMatch(/^EHLO client\.test\r\nAUTH SCRAM-SHA-256 [A-Za-z0-9+/=]+\r\n$/);
    expect(Buffer.from(out.wire.split(' ').pop()!.trim(), 'base64').toString()).toMatch(/^n,,n=user,r=/);
  });
});

describe('D2 loopback exception is by peer address, not by name', () => {
  it('D2 plaintext PLAIN to 127.0.0.1 is allowed', async () => {
    const out = await run(ehloWith('PLAIN') + `C: AUTH PLAIN ${b64('\0user\0secret')}\nS: 235 ok\n`, async (connect) => {
      const c = await connect();
      await c.ehlo();
      return (await c.login('user', 'secret')).code;
    });
    expect(out.error).toBeNull();
    expect(out.value).toBe(235);
  });

  it('D2 plaintext PLAIN to ::1 is allowed', async () => {
    const out = await run(ehloWith('PLAIN') + `C: AUTH PLAIN ${b64('\0user\0secret')}\nS: 235 ok\n`, async (connect) => {
      const c = await connect();
      await c.ehlo();
      return (await c.login('user', 'secret')).code;
    }, { server: { host: '::1' }, client: (port) => ({ host: '::1', port }) });
    expect(out.error).toBeNull();
    expect(out.value).toBe(235);
  });

  it('D2 through a connect hook the named host decides: a remote name behind a loopback tunnel is refused', async () => {
    const out = await run(ehloWith('PLAIN LOGIN') + 'S: <read-until-close>', async (connect) => {
      const c = await connect();
      await c.ehlo();
      await c.login('user', 'secret');
    }, { client: (port) => ({ host: 'mail.example.test', port, tlsPolicy: 'none', connect: tunnel(port) }) });
    expectError(out.error, SMTPNotSupportedError, 'ERR_SMTP_NOT_SUPPORTED', REFUSAL, 'to mail.example.test');
    expect(out.wire).toBe('EHLO client.test\r\n');
  });

  it('D2 LMTP over a Unix socket: plaintext PLAIN is allowed (the peer is this machine)', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'smtplib-lmtp-')), 'lmtp.sock');
    const seen: string[] = [];
    const server = net.createServer((s) => {
      s.write('220 lmtp ready\r\n');
      let buf = '';
      s.on('data', (d) => {
        buf += d.toString('latin1');
        let i;
        while ((i = buf.indexOf('\r\n')) !== -1) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 2);
          seen.push(line);
          if (line.startsWith('LHLO')) s.write('250-lmtp\r\n250 AUTH PLAIN\r\n');
          else if (line.startsWith('AUTH')) s.write('235 ok\r\n');
          else s.write('221 bye\r\n');
        }
      });
      s.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(path, r));
    try {
      const c = await LMTP.connect({ host: path, localHostname: 'client.test', timeout: 3000 });
      expect(c.tlsPolicy).toBe('none');
      await c.ehlo();
      expect((await c.login('user', 'secret')).code).toBe(235);
      c.close();
      expect(seen).toEqual(['LHLO client.test', `AUTH PLAIN ${b64('\0user\0secret')}`]);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('D4 one attempt per login(), no retry after 535', () => {
  it('D4 CRAM-MD5 PLAIN LOGIN advertised, 535 to PLAIN: exactly one AUTH line, the password sent once; the connection stays usable', async () => {
    const out = await run(
      `S: 220 mx ESMTP
C: EHLO client.test
S: 250-mx
S: 250 STARTTLS
C: STARTTLS
S: 220 go
S: <starttls>
C: EHLO client.test
S: 250-mx
S: 250 AUTH CRAM-MD5 PLAIN LOGIN
C: AUTH PLAIN ${b64('\0user\0secret')}
S: 535 5.7.8 Authentication credentials invalid
C: NOOP
S: 250 ok
`,
      async (connect) => {
        const c = await connect();
        const error = await c.login('user', 'secret').then(() => null, (e: unknown) => e);
        expectError(error, SMTPAuthenticationError, 'ERR_SMTP_AUTH', 'AUTH PLAIN failed: 535 5.7.8 Authentication credentials invalid');
        expect((error as InstanceType<typeof SMTPAuthenticationError>).smtpCode).toBe(535);
        expect((error as InstanceType<typeof SMTPAuthenticationError>).mechanism).toBe('PLAIN');
        expect(c.isConnected).toBe(true);
        expect(c.isAuthenticated).toBe(false);
        await c.noop();
      },
      { client: (port) => ({ host: 'mail.example.test', port, lookup: lookupTo() }), server: { tls: serverTls() } },
    );
    expect(out.error).toBeNull();
    expect(out.server.mismatch).toBeUndefined();
    expect(out.wire.split('\r\n').filter((l) => l.startsWith('AUTH'))).toHaveLength(1);
  });
});

describe('D5/D7/D8 hostile challenges and replies', () => {
  it('D5 endless 334: cancelled with "*" after 5 challenges, SMTPAuthenticationError; the connection stays usable', async () => {
    const challenge = `S: 334 ${b64('again')}`;
    const round = `${challenge}\nC: ${b64('answer')}\n`;
    const out = await run(
      ehloWith('X-LOOP') + `C: AUTH X-LOOP\n` + round.repeat(5) + `${challenge}\nC: *\nS: 501 5.7.0 cancelled\nC: NOOP\nS: 250 ok\n`,
      async (connect) => {
        const c = await connect();
        await c.ehlo();
        const error = await c.auth('X-LOOP', (ch) => (ch === null ? (undefined as never) : 'answer'), { initialResponseOk: false }).then(() => null, (e: unknown) => e);
        expectError(error, SMTPAuthenticationError, 'ERR_SMTP_AUTH', 'more than 5 AUTH challenges', 'cancelled');
        expect(c.isConnected).toBe(true);
        await c.noop();
      },
    );
    expect(out.error).toBeNull();
    expect(out.server.mismatch).toBeUndefined();
  });

  it('D5 endless 334 against LOGIN: the mechanism gives up at the third challenge, "*" is sent, the password went out once', async () => {
    const out = await run(
      ehloWith('LOGIN') +
        `C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: ${b64('user')}
S: 334 UGFzc3dvcmQ6
C: ${b64('secret')}
S: 334 UGFzc3dvcmQ6
C: *
S: 501 cancelled
`,
      async (connect) => {
        const c = await connect();
        await c.ehlo();
        await c.login('user', 'secret', { mechanism: 'LOGIN' });
      },
    );
    expectError(out.error, SMTPAuthenticationError, 'ERR_SMTP_AUTH', 'AUTH LOGIN cancelled');
    expect(out.server.mismatch).toBeUndefined();
    expect(out.wire.split(b64('secret')).length - 1).toBe(1);
  });

  for (const bad of ['!!!notbase64', 'abc', 'Zm9v=YmFy']) {
    it(`D7 bad base64 challenge "${bad}": cancelled with "*", typed error, no crash, no hang`, async () => {
      const out = await run(
        ehloWith('LOGIN') + `C: AUTH LOGIN\nS: 334 ${bad}\nC: *\nS: 501 cancelled\nC: NOOP\nS: 250 ok\n`,
        async (connect) => {
          const c = await connect();
          await c.ehlo();
          const error = await c.login('user', 'secret', { mechanism: 'LOGIN' }).then(() => null, (e: unknown) => e);
          expectError(error, SMTPAuthenticationError, 'ERR_SMTP_AUTH', 'not valid base64');
          await c.noop();
        },
      );
      expect(out.error).toBeNull();
      expect(out.server.mismatch).toBeUndefined();
      expect(out.wire).not.toContain(b64('user'));
    });
  }

  const notSuccess: [string, string, string][] = [
    ['250 ok', '250', 'AUTH PLAIN failed: 250 ok'],
    ['503 5.5.1 already authenticated', '503', 'AUTH PLAIN failed: 503'],
    ['334 ', '334-after-final', 'AUTH PLAIN cancelled'],
    ['220 welcome', '220', 'AUTH PLAIN failed: 220'],
  ];
  for (const [reply, label, message] of notSuccess) {
    it(`D8 success only on 235: "${reply.trim()}" after AUTH PLAIN is an SMTPAuthenticationError (${label})`, async () => {
      const cancel = reply.startsWith('334') ? 'C: *\nS: 501 cancelled\n' : '';
      const out = await run(
        ehloWith('PLAIN') + `C: AUTH PLAIN ${b64('\0user\0secret')}\nS: ${reply}\n${cancel}`,
        async (connect) => {
          const c = await connect();
          await c.ehlo();
          try {
            await c.login('user', 'secret');
          } finally {
            expect(c.isAuthenticated).toBe(false);
          }
        },
      );
      expectError(out.error, SMTPAuthenticationError, 'ERR_SMTP_AUTH', message);
      expect(out.server.mismatch).toBeUndefined();
      // The password was not offered a second time in answer to the extra challenge.
      expect(out.wire.split(b64('\0user\0secret')).length - 1).toBe(1);
    });
  }
});

describe('D10 NUL in PLAIN fields', () => {
  for (const [user, password, authzid] of [['us\0er', 'secret', undefined], ['user', 'sec\0ret', undefined], ['user', 'secret', 'ad\0min']] as const) {
    it(`D10 NUL in ${user.includes('\0') ? 'the user name' : password.includes('\0') ? 'the password' : 'the authzid'}: refused before AUTH is written`, async () => {
      const out = await run(ehloWith('PLAIN') + 'C: NOOP\nS: 250 ok\n', async (connect) => {
        const c = await connect();
        await c.ehlo();
        const error = await c.login(user, password, authzid ? { authzid } : {}).then(() => null, (e: unknown) => e);
        expectError(error, SMTPInvalidArgumentError, 'ERR_SMTP_INVALID_ARGUMENT', 'nothing was sent', 'must not contain NUL');
        expect((error as Error).message).not.toContain('secret');
        expect(c.isConnected).toBe(true);
        await c.noop();
      });
      expect(out.error).toBeNull();
      expect(out.wire).toBe('EHLO client.test\r\nNOOP\r\n');
    });
  }
});

describe('D11/D12 mechanism choice', () => {
  const overTls = (auth: string, tail: string) => `S: 220 mx ESMTP
C: EHLO client.test
S: 250-mx
S: 250 AUTH ${auth}
${tail}`;

  it('D12 CRAM-MD5 PLAIN over TLS: PLAIN is chosen, not CRAM-MD5', async () => {
    const out = await run(overTls('CRAM-MD5 PLAIN', `C: AUTH PLAIN ${b64('\0user\0secret')}\nS: 235 ok\n`), async (connect) => (await (await connect()).login('user', 'secret')).code, {
      cls: SMTP_SSL, client: () => ({}), server: { tls: serverTls(), implicitTls: true },
    });
    expect(out.error).toBeNull();
    expect(out.value).toBe(235);
  });

  it('D12 only CRAM-MD5 advertised: not used unless named', async () => {
    const out = await run(overTls('CRAM-MD5', 'C: NOOP\nS: 250 ok\n'), async (connect) => {
      const c = await connect();
      const error = await c.login('user', 'secret').then(() => null, (e: unknown) => e);
      expectError(error, SMTPNotSupportedError, 'ERR_SMTP_NOT_SUPPORTED', 'no suitable authentication method', 'CRAM-MD5');
      await c.noop();
    }, { cls: SMTP_SSL, server: { tls: serverTls(), implicitTls: true } });
    expect(out.error).toBeNull();
    expect(out.wire).toBe('EHLO client.test\r\nNOOP\r\n');
  });

  it('D12 CRAM-MD5 by preference list (opt-in by name) is used', async () => {
    const out = await run(
      overTls('CRAM-MD5 PLAIN', `C: AUTH CRAM-MD5\nS: 334 ${b64('<1.2@mx>')}\nC: ${b64('user ' + (await import('node:crypto')).createHmac('md5', 'secret').update('<1.2@mx>').digest('hex'))}\nS: 235 ok\n`),
      async (connect) => (await (await connect()).login('user', 'secret', { mechanisms: ['CRAM-MD5', 'PLAIN'] })).code,
      { cls: SMTP_SSL, server: { tls: serverTls(), implicitTls: true } },
    );
    expect(out.error).toBeNull();
    expect(out.value).toBe(235);
  });

  it("D11 a list stripped to LOGIN never overrides the caller's policy (mechanisms: SCRAM only)", async () => {
    const out = await run(overTls('LOGIN', 'C: NOOP\nS: 250 ok\n'), async (connect) => {
      const c = await connect();
      const error = await c.login('user', 'secret', { mechanisms: ['SCRAM-SHA-256'] }).then(() => null, (e: unknown) => e);
      expectError(error, SMTPNotSupportedError, 'ERR_SMTP_NOT_SUPPORTED', 'no suitable authentication method');
      await c.noop();
    }, { cls: SMTP_SSL, server: { tls: serverTls(), implicitTls: true } });
    expect(out.error).toBeNull();
    expect(out.wire).toBe('EHLO client.test\r\nNOOP\r\n');
  });

  it('login() naming a mechanism the server did not advertise is refused without writing', async () => {
    const out = await run(overTls('PLAIN', 'C: NOOP\nS: 250 ok\n'), async (connect) => {
      const c = await connect();
      const error = await c.login('user', 'secret', { mechanism: 'SCRAM-SHA-256' }).then(() => null, (e: unknown) => e);
      expectError(error, SMTPNotSupportedError, 'ERR_SMTP_NOT_SUPPORTED', 'does not offer AUTH SCRAM-SHA-256');
      await c.noop();
    }, { cls: SMTP_SSL, server: { tls: serverTls(), implicitTls: true } });
    expect(out.error).toBeNull();
    expect(out.wire).toBe('EHLO client.test\r\nNOOP\r\n');
  });
});

describe('mechanism transcripts against RFC test vectors', () => {
  const loopback = (auth: string, tail: string) => ehloWith(auth) + tail;

  it('PLAIN, RFC 4616 §4 ("tim" / "tanstaaftanstaaf")', async () => {
    const out = await run(loopback('PLAIN', 'C: AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\nS: 235 ok\n'), async (connect) => {
      const c = await connect();
      await c.ehlo();
      return (await c.login('tim', 'tanstaaftanstaaf')).code;
    });
    expect(out.error).toBeNull();
    expect(out.server.mismatch).toBeUndefined();
  });

  it('PLAIN without initial response (initialResponseOk: false): empty 334, then the message', async () => {
    const out = await run(loopback('PLAIN', 'C: AUTH PLAIN\nS: 334 \nC: AHRpbQB0YW5zdGFhZnRhbnN0YWFm\nS: 235 ok\n'), async (connect) => {
      const c = await connect();
      await c.ehlo();
      return (await c.login('tim', 'tanstaaftanstaaf', { initialResponseOk: false })).code;
    });
    expect(out.error).toBeNull();
    expect(out.server.mismatch).toBeUndefined();
  });

  it('LOGIN (draft-murchison-sasl-login): Username:/Password: challenges', async () => {
    const out = await run(loopback('LOGIN', `C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: ${b64('tim')}\nS: 334 UGFzc3dvcmQ6\nC: ${b64('tanstaaftanstaaf')}\nS: 235 ok\n`), async (connect) => {
      const c = await connect();
      await c.ehlo();
      return (await c.login('tim', 'tanstaaftanstaaf')).code;
    });
    expect(out.error).toBeNull();
    expect(out.server.mismatch).toBeUndefined();
  });

  it('CRAM-MD5, RFC 2195 §2 (challenge <1896.697170952@postoffice.reston.mci.net>)', async () => {
    const out = await run(
      loopback('CRAM-MD5', 'C: AUTH CRAM-MD5\nS: 334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\nC: dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\nS: 235 ok\n'),
      async (connect) => {
        const c = await connect();
        await c.ehlo();
        return (await c.login('tim', 'tanstaaftanstaaf', { mechanism: 'CRAM-MD5' })).code;
      },
    );
    expect(out.error).toBeNull();
    expect(out.server.mismatch).toBeUndefined();
  });

  it('SCRAM-SHA-1, RFC 5802 §5 (user / pencil)', async () => {
    const nonce = 'fyko+d2lbbFgONRv9qkxdawL';
    const server = 'fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j';
    const out = await run(
      loopback('SCRAM-SHA-1', `C: AUTH SCRAM-SHA-1 ${b64(`n,,n=user,r=${nonce}`)}
S: 334 ${b64(`r=${server},s=QSXCR+Q6sek8bf92,i=4096`)}
C: ${b64(`c=biws,r=${server},p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=`)}
S: 334 ${b64('v=rmF9pqV8S7suAoZWja4dJRkFsKQ=')}
C:
S: 235 ok
`),
      async (connect) => {
        const c = await connect();
        await c.ehlo();
        return (await c.auth('SCRAM-SHA-1', () => smtplib.scramMechanism('SCRAM-SHA-1', { user: 'user', password: 'pencil' }, { clientNonce: nonce }))).code;
      },
    );
    expect(out.error).toBeNull();
    expect(out.value).toBe(235);
    expect(out.server.mismatch).toBeUndefined();
  });

  it('SCRAM-SHA-256, RFC 7677 §3 (user / pencil)', async () => {
    const nonce = 'rOprNGfwEbeRWgbNEkqO';
    const server = 'rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
    const out = await run(
      loopback('SCRAM-SHA-256', `C: AUTH SCRAM-SHA-256 ${b64(`n,,n=user,r=${nonce}`)}
S: 334 ${b64(`r=${server},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`)}
C: ${b64(`c=biws,r=${server},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=`)}
S: 334 ${b64('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')}
C:
S: 235 ok
`),
      async (connect) => {
        const c = await connect();
        await c.ehlo();
        return (await c.auth('SCRAM-SHA-256', () => smtplib.scramMechanism('SCRAM-SHA-256', { user: 'user', password: 'pencil' }, { clientNonce: nonce }))).code;
      },
    );
    expect(out.error).toBeNull();
    expect(out.value).toBe(235);
    expect(out.server.mismatch).toBeUndefined();
  });

  it('SCRAM-SHA-256 with a forged server signature: 235 is not trusted, the connection is destroyed', async () => {
    const nonce = 'rOprNGfwEbeRWgbNEkqO';
    const server = 'rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
    const out = await run(
      loopback('SCRAM-SHA-256', `C: AUTH SCRAM-SHA-256 ${b64(`n,,n=user,r=${nonce}`)}
S: 334 ${b64(`r=${server},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`)}
C: ${b64(`c=biws,r=${server},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=`)}
S: 235 ok
`),
      async (connect) => {
        const c = await connect();
        await c.ehlo();
        try {
          await c.auth('SCRAM-SHA-256', () => smtplib.scramMechanism('SCRAM-SHA-256', { user: 'user', password: 'pencil' }, { clientNonce: nonce }));
        } finally {
          expect(c.isConnected).toBe(false);
          expect(c.isAuthenticated).toBe(false);
        }
      },
    );
    expectError(out.error, SMTPAuthenticationError, 'ERR_SMTP_AUTH', 'failed mutual authentication');
  });

  it('OAUTHBEARER, RFC 7628 §4.1 (user@example.com to server.example.com port 143)', async () => {
    const vector = 'bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB';
    const out = await run(loopback('OAUTHBEARER', `C: AUTH OAUTHBEARER ${vector}\nS: 235 ok\n`), async (connect) => {
      const c = await connect();
      await c.ehlo();
      return (await c.login('user@example.com', '', { token: 'vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==' })).code;
    }, { client: (port) => ({ host: 'server.example.com', port: 143, tlsPolicy: 'none', allowCleartextAuth: true, connect: directTo(port) }) });
    expect(out.error).toBeNull();
    expect(out.value).toBe(235);
    expect(out.server.mismatch).toBeUndefined();
  });

  it('OAUTHBEARER failure, RFC 7628 §3.2.3: error challenge answered with a single %x01, then the 5xx is reported', async () => {
    const error = b64('{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}');
    const real = await run(
      ehloWith('OAUTHBEARER') +
        `C: AUTH OAUTHBEARER ${b64('n,,\x01host=server.example.com\x01port=143\x01auth=Bearer expired-token\x01\x01')}
S: 334 ${error}
C: AQ==
S: 535 5.7.8 Authentication failed
`,
      async (connect) => {
        const c = await connect();
        await c.ehlo();
        await c.login('', '', { token: () => 'expired-token', mechanism: 'OAUTHBEARER' });
      },
      { client: (port) => ({ host: 'server.example.com', port: 143, tlsPolicy: 'none', allowCleartextAuth: true, connect: directTo(port) }) },
    );
    expectError(real.error, SMTPAuthenticationError, 'ERR_SMTP_AUTH', 'AUTH OAUTHBEARER failed: 535');
    expect(real.server.mismatch).toBeUndefined();
  });

  it('XOAUTH2 (Google protocol): user=…^Aauth=Bearer …^A^A; error challenge answered with an empty line', async () => {
    const out = await run(
      ehloWith('XOAUTH2') +
        `C: AUTH XOAUTH2 ${b64('user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01')}
S: 334 ${b64('{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}')}
C:
S: 535 5.7.8 Username and Password not accepted
`,
      async (connect) => {
        const c = await connect();
        await c.ehlo();
        await c.login('someuser@example.com', '', { token: 'ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg' });
      },
    );
    expectError(out.error, SMTPAuthenticationError, 'ERR_SMTP_AUTH', 'AUTH XOAUTH2 failed: 535');
    expect(out.server.mismatch).toBeUndefined();
  });
});

describe('OAuth token callbacks', () => {
  it('the token function is called once per login() and its value is sent (XOAUTH2 preferred order: OAUTHBEARER first)', async () => {
    let calls = 0;
    const token = async () => `tok-${++calls}`;
    const real = await run(
      ehloWith('XOAUTH2 OAUTHBEARER') +
        `C: AUTH OAUTHBEARER ${b64('n,a=user@example.org,\x01host=smtp.example.org\x01port=587\x01auth=Bearer tok-1\x01\x01')}\nS: 235 ok\n`,
      async (connect) => {
        const c = await connect();
        await c.ehlo();
        return (await c.login('user@example.org', '', { token })).code;
      },
      { client: (port) => ({ host: 'smtp.example.org', port: 587, tlsPolicy: 'none', allowCleartextAuth: true, connect: directTo(port) }) },
    );
    expect(real.error).toBeNull();
    expect(real.server.mismatch).toBeUndefined();
    expect(calls).toBe(1);
  });

  it('XOAUTH2 by name with a token function', async () => {
    let calls = 0;
    const out = await run(
      ehloWith('XOAUTH2 OAUTHBEARER') + `C: AUTH XOAUTH2 ${b64('user=u@example.org\x01auth=Bearer fresh-token\x01\x01')}\nS: 235 ok\n`,
      async (connect) => {
        const c = await connect();
        await c.ehlo();
        return (await c.login('u@example.org', '', { mechanism: 'XOAUTH2', token: () => { calls++; return 'fresh-token'; } })).code;
      },
    );
    expect(out.error).toBeNull();
    expect(out.value).toBe(235);
    expect(calls).toBe(1);
  });

  it('a token function that throws: SMTPAuthenticationError, nothing written, the cause kept', async () => {
    const out = await run(ehloWith('XOAUTH2') + 'C: NOOP\nS: 250 ok\n', async (connect) => {
      const c = await connect();
      await c.ehlo();
      const error = await c.login('u@example.org', '', { token: () => { throw new Error('refresh failed'); } }).then(() => null, (e: unknown) => e);
      expectError(error, SMTPAuthenticationError, 'ERR_SMTP_AUTH', 'could not start', 'refresh failed');
      await c.noop();
    });
    expect(out.error).toBeNull();
    expect(out.wire).toBe('EHLO client.test\r\nNOOP\r\n');
  });
});

describe('SCRAM-SHA-256-PLUS with tls-exporter (TLS 1.3)', () => {
  it('login() picks SCRAM-SHA-256-PLUS over TLS 1.3; the server verifies the proof and the tls-exporter binding', async () => {
    const server = await startScramPlusServer({ password: 'pässwörd' });
    try {
      const c = await SMTP_SSL.connect({ host: '127.0.0.1', port: server.port, tls: { ca: testPki().ca }, localHostname: 'client.test', timeout: 5000 });
      const reply = await c.login('user', 'pässwörd');
      expect(reply.code).toBe(235);
      expect(c.isAuthenticated).toBe(true);
      c.close();
      expect(server.record.protocol).toBe('TLSv1.3');
      expect(server.record.gs2Header).toBe('p=tls-exporter,,');
      expect(server.record.bindingChecked).toBe(true);
      expect(server.record.proofChecked).toBe(true);
      expect(server.record.lines[1]).toMatch(/^AUTH SCRAM-SHA-256-PLUS /);
    } finally {
      await server.close();
    }
  });

  it('a different TLS session on the server side (MitM) breaks the binding: 535, SMTPAuthenticationError', async () => {
    const server = await startScramPlusServer({ password: 'pencil', tamperBinding: true });
    try {
      const c = await SMTP_SSL.connect({ host: '127.0.0.1', port: server.port, tls: { ca: testPki().ca }, localHostname: 'client.test', timeout: 5000 });
      const error = await c.login('user', 'pencil').then(() => null, (e: unknown) => e);
      c.close();
      expectError(error, SMTPAuthenticationError, 'ERR_SMTP_AUTH', 'AUTH SCRAM-SHA-256-PLUS failed: 535');
      expect(server.record.bindingChecked).toBe(false);
      expect(server.record.proofChecked).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('a server that cannot prove it knows the password (wrong v=) is refused and the connection destroyed', async () => {
    const server = await startScramPlusServer({ password: 'pencil', wrongServerSignature: true });
    try {
      const c = await SMTP_SSL.connect({ host: '127.0.0.1', port: server.port, tls: { ca: testPki().ca }, localHostname: 'client.test', timeout: 5000 });
      const error = await c.login('user', 'pencil').then(() => null, (e: unknown) => e);
      expectError(error, SMTPAuthenticationError, 'ERR_SMTP_AUTH', 'AUTH SCRAM-SHA-256-PLUS cancelled', /server signature/i);
      expect(c.isAuthenticated).toBe(false);
      // The client answered the forged v= with "*", not with the empty "I accept" response.
      expect(server.record.lines.slice(3)).toEqual(['*']);
      expect(server.record.lines.filter((l) => l.startsWith('AUTH'))).toHaveLength(1);
      c.close();
    } finally {
      await server.close();
    }
  });

  it('TLS 1.2 only: -PLUS binds with tls-unique (RFC 5929) instead, checked by the server', async () => {
    const server = await startScramPlusServer({ password: 'pencil', tls12: true });
    try {
      const c = await SMTP_SSL.connect({ host: '127.0.0.1', port: server.port, tls: { ca: testPki().ca }, localHostname: 'client.test', timeout: 5000 });
      expect((await c.login('user', 'pencil')).code).toBe(235);
      c.close();
      expect(server.record.protocol).toBe('TLSv1.2');
      expect(server.record.gs2Header).toBe('p=tls-unique,,');
      expect(server.record.bindingChecked).toBe(true);
    } finally {
      await server.close();
    }
  });
});
