// A — STARTTLS negotiation and stripping (NO STARTTLS "Negotiation"), and
// the TLS policy defaults (A9). Every hostile case asserts the exact bytes the
// server received: never an AUTH, MAIL or HELO after TLS was required and
// could not be had.

import { describe, expect, it } from 'vitest';
import { expectError, expectNoCommand, lookupTo, run, serverTls, smtplib, tunnel, directTo, } from './helpers.js';

const { SMTP, SMTP_SSL, LMTP, SMTPTLSError, SMTPNotSupportedError } = smtplib;

/** A non-loopback name resolved to 127.0.0.1: the default policy is `required`. */
const remote = (over: smtplib.SMTPOptions = {}) => (port: number): smtplib.SMTPOptions => ({
  host: 'mail.example.test',
  port,
  lookup: lookupTo(),
  ...over,
});

const greetingAndEhlo = (ehlo: string) => `
S: 220 mx.example.test ESMTP
C: EHLO client.test
${ehlo
  .trim()
  .split('\n')
  .map((l) => `S: ${l.trim()}`)
  .join('\n')}
`;

describe('A1 STARTTLS not advertised', () => {
  it('A1 default policy (non-loopback host) fails closed after EHLO, before any AUTH or MAIL', async () => {
    const out = await run(
      greetingAndEhlo('250-mx.example.test\n250-AUTH PLAIN LOGIN\n250 SIZE 1000') + 'S: <read-until-close>',
      async (connect) => {
        const c = await connect();
        await c.login('user', 'secret');
        await c.sendmail('a@example.org', ['b@example.org'], 'hi\n');
      },
      { client: remote() },
    );
    expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', 'TLS is required', 'does not offer STARTTLS', "tlsPolicy: 'none'");
    expect(out.wire).toBe('EHLO client.test\r\n');
    expect(out.wire).not.toContain('secret');
  });

  it("A1 explicit tlsPolicy 'required' to a loopback address also fails closed", async () => {
    const out = await run(greetingAndEhlo('250-mx\n250 AUTH PLAIN') + 'S: <read-until-close>', (connect) => connect(), {
      client: () => ({ tlsPolicy: 'required' }),
    });
    expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', 'does not offer STARTTLS');
    expect(out.wire).toBe('EHLO client.test\r\n');
  });

  it("A1 'opportunistic' is the only mode that continues in plaintext, and only when asked for by name", async () => {
    const out = await run(
      greetingAndEhlo('250-mx\n250 SIZE 1000') +
        `C: MAIL FROM:<a@example.org> SIZE=4
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
C: hi
C: .
S: 250 queued
`,
      async (connect) => {
        const c = await connect();
        expect(c.isSecure).toBe(false);
        expect(c.tlsPolicy).toBe('opportunistic');
        return c.sendmail('a@example.org', ['b@example.org'], 'hi\n');
      },
      { client: remote({ tlsPolicy: 'opportunistic' }) },
    );
    expect(out.error).toBeNull();
    expect(out.server.mismatch).toBeUndefined();
  });
});

