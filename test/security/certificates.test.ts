// C — TLS verification for STARTTLS and implicit TLS: bad certificates
// (C1–C4, C6), the "localhost" fallback pitfall when upgrading a socket (C5),
// a caller-supplied TLS name (C8), old protocol versions (C9), scoped escape
// hatches and fingerprint pinning (C11), client certificates (EXTERNAL, pfx),
// and the diagnostics for TLS/plaintext port mix-ups.

import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { clientPfx, expectError, localhostOnly, lookupTo, run, serverTls, smtplib, testPki, type Step } from './helpers.js';

const { SMTP, SMTP_SSL, SMTPTLSError } = smtplib;

const remote = (over: smtplib.SMTPOptions = {}) => (port: number): smtplib.SMTPOptions => ({
  host: 'mail.example.test',
  port,
  lookup: lookupTo(),
  ...over,
});

const STARTTLS_SCRIPT = `S: 220 mx ESMTP
C: EHLO client.test
S: 250-mx
S: 250-AUTH PLAIN LOGIN
S: 250 STARTTLS
C: STARTTLS
S: 220 go
S: <starttls>
C: EHLO client.test
S: 250-mx
S: 250 AUTH PLAIN
C: AUTH PLAIN AHVzZXIAc2VjcmV0
S: 235 ok
`;
const IMPLICIT_SCRIPT = `S: 220 mx ESMTP
C: EHLO client.test
S: 250-mx
S: 250 AUTH PLAIN
C: AUTH PLAIN AHVzZXIAc2VjcmV0
S: 235 ok
`;

type Mode = 'STARTTLS' | 'implicit TLS';
const modes: Mode[] = ['STARTTLS', 'implicit TLS'];

/** Connects (STARTTLS or implicit) to a server presenting `pair`, then logs in. */
function tryLogin(mode: Mode, pair: { key: string; cert: string }, client: smtplib.SMTPOptions = {}, serverExtra: Record<string, unknown> = {}) {
  return run(
    mode === 'STARTTLS' ? STARTTLS_SCRIPT : IMPLICIT_SCRIPT,
    async (connect) => {
      const c = await connect();
      expect(c.isSecure).toBe(true);
      return (await c.login('user', 'secret')).code;
    },
    {
      cls: mode === 'STARTTLS' ? SMTP : SMTP_SSL,
      client: remote(client),
      server: { tls: { ...serverTls(pair), ...serverExtra }, implicitTls: mode === 'implicit TLS' },
    },
  );
}

/** What the server may have received before a failed handshake: only the plaintext EHLO/STARTTLS. */
const beforeTls = (mode: Mode) => (mode === 'STARTTLS' ? 'EHLO client.test\r\nSTARTTLS\r\n' : '');

