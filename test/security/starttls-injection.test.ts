// B — STARTTLS response injection and buffering (NO STARTTLS "Buffering"),
// and the rule that nothing from the plaintext phase survives the upgrade.

import { describe, expect, it } from 'vitest';
import { expectError, expectNoCommand, lookupTo, run, serverTls, smtplib, type Step } from './helpers.js';

const { SMTPTLSError, SMTPNotSupportedError } = smtplib;

const send = (text: string): Step => ({ kind: 'send', data: Buffer.from(text, 'latin1') });
const expectLine = (text: string): Step => ({ kind: 'expect', data: Buffer.from(`${text}\r\n`, 'latin1') });

const remote = (over: smtplib.SMTPOptions = {}) => (port: number): smtplib.SMTPOptions => ({
  host: 'mail.example.test',
  port,
  lookup: lookupTo(),
  ...over,
});

const upToStarttls: Step[] = [
  send('220 mx.example.test ESMTP\r\n'),
  expectLine('EHLO client.test'),
  send('250-mx.example.test\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n'),
  expectLine('STARTTLS'),
];

const INJECTION = /sent data after its STARTTLS 220 reply and before the TLS handshake/;

describe('B1/B2 bytes after the STARTTLS 220', () => {
  it('B1 complete injected replies in the same segment as the 220: fail closed before the handshake, never AUTH', async () => {
    const out = await run(
      [...upToStarttls, send('220 Ready\r\n250-example.org\r\n250 AUTH LOGIN\r\n'), { kind: 'starttls' }, { kind: 'stall' }],
      async (connect) => {
        const c = await connect();
        await c.login('user', 'secret');
      },
      { client: remote(), server: { tls: serverTls() } },
    );
    expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', INJECTION, 'response-injection');
    expect(out.wire).toBe('EHLO client.test\r\nSTARTTLS\r\n');
    expect(out.server.injectedByClient.length).toBe(0);
    // The handshake never started: the client closed the socket instead of sending a ClientHello.
    expect(out.server.received.some((r) => r.secure)).toBe(false);
  });

  it('B1 under opportunistic the injection is just as fatal (no plaintext fallback)', async () => {
    const out = await run(
      [...upToStarttls, send('220 Ready\r\n250 AUTH LOGIN\r\n'), { kind: 'starttls' }, { kind: 'stall' }],
      (connect) => connect(),
      { client: remote({ tlsPolicy: 'opportunistic' }), server: { tls: serverTls() } },
    );
    expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', INJECTION);
    expect(out.wire).toBe('EHLO client.test\r\nSTARTTLS\r\n');
  });

  it('B1 explicit starttls() on a tlsPolicy none session: same check, connection unusable afterwards', async () => {
    let after: unknown;
    const out = await run(
      [send('220 mx\r\n'), expectLine('EHLO client.test'), send('250-mx\r\n250 STARTTLS\r\n'), expectLine('STARTTLS'), send('220 go\r\n250 injected\r\n'), { kind: 'starttls' }, { kind: 'stall' }],
      async (connect) => {
        const c = await connect();
        await c.ehlo();
        try {
          await c.starttls();
        } finally {
          after = await c.noop().then(() => null, (e: unknown) => e);
        }
      },
      { client: remote({ tlsPolicy: 'none' }), server: { tls: serverTls() } },
    );
    expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', INJECTION);
    expectError(after, smtplib.SMTPServerDisconnected, 'ERR_SMTP_DISCONNECTED', 'not connected');
    expect(out.wire).toBe('EHLO client.test\r\nSTARTTLS\r\n');
  });

  it('B2 injected partial line (no CRLF) after the 220: fail closed; the marker never reaches a reply, capability or error', async () => {
    const out = await run(
      [...upToStarttls, send('220 2.0.0 Ready\r\n250-SMTPUTF8 INJECTED-MARKER '), { kind: 'starttls' }, { kind: 'stall' }],
      async (connect) => {
        const c = await connect();
        return c;
      },
      { client: remote(), server: { tls: serverTls() } },
    );
    expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', INJECTION);
    expect(out.error!.message).not.toContain('INJECTED-MARKER');
    expect(JSON.stringify(out.error)).not.toContain('INJECTED-MARKER');
    expect(out.debug.join('\n')).not.toContain('INJECTED-MARKER');
    expect(out.wire).toBe('EHLO client.test\r\nSTARTTLS\r\n');
  });

  it('B2 injection in a second segment (after the client already started its handshake): the handshake fails closed, nothing is trusted', async () => {
    const out = await run(
      [...upToStarttls, send('220 2.0.0 Ready\r\n'), { kind: 'delay', ms: 30 }, send('250-SMTPUTF8 INJECTED-MARKER\r\n250 AUTH LOGIN\r\n'), { kind: 'stall' }],
      async (connect) => {
        const c = await connect();
        await c.login('user', 'secret');
      },
      { client: remote(), server: { tls: serverTls() } },
    );
    expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', /TLS handshake with mail\.example\.test:\d+ failed after STARTTLS/, 'not TLS', 'injected');
    expect(out.error!.message).not.toContain('SMTP_SSL');
    expect(out.error!.message).not.toContain('INJECTED-MARKER');
    expect(out.debug.join('\n')).not.toContain('INJECTED-MARKER');
    const plaintext = out.server.received.filter((r) => !r.secure).map((r) => r.bytes.toString('latin1')).join('');
    // After STARTTLS the client wrote only its TLS ClientHello (a 0x16 record), no SMTP text.
    expect(plaintext.startsWith('EHLO client.test\r\nSTARTTLS\r\n')).toBe(true);
    expect(plaintext.slice('EHLO client.test\r\nSTARTTLS\r\n'.length).charCodeAt(0)).toBe(0x16);
    expectNoCommand(out.wire.replace(/[^\x20-\x7e\r\n]/g, ''), 'AUTH', 'MAIL');
  });

  it('B2 injection racing the ClientHello (next tick): fail closed whichever side of the upgrade it lands on', async () => {
    const out = await run(
      [...upToStarttls, send('220 2.0.0 Ready\r\n'), { kind: 'delay', ms: 0 }, send('250 AUTH LOGIN\r\n'), { kind: 'read-until-close' }],
      async (connect) => {
        const c = await connect();
        await c.login('user', 'secret');
      },
      { client: remote() },
    );
    expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', /response-injection|failed after STARTTLS/);
    expect(out.wire).not.toMatch(/AUTH|MAIL/);
  });

  for (const split of ['byte', 'line', 'random'] as const) {
    it(`B1 injected replies delivered ${split === 'random' ? 'at random split points' : `${split} by ${split}`}: fail closed, no AUTH`, async () => {
      const out = await run(
        // The server only records what the client does next (no TLS on its side).
        [...upToStarttls, send('220 Ready\r\n250-example.org\r\n250 AUTH LOGIN\r\n'), { kind: 'read-until-close' }],
        async (connect) => {
          const c = await connect();
          await c.login('user', 'secret');
        },
        { client: remote(), server: { split, seed: 3 } },
      );
      expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS');
      const prefix = 'EHLO client.test\r\nSTARTTLS\r\n';
      expect(out.wire.startsWith(prefix)).toBe(true);
      const rest = out.wire.slice(prefix.length);
      // Either nothing (injection seen before the handshake began) or only a TLS record.
      if (rest.length > 0) expect(rest.charCodeAt(0)).toBe(0x16);
      expect(rest).not.toMatch(/AUTH|MAIL|EHLO/);
    });
  }
});

