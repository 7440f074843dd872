import { describe, expect, it } from 'vitest';
import { inspect } from 'node:util';
import * as smtplib from 'smtplib';
import { envelopeFromHeaders, parseHeaderFields, splitMessage } from '../../packages/smtplib/src/message/headers.js';
import { toMessageSource } from '../../packages/smtplib/src/message/source.js';
import { splitHostPort } from '../../packages/smtplib/src/client/options.js';

describe('errors', () => {
  const classes = [
    'SMTPException', 'SMTPServerDisconnected', 'SMTPResponseException', 'SMTPSenderRefused', 'SMTPRecipientsRefused',
    'SMTPDataError', 'SMTPConnectError', 'SMTPHeloError', 'SMTPAuthenticationError', 'SMTPNotSupportedError',
    'SMTPTimeoutError', 'SMTPTLSError', 'SMTPProtocolError', 'SMTPAbortError', 'SMTPInvalidArgumentError',
  ] as const;

  it('every class is a real subclass with a name and a stable ERR_SMTP code', () => {
    for (const name of classes) {
      const Cls = smtplib[name] as unknown as { prototype: Error };
      expect(Cls.prototype.name).toBe(name);
      expect((Cls.prototype as unknown as { code: string }).code).toMatch(/^ERR_SMTP/);
    }
    const e = new smtplib.SMTPSenderRefused(553, '5.7.1 no', 'a@b', { reply: new smtplib.Reply(553, ['5.7.1 no']), command: 'MAIL FROM:<a@b>' });
    expect(e).toBeInstanceOf(smtplib.SMTPResponseException);
    expect(e).toBeInstanceOf(smtplib.SMTPException);
    expect(e).toBeInstanceOf(smtplib.SMTPError);
    expect(e).toBeInstanceOf(Error);
    expect(e).not.toBeInstanceOf(smtplib.SMTPDataError);
    expect(e.enhancedStatus).toBe('5.7.1');
    expect(e.isPermanent).toBe(true);
    expect(e.sender).toBe('a@b');
    expect(smtplib.SMTPException).toBe(smtplib.SMTPError);
  });

  it('keeps the cause and the phase', () => {
    const cause = new Error('boom');
    const t = new smtplib.SMTPTimeoutError('greeting', 100, 'slow', { cause });
    expect(t.cause).toBe(cause);
    expect(t.phase).toBe('greeting');
    expect(t.code).toBe('ERR_SMTP_TIMEOUT');
  });

  it('SMTPRecipientsRefused carries the refused map', () => {
    const map = new smtplib.RefusedRecipients();
    map.set('x@y', new smtplib.Reply(550, ['no']));
    const e = new smtplib.SMTPRecipientsRefused(map as never);
    expect(e.recipients.get('x@y')!.code).toBe(550);
    expect(JSON.parse(JSON.stringify(map))).toEqual({ 'x@y': { code: 550, message: 'no' } });
    expect(map.size).toBe(1);
    expect(inspect(e)).toContain('all recipients were refused');
  });
});

describe('sendMessage headers', () => {
  it('takes the envelope from Sender/From and To/Cc/Bcc, and removes Bcc', async () => {
    const msg = 'From: A <a@x.org>\r\nTo: b@x.org, "C, D" <c@x.org>\r\nCc: d@x.org\r\nBcc: secret@x.org,\r\n other@x.org\r\nSubject: s\r\n\r\nBcc: not a header\r\n';
    const split = await splitMessage(toMessageSource(msg));
    expect(envelopeFromHeaders(split.fields)).toEqual({ from: 'a@x.org', to: ['b@x.org', 'c@x.org', 'secret@x.org', 'other@x.org', 'd@x.org'], resent: false });
    const body = split.source.kind === 'bytes' ? split.source.bytes.toString() : '';
    expect(body).not.toContain('secret@x.org');
    expect(body).toContain('Bcc: not a header');
  });

  it('prefers Sender, and the Resent- block when there is one', () => {
    const fields = parseHeaderFields(Buffer.from('Resent-From: r@x.org\r\nResent-To: rt@x.org\r\nResent-Date: now\r\nFrom: f@x.org\r\nSender: s@x.org\r\nTo: t@x.org\r\n\r\n'));
    expect(envelopeFromHeaders(fields)).toEqual({ from: 'r@x.org', to: ['rt@x.org'], resent: true });
    expect(envelopeFromHeaders(parseHeaderFields(Buffer.from('From: f@x.org\r\nSender: s@x.org\r\nTo: t@x.org\r\n\r\n')))).toEqual({ from: 's@x.org', to: ['t@x.org'], resent: false });
  });

  it('works on streams, reading only the header block', async () => {
    async function* gen() { yield Buffer.from('From: a@x.org\nTo: b@x.org\nBc'); yield Buffer.from('c: hidden@x.org\n\nbody\n'); yield Buffer.from('more\n'); }
    const split = await splitMessage(toMessageSource(gen()));
    const chunks: Buffer[] = [];
    if (split.source.kind === 'stream') for await (const c of split.source.chunks) chunks.push(c);
    expect(Buffer.concat(chunks).toString()).toBe('From: a@x.org\nTo: b@x.org\n\nbody\nmore\n');
    expect(envelopeFromHeaders(split.fields).to).toEqual(['b@x.org', 'hidden@x.org']);
  });
});