describe('A2/A3/A4 STARTTLS refused or answered with anything but 220', () => {
  const codes: [number, string, boolean][] = [
    [502, '502 5.5.1 Command not implemented', false],
    [454, '454 4.7.0 TLS not available due to temporary reason', true],
    [500, '500 5.5.2 Syntax error', false],
    [501, '501 5.5.4 Syntax error in parameters', false],
    [530, '530 5.7.0 Must issue a STARTTLS command first', false],
    [554, '554 5.7.0 no', false],
    [250, '250 2.0.0 sure', false],
    [354, '354 go ahead', false],
    [221, '221 2.0.0 bye', false],
    [421, '421 4.3.2 shutting down', true],
  ];
  for (const [code, reply, transient] of codes) {
    it(`A${code === 502 ? '2' : code === 454 ? '3' : '4'} STARTTLS → ${code}: SMTPTLSError with the code, no AUTH/MAIL/HELO, no plaintext fallback`, async () => {
      const out = await run(
        greetingAndEhlo('250-mx\n250-AUTH PLAIN LOGIN\n250 STARTTLS') + `C: STARTTLS\nS: ${reply}\nS: <read-until-close>`,
        async (connect) => {
          const c = await connect();
          await c.login('user', 'secret');
        },
        { client: remote() },
      );
      expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', 'TLS is required but the server refused STARTTLS', `(${code} `, 'not continuing in plaintext');
      const cause = out.error!.cause as InstanceType<typeof smtplib.SMTPResponseException>;
      expect(cause).toBeInstanceOf(smtplib.SMTPResponseException);
      expect(cause.smtpCode).toBe(code);
      expect(cause.isTransient).toBe(transient);
      expect(out.wire).toBe('EHLO client.test\r\nSTARTTLS\r\n');
      expectNoCommand(out.wire, 'AUTH', 'MAIL', 'HELO', 'QUIT');
    });
  }

  it('A4 a 220 with odd text is the only code that starts the handshake (and the handshake is real)', async () => {
    const out = await run(
      greetingAndEhlo('250-mx\n250 STARTTLS') + `C: STARTTLS\nS: 220 whatever you say\nS: <starttls>\nC: EHLO client.test\nS: 250 mx\n`,
      async (connect) => {
        const c = await connect();
        return c.isSecure;
      },
      { client: remote(), server: { tls: serverTls() } },
    );
    expect(out.error).toBeNull();
    expect(out.value).toBe(true);
    expect(out.server.mismatch).toBeUndefined();
    expect(out.wire).toBe('EHLO client.test\r\nSTARTTLS\r\nEHLO client.test\r\n');
  });

  it('A2 opportunistic: a refused STARTTLS leaves a plaintext session; a cleartext login to a remote peer is still refused (D11)', async () => {
    const out = await run(
      greetingAndEhlo('250-mx\n250-AUTH PLAIN LOGIN\n250 STARTTLS') + `C: STARTTLS\nS: 502 no\nS: <read-until-close>`,
      async (connect) => {
        const c = await connect();
        expect(c.isSecure).toBe(false);
        await c.login('user', 'secret');
      },
      { client: (port) => ({ host: 'mail.example.test', port, tlsPolicy: 'opportunistic', connect: tunnel(port) }) },
    );
    expectError(out.error, SMTPNotSupportedError, 'ERR_SMTP_NOT_SUPPORTED', 'refusing to send credentials', 'unencrypted connection');
    expect(out.wire).toBe('EHLO client.test\r\nSTARTTLS\r\n');
  });
});

describe('EHLO refused then HELO accepted (stripping through HELO)', () => {
  it('required: a refused EHLO fails closed; HELO is never sent', async () => {
    const out = await run(
      `S: 220 mx ESMTP
C: EHLO client.test
S: 502 5.5.1 EHLO not implemented
S: <read-until-close>`,
      async (connect) => {
        const c = await connect();
        await c.sendmail('a@example.org', ['b@example.org'], 'hi\n');
      },
      { client: remote() },
    );
    expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', 'refused EHLO', 'not falling back to HELO');
    expect(out.wire).toBe('EHLO client.test\r\n');
  });

  it('required: an EHLO refused after TLS (LMTP LHLO too) never falls back to HELO', async () => {
    const out = await run(
      `S: 220 mx ESMTP
C: EHLO client.test
S: 250-mx
S: 250 STARTTLS
C: STARTTLS
S: 220 go
S: <starttls>
C: EHLO client.test
S: 500 what
S: <read-until-close>`,
      async (connect) => {
        const c = await connect();
        await c.sendmail('a@example.org', ['b@example.org'], 'hi\n');
      },
      { client: remote(), server: { tls: serverTls() } },
    );
    expectError(out.error, smtplib.SMTPHeloError, 'ERR_SMTP_HELO', 'refused EHLO after STARTTLS', '500 what');
    expect(out.wire).toBe('EHLO client.test\r\nSTARTTLS\r\nEHLO client.test\r\n');
  });
});

