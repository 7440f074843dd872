// What a signature covers and how the message is read: oversigning, the h=
// list, expiry, the body hash independent of how the message is chunked, two
// readings of a re-readable message, and the spool past the threshold.

import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DKIM_SPOOL_THRESHOLD, DkimSigner, SMTP } from 'smtplib';
import { startServer, type TestServer } from '../integration/helpers.js';
import { chunked, SerializedMessage } from './messages.js';
import { DOMAIN, makeKeys, verifierGate, verifyAll, VERIFIERS, type TestKeys } from './verifiers.js';

const gate = verifierGate();
const MESSAGE = 'From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: hi\r\nDate: Sat, 05 Dec 2026 21:00:00 +0000\r\nMessage-ID: <m@example.com>\r\nX-Not-Signed: 1\r\n\r\nbody\r\n';

function tag(field: string, name: string): string | undefined {
  return new RegExp(`(?:^|;)\\s*${name}=([^;]*)`).exec(field.replace(/\r\n[ \t]/g, ' '))?.[1]?.replace(/\s+/g, '');
}

describe.skipIf(gate.skip)('what a DKIM signature covers', () => {
  let keys: TestKeys;
  beforeAll(() => { keys = makeKeys(); });
  afterAll(() => keys?.cleanup());

  it('h= lists the default fields present, oversigns From/To/Subject/Date, and skips the rest', async () => {
    const field = (await new DkimSigner({ domain: DOMAIN, selector: keys.rsa.selector, privateKey: keys.rsa.pem }).sign(MESSAGE)).toString();
    expect(tag(field, 'h')).toBe('from:from:subject:subject:date:date:to:to:message-id');
  });

  it('adding a From, To, Subject or Date field after signing breaks the signature for every verifier; an unsigned field does not', async () => {
    const signer = new DkimSigner({ domain: DOMAIN, selector: keys.ed25519.selector, privateKey: keys.ed25519.pem });
    const signed = Buffer.concat([await signer.sign(MESSAGE), Buffer.from(MESSAGE)]).toString();
    const added = ['From: Mallory <m@evil.example>', 'To: eve@evil.example', 'Subject: changed', 'Date: Sun, 06 Dec 2026 00:00:00 +0000'];
    // Prepended after the signature field, as a forwarder would add them.
    const tampered = added.map((f) => Buffer.from(signed.replace('\r\nFrom: Alice', `\r\n${f}\r\nFrom: Alice`)));
    const harmless = Buffer.from(signed.replace('\r\nFrom: Alice', '\r\nX-Added: fine\r\nFrom: Alice'));
    const verdicts = await verifyAll(keys, [...tampered, harmless]);
    for (let i = 0; i < tampered.length; i++) for (const name of VERIFIERS) expect(verdicts[i]![name], `${added[i]} ${name}`).toEqual([false]);
    for (const name of VERIFIERS) expect(verdicts[tampered.length]![name], name).toEqual([true]);
  });

  it('headers: signs the named fields, all their instances; expireAfter sets x= and the signature still verifies', async () => {
    const signer = new DkimSigner({ domain: DOMAIN, selector: keys.rsa.selector, privateKey: keys.rsa.pem, headers: ['From', 'X-Not-Signed', 'Received'], expireAfter: 3600 });
    const field = (await signer.sign(`Received: one\r\nReceived: two\r\n${MESSAGE}`)).toString();
    expect(tag(field, 'h')).toBe('from:from:x-not-signed:received:received');
    expect(Number(tag(field, 'x')) - Number(tag(field, 't'))).toBe(3600);
    const [verdict] = await verifyAll(keys, [Buffer.concat([Buffer.from(field), Buffer.from(`Received: one\r\nReceived: two\r\n${MESSAGE}`)])]);
    for (const name of VERIFIERS) expect(verdict![name], name).toEqual([true]);
  });
});

