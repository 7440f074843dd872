// The rules the CLI and the library share (issue 11 "Multiple Resent blocks",
// issue 12 "Everything the CLI does twice goes"): one implementation each,
// exported by smtplib.

import { describe, expect, it } from 'vitest';
import { GREET, local, play, smtplib } from './harness.js';

const TWO_BLOCKS =
  'Resent-From: second@x.org\r\nResent-To: r2@x.org\r\nResent-Date: Mon, 2 Jan 2026 00:00:00 +0000\r\n' +
  'Resent-From: first@x.org\r\nResent-To: r1@x.org\r\nResent-Date: Sun, 1 Jan 2026 00:00:00 +0000\r\n' +
  'From: a@x.org\r\nTo: b@x.org\r\nSubject: s\r\n\r\nbody\r\n';

describe('Multiple Resent blocks', () => {
  it('Multiple Resent blocks: sendMessage refuses before MAIL unless from and to are given', async () => {
    const out = await play('S: 220 mx ESMTP\nC: NOOP\nS: 250 ok\n', async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port));
      const error = await smtp.sendMessage(TWO_BLOCKS).catch((e: unknown) => e);
      await smtp.noop(); // still usable, nothing of the message was written
      smtp.close();
      return error;
    });
    expect(out.value).toBeInstanceOf(smtplib.SMTPInvalidArgumentError);
    expect((out.value as Error).message).toMatch(/2 Resent-\* header blocks.*pass the envelope yourself/);
    expect(out.sent).not.toContain('MAIL');
  });

  it('Multiple Resent blocks: with from and to given, the message goes as written', async () => {
    const script = `${GREET}C: MAIL FROM:<e@x.org>\nC: RCPT TO:<t@x.org>\nC: DATA\nS: 250 ok\nS: 250 ok\nS: 354 go\n`;
    const out = await play(script + 'C: ' + TWO_BLOCKS.replace(/\r\n$/, '').split('\r\n').join('\nC: ') + '\nC: .\nS: 250 queued\n', async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port));
      const refused = await smtp.sendMessage(TWO_BLOCKS, { from: 'e@x.org', to: ['t@x.org'] });
      smtp.close();
      return refused;
    });
    expect(out.wire.mismatch).toBeUndefined();
    expect(out.error).toBeUndefined();
  });

  it('envelopeFromHeaders: one Resent block wins, two are ambiguous, given from/to win', () => {
    const one = 'Resent-From: r@x.org\r\nResent-To: r1@x.org\r\nResent-Bcc: hidden@x.org\r\nResent-Date: now\r\nFrom: a@x.org\r\nTo: b@x.org\r\n\r\n';
    expect(smtplib.envelopeFromHeaders(one)).toEqual({ from: 'r@x.org', to: ['r1@x.org', 'hidden@x.org'], resent: true });
    expect(smtplib.envelopeFromHeaders(Buffer.from('Sender: s@x.org\r\nFrom: a@x.org\r\nTo: b@x.org\r\nCc: c@x.org\r\n\r\nx'))).toEqual({ from: 's@x.org', to: ['b@x.org', 'c@x.org'], resent: false });
    expect(() => smtplib.envelopeFromHeaders(TWO_BLOCKS)).toThrow(smtplib.SMTPInvalidArgumentError);
    expect(() => smtplib.envelopeFromHeaders(TWO_BLOCKS, { from: 'e@x.org' })).toThrow(/ambiguous/);
    expect(smtplib.envelopeFromHeaders(TWO_BLOCKS, { from: 'e@x.org', to: 't@x.org' })).toEqual({ from: 'e@x.org', to: ['t@x.org'], resent: true });
    // A block without Resent-Date still counts (the most repeated Resent-* name counts blocks).
    expect(() => smtplib.envelopeFromHeaders('Resent-To: a@x\r\nResent-To: b@x\r\nTo: c@x\r\n\r\n')).toThrow(/2 Resent/);
  });

  it('removeBccHeaders strips Bcc and Resent-Bcc (with continuation lines) and nothing else, byte for byte', () => {
    const msg = 'From: a@x.org\r\nBcc: s1@x.org,\r\n s2@x.org\r\nTo: b@x.org\r\nresent-bcc: s3@x.org\r\nSubject: s\r\n\r\nBcc: body line\r\n';
    expect(smtplib.removeBccHeaders(msg)).toBe('From: a@x.org\r\nTo: b@x.org\r\nSubject: s\r\n\r\nBcc: body line\r\n');
    const bytes = smtplib.removeBccHeaders(Buffer.from(msg));
    expect(Buffer.isBuffer(bytes)).toBe(true);
    expect(bytes.toString()).toBe('From: a@x.org\r\nTo: b@x.org\r\nSubject: s\r\n\r\nBcc: body line\r\n');
    expect(smtplib.removeBccHeaders('To: b@x.org\n\nhi\n')).toBe('To: b@x.org\n\nhi\n');
  });
});

