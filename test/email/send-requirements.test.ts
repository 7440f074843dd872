// SMTPUTF8 and BODY=8BITMIME are declared from what an EmailMessage contains
// (its smtpRequirements(), the core's structural protocol), on every path:
// SMTP.sendMessage, SMTPPool.sendMessage (which streams the message on each
// attempt instead of reading it into one Buffer) and MailQueue.enqueueMessage.
// A server without SMTPUTF8 gets a typed error before MAIL, naming the fix.
// Exact wire bytes against a scripted server; the rest against smtp-server
// (npm) in process, which records the MAIL FROM parameters it was given.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { SMTP, SMTPNotSupportedError, SMTPPool } from 'smtplib';
import { EmailMessage, parseMessage, SMTPUTF8 } from 'smtplib-email';
import { MailQueue } from 'smtplib-queue';
import { startServer, type TestServer } from '../integration/helpers.js';
import { parseTranscript, startScriptedServer, type Step } from '../support/scripted-server.js';

const servers: TestServer[] = [];
afterEach(async () => { for (const s of servers.splice(0)) await s.close(); });
async function server(options: Parameters<typeof startServer>[0] = {}): Promise<TestServer> {
  const s = await startServer(options);
  servers.push(s);
  return s;
}

const ATTACHMENT = 4 * 1024 * 1024;

/** A UTF-8 message (SMTPUTF8 policy) whose attachment is produced on demand; `pulled` counts the bytes read from it. */
function utf8Message(counter = { pulled: 0, opened: 0 }): { msg: EmailMessage; counter: typeof counter } {
  const msg = new EmailMessage({ policy: SMTPUTF8, boundarySeed: 'req' });
  msg.set('From', 'Jörg <alice@example.com>');
  msg.set('To', 'bob@example.com');
  msg.set('Bcc', 'hidden@example.com');
  msg.set('Subject', 'Grüße aus Köln');
  msg.set('Message-ID', '<req.1@example.com>');
  msg.set('Date', 'Sun, 06 Dec 2026 01:00:00 +0000');
  msg.setContent('Hallo, schöne Grüße\n');
  msg.addAttachment({
    stream: () => {
      counter.opened++;
      const block = Buffer.alloc(64 * 1024, 0x41);
      let left = ATTACHMENT;
      return new Readable({
        read() {
          if (left === 0) { this.push(null); return; }
          left -= block.length;
          counter.pulled += block.length;
          this.push(block);
        },
      });
    },
  }, { filename: 'data.bin' });
  return { msg, counter };
}

/** What sendMessage() writes after DATA: the message without Bcc, dot-stuffed, then the end of data. */
async function dataBytes(msg: EmailMessage): Promise<Buffer> {
  const text = (await msg.asBytes()).toString('latin1').replace(/^Bcc: .*\r\n/m, '').replace(/^\./gm, '..');
  return Buffer.from(`${text}${text.endsWith('\r\n') ? '' : '\r\n'}.\r\n`, 'latin1');
}

describe('SMTPUTF8 / BODY=8BITMIME from the message (wire transcript)', () => {
  it('SMTP.sendMessage writes MAIL FROM with BODY=8BITMIME SMTPUTF8 and the message bytes', async () => {
    const { msg } = utf8Message();
    const steps: Step[] = [
      ...parseTranscript('S: 220 mx ESMTP\nC: EHLO client.test\nS: 250-mx\nS: 250-PIPELINING\nS: 250-8BITMIME\nS: 250 SMTPUTF8'),
      { kind: 'expect', data: Buffer.from('MAIL FROM:<alice@example.com> BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<bob@example.com>\r\nRCPT TO:<hidden@example.com>\r\nDATA\r\n') },
      ...parseTranscript('S: 250 ok\nS: 250 ok\nS: 250 ok\nS: 354 go'),
      { kind: 'expect', data: await dataBytes(msg) },
      ...parseTranscript('S: 250 2.0.0 queued\nC: QUIT\nS: 221 bye'),
    ];
    const scripted = await startScriptedServer(steps, { expectTimeout: 20_000 });
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: scripted.port, localHostname: 'client.test' });
    await smtp.sendMessage(msg);
    await smtp.quit();
    const result = await scripted.done;
    expect(result.mismatch).toBeUndefined();
    expect(result.completed).toBe(steps.length);
    await scripted.close();
  });

  it('a server without SMTPUTF8: a typed error before MAIL that says what to do, and nothing is sent', async () => {
    const { msg, counter } = utf8Message();
    const steps = parseTranscript('S: 220 mx ESMTP\nC: EHLO client.test\nS: 250-mx\nS: 250-PIPELINING\nS: 250 8BITMIME\nC: QUIT\nS: 221 bye');
    const scripted = await startScriptedServer(steps);
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: scripted.port, localHostname: 'client.test' });
    const error = await smtp.sendMessage(msg).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(SMTPNotSupportedError);
    expect((error as Error).message).toMatch(/SMTPUTF8/);
    expect((error as Error).message).toMatch(/SMTP policy/);
    expect(counter.pulled).toBeLessThan(ATTACHMENT); // only the header block was read (and what the stream read ahead)
    await smtp.quit();
    const result = await scripted.done;
    expect(result.mismatch).toBeUndefined();
    expect(result.leftover.length).toBe(0);
    await scripted.close();
  });
});