describe('A6 AUTH advertised before TLS', () => {
  it('A6 required: login() before anything else still goes through STARTTLS first; AUTH only over TLS', async () => {
    const out = await run(
      greetingAndEhlo('250-mx\n250-AUTH PLAIN LOGIN\n250 STARTTLS') +
        `C: STARTTLS
S: 220 go
S: <starttls>
C: EHLO client.test
S: 250-mx
S: 250 AUTH PLAIN
C: AUTH PLAIN AHVzZXIAc2VjcmV0
S: 235 ok
`,
      async (connect) => {
        const c = await connect();
        return (await c.login('user', 'secret')).code;
      },
      { client: remote(), server: { tls: serverTls() } },
    );
    expect(out.error).toBeNull();
    expect(out.value).toBe(235);
    const plaintext = out.server.received.filter((r) => !r.secure).map((r) => r.bytes.toString('latin1')).join('');
    expect(plaintext).toBe('EHLO client.test\r\nSTARTTLS\r\n');
  });

  it("A6 tlsPolicy 'none' to a remote peer: login() throws before writing anything although AUTH PLAIN LOGIN is advertised", async () => {
    const out = await run(
      greetingAndEhlo('250-mx\n250-AUTH PLAIN LOGIN\n250 STARTTLS') + 'S: <read-until-close>',
      async (connect) => {
        const c = await connect();
        await c.ehlo();
        const before = c.isConnected;
        await c.login('user', 'secret').catch((e) => {
          expect(before).toBe(true);
          throw e;
        });
      },
      { client: (port) => ({ host: 'mail.example.test', port, tlsPolicy: 'none', connect: tunnel(port) }) },
    );
    expectError(out.error, SMTPNotSupportedError, 'ERR_SMTP_NOT_SUPPORTED', 'refusing to send credentials with PLAIN over an unencrypted connection to mail.example.test');
    expect(out.wire).toBe('EHLO client.test\r\n');
  });
});

describe('A7 no nesting of TLS', () => {
  it('A7 STARTTLS advertised again after TLS: starttls() throws "already using TLS" and writes nothing', async () => {
    const out = await run(
      greetingAndEhlo('250-mx\n250 STARTTLS') +
        `C: STARTTLS
S: 220 go
S: <starttls>
C: EHLO client.test
S: 250-mx
S: 250 STARTTLS
C: NOOP
S: 250 ok
`,
      async (connect) => {
        const c = await connect();
        expect(c.hasExtn('starttls')).toBe(true);
        const error = await c.starttls().then(() => null, (e: unknown) => e);
        expectError(error, SMTPNotSupportedError, 'ERR_SMTP_NOT_SUPPORTED', 'already using TLS');
        expect(c.isConnected).toBe(true);
        await c.noop();
      },
      { client: remote(), server: { tls: serverTls() } },
    );
    expect(out.error).toBeNull();
    expect(out.server.mismatch).toBeUndefined();
    expect(out.wire.match(/STARTTLS/g)).toHaveLength(1);
  });

  it('A7 implicit TLS ignores a STARTTLS advertisement (SMTP_SSL)', async () => {
    const out = await run(
      `S: 220 mx ESMTP
C: EHLO client.test
S: 250-mx
S: 250 STARTTLS
C: MAIL FROM:<a@example.org>
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
C: hi
C: .
S: 250 ok
`,
      async (connect) => {
        const c = await connect();
        expect(c.isSecure).toBe(true);
        await c.sendmail('a@example.org', ['b@example.org'], 'hi\n');
        const error = await c.starttls().then(() => null, (e: unknown) => e);
        expectError(error, SMTPNotSupportedError, 'ERR_SMTP_NOT_SUPPORTED', 'already using TLS');
      },
      { cls: SMTP_SSL, client: remote(), server: { tls: serverTls(), implicitTls: true } },
    );
    expect(out.error).toBeNull();
    expect(out.server.mismatch).toBeUndefined();
    expect(out.wire).not.toContain('STARTTLS');
  });
});