describe('host:port', () => {
  it('splits as smtplib does', () => {
    expect(splitHostPort('mail.x.org:2525', undefined)).toEqual({ host: 'mail.x.org', port: 2525 });
    expect(splitHostPort('mail.x.org', 25)).toEqual({ host: 'mail.x.org', port: 25 });
    expect(splitHostPort('[::1]:2525', undefined)).toEqual({ host: '::1', port: 2525 });
    expect(splitHostPort('::1', undefined)).toEqual({ host: '::1', port: undefined });
  });
});

describe('RefusedRecipients', () => {
  it('reads like smtplib\'s dict and like a Map', () => {
    const empty = new smtplib.RefusedRecipients();
    expect(empty).toEqual({});
    expect(Object.keys(empty)).toEqual([]);
    const reply = new smtplib.Reply(550, ['5.1.1 no such user']);
    const map = new smtplib.RefusedRecipients().set('bob@x.org', reply).set('postmaster', new smtplib.Reply(451, ['later']));
    expect(map['bob@x.org']).toBe(reply);
    expect(Object.keys(map)).toEqual(['bob@x.org', 'postmaster']);
    expect(map.size).toBe(2);
    expect(map.get('bob@x.org')?.code).toBe(550);
    expect(map.has('nobody@x.org')).toBe(false);
    expect([...map].map(([a, r]) => `${a}=${r.code}`)).toEqual(['bob@x.org=550', 'postmaster=451']);
    expect(JSON.parse(JSON.stringify(map))).toEqual({ 'bob@x.org': { code: 550, message: '5.1.1 no such user', enhancedStatus: '5.1.1' }, postmaster: { code: 451, message: 'later' } });
    expect(map).toMatchObject({ 'bob@x.org': { code: 550 } });
  });

  it('reads the same empty before any set() (its Map is made by the first one)', () => {
    const empty = new smtplib.RefusedRecipients();
    expect(empty.size).toBe(0);
    expect(empty.has('bob@x.org')).toBe(false);
    expect(empty.get('bob@x.org')).toBeUndefined();
    expect(empty.delete('bob@x.org')).toBe(false);
    expect([...empty, ...empty.keys(), ...empty.values(), ...empty.entries()]).toEqual([]);
    let calls = 0;
    empty.forEach(() => calls++);
    expect(calls).toBe(0);
    expect(empty.toJSON()).toEqual({});
    expect(JSON.stringify(empty)).toBe('{}');
    empty.clear();
    const reply = new smtplib.Reply(550, ['no']);
    empty.set('bob@x.org', reply);
    expect([...empty.keys()]).toEqual(['bob@x.org']);
    // a second empty map still iterates nothing (the empty iterable is shared, never written)
    expect([...new smtplib.RefusedRecipients()]).toEqual([]);
  });

  it('keeps an address named like a method without breaking the methods', () => {
    const map = new smtplib.RefusedRecipients().set('size', new smtplib.Reply(550, ['odd']));
    expect(map.size).toBe(1);
    expect(map.get('size')?.code).toBe(550);
    expect(map.delete('size')).toBe(true);
    expect(map.size).toBe(0);
  });
});