describe('B5 the client writes nothing between STARTTLS and the end of the handshake', () => {
  it('B5 queued calls made while STARTTLS is in flight wait for the handshake and go out over TLS', async () => {
    const out = await run(
      `S: 220 mx
C: EHLO client.test
S: 250-mx
S: 250-PIPELINING
S: 250 STARTTLS
C: STARTTLS
S: 220 go
S: <starttls>
C: NOOP
S: 250 ok
C: EHLO client.test
S: 250-mx
S: 250 PIPELINING
C: MAIL FROM:<a@example.org>
C: RCPT TO:<b@example.org>
C: DATA
S: 250 ok
S: 250 ok
S: 354 go
C: hi
C: .
S: 250 queued
`,
      async (connect) => {
        const c = await connect();
        await c.ehlo();
        // Deliberately not awaited one by one: the client must serialize them.
        const calls = [c.starttls(), c.noop(), c.ehlo(), c.sendmail('a@example.org', ['b@example.org'], 'hi\n')];
        await Promise.all(calls);
        return c.isSecure;
      },
      { client: remote({ tlsPolicy: 'none' }), server: { tls: serverTls() } },
    );
    expect(out.error).toBeNull();
    expect(out.server.mismatch).toBeUndefined();
    expect(out.value).toBe(true);
    expect(out.server.injectedByClient.length).toBe(0);
    const plaintext = out.server.received.filter((r) => !r.secure && !r.beforeHandshake).map((r) => r.bytes.toString('latin1')).join('');
    expect(plaintext).toBe('EHLO client.test\r\nSTARTTLS\r\n');
  });

  it('B5 policy-driven STARTTLS: the raw bytes after "STARTTLS\\r\\n" start with the ClientHello record', async () => {
    const out = await run(
      `S: 220 mx
C: EHLO client.test
S: 250-mx
S: 250 STARTTLS
C: STARTTLS
S: 220 go
S: <starttls>
C: EHLO client.test
S: 250 mx
`,
      (connect) => connect(),
      { client: remote(), server: { tls: serverTls() } },
    );
    expect(out.error).toBeNull();
    expect(out.server.injectedByClient.toString('latin1')).toBe('');
    expect(out.server.received.filter((r) => r.beforeHandshake)).toEqual([]);
  });
});