describe('A9 defaults by port and address', () => {
  it('A9 policy reported before connecting', () => {
    expect(new SMTP({ host: 'mail.example.test', port: 587 }).tlsPolicy).toBe('required');
    expect(new SMTP({ host: 'mail.example.test', port: 25 }).tlsPolicy).toBe('required');
    expect(new SMTP({ host: 'mail.example.test' }).tlsPolicy).toBe('required');
    expect(new SMTP({ host: 'mail.example.test', port: 465 }).tlsPolicy).toBe('implicit');
    expect(new SMTP({ host: 'mail.example.test', port: 465, tlsPolicy: 'required' }).tlsPolicy).toBe('implicit');
    expect(new SMTP({ host: 'mail.example.test', port: 465, tlsPolicy: 'none' }).tlsPolicy).toBe('none');
    expect(new SMTP_SSL({ host: 'mail.example.test' }).tlsPolicy).toBe('implicit');
    expect(new LMTP({ host: 'mail.example.test', port: 465 }).tlsPolicy).toBe('required');
    expect(new SMTP({ host: '127.0.0.1', port: 587 }).tlsPolicy).toBe('none');
    expect(new SMTP({ host: '::1', port: 25 }).tlsPolicy).toBe('none');
    expect(new SMTP({ host: 'localhost', port: 25 }).tlsPolicy).toBe('none');
    expect(new LMTP({ host: '/run/dovecot/lmtp' }).tlsPolicy).toBe('none');
    expect(new SMTP({ host: 'mail.example.test', port: 25, tlsPolicy: 'opportunistic' }).tlsPolicy).toBe('opportunistic');
  });

  it('A9 port 465 given to SMTP uses implicit TLS (the first bytes are a ClientHello)', async () => {
    const out = await run(
      `S: 220 mx ESMTP
C: EHLO client.test
S: 250 mx
`,
      async (connect) => {
        const c = await connect();
        expect(c.isSecure).toBe(true);
        expect(c.tlsPolicy).toBe('implicit');
        await c.ehlo();
      },
      { client: (port) => ({ host: 'mail.example.test', port: 465, connect: directTo(port) }), server: { tls: serverTls(), implicitTls: true } },
    );
    expect(out.error).toBeNull();
    expect(out.server.mismatch).toBeUndefined();
    expect(out.wire).toBe('EHLO client.test\r\n');
  });

  it("A9 port 465 with tlsPolicy 'required' still means implicit TLS, not STARTTLS on the TLS port", async () => {
    const out = await run(
      `S: 220 mx ESMTP
C: EHLO client.test
S: 250 mx
`,
      async (connect) => {
        const c = await connect();
        expect(c.isSecure).toBe(true);
        await c.ehlo();
      },
      { client: (port) => ({ host: 'mail.example.test', port: 465, tlsPolicy: 'required', connect: directTo(port) }), server: { tls: serverTls(), implicitTls: true } },
    );
    expect(out.error).toBeNull();
    expect(out.server.mismatch).toBeUndefined();
    expect(out.wire).toBe('EHLO client.test\r\n');
  });

  for (const port of [587, 25, 2525]) {
    it(`A9 port ${port} to a remote name requires STARTTLS before anything else`, async () => {
      const out = await run(
        greetingAndEhlo('250-mx\n250-AUTH PLAIN\n250 SIZE 10') + 'S: <read-until-close>',
        (connect) => connect(),
        { client: (p) => ({ host: 'mail.example.test', port, connect: directTo(p) }) },
      );
      expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', `mail.example.test:${port} does not offer STARTTLS`);
      expect(out.wire).toBe('EHLO client.test\r\n');
    });
  }

  it('A9 LMTP over TCP to a remote name also requires STARTTLS (LHLO, never HELO)', async () => {
    const out = await run(
      `S: 220 lmtp ready
C: LHLO client.test
S: 250-lmtp
S: 250 PIPELINING
S: <read-until-close>`,
      (connect) => connect(),
      { cls: LMTP, client: remote() },
    );
    expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', 'does not offer STARTTLS');
    expect(out.wire).toBe('LHLO client.test\r\n');
  });

  it('A9 loopback address default is plaintext: nothing is written on connect, no STARTTLS attempt', async () => {
    const out = await run(
      `S: 220 mx ESMTP
C: NOOP
S: 250 ok
`,
      async (connect) => {
        const c = await connect();
        expect(c.tlsPolicy).toBe('none');
        await c.noop();
        return c.isSecure;
      },
    );
    expect(out.error).toBeNull();
    expect(out.value).toBe(false);
    expect(out.wire).toBe('NOOP\r\n');
  });
});