describe('SMTPPool.sendMessage(EmailMessage)', () => {
  it('declares SMTPUTF8 and BODY=8BITMIME, and streams the message: the attachment is not read before MAIL FROM', async () => {
    let pulledAtMail = -1;
    const { msg, counter } = utf8Message();
    const s = await server({
      onMailFrom(_address, _session, callback) { pulledAtMail = counter.pulled; callback(); },
    });
    const pool = new SMTPPool({ host: '127.0.0.1', port: s.port, maxConnections: 1 });
    try {
      const result = await pool.sendMessage(msg);
      expect(result.accepted.sort()).toEqual(['bob@example.com', 'hidden@example.com']);
    } finally {
      await pool.close();
    }
    const got = s.received[0]!;
    expect(got.params).toMatchObject({ SMTPUTF8: true, BODY: '8BITMIME' });
    expect(pulledAtMail).toBeGreaterThanOrEqual(0);
    expect(pulledAtMail).toBeLessThan(ATTACHMENT); // a Buffer of the whole message would have read it all
    expect(got.data.toString('utf8')).toContain('Subject: Grüße aus Köln\r\n');
    expect(got.data.toString()).not.toContain('hidden@example.com');
    const parsed = parseMessage(got.data);
    const [attachment] = [...parsed.iterAttachments()];
    expect((attachment!.getContent() as Buffer).equals(Buffer.alloc(ATTACHMENT, 0x41))).toBe(true);
  });

  it('a retried attempt streams the message again (no copy was kept)', async () => {
    const { msg, counter } = utf8Message();
    let attempts = 0;
    const s = await server({
      onMailFrom(_address, _session, callback) {
        attempts++;
        if (attempts === 1) return callback(Object.assign(new Error('4.3.2 try again later'), { responseCode: 451 }));
        callback();
      },
    });
    const pool = new SMTPPool({ host: '127.0.0.1', port: s.port, maxConnections: 1, retry: { attempts: 3, minDelayMs: 1, maxDelayMs: 5 } });
    try {
      await pool.sendMessage(msg);
    } finally {
      await pool.close();
    }
    expect(attempts).toBe(2);
    expect(s.received.length).toBe(1);
    expect(s.received[0]!.params).toMatchObject({ SMTPUTF8: true, BODY: '8BITMIME' });
    expect(counter.opened).toBeGreaterThanOrEqual(1);
    expect(s.received[0]!.data.equals((await dataBytes(msg)).subarray(0, -3))).toBe(true);
  });

  it('a server without SMTPUTF8: SMTPNotSupportedError naming the fix, nothing delivered; the SMTP-policy form goes through', async () => {
    const { msg } = utf8Message();
    const s = await server({ hideSMTPUTF8: true });
    const pool = new SMTPPool({ host: '127.0.0.1', port: s.port, maxConnections: 1 });
    try {
      const error = await pool.sendMessage(msg).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(SMTPNotSupportedError);
      expect((error as Error).message).toMatch(/SMTP policy/);
      expect(s.received).toEqual([]);
      const ascii = new EmailMessage({ boundarySeed: 'req' });
      ascii.set('From', 'Jörg <alice@example.com>');
      ascii.set('To', 'bob@example.com');
      ascii.set('Subject', 'Grüße aus Köln');
      ascii.setContent('Hallo, schöne Grüße\n');
      expect(ascii.smtpRequirements()).toEqual({ smtputf8: false, eightBitMime: false });
      await pool.sendMessage(ascii);
      expect(s.received.length).toBe(1);
      expect(s.received[0]!.params.SMTPUTF8).toBeUndefined();
      expect(parseMessage(s.received[0]!.data).get('subject')).toBe('Grüße aus Köln');
    } finally {
      await pool.close();
    }
  });
});

describe('MailQueue.enqueueMessage(EmailMessage)', () => {
  it('stores what the message needs, and every attempt declares it', async () => {
    const s = await server();
    const dir = mkdtempSync(join(tmpdir(), 'email-req-queue-'));
    const queue = await MailQueue.open({ dir });
    try {
      const { msg } = utf8Message();
      const { id } = await queue.enqueueMessage(msg);
      expect((await queue.get(id))!.mailOptions).toEqual({ smtputf8: true, body: '8BITMIME' });
      await queue.flush({ smtp: { host: '127.0.0.1', port: s.port } });
      expect((await queue.wait(id, { timeoutMs: 10_000 })).state).toBe('delivered');
      expect(s.received[0]!.params).toMatchObject({ SMTPUTF8: true, BODY: '8BITMIME' });
      expect(s.received[0]!.data.toString('utf8')).toContain('Subject: Grüße aus Köln\r\n');

      const plain = new EmailMessage();
      plain.set('From', 'alice@example.com');
      plain.set('To', 'bob@example.com');
      plain.setContent('ascii only\n');
      const second = await queue.enqueueMessage(plain);
      expect((await queue.get(second.id))!.mailOptions).toBeUndefined();
    } finally {
      await queue.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
