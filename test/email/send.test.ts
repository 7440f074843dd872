// sendMessage(emailMessage): the core takes an EmailMessage through its
// structural interface (stream(), smtpRequirements()), without importing
// this package. The envelope comes from the headers, Bcc never leaves, and
// SMTPUTF8 / BODY=8BITMIME are declared from what the message contains.
// Against smtp-server (npm) in process on loopback.

import { afterEach, describe, expect, it } from 'vitest';
import { SMTP, SMTPNotSupportedError, SMTPPool } from 'smtplib';
import { Address, EmailMessage, parseMessage, SMTPUTF8 } from 'smtplib-email';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MailQueue } from 'smtplib-queue';
import { bodyBytes } from '../queue/body-bytes.js';
import { startServer, type TestServer } from '../integration/helpers.js';

const servers: TestServer[] = [];
afterEach(async () => { for (const s of servers.splice(0)) await s.close(); });
async function server(options: Parameters<typeof startServer>[0] = {}) {
  const s = await startServer(options);
  servers.push(s);
  return s;
}

function message(policy?: typeof SMTPUTF8): EmailMessage {
  const msg = new EmailMessage({ boundarySeed: 'send', ...(policy ? { policy } : {}) });
  msg.set('From', new Address('Alice', 'alice', 'example.com'));
  msg.set('To', 'bob@example.com');
  msg.set('Cc', 'carol@example.com');
  msg.set('Bcc', 'hidden@example.com');
  msg.set('Subject', 'Grüße');
  msg.set('Message-ID', '<send.1@example.com>');
  msg.setContent('Hello, wörld\n');
  msg.addAttachment(Buffer.alloc(100_000, 7), { filename: 'data.bin' });
  return msg;
}

describe('sendMessage(EmailMessage)', () => {
  it('takes the envelope from the headers, leaves Bcc out of the data, and sends the written bytes', async () => {
    const s = await server();
    const msg = message();
    await using smtp = await SMTP.connect({ host: '127.0.0.1', port: s.port });
    const refused = await smtp.sendMessage(msg);
    expect(Object.keys(refused)).toEqual([]);
    const got = s.received[0]!;
    expect(got.from).toBe('alice@example.com');
    expect(got.to.sort()).toEqual(['bob@example.com', 'carol@example.com', 'hidden@example.com']);
    const expected = (await msg.asBytes()).toString('latin1').replace(/^Bcc: .*\r\n/m, '');
    expect(got.data.toString('latin1')).toBe(expected);
    expect(got.data.toString()).not.toContain('hidden@example.com');
    expect(got.params.BODY).toBeUndefined(); // default policy: 7-bit, nothing to declare
    expect(got.params.SMTPUTF8).toBeUndefined();
    expect(parseMessage(got.data).get('subject')).toBe('Grüße');
  });

  it('an SMTPUTF8-policy message declares SMTPUTF8 and BODY=8BITMIME; a server without SMTPUTF8 gets nothing', async () => {
    const s = await server();
    const msg = message(SMTPUTF8);
    await using smtp = await SMTP.connect({ host: '127.0.0.1', port: s.port });
    await smtp.sendMessage(msg);
    expect(s.received[0]!.params).toMatchObject({ SMTPUTF8: true, BODY: '8BITMIME' });
    expect(s.received[0]!.data.toString('utf8')).toContain('Subject: Grüße\r\n');

    const plain = await server({ hideSMTPUTF8: true });
    await using smtp2 = await SMTP.connect({ host: '127.0.0.1', port: plain.port });
    await expect(smtp2.sendMessage(message(SMTPUTF8))).rejects.toBeInstanceOf(SMTPNotSupportedError);
    expect(plain.received).toEqual([]);
    await smtp2.sendMessage(message()); // the 7-bit form goes
    expect(plain.received.length).toBe(1);
  });

  it('SMTPPool.sendMessage accepts it too (same structural interface)', async () => {
    const s = await server();
    const pool = new SMTPPool({ host: '127.0.0.1', port: s.port, maxConnections: 1 });
    try {
      const msg = message();
      await pool.sendMessage(msg);
      expect(s.received[0]!.to.sort()).toEqual(['bob@example.com', 'carol@example.com', 'hidden@example.com']);
      expect(s.received[0]!.data.toString()).not.toContain('hidden@example.com');
      expect(parseMessage(s.received[0]!.data).getBody(['plain'])!.getContent()).toBe('Hello, wörld\n');
    } finally {
      await pool.close();
    }
  });

  it('MailQueue.enqueueMessage stores it without Bcc, the envelope from its headers, and a worker delivers it', async () => {
    const s = await server();
    const dir = mkdtempSync(join(tmpdir(), 'email-queue-'));
    const queue = await MailQueue.open({ dir });
    try {
      const msg = message();
      const { id } = await queue.enqueueMessage(msg);
      const stored = await bodyBytes(await queue.store.body(id));
      expect(stored.toString()).not.toContain('hidden@example.com');
      await queue.flush({ smtp: { host: '127.0.0.1', port: s.port } });
      expect((await queue.wait(id, { timeoutMs: 10_000 })).state).toBe('delivered');
      const got = s.received[0]!;
      expect(got.to.sort()).toEqual(['bob@example.com', 'carol@example.com', 'hidden@example.com']);
      expect(got.data.equals(stored)).toBe(true);
      expect(parseMessage(got.data).getBody(['plain'])!.getContent()).toBe('Hello, wörld\n');
    } finally {
      await queue.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