describe('host:port, secrets', () => {
  it('splitHostPort splits as smtplib does and refuses a non-numeric port', () => {
    expect(smtplib.splitHostPort('mail.x.org:2525')).toEqual({ host: 'mail.x.org', port: 2525 });
    expect(smtplib.splitHostPort('mail.x.org')).toEqual({ host: 'mail.x.org', port: undefined });
    expect(smtplib.splitHostPort('[::1]:2525')).toEqual({ host: '::1', port: 2525 });
    expect(smtplib.splitHostPort('[::1]')).toEqual({ host: '::1', port: undefined });
    expect(smtplib.splitHostPort('::1')).toEqual({ host: '::1', port: undefined });
    expect(smtplib.splitHostPort('/run/lmtp.sock')).toEqual({ host: '/run/lmtp.sock', port: undefined });
    expect(() => smtplib.splitHostPort('mail.x.org:smtp')).toThrow(smtplib.SMTPInvalidArgumentError);
    expect(() => smtplib.splitHostPort('mail.x.org:70000')).toThrow(/not a port number/);
    expect(() => smtplib.splitHostPort('mail.x.org:')).toThrow(smtplib.SMTPInvalidArgumentError);
  });

  it('maskSecret hides an AUTH argument and leaves other lines alone', () => {
    expect(smtplib.maskSecret('AUTH PLAIN AHVAcA==')).toBe('AUTH PLAIN ****');
    expect(smtplib.maskSecret('auth login dXNlcg==')).toBe('auth login ****');
    expect(smtplib.maskSecret('AUTH LOGIN')).toBe('AUTH LOGIN');
    expect(smtplib.maskSecret('MAIL FROM:<a@x>')).toBe('MAIL FROM:<a@x>');
  });
});

describe('errors carry a stable diagnosis and a hint', () => {
  it('connection refused: diagnosis connection-refused, no wording to parse', async () => {
    const net = await import('node:net');
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as import('node:net').AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    const error = await smtplib.SMTP.connect({ host: '127.0.0.1', port, timeout: 2000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(smtplib.SMTPConnectError);
    expect(error).toMatchObject({ diagnosis: 'connection-refused', code: 'ERR_SMTP_CONNECT' });
    expect(typeof (error as smtplib.SMTPException).hint).toBe('string');
  });

  it('STARTTLS missing under required: diagnosis starttls-not-offered with a hint naming the options', async () => {
    const out = await play('S: 220 mx\nC: EHLO client.test\nS: 250 mx\n', (port) =>
      smtplib.SMTP.connect(local(port, { tlsPolicy: 'required' })));
    expect(out.error).toBeInstanceOf(smtplib.SMTPTLSError);
    expect(out.error).toMatchObject({ diagnosis: 'starttls-not-offered' });
    expect((out.error as smtplib.SMTPTLSError).hint).toMatch(/SMTP_SSL.*tlsPolicy: 'none'/);
  });
});