describe('C1–C4, C6 bad certificates fail closed (STARTTLS and implicit TLS)', () => {
  const cases: { id: string; name: string; pair: () => { key: string; cert: string }; reason: string; nodeCodes: string[] }[] = [
    { id: 'C1', name: 'self-signed', pair: () => testPki().selfSigned, reason: 'the certificate is self-signed', nodeCodes: ['DEPTH_ZERO_SELF_SIGNED_CERT'] },
    { id: 'C2', name: 'unknown root', pair: () => testPki().unknownCa, reason: 'unknown authority', nodeCodes: ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'] },
    { id: 'C3', name: 'valid cert for another name', pair: () => testPki().wrongName, reason: 'the certificate is for another name', nodeCodes: ['ERR_TLS_CERT_ALTNAME_INVALID'] },
    { id: 'C4', name: 'expired', pair: () => testPki().expired, reason: 'the certificate has expired', nodeCodes: ['CERT_HAS_EXPIRED'] },
  ];
  for (const mode of modes) {
    it(`${mode}: the CA-signed certificate for the right name is accepted (control)`, async () => {
      const out = await tryLogin(mode, testPki().server);
      expect(out.error).toBeNull();
      expect(out.value).toBe(235);
    });
    for (const c of cases) {
      it(`${c.id} ${mode}: ${c.name} → SMTPTLSError saying which check failed, no AUTH`, async () => {
        const out = await tryLogin(mode, c.pair());
        expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', 'TLS certificate check failed for mail.example.test', c.reason, 'tls.ca', 'fingerprint');
        const cause = out.error!.cause as NodeJS.ErrnoException;
        expect(cause).toBeInstanceOf(Error);
        expect(c.nodeCodes).toContain(cause.code);
        expect(out.error!.message).toContain(cause.code!);
        expect(out.wire).toBe(beforeTls(mode));
        expect(out.wire).not.toContain('AUTH');
      });
    }

    it(`C6 ${mode}: right name, but the chain ends in an untrusted root sent by the server → rejected (signature checked, not just the name)`, async () => {
      const p = testPki();
      const out = await tryLogin(mode, { key: p.unknownCa.key, cert: p.unknownCa.cert + p.otherCa });
      expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', 'TLS certificate check failed', /untrusted self-signed root|unknown authority/);
      expect(out.wire).toBe(beforeTls(mode));
    });
  }

  it('C2 trusting the other CA explicitly (tls.ca) accepts that server: verification uses the caller\'s ca', async () => {
    const out = await tryLogin('STARTTLS', testPki().unknownCa, { tls: { ca: testPki().otherCa } });
    expect(out.error).toBeNull();
    expect(out.value).toBe(235);
  });
});

describe('C5 host-name check when upgrading a socket', () => {
  it('C5 a certificate for "localhost" only is rejected for mail.example.test resolved to 127.0.0.1 (STARTTLS)', async () => {
    const asked: string[] = [];
    const out = await tryLogin('STARTTLS', localhostOnly(), { lookup: lookupTo(asked) });
    expect(asked).toContain('mail.example.test');
    expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', 'for another name', 'ERR_TLS_CERT_ALTNAME_INVALID');
    expect(String((out.error!.cause as Error).message)).toContain('mail.example.test');
    expect(out.wire).toBe('EHLO client.test\r\nSTARTTLS\r\n');
  });

  it('C5 the same certificate is accepted when the caller really connects to "localhost" (control)', async () => {
    const out = await run(STARTTLS_SCRIPT, async (connect) => (await (await connect()).login('user', 'secret')).code, {
      client: (port) => ({ host: 'localhost', port, tlsPolicy: 'required', family: 4 }),
      server: { tls: serverTls(localhostOnly()) },
    });
    expect(out.error).toBeNull();
    expect(out.value).toBe(235);
  });

  it('C5 implicit TLS to an IP address checks the IP, not "localhost": the localhost-only certificate is rejected for 127.0.0.1', async () => {
    const out = await run(IMPLICIT_SCRIPT, (connect) => connect(), {
      cls: SMTP_SSL,
      server: { tls: serverTls(localhostOnly()), implicitTls: true },
    });
    expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', 'for another name');
    expect(out.wire).toBe('');
  });
});

/** Server TLS options that record the SNI name and present `pair`. */
function recordingSni(names: (string | undefined)[], pair: { key: string; cert: string }) {
  const context = tls.createSecureContext({ key: pair.key, cert: pair.cert });
  return {
    ...serverTls(pair),
    SNICallback: (name: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => {
      names.push(name);
      cb(null, context);
    },
  };
}

describe('C8 caller-supplied TLS name (servername)', () => {
  for (const mode of modes) {
    it(`C8 ${mode}: connecting to 127.0.0.1 with servername "other.example.test": SNI and verification use that name`, async () => {
      const names: (string | undefined)[] = [];
      const out = await run(mode === 'STARTTLS' ? STARTTLS_SCRIPT : IMPLICIT_SCRIPT, async (connect) => (await (await connect()).login('user', 'secret')).code, {
        cls: mode === 'STARTTLS' ? SMTP : SMTP_SSL,
        client: () => ({ tlsPolicy: mode === 'STARTTLS' ? 'required' : undefined, tls: { ca: testPki().ca, servername: 'other.example.test' } }),
        server: { tls: recordingSni(names, testPki().wrongName) as never, implicitTls: mode === 'implicit TLS' },
      });
      expect(out.error).toBeNull();
      expect(out.value).toBe(235);
      expect(names).toEqual(['other.example.test']);
    });

    it(`C8 ${mode}: without servername the same server is rejected for 127.0.0.1, and no SNI is sent for an IP`, async () => {
      const names: (string | undefined)[] = [];
      const out = await run(mode === 'STARTTLS' ? STARTTLS_SCRIPT : IMPLICIT_SCRIPT, (connect) => connect(), {
        cls: mode === 'STARTTLS' ? SMTP : SMTP_SSL,
        client: () => ({ tlsPolicy: mode === 'STARTTLS' ? 'required' : undefined }),
        server: { tls: recordingSni(names, testPki().wrongName) as never, implicitTls: mode === 'implicit TLS' },
      });
      expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', 'for another name', 'TLS certificate check failed for 127.0.0.1');
      expect(names).toEqual([]);
    });
  }

  it('C8 a host name sends SNI with that name (never a reverse-resolved name)', async () => {
    const names: (string | undefined)[] = [];
    const out = await run(STARTTLS_SCRIPT, async (connect) => (await (await connect()).login('user', 'secret')).code, {
      client: remote(),
      server: { tls: recordingSni(names, testPki().server) as never },
    });
    expect(out.error).toBeNull();
    expect(names).toEqual(['mail.example.test']);
  });
});

describe('C9 TLS 1.0/1.1 only', () => {
  const old = () => ({ ...serverTls(), minVersion: 'TLSv1' as const, maxVersion: 'TLSv1.1' as const, ciphers: 'DEFAULT@SECLEVEL=0' });
  for (const mode of modes) {
    it(`C9 ${mode}: a server that stops at TLS 1.1 is refused with SMTPTLSError (minimum TLS 1.2), no AUTH`, async () => {
      const out = await run(mode === 'STARTTLS' ? STARTTLS_SCRIPT : IMPLICIT_SCRIPT, (connect) => connect(), {
        cls: mode === 'STARTTLS' ? SMTP : SMTP_SSL,
        client: remote(),
        server: { tls: old(), implicitTls: mode === 'implicit TLS' },
      });
      expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', 'older than 1.2', 'RFC 8996');
      expect(out.error!.cause).toBeInstanceOf(Error);
      expect(out.wire).toBe(beforeTls(mode));
    });
  }

  it('C9 the floor holds even if the caller passes minVersion TLSv1.2 explicitly, and TLS 1.3 is negotiated when offered', async () => {
    const out = await run(IMPLICIT_SCRIPT, async (connect) => {
      const c = await connect();
      return (c.socket as tls.TLSSocket).getProtocol();
    }, { cls: SMTP_SSL, client: remote(), server: { tls: serverTls(), implicitTls: true } });
    expect(out.value).toBe('TLSv1.3');
  });
});

describe('C11 escape hatches are scoped to one connection', () => {
  const fp = (pem: string) => new X509Certificate(pem).fingerprint256;

  for (const mode of modes) {
    it(`C11 ${mode}: pinning the self-signed certificate's SHA-256 fingerprint accepts it without turning verification off`, async () => {
      const out = await tryLogin(mode, testPki().selfSigned, { fingerprint: fp(testPki().selfSigned.cert) });
      expect(out.error).toBeNull();
      expect(out.value).toBe(235);
    });

    it(`C11 ${mode}: a pin accepts only that fingerprint (another valid, CA-signed certificate is refused)`, async () => {
      const out = await tryLogin(mode, testPki().server, { fingerprint: fp(testPki().selfSigned.cert) });
      expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', 'certificate pin mismatch for mail.example.test', fp(testPki().server.cert));
      expect(out.wire).toBe(beforeTls(mode));
    });
  }

  it('C11 pins: lower case without colons and a list are accepted', async () => {
    const hex = fp(testPki().selfSigned.cert).replace(/:/g, '').toLowerCase();
    const out = await tryLogin('implicit TLS', testPki().selfSigned, { fingerprint: [fp(testPki().server.cert), hex] });
    expect(out.error).toBeNull();
  });

  it('C11 a pin on one instance does not affect another instance to the same server', async () => {
    const pinned = await tryLogin('implicit TLS', testPki().selfSigned, { fingerprint: fp(testPki().selfSigned.cert) });
    expect(pinned.error).toBeNull();
    const other = await tryLogin('implicit TLS', testPki().selfSigned);
    expectError(other.error, SMTPTLSError, 'ERR_SMTP_TLS', 'self-signed');
  });

  it('C11 rejectUnauthorized:false on one instance does not affect another instance or the process default', async () => {
    // Unverified TLS counts as cleartext for credentials: the opt-in is needed too (test/hardening/security.test.ts).
    const loose = await tryLogin('STARTTLS', testPki().selfSigned, { tls: { rejectUnauthorized: false }, allowCleartextAuth: true });
    expect(loose.error).toBeNull();
    const strict = await tryLogin('STARTTLS', testPki().selfSigned);
    expectError(strict.error, SMTPTLSError, 'ERR_SMTP_TLS', 'self-signed');
    expect(process.env.NODE_TLS_REJECT_UNAUTHORIZED).toBeUndefined();
  });

  it('C11 the options object given to one client is not mutated (a pin cannot leak into a reused options object)', async () => {
    const options: smtplib.SMTPOptions = { fingerprint: fp(testPki().selfSigned.cert), tls: { ca: testPki().ca } };
    const snapshot = JSON.stringify(options);
    const out = await tryLogin('implicit TLS', testPki().selfSigned, options);
    expect(out.error).toBeNull();
    expect(JSON.stringify(options)).toBe(snapshot);
    expect(options.tls).not.toHaveProperty('rejectUnauthorized');
  });
});

describe('client certificates', () => {
  const externalScript = (mode: Mode) =>
    (mode === 'STARTTLS'
      ? `S: 220 mx ESMTP
C: EHLO client.test
S: 250-mx
S: 250 STARTTLS
C: STARTTLS
S: 220 go
S: <starttls>
`
      : 'S: 220 mx ESMTP\n') +
    `C: EHLO client.test
S: 250-mx
S: 250 AUTH EXTERNAL PLAIN
C: AUTH EXTERNAL =
S: 235 2.7.0 authenticated by certificate
`;
  const requireClientCert = () => ({ ...serverTls(), requestCert: true, rejectUnauthorized: true, ca: [testPki().ca] });

  for (const mode of modes) {
    it(`client certificate (tls.cert/key) + AUTH EXTERNAL over ${mode}, against a server that requires a certificate`, async () => {
      const p = testPki();
      const out = await run(externalScript(mode), async (connect) => (await (await connect()).login('', '', { mechanism: 'EXTERNAL' })).code, {
        cls: mode === 'STARTTLS' ? SMTP : SMTP_SSL,
        client: remote({ tls: { ca: p.ca, cert: p.client.cert, key: p.client.key } }),
        server: { tls: requireClientCert() as never, implicitTls: mode === 'implicit TLS' },
      });
      expect(out.error).toBeNull();
      expect(out.value).toBe(235);
      expect(out.server.mismatch).toBeUndefined();
    });
  }

  it('client certificate from a pfx bundle with a passphrase', async () => {
    const out = await run(externalScript('implicit TLS'), async (connect) => (await (await connect()).login('', '', { mechanism: 'EXTERNAL' })).code, {
      cls: SMTP_SSL,
      client: remote({ tls: { ca: testPki().ca, pfx: clientPfx('pfx-pass'), passphrase: 'pfx-pass' } }),
      server: { tls: requireClientCert() as never, implicitTls: true },
    });
    expect(out.error).toBeNull();
    expect(out.value).toBe(235);
  });

  it('without a client certificate the server refuses the handshake and never sees AUTH', async () => {
    const out = await run(externalScript('implicit TLS'), async (connect) => {
      const c = await connect();
      await c.login('', '', { mechanism: 'EXTERNAL' });
    }, {
      cls: SMTP_SSL,
      client: remote(),
      server: { tls: requireClientCert() as never, implicitTls: true },
    });
    expect(out.error).toBeInstanceOf(smtplib.SMTPException);
    expect(out.wire).toBe('');
  });
});

describe('diagnostics: the wrong kind of port', () => {
  it('TLS spoken to a plaintext port (SMTP_SSL against a STARTTLS server): says so and names the fix', async () => {
    const out = await run(`S: 220 mx ESMTP\nS: <read-until-close>`, (connect) => connect(), { cls: SMTP_SSL, client: remote() });
    expectError(out.error, SMTPTLSError, 'ERR_SMTP_TLS', 'did not answer in TLS', 'Use SMTP with STARTTLS');
  });

  it('plaintext spoken to a TLS port (SMTP against an implicit-TLS server): no greeting, suggests SMTP_SSL', async () => {
    const steps: Step[] = [{ kind: 'stall' }];
    const out = await run(steps, (connect) => connect(), {
      client: remote({ timeout: 400 }),
      server: { tls: serverTls(), implicitTls: true, expectTimeout: 1500 },
    });
    expectError(out.error, smtplib.SMTPTimeoutError, 'ERR_SMTP_TIMEOUT', 'no greeting from mail.example.test', 'SMTP_SSL');
    expect((out.error as smtplib.SMTPTimeoutError).phase).toBe('greeting');
  });

  it('no greeting at all on port 465 given to SMTP with tlsPolicy none: the hint names implicit TLS', async () => {
    const out = await run([{ kind: 'stall' }], (connect) => connect(), {
      client: (port) => ({ host: 'mail.example.test', port: 465, tlsPolicy: 'none', timeout: 400, connect: () => import('./helpers.js').then((h) => h.directTo(port)!({ host: '', port: 0 })) }),
      server: { expectTimeout: 1500 },
    });
    expectError(out.error, smtplib.SMTPTimeoutError, 'ERR_SMTP_TIMEOUT', 'no greeting', 'implicit TLS');
  });

  it('a TLS server that closes on plaintext: "closed the connection before greeting" with the SMTP_SSL hint', async () => {
    const out = await run([{ kind: 'close' }], (connect) => connect(), { client: remote() });
    expectError(out.error, smtplib.SMTPConnectError, 'ERR_SMTP_CONNECT', 'closed the connection before greeting', 'SMTP_SSL');
  });
});
