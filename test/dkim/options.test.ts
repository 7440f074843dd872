// The dkim option is checked before anything is sent, its errors are typed,
// and the private key never shows in an error, util.inspect or JSON.

import { generateKeyPairSync } from 'node:crypto';
import net from 'node:net';
import { inspect } from 'node:util';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DkimSigner, SMTP, SMTPInvalidArgumentError, LMTP, type DkimOptions } from 'smtplib';
import { startServer, type TestServer } from '../integration/helpers.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ed = generateKeyPairSync('ed25519');
const rsaPem = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const edPem = ed.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const base: DkimOptions = { domain: 'example.com', selector: 'sel', privateKey: rsaPem };
const MESSAGE = 'From: a@example.com\r\nTo: b@example.org\r\nSubject: s\r\n\r\nbody\r\n';

/** A stretch of a PEM's base64 body (past the common ASN.1 prefix): it must never appear. */
function secretSample(pem: string): string {
  const body = pem.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
  const middle = Math.floor(body.length / 2);
  return body.slice(middle, middle + 24);
}

function expectInvalid(options: unknown, pattern: RegExp): SMTPInvalidArgumentError {
  let caught: unknown;
  try {
    new DkimSigner(options as DkimOptions);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(SMTPInvalidArgumentError);
  const error = caught as SMTPInvalidArgumentError;
  expect(error.code).toBe('ERR_SMTP_INVALID_ARGUMENT');
  expect(error.message).toMatch(pattern);
  return error;
}

describe('dkim option checks', () => {
  it('accepts RSA and Ed25519 keys as PEM string, PEM Buffer and KeyObject, and infers the algorithm', () => {
    expect(new DkimSigner(base).signatures).toEqual([{ domain: 'example.com', selector: 'sel', algorithm: 'rsa-sha256', canonicalization: 'relaxed/relaxed' }]);
    expect(new DkimSigner({ ...base, privateKey: Buffer.from(edPem) }).signatures[0]!.algorithm).toBe('ed25519-sha256');
    expect(new DkimSigner({ ...base, privateKey: ed.privateKey, canonicalization: 'simple/simple' }).signatures[0]).toMatchObject({ algorithm: 'ed25519-sha256', canonicalization: 'simple/simple' });
    expect(new DkimSigner([base, { ...base, privateKey: edPem }]).signatures.map((s) => s.algorithm)).toEqual(['rsa-sha256', 'ed25519-sha256']);
  });

  it('a Unicode domain becomes its A-label form', () => {
    expect(new DkimSigner({ ...base, domain: 'bücher.example' }).signatures[0]!.domain).toBe('xn--bcher-kva.example');
  });

  it('malformed keys are typed errors that never quote the key', () => {
    const truncated = rsaPem.slice(0, rsaPem.length / 2);
    const error = expectInvalid({ ...base, privateKey: truncated }, /privateKey could not be read/);
    expect(`${error.message} ${String(error.cause)} ${inspect(error)}`).not.toContain(secretSample(rsaPem));
    expectInvalid({ ...base, privateKey: 'not a key' }, /privateKey could not be read/);
    expectInvalid({ ...base, privateKey: 42 }, /PEM string, a PEM Buffer or a private KeyObject/);
    expectInvalid({ ...base, privateKey: rsa.publicKey }, /public KeyObject/);
    expectInvalid({ ...base, privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }, /ec key cannot sign DKIM/);
    expectInvalid({ ...base, privateKey: generateKeyPairSync('rsa', { modulusLength: 768 }).privateKey }, /768 bits; RFC 8301/);
  });

  it('an algorithm that does not match the key is refused', () => {
    expectInvalid({ ...base, algorithm: 'ed25519-sha256' }, /needs a Ed25519 key, but the key is rsa/);
    expectInvalid({ ...base, privateKey: edPem, algorithm: 'rsa-sha256' }, /needs a RSA key, but the key is ed25519/);
    expectInvalid({ ...base, algorithm: 'rsa-sha1' }, /not supported/);
  });

  it('selectors and domains with characters DNS labels cannot hold are refused', () => {
    for (const selector of ['sel ector', 'sel_1', 'a;b', 'sel\r\nX-Injected: 1', '-sel', 'sel.', '', 'a..b']) {
      expectInvalid({ ...base, selector }, /selector/);
    }
    for (const domain of ['exa mple.com', 'example..com', '-a.com', 'a;b.com', 'example.com\r\n', '']) {
      expectInvalid({ ...base, domain }, /domain/);
    }
  });

  it('canonicalization, headers and expireAfter are checked', () => {
    expectInvalid({ ...base, canonicalization: 'relaxed' }, /canonicalization/);
    expectInvalid({ ...base, headers: ['to', 'subject'] }, /must include From/);
    expectInvalid({ ...base, headers: ['from', 'bad:name'] }, /not a header field name/);
    expectInvalid({ ...base, headers: ['from', 'DKIM-Signature'] }, /cannot include DKIM-Signature/);
    expectInvalid({ ...base, expireAfter: -5 }, /expireAfter/);
    expectInvalid({ ...base, expireAfter: 1.5 }, /expireAfter/);
    expectInvalid([], /empty list/);
  });

  it('the key never reaches util.inspect or JSON.stringify, of the signer or of a client holding it', () => {
    const signer = new DkimSigner([base, { ...base, privateKey: edPem }]);
    const smtp = new SMTP({ dkim: { ...base } });
    for (const text of [inspect(signer, { depth: 10, showHidden: true }), JSON.stringify(signer), inspect(smtp, { depth: 10, showHidden: true }), JSON.stringify(smtp)]) {
      expect(text).not.toContain(secretSample(rsaPem));
      expect(text).not.toContain(secretSample(edPem));
      expect(text).not.toContain('PRIVATE KEY');
    }
    expect(JSON.stringify(signer)).toContain('"selector":"sel"');
  });
});

describe('nothing is sent when the dkim option is bad', () => {
  let server: TestServer;
  let mailCommands = 0;
  beforeAll(async () => {
    server = await startServer({ onMailFrom: (_a, _s, cb) => { mailCommands++; cb(); } });
  });
  afterAll(async () => server.close());

  it('the constructor throws before any connection is made', async () => {
    let connections = 0;
    const listener = net.createServer((s) => { connections++; s.destroy(); });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    const port = (listener.address() as net.AddressInfo).port;
    expect(() => new SMTP({ host: '127.0.0.1', port, dkim: { ...base, selector: 'bad selector' } })).toThrow(SMTPInvalidArgumentError);
    await expect(SMTP.connect({ host: '127.0.0.1', port, dkim: { ...base, privateKey: 'garbage' } })).rejects.toBeInstanceOf(SMTPInvalidArgumentError);
    await expect(LMTP.connect({ host: '127.0.0.1', port, dkim: { ...base, domain: 'bad domain' } })).rejects.toBeInstanceOf(SMTPInvalidArgumentError);
    await new Promise((r) => setTimeout(r, 50));
    expect(connections).toBe(0);
    listener.close();
  });

  it('a bad per-send option, or a message without From, fails before MAIL and leaves the connection usable', async () => {
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port });
    const before = mailCommands;
    await expect(smtp.sendmail('a@example.com', 'b@example.org', MESSAGE, undefined, undefined)).resolves.toEqual({});
    expect(mailCommands).toBe(before + 1);
    const bad = smtp.deliver('a@example.com', ['b@example.org'], MESSAGE, { dkim: { ...base, privateKey: 'garbage' } });
    await expect(bad).rejects.toBeInstanceOf(SMTPInvalidArgumentError);
    const noFrom = 'To: b@example.org\r\nSubject: no from\r\n\r\nbody\r\n';
    const inMemory = smtp.deliver('a@example.com', ['b@example.org'], noFrom, { dkim: base });
    await expect(inMemory).rejects.toThrow(/no From header field/);
    const streamed = smtp.deliver('a@example.com', ['b@example.org'], Readable.from([Buffer.from(noFrom)]), { dkim: base });
    await expect(streamed).rejects.toThrow(/no From header field/);
    await expect(streamed.catch((e: { deliveryStatus?: string }) => e.deliveryStatus)).resolves.toBe('not-delivered');
    const unreadable = smtp.deliver('a@example.com', ['b@example.org'], { path: '/nonexistent/message.eml' }, { dkim: base });
    await expect(unreadable).rejects.toThrow(/reading the message to sign it failed/);
    expect(mailCommands).toBe(before + 1);
    // Still usable, and `dkim: false` turns a connection's signing off for one send.
    const received = server.received.length;
    await smtp.deliver('a@example.com', ['b@example.org'], MESSAGE);
    expect(server.received.length).toBe(received + 1);
    await smtp.quit();
    const signing = await SMTP.connect({ host: '127.0.0.1', port: server.port, dkim: base });
    await signing.deliver('a@example.com', ['b@example.org'], MESSAGE, { dkim: false });
    expect(server.received.at(-1)!.data.toString()).not.toContain('DKIM-Signature');
    await signing.deliver('a@example.com', ['b@example.org'], MESSAGE);
    expect(server.received.at(-1)!.data.toString()).toMatch(/^DKIM-Signature: v=1; a=rsa-sha256;/);
    await signing.quit();
  });
});
