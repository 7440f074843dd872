// Issue 11, "Security": every item has a test named after it. The wire is
// checked with the scripted server (test/support/scripted-server.ts); TLS
// uses the throw-away PKI and certificates openssl signs per test run.

import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { Duplex } from 'node:stream';
import dc from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { testPki } from '../support/certs.js';
import { GREET, local, play, smtplib } from './harness.js';

const pki = () => testPki();
const tlsServer = (pair = pki().server) => ({ tls: { key: pair.key, cert: pair.cert } });
/** A remote-looking name whose connection the test routes to the scripted server. */
const remoteName = (port: number) => ({ host: 'mail.example.test', connect: () => net.connect({ host: '127.0.0.1', port }) });

describe('TLS options that silently weaken verification', () => {
  it('TLS options that weaken verification: rejectUnauthorized false is honoured but reported (isVerified false, debug line, smtplib:connect)', async () => {
    const lines: string[] = [];
    const events: smtplib.ConnectEvent[] = [];
    const onConnect = (e: unknown) => events.push(e as smtplib.ConnectEvent);
    dc.subscribe(smtplib.CONNECT_CHANNEL, onConnect);
    try {
      const out = await play('S: 220 mx ESMTP\nC: NOOP\nS: 250 ok\n', async (port) => {
        const smtp = await smtplib.SMTP_SSL.connect(local(port, { tls: { rejectUnauthorized: false }, debugLevel: 1, debugOutput: (l) => lines.push(l) }));
        const state = { secure: smtp.isSecure, verified: smtp.isVerified };
        await smtp.noop();
        smtp.close();
        return state;
      }, { ...tlsServer(pki().selfSigned), implicitTls: true });
      expect(out.error).toBeUndefined();
      expect(out.value).toEqual({ secure: true, verified: false });
    } finally {
      dc.unsubscribe(smtplib.CONNECT_CHANNEL, onConnect);
    }
    expect(lines.join('\n')).toMatch(/tls: the server certificate was NOT verified \(rejectUnauthorized: false\)/);
    expect(events.at(-1)).toMatchObject({ secure: true, verified: false, tlsWeakenedBy: ['rejectUnauthorized: false'] });
  });

  it('TLS options that weaken verification: a verified session reports isVerified true and no weakening', async () => {
    const out = await play('S: 220 mx ESMTP\n', async (port) => {
      const smtp = await smtplib.SMTP_SSL.connect(local(port, { host: 'localhost', tls: { ca: pki().ca } }));
      const verified = smtp.isVerified;
      smtp.close();
      return verified;
    }, { ...tlsServer(), implicitTls: true });
    expect(out.value).toBe(true);
  });

  it('TLS options that weaken verification: minVersion below TLS 1.2 needs allowLegacyTls', () => {
    expect(() => new smtplib.SMTP({ tls: { minVersion: 'TLSv1' } })).toThrow(smtplib.SMTPInvalidArgumentError);
    expect(() => new smtplib.SMTP({ tls: { minVersion: 'TLSv1.1' } })).toThrow(/allowLegacyTls/);
    expect(() => new smtplib.SMTP({ tls: { maxVersion: 'TLSv1.1' } })).toThrow(/allowLegacyTls/);
    expect(() => new smtplib.SMTP({ tls: { secureProtocol: 'TLSv1_method' } })).toThrow(/allowLegacyTls/);
    expect(() => new smtplib.SMTP({ tls: { minVersion: 'TLSv1' }, allowLegacyTls: true })).not.toThrow();
    expect(() => new smtplib.SMTP({ tls: { minVersion: 'TLSv1.3' } })).not.toThrow();
  });

  it('TLS options that weaken verification: starttls(tlsOptions) cannot lower the TLS version either', async () => {
    const out = await play('S: 220 mx ESMTP\nC: NOOP\nS: 250 ok\n', async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port));
      const error = await smtp.starttls({ minVersion: 'TLSv1' }).catch((e: unknown) => e);
      await smtp.noop();
      smtp.close();
      return error;
    });
    expect(out.value).toBeInstanceOf(smtplib.SMTPInvalidArgumentError);
    expect(out.sent).not.toContain('STARTTLS');
  });

  it('TLS options that weaken verification: unverified TLS is cleartext for PLAIN and for REQUIRETLS', async () => {
    const out = await play('S: 220 mx ESMTP\nC: EHLO client.test\nS: 250-mx\nS: 250-REQUIRETLS\nS: 250 AUTH PLAIN\n', async (port) => {
      const smtp = await smtplib.SMTP_SSL.connect(local(port, { ...remoteName(port), tls: { rejectUnauthorized: false } }));
      await smtp.ehlo();
      const login = await smtp.login('user', 'secret').catch((e: unknown) => e);
      const mail = await smtp.mail('a@x.org', { requireTls: true }).catch((e: unknown) => e);
      smtp.close();
      return { login, mail };
    }, { ...tlsServer(pki().selfSigned), implicitTls: true });
    // The name is remote; the certificate was not verified: both refused before writing.
    expect(out.error).toBeUndefined();
    expect((out.value as { login: unknown }).login).toMatchObject({ name: 'SMTPNotSupportedError', diagnosis: 'unverified-tls' });
    expect((out.value as { mail: unknown }).mail).toMatchObject({ name: 'SMTPNotSupportedError', diagnosis: 'unverified-tls' });
    expect(out.sent).toBe('EHLO client.test\r\n');
  });
});