describe('B6 everything learned before TLS is forgotten', () => {
  const script = `S: 220 mx
C: EHLO client.test
S: 250-mx
S: 250-AUTH PLAIN LOGIN CRAM-MD5
S: 250-SIZE 10
S: 250-8BITMIME
S: 250-SMTPUTF8
S: 250-PIPELINING
S: 250-CHUNKING
S: 250-DSN
S: 250 STARTTLS
C: STARTTLS
S: 220 go
S: <starttls>
C: EHLO client.test
S: 250-mx
S: 250 SIZE 1000000
`;

  it('B6 with no AUTH after TLS, login() throws "AUTH not supported" without writing; only the post-TLS list is used', async () => {
    const message = 'Subject: a message longer than the pre-TLS SIZE 10\r\n\r\nbody\r\n';
    const size = Buffer.byteLength(message);
    const out = await run(
      script +
        `C: MAIL FROM:<a@example.org> SIZE=${size}
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
C: Subject: a message longer than the pre-TLS SIZE 10
C:
C: body
C: .
S: 250 ok
`,
      async (connect) => {
        const c = await connect();
        expect(c.isSecure).toBe(true);
        for (const ext of ['auth', '8bitmime', 'smtputf8', 'pipelining', 'chunking', 'dsn', 'starttls']) expect(c.hasExtn(ext), ext).toBe(false);
        expect(c.esmtpFeatures.get('size')).toBe('1000000');
        const error = await c.login('user', 'secret').then(() => null, (e: unknown) => e);
        expectError(error, SMTPNotSupportedError, 'ERR_SMTP_NOT_SUPPORTED', 'SMTP AUTH extension not supported by server');
        expect(c.isConnected).toBe(true);
        await c.sendmail('a@example.org', ['b@example.org'], message);
      },
      { client: remote(), server: { tls: serverTls() } },
    );
    expect(out.error).toBeNull();
    expect(out.server.mismatch).toBeUndefined();
    expect(out.wire).not.toContain('AUTH');
  });

  it('B6 post-TLS AUTH SCRAM-SHA-256 only: login() never uses the pre-TLS PLAIN/LOGIN/CRAM-MD5 list', async () => {
    const out = await run(
      script.replace('S: 250 SIZE 1000000', 'S: 250-AUTH SCRAM-SHA-256\nS: 250 SIZE 1000000') + 'S: <read-until-close>',
      async (connect) => {
        const c = await connect();
        expect(c.capabilities.authMechanisms).toEqual(['SCRAM-SHA-256']);
        await c.login('user', 'secret');
      },
      { client: remote({ timeout: 1500 }), server: { tls: serverTls() } },
    );
    const authLines = out.wire.split('\r\n').filter((l) => l.startsWith('AUTH'));
    expect(authLines).toHaveLength(1);
    expect(authLines[0]).toMatch(/^AUTH SCRAM-SHA-256 [A-Za-z0-9+/=]+$/);
    expect(Buffer.from(authLines[0]!.split(' ')[2]!, 'base64').toString()).toMatch(/^[ny],,n=user,r=/);
  });

  it('B6 isAuthenticated and greeting-phase EHLO text are reset by STARTTLS', async () => {
    const out = await run(
      `S: 220 mx
C: EHLO client.test
S: 250-mx pre-tls-marker
S: 250-AUTH PLAIN
S: 250 STARTTLS
C: AUTH PLAIN AHVzZXIAc2VjcmV0
S: 235 ok
C: STARTTLS
S: 220 go
S: <starttls>
C: EHLO client.test
S: 250 mx
`,
      async (connect) => {
        const c = await connect();
        await c.ehlo();
        await c.login('user', 'secret');
        expect(c.isAuthenticated).toBe(true);
        await c.starttls();
        expect(c.isAuthenticated).toBe(false);
        expect(c.ehloResp).toBeNull();
        expect(c.hasExtn('auth')).toBe(false);
        await c.ehlo();
        expect(c.ehloResp).toBe('mx');
      },
      { server: { tls: serverTls() } },
    );
    expect(out.error).toBeNull();
    expect(out.server.mismatch).toBeUndefined();
  });
});

describe('B7 plaintext-phase text in errors is untrusted', () => {
  it('B7 a 454 with a phishing text: the error keeps the text, marks it unauthenticated, and strips control characters', async () => {
    const out = await run(
      [
        ...upToStarttls,
        send('454 Your password has expired, log in at http://evil.example \x1b[31mNOW\x1b[0m\x07\r\n'),
        { kind: 'read-until-close' },
      ],
      (connect) => connect(),
      { client: remote() },
    );
    expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', 'refused STARTTLS (454', 'http://evil.example', 'unauthenticated plaintext reply');
    expect(out.error!.message).not.toMatch(/[\x00-\x08\x0a-\x1f\x7f]/);
    const cause = out.error!.cause as InstanceType<typeof smtplib.SMTPResponseException>;
    expect(cause.smtpError).not.toMatch(/[\x00-\x08\x0a-\x1f\x7f]/);
    expect(out.wire).toBe('EHLO client.test\r\nSTARTTLS\r\n');
  });
});
