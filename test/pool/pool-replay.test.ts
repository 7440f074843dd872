// Which messages SMTPPool can retry (principle 7: a message is resent only
// when it certainly was not delivered, and every outcome is reported
// honestly). Everything that can be read again is retried with a fresh
// reading: `{ path }` of a file, a function returning a fresh stream, an
// object whose stream() returns a fresh stream each call (smtplib-email's
// EmailMessage among them, which the core does not import). A one-shot
// Readable is sent at most once; when a retry would have been needed, the
// send fails 'not-delivered' and its error says why and what to pass.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EmailMessage } from 'smtplib-email';
import { SMTPPool, SMTPRecipientsRefused, SMTPServerDisconnected } from '../../packages/smtplib/src/index.js';
import { message, startFaultServer, type FaultContext, type FaultDecision, type FaultServerHandle } from './helpers.js';

let server: FaultServerHandle | undefined;
let pool: SMTPPool | undefined;
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'smtplib-pool-replay-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  pool?.destroy();
  pool = undefined;
  await server?.close();
  server = undefined;
});

/** Misbehaves once, at the first step matching `when`. */
function once(when: (ctx: FaultContext) => boolean, decision: FaultDecision) {
  let done = false;
  return (ctx: FaultContext) => {
    if (done || !when(ctx)) return undefined;
    done = true;
    return decision;
  };
}
const atEndOfData = (ctx: FaultContext) => ctx.stage === 'end-of-data';
const delivered = (id: string, rcpt = 'b@example.test') => server!.deliveries.get(`${id} ${rcpt}`) ?? 0;

async function start(fault: (ctx: FaultContext) => FaultDecision, chunking = false) {
  server = await startFaultServer({ fault, chunking });
  pool = new SMTPPool({ host: '127.0.0.1', port: server.port, localHostname: 'client.test', timeout: 5000, retry: { attempts: 3, minDelayMs: 1, maxDelayMs: 5 } });
  return pool;
}

/** A stream of `text` in small pieces, as a file or a serializer would give it. */
const streamOf = (text: string) => Readable.from(text.match(/[\s\S]{1,16}/g)!.map((piece) => Buffer.from(piece)));

describe('SMTPPool: messages that can be read again are retried with a fresh reading', () => {
  for (const chunking of [false, true]) {
    const path = chunking ? 'BDAT' : 'DATA';
    it(`{ path } of a file: a 421 at the end of data, retried, delivered once (${path})`, async () => {
      const file = join(dir, `file-${path}.eml`);
      writeFileSync(file, message(`file-${path}`, 'X-Pad: from a file\r\n'));
      await start(once(atEndOfData, { reply: '421 4.3.2 closing' }), chunking);
      const result = await pool!.sendmail('a@example.test', 'b@example.test', { path: file });
      expect(result.attempts).toBe(2);
      expect(result.accepted).toEqual(['b@example.test']);
      expect(delivered(`file-${path}`)).toBe(1);
    });
  }

  it('a function returning a fresh stream: called once per attempt, delivered once', async () => {
    let calls = 0;
    await start(once(atEndOfData, { reply: '451 4.3.0 try again' }));
    const result = await pool!.sendmail('a@example.test', 'b@example.test', () => {
      calls++;
      return streamOf(message('factory'));
    });
    expect(result.attempts).toBe(2);
    expect(calls).toBe(2);
    expect(delivered('factory')).toBe(1);
  });

  it('an object whose stream() returns a fresh stream each call: retried, delivered once', async () => {
    let streams = 0;
    const serializable = { stream: () => { streams++; return streamOf(message('serializable')); } };
    await start(once(atEndOfData, { reply: '451 4.3.0 try again' }));
    const result = await pool!.sendmail('a@example.test', 'b@example.test', serializable);
    expect(result.attempts).toBe(2);
    expect(streams).toBe(2);
    expect(delivered('serializable')).toBe(1);
  });

  it("smtplib-email's EmailMessage through sendmail and sendMessage: retried after a 421 (the core does not import smtplib-email)", async () => {
    const email = new EmailMessage();
    email.set('From', 'a@example.test');
    email.set('To', 'b@example.test');
    email.set('Subject', 'an EmailMessage');
    email.set('X-Soak-Id', 'email-1');
    email.setContent('hello from smtplib-email\n');
    let ends = 0;
    await start((ctx) => (atEndOfData(ctx) && ++ends % 2 === 1 ? { reply: '421 4.3.2 closing' } : undefined));
    const sent = await pool!.sendmail('a@example.test', 'b@example.test', email);
    expect(sent.attempts).toBe(2);
    expect(delivered('email-1')).toBe(1);
    email.set('X-Soak-Id', 'email-2');
    const viaHeaders = await pool!.sendMessage(email);
    expect(viaHeaders.attempts).toBe(2);
    expect(viaHeaders.accepted).toEqual(['b@example.test']);
    expect(delivered('email-2')).toBe(1);
  });

  it('sendMessage with { path }: the envelope from the headers, each attempt reads the file again (Bcc removed every time)', async () => {
    const file = join(dir, 'bcc.eml');
    writeFileSync(file, 'From: a@example.test\r\nTo: b@example.test\r\nBcc: hidden@example.test\r\nSubject: s\r\nX-Soak-Id: msg-file\r\n\r\nbody\r\n');
    const bodies: string[] = [];
    let ends = 0;
    server = await startFaultServer({
      fault: (ctx) => (atEndOfData(ctx) && ++ends === 1 ? { reply: '451 4.3.0 try again' } : undefined),
      log: (line) => { if (/ C: Bcc:/i.test(line)) bodies.push(line); },
    });
    pool = new SMTPPool({ host: '127.0.0.1', port: server.port, localHostname: 'client.test', chunking: false, retry: { attempts: 3, minDelayMs: 1, maxDelayMs: 5 } });
    const result = await pool.sendMessage({ path: file });
    expect(result.attempts).toBe(2);
    expect(result.accepted.sort()).toEqual(['b@example.test', 'hidden@example.test']);
    expect(delivered('msg-file')).toBe(1);
    expect(delivered('msg-file', 'hidden@example.test')).toBe(1);
    expect(bodies).toEqual([]); // the Bcc field never reached the server
  });

  it('sendMessage with stream(): one reading for the header block (closed early), then one per attempt', async () => {
    const opened: Readable[] = [];
    const serializable = { stream: () => { const s = streamOf(message('msg-serializable') + 'x'.repeat(5000)); opened.push(s); return s; } };
    await start(once(atEndOfData, { reply: '451 4.3.0 try again' }));
    const result = await pool!.sendMessage(serializable);
    expect(result.attempts).toBe(2);
    expect(opened.length).toBe(3);
    // The reading for the envelope stopped at the header block and was closed.
    expect(opened[0]!.destroyed).toBe(true);
    expect(delivered('msg-serializable')).toBe(1);
  });
});

