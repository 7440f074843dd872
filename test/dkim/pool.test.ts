// The dkim option through SMTPPool (its options and each send) and with a
// real EmailMessage from smtplib-email (serialized twice through its
// deterministic stream()), verified by dkimpy, OpenDKIM and mailauth.

import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMTP, SMTPInvalidArgumentError, SMTPPool, type DkimOptions } from 'smtplib';
import { EmailMessage } from 'smtplib-email';
import { startServer, type TestServer } from '../integration/helpers.js';
import { DOMAIN, makeKeys, verifierGate, verifyAll, VERIFIERS, type TestKeys } from './verifiers.js';

const gate = verifierGate();
const MESSAGE = 'From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: pooled\r\nDate: Sat, 05 Dec 2026 21:00:00 +0000\r\n\r\nsent through the pool\r\n';

describe.skipIf(gate.skip)('DKIM through SMTPPool and with an EmailMessage', () => {
  let keys: TestKeys;
  let server: TestServer;
  let rsa: DkimOptions;
  let ed: DkimOptions;
  beforeAll(async () => {
    keys = makeKeys();
    server = await startServer();
    rsa = { domain: DOMAIN, selector: keys.rsa.selector, privateKey: keys.rsa.pem };
    ed = { domain: DOMAIN, selector: keys.ed25519.selector, privateKey: keys.ed25519.pem, canonicalization: 'simple/simple' };
  });
  afterAll(async () => {
    await server?.close();
    keys?.cleanup();
  });

  it('the pool signs every send with its option, a send can replace or drop it, and an EmailMessage verifies', async () => {
    const pool = new SMTPPool({ host: '127.0.0.1', port: server.port, maxConnections: 2, dkim: [rsa, ed] });
    const email = new EmailMessage();
    email.set('From', 'Alice <alice@example.com>');
    email.set('To', 'bob@example.org');
    email.set('Subject', 'an EmailMessage with an attachment');
    email.setContent('Hello,\n\nthe report is attached.\n');
    email.addAttachment(Buffer.from('a,b\n1,2\n'.repeat(2000)), { filename: 'report.csv' });
    const start = server.received.length;
    await pool.sendmail('alice@example.com', ['bob@example.org'], MESSAGE);
    await pool.sendmail('alice@example.com', ['bob@example.org'], Buffer.from(MESSAGE), { dkim: ed });
    await pool.sendmail('alice@example.com', ['bob@example.org'], MESSAGE, { dkim: false });
    await pool.sendMessage(email);
    await pool.close();
    const stored = server.received.slice(start).map((r) => r.data);
    expect(stored).toHaveLength(4);
    expect(stored[2]!.toString()).not.toContain('DKIM-Signature');
    const verdicts = await verifyAll(keys, [stored[0]!, stored[1]!, stored[3]!]);
    const expected = [[true, true], [true], [true, true]];
    verdicts.forEach((v, i) => { for (const name of VERIFIERS) expect(v[name], `message ${i} ${name}`).toEqual(expected[i]); });
  });

  it('SMTP.sendMessage(EmailMessage): serialized twice through stream(), once to sign and once to send; both signatures verify', async () => {
    const email = new EmailMessage();
    email.set('From', 'Jörg <joerg@example.com>');
    email.set('To', 'bob@example.org');
    email.set('Subject', 'multipart, signed in bounded memory');
    email.setContent('Text part.\n');
    email.addAttachment(Buffer.alloc(300_000, 7), { filename: 'blob.bin' });
    let serializations = 0;
    const stream = email.stream.bind(email);
    email.stream = (...args: Parameters<typeof stream>) => { serializations++; return stream(...args); };
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, dkim: [rsa, ed] });
    await smtp.sendMessage(email);
    await smtp.quit();
    expect(serializations).toBe(2);
    const [verdict] = await verifyAll(keys, [server.received.at(-1)!.data]);
    for (const name of VERIFIERS) expect(verdict![name], name).toEqual([true, true]);
  });

  it('a bad pool option throws at construction, a bad per-send option rejects, and the pool never shows the key', async () => {
    expect(() => new SMTPPool({ host: '127.0.0.1', port: server.port, dkim: { ...rsa, selector: 'no_underscores' } })).toThrow(SMTPInvalidArgumentError);
    const pool = new SMTPPool({ host: '127.0.0.1', port: server.port, dkim: rsa });
    await expect(pool.sendmail('alice@example.com', ['bob@example.org'], MESSAGE, { dkim: { ...rsa, privateKey: 'nope' } })).rejects.toBeInstanceOf(SMTPInvalidArgumentError);
    await expect(pool.sendMessage(MESSAGE, { dkim: { ...ed, algorithm: 'rsa-sha256' } })).rejects.toBeInstanceOf(SMTPInvalidArgumentError);
    const body = keys.rsa.pem.split('\n')[10]!;
    expect(inspect(pool, { depth: 8, showHidden: true })).not.toContain(body);
    expect(JSON.stringify(pool.options)).not.toContain(body);
    await pool.close();
  });
});