describe('SASL initial responses and the line limit', () => {
  const token = 'x'.repeat(1500); // real XOAUTH2/OAUTHBEARER tokens exceed 1 KB
  const initial = Buffer.from(`user=u@x.org\x01auth=Bearer ${token}\x01\x01`).toString('base64');

  it('SASL initial responses and the line limit: a 2 KB XOAUTH2 response goes after the 334, never on the AUTH line', async () => {
    const script = `S: 220 mx ESMTP\nC: EHLO client.test\nS: 250-mx\nS: 250 AUTH XOAUTH2\nC: AUTH XOAUTH2\nS: 334 \nC: ${initial}\nS: 235 ok\n`;
    const out = await play(script, async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port));
      const reply = await smtp.login('u@x.org', '', { token, mechanism: 'XOAUTH2' });
      smtp.close();
      return reply.code;
    });
    expect(out.wire.mismatch).toBeUndefined();
    expect(out.value).toBe(235);
    for (const line of out.sent.split('\r\n')) if (line.startsWith('AUTH')) expect(line.length + 2).toBeLessThanOrEqual(512);
  });

  it('SASL initial responses and the line limit: a short initial response stays on the AUTH line (up to 512 octets)', async () => {
    const script = `S: 220 mx ESMTP\nC: EHLO client.test\nS: 250-mx\nS: 250 AUTH PLAIN\nC: AUTH PLAIN ${Buffer.from('\0u\0p').toString('base64')}\nS: 235 ok\n`;
    const out = await play(script, async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port));
      const reply = await smtp.login('u', 'p');
      smtp.close();
      return reply.code;
    });
    expect(out.wire.mismatch).toBeUndefined();
    expect(out.value).toBe(235);
  });
});

describe('Address grammar in domains', () => {
  const bad = ['user@good-corp.com(x)evil.com', 'Name <user@good-corp.com(x)evil.com>', 'us(c)er@x.org', 'user@x..org', 'a..b@x.org', 'user@-x.org', 'user@x.org.'];

  it('Address grammar in domains: a comment never glues two domains into one, in sendmail', async () => {
    const out = await play(`${GREET}C: NOOP\nS: 250 ok\n`, async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port));
      const errors = [];
      for (const address of bad) {
        errors.push(await smtp.sendmail('a@x.org', [address], 'Subject: s\r\n\r\nx\r\n').catch((e: unknown) => e));
        errors.push(await smtp.sendmail(address, ['b@x.org'], 'Subject: s\r\n\r\nx\r\n').catch((e: unknown) => e));
      }
      await smtp.noop(); // usable: nothing was written
      smtp.close();
      return errors;
    });
    for (const error of out.value as unknown[]) expect(error).toBeInstanceOf(smtplib.SMTPInvalidArgumentError);
    expect(out.sent).toBe('EHLO client.test\r\nNOOP\r\n');
    expect(out.sent).not.toContain('good-corp.comevil.com');
  });

  it('Address grammar in domains: parseaddr, getaddresses and quoteaddr follow the same rule', () => {
    expect(smtplib.parseaddr('user@good-corp.com(x)evil.com')).toEqual({ name: '', address: '' });
    expect(smtplib.getaddresses('user@good-corp.com(x)evil.com, b@x.org').map((a) => a.address)).toEqual(['b@x.org']);
    expect(smtplib.quoteaddr('user@good-corp.com(x)evil.com')).not.toContain('good-corp.comevil.com');
    expect(smtplib.parseaddr('user@x.org (Name)')).toEqual({ name: 'Name', address: 'user@x.org' });
    expect(smtplib.parseaddr('"a\\"b" <q@x.org>')).toEqual({ name: 'a"b', address: 'q@x.org' });
  });

  it('Address grammar in domains: the envelope from headers refuses such an address instead of dropping or gluing it', async () => {
    const msg = 'From: a@x.org\r\nTo: b@x.org, user@good-corp.com(x)evil.com\r\n\r\nx\r\n';
    expect(() => smtplib.envelopeFromHeaders(msg)).toThrow(/the to header holds "user@good-corp.com\(x\)evil.com", which is not an address/);
    expect(smtplib.envelopeFromHeaders('From: a@x.org\r\nTo: undisclosed-recipients:;\r\nCc: (nobody)\r\n\r\n').to).toEqual([]);
  });

  it('Address grammar in domains: what RFC 5321 can carry still goes through', async () => {
    const good = ['"a b"@x.org', 'postmaster', 'user@[192.0.2.1]', 'o\'brien+tag@sub.x-y.org', 'Name <u@x.org> (comment)'];
    const script = GREET + good.map((g) => `C: VRFY ${smtplib.parseaddr(g).address || g}\nS: 252 ok\n`).join('');
    const out = await play(script, async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port));
      for (const g of good) await smtp.verify(g).catch(() => undefined);
      smtp.close();
    });
    expect(out.wire.mismatch).toBeUndefined();
    // And as paths (no server needed: planning refuses or accepts before writing).
    for (const g of good) expect(smtplib.quoteaddr(g)).toMatch(/^<.+>$/);
  });
});