describe('SMTPPool: a one-shot stream is sent at most once, and says so', () => {
  it('delivered on the first attempt: resolves as usual', async () => {
    await start(() => undefined);
    const result = await pool!.sendmail('a@example.test', 'b@example.test', streamOf(message('one-shot-ok')));
    expect(result.attempts).toBe(1);
    expect(delivered('one-shot-ok')).toBe(1);
  });

  for (const chunking of [false, true]) {
    it(`a 421 at the end of data: not retried, 'not-delivered', the error says why and what to pass instead (${chunking ? 'BDAT' : 'DATA'})`, async () => {
      await start(once(atEndOfData, { reply: '421 4.3.2 closing' }), chunking);
      const error = await pool!.sendmail('a@example.test', 'b@example.test', streamOf(message('one-shot'))).catch((e) => e);
      expect(error).toBeInstanceOf(SMTPServerDisconnected);
      expect(error.deliveryStatus).toBe('not-delivered');
      expect(error.attempts).toBe(1);
      expect(error.message).toMatch(/421/);
      expect(error.message).toMatch(/not retried: the message was given as a one-shot stream/);
      expect(error.hint).toMatch(/\{ path \}.*function that returns a fresh stream.*stream\(\)/);
      expect(delivered('one-shot')).toBe(0);
      expect(pool!.stats().retried).toBe(0);
    });
  }

  it('every recipient refused with 4xx: SMTPRecipientsRefused, not retried, with the same advice', async () => {
    await start(once((c) => c.verb === 'RCPT', { reply: '451 4.3.0 greylisted' }));
    const error = await pool!.sendmail('a@example.test', 'b@example.test', streamOf(message('one-shot-rcpt'))).catch((e) => e);
    expect(error).toBeInstanceOf(SMTPRecipientsRefused);
    expect(error.deliveryStatus).toBe('not-delivered');
    expect(error.message).toMatch(/one-shot stream/);
    expect(error.hint).toMatch(/\{ path \}/);
    expect(delivered('one-shot-rcpt')).toBe(0);
  });

  it('a permanent refusal is not dressed up: no retry would have been made, so no advice', async () => {
    await start(once(atEndOfData, { reply: '554 5.6.0 content rejected' }));
    const error = await pool!.sendmail('a@example.test', 'b@example.test', streamOf(message('one-shot-554'))).catch((e) => e);
    expect(error.smtpCode).toBe(554);
    expect(error.hint).toBeUndefined();
    expect(error.message).not.toMatch(/one-shot/);
  });
});