describe('the body hash does not depend on how the message is chunked', () => {
  it('any split of any message gives the signature of the whole (Ed25519 is deterministic)', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const signers = ['relaxed/relaxed', 'simple/simple'].map((c) => new DkimSigner({ domain: DOMAIN, selector: 's', privateKey, canonicalization: c as 'simple/simple' }));
    const piece = fc.constantFrom('a', 'b c', ' ', '\t', '\r\n', '\n', '\r', '.', 'ü', '  \t ');
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { maxLength: 60 }), fc.integer({ min: 1, max: 7 }), async (parts, size) => {
        const bytes = Buffer.from(`From: a@example.com\r\n\r\n${parts.join('')}`);
        for (const signer of signers) {
          const whole = await signer.sign(bytes);
          const split = await signer.sign((async function* () { yield* chunked(bytes, size); })());
          // Same second: t= equal, so the whole field is equal; across a second boundary compare bh= only.
          if (tag(whole.toString(), 't') === tag(split.toString(), 't')) expect(split.toString()).toBe(whole.toString());
          else expect(tag(split.toString(), 'bh')).toBe(tag(whole.toString(), 'bh'));
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('reading the message twice, or spooling it', () => {
  let server: TestServer;
  let spoolRoot: string;
  const savedTmp = process.env.TMPDIR;
  const { privateKey } = generateKeyPairSync('ed25519');
  beforeAll(async () => {
    server = await startServer();
    spoolRoot = mkdtempSync(join(tmpdir(), 'dkim-spool-'));
    process.env.TMPDIR = spoolRoot;
  });
  afterAll(async () => {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
    rmSync(spoolRoot, { recursive: true, force: true });
    await server.close();
  });

  it.skipIf(gate.skip)('a serializable message (EmailMessage\'s stream() contract) is serialized twice, once to sign and once to send, with Bcc removed from both', async () => {
    const keys = makeKeys();
    try {
      const message = new SerializedMessage(Buffer.from(MESSAGE.replace('To: bob@example.org\r\n', 'To: bob@example.org\r\nBcc: hidden@example.org\r\n')));
      const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, dkim: { domain: DOMAIN, selector: keys.ed25519.selector, privateKey: keys.ed25519.pem } });
      await smtp.sendMessage(message);
      await smtp.quit();
      expect(message.serializations).toBe(2);
      const stored = server.received.at(-1)!;
      expect(stored.to).toEqual(['bob@example.org', 'hidden@example.org']);
      expect(stored.data.toString()).toMatch(/^DKIM-Signature: [\s\S]*\r\nFrom: Alice/);
      expect(stored.data.toString()).not.toContain('hidden@');
      const [verdict] = await verifyAll(keys, [stored.data]);
      for (const name of VERIFIERS) expect(verdict![name], name).toEqual([true]);
    } finally {
      keys.cleanup();
    }
  });

  it(`a one-shot stream stays in memory up to ${DKIM_SPOOL_THRESHOLD} bytes, is spooled to a 0600 file past it, and the file is gone after the send`, async () => {
    const spools = () => readdirSync(spoolRoot).filter((n) => n.startsWith('smtplib-dkim-'));
    const seen: { at: number; spools: number; mode?: number }[] = [];
    const line = Buffer.from(`${'x'.repeat(78)}\r\n`);
    async function* oneShot(total: number): AsyncIterable<Buffer> {
      yield Buffer.from(MESSAGE);
      for (let sent = 0; sent < total; sent += line.length * 100) {
        const names = spools();
        seen.push({ at: sent, spools: names.length, ...(names[0] ? { mode: statSync(join(spoolRoot, names[0], 'message')).mode & 0o777 } : {}) });
        yield Buffer.concat(Array.from({ length: 100 }, () => line));
      }
    }
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, dkim: { domain: DOMAIN, selector: 's', privateKey } });
    await smtp.deliver('alice@example.com', ['bob@example.org'], oneShot(DKIM_SPOOL_THRESHOLD * 2));
    await smtp.quit();
    const before = seen.filter((s) => s.at < DKIM_SPOOL_THRESHOLD - 16 * 1024);
    const after = seen.filter((s) => s.at > DKIM_SPOOL_THRESHOLD + 16 * 1024);
    expect(before.every((s) => s.spools === 0)).toBe(true);
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((s) => s.spools === 1 && s.mode === 0o600)).toBe(true);
    expect(spools()).toEqual([]);
    expect(server.received.at(-1)!.data.length).toBeGreaterThan(DKIM_SPOOL_THRESHOLD * 2);
  });
});