describe('tls-server-end-point channel binding', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smtplib-cb-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  /** A self-signed certificate signed with `digest` by a key of `kind`. */
  function certificate(name: string, kind: string[], digest: string[]): { key: string; cert: string } {
    ssl('req', '-x509', ...kind, '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', '/CN=mail.example.test', ...digest);
    return { key: readFileSync(join(dir, `${name}.key`), 'utf8'), cert: readFileSync(join(dir, `${name}.pem`), 'utf8') };
  }
  const cases: [string, string[], string[], string | undefined][] = [
    ['rsa-sha384', ['-newkey', 'rsa:2048'], ['-sha384'], 'sha384'],
    ['rsa-sha512', ['-newkey', 'rsa:2048'], ['-sha512'], 'sha512'],
    ['ec-sha384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'], ['-sha384'], 'sha384'],
    ['rsa-pss-sha384', ['-newkey', 'rsa-pss', '-pkeyopt', 'rsa_keygen_bits:2048'], ['-sha384', '-sigopt', 'rsa_padding_mode:pss'], 'sha384'],
    ['rsa-sha256', ['-newkey', 'rsa:2048'], ['-sha256'], 'sha256'],
    ['ed25519', ['-newkey', 'ed25519'], [], undefined],
  ];

  for (const [name, kind, digest, hash] of cases) {
    it(`tls-server-end-point hashes with the certificate's own signature hash: ${name} → ${hash ?? 'undefined (no hash in EdDSA)'}`, async () => {
      const pair = certificate(name, kind, digest);
      const der = new X509Certificate(pair.cert).raw;
      let binding: Buffer | undefined | null = null;
      const probe: smtplib.SaslMechanism = {
        name: 'X-PROBE',
        sendsCleartext: false,
        start(context) {
          binding = context.channelBinding('tls-server-end-point');
          return undefined;
        },
        step: () => Buffer.alloc(0),
      };
      const out = await play('S: 220 mx ESMTP\nC: EHLO client.test\nS: 250-mx\nS: 250 AUTH X-PROBE\nC: AUTH X-PROBE\nS: 535 no\n', async (port) => {
        const smtp = await smtplib.SMTP_SSL.connect(local(port, { ...remoteName(port), tls: { ca: pair.cert } }));
        await smtp.ehlo();
        await smtp.auth('X-PROBE', probe).catch(() => undefined);
        smtp.close();
      }, { tls: { key: pair.key, cert: pair.cert }, implicitTls: true });
      expect(out.error).toBeUndefined();
      if (hash === undefined) expect(binding).toBeUndefined();
      else expect(Buffer.from(binding!).toString('hex')).toBe(createHash(hash).update(der).digest('hex'));
    });
  }
});

describe('A connect hook whose stream arrives after the deadline', () => {
  it('A connect hook whose stream arrives after the deadline is destroyed, not leaked', async () => {
    let late: Duplex | undefined;
    const error = await smtplib.SMTP.connect({
      host: 'mail.example.test',
      timeouts: { connect: 150 },
      connect: () => new Promise<Duplex>((resolve) => setTimeout(() => {
        late = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } });
        resolve(late);
      }, 400)),
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'SMTPTimeoutError', phase: 'connect' });
    await new Promise((r) => setTimeout(r, 400));
    expect(late).toBeDefined();
    expect(late!.destroyed).toBe(true);
  });

  it('A connect hook: SMTP.connect({ signal }) aborts the wait and destroys the late stream', async () => {
    let late: Duplex | undefined;
    const controller = new AbortController();
    const pending = smtplib.SMTP.connect({
      host: 'mail.example.test',
      signal: controller.signal,
      connect: () => new Promise<Duplex>((resolve) => setTimeout(() => resolve((late = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } }))), 200)),
    });
    setTimeout(() => controller.abort(new Error('user cancelled')), 50);
    const error = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(smtplib.SMTPAbortError);
    await new Promise((r) => setTimeout(r, 300));
    expect(late!.destroyed).toBe(true);
  });
});
