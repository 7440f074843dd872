// DKIM through the durable queue: the worker's pool signs every message it
// delivers (a string body, an EmailMessage stored by enqueueMessage, and a
// message retried after a 451, signed again on its second attempt), and the
// signatures verify with dkimpy, OpenDKIM and mailauth. The spool stores the
// message unsigned: a key change between enqueue and delivery is honoured and
// the private key never reaches the spool directory.

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DkimOptions } from 'smtplib';
import { EmailMessage } from 'smtplib-email';
import { MailQueue, QueueWorker } from 'smtplib-queue';
import { startServer, type TestServer } from '../integration/helpers.js';
import { DOMAIN, makeKeys, verifierGate, verifyAll, VERIFIERS, type TestKeys } from './verifiers.js';

const gate = verifierGate();
const FAST = { minBackoffMs: 20, maxBackoffMs: 100, greylistDelayMs: 20 };

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(join(entry.parentPath, entry.name));
  }
  return out;
}

describe.skipIf(gate.skip)('DKIM through the queue', () => {
  let keys: TestKeys;
  let server: TestServer;
  let dir: string;
  let rsa: DkimOptions;
  let ed: DkimOptions;
  let refusedOnce = false;
  beforeAll(async () => {
    keys = makeKeys();
    server = await startServer({
      // The first RCPT for retry@ is deferred once (451), so the worker must sign that message again.
      onRcptTo(address, _session, callback) {
        if (address.address === 'retry@example.org' && !refusedOnce) {
          refusedOnce = true;
          return callback(Object.assign(new Error('4.7.1 try again later'), { responseCode: 451 }));
        }
        callback();
      },
    });
    dir = await mkdtemp(join(tmpdir(), 'smtplib-dkim-queue-'));
    rsa = { domain: DOMAIN, selector: keys.rsa.selector, privateKey: keys.rsa.pem };
    ed = { domain: DOMAIN, selector: keys.ed25519.selector, privateKey: keys.ed25519.pem, canonicalization: 'simple/simple' };
  });
  afterAll(async () => {
    await server?.close();
    keys?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the worker signs what it delivers, including a retried message; the spool keeps it unsigned and keyless', async () => {
    const queue = await MailQueue.open({ dir });
    const plain = 'From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: queued and signed\r\nDate: Sun, 06 Dec 2026 01:00:00 +0000\r\n\r\nbody\r\n';
    const retried = plain.replace('bob@example.org', 'retry@example.org').replace('queued and signed', 'deferred once, signed twice');
    const email = new EmailMessage();
    email.set('From', 'Jörg <joerg@example.com>');
    email.set('To', 'carol@example.org');
    email.set('Subject', 'an EmailMessage through the spool');
    email.setContent('Text part.\n');
    email.addAttachment(Buffer.alloc(200_000, 3), { filename: 'blob.bin' });
    const ids = [
      (await queue.enqueue({ from: 'alice@example.com', to: 'bob@example.org', message: plain })).id,
      (await queue.enqueue({ from: 'alice@example.com', to: 'retry@example.org', message: retried })).id,
      (await queue.enqueueMessage(email)).id,
    ];
    // Nothing signed is stored: the signature is made at delivery, with the worker's keys.
    for (const file of await filesUnder(dir)) {
      const text = await readFile(file, 'latin1');
      expect(text, file).not.toContain('DKIM-Signature');
      expect(text, file).not.toContain(keys.rsa.pem.split('\n')[5]!);
    }
    const worker = new QueueWorker(queue.store, { smtp: { host: '127.0.0.1', port: server.port, dkim: [rsa, ed] }, schedule: FAST });
    const start = server.received.length;
    await worker.start();
    const final = await Promise.all(ids.map((id) => queue.wait(id, { timeoutMs: 30_000 })));
    await worker.stop();
    await queue.close();
    expect(final.map((m) => m.state)).toEqual(['delivered', 'delivered', 'delivered']);
    expect(final[1]!.attempts).toBe(2);
    const stored = server.received.slice(start).map((r) => r.data);
    expect(stored).toHaveLength(3);
    const verdicts = await verifyAll(keys, stored);
    for (const [i, verdict] of verdicts.entries()) {
      for (const name of VERIFIERS) expect(verdict[name], `message ${i} ${name}`).toEqual([true, true]);
    }
  });
});
