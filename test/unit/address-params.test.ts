import { describe, expect, it } from 'vitest';
import {
  Capabilities, Reply, decodeXtext, encodeXtext, getaddresses, parseaddr, quoteaddr,
  SMTPInvalidArgumentError, SMTPNotSupportedError,
} from 'smtplib';
import { toPath } from '../../packages/smtplib/src/protocol/address.js';
import { renderMailParameters, renderRcptParameters, toMailOptions, toRcptOptions } from '../../packages/smtplib/src/protocol/params.js';
import { commandLine } from '../../packages/smtplib/src/protocol/commands.js';

const caps = (...lines: string[]) => Capabilities.fromReply(new Reply(250, ['mx', ...lines]));

describe('addresses', () => {
  it('quoteaddr and parseaddr behave like smtplib', () => {
    expect(quoteaddr('John Doe <john@example.org>')).toBe('<john@example.org>');
    expect(quoteaddr('john@example.org')).toBe('<john@example.org>');
    expect(quoteaddr('<>')).toBe('<>');
    expect(parseaddr('"Doe, John" <j@x.org>')).toEqual({ name: 'Doe, John', address: 'j@x.org' });
    expect(parseaddr('j@x.org (John)')).toEqual({ name: 'John', address: 'j@x.org' });
  });

  it('getaddresses splits lists with quotes, comments and groups', () => {
    expect(getaddresses('"Doe, John" <j@x.org>, b@y.org (Bob), team: c@z.org, d@z.org;').map((a) => a.address))
      .toEqual(['j@x.org', 'b@y.org', 'c@z.org', 'd@z.org']);
  });

  it('writes paths strictly', () => {
    expect(toPath('', { smtputf8: false, role: 'sender' })).toBe('<>');
    expect(toPath('Bob <bob@x.org>', { smtputf8: false, role: 'recipient' })).toBe('<bob@x.org>');
    expect(toPath('u@bücher.example', { smtputf8: false, role: 'recipient' })).toBe('<u@xn--bcher-kva.example>');
    expect(toPath('jörg@x.org', { smtputf8: true, role: 'recipient' })).toBe('<jörg@x.org>');
    expect(() => toPath('jörg@x.org', { smtputf8: false, role: 'recipient' })).toThrow(SMTPNotSupportedError);
    for (const bad of ['a@b\r\nRCPT TO:<c@d>', 'a@b> NOTIFY=NEVER', 'a b@c', 'x\x00@y', `${'a'.repeat(600)}@x.org`]) {
      expect(() => toPath(bad, { smtputf8: false, role: 'recipient' })).toThrow(SMTPInvalidArgumentError);
    }
  });

  it('commandLine refuses CR, LF, NUL and other controls', () => {
    for (const bad of ['\r', '\n', '\x00', '\x1b', '\x7f', '\u0085']) {
      expect(() => commandLine('NOOP', `a${bad}b`)).toThrow(SMTPInvalidArgumentError);
    }
    expect(commandLine('VRFY', 'bob')).toBe('VRFY bob');
    // The error still names the verb and the culprit (checked only when the line fails).
    expect(() => commandLine('RCPT TO:<a@b>', 'x\ry')).toThrow(/RCPT argument contains CR/);
    expect(() => commandLine('MAIL FROM:<a\x00b>')).toThrow(/command contains NUL/);
    expect(() => commandLine('NOOP', 'é'.repeat(1100))).toThrow(/over the 2048-octet limit/);
  });
});

describe('toPath remembers checked paths', () => {
  it('per SMTPUTF8 mode, and never a failure', () => {
    const idn = 'user@bücher.example';
    for (let i = 0; i < 3; i++) {
      expect(toPath(idn, { smtputf8: false, role: 'recipient' })).toBe('<user@xn--bcher-kva.example>');
      expect(toPath(idn, { smtputf8: true, role: 'recipient' })).toBe('<user@bücher.example>');
      expect(() => toPath('a b@example.org', { smtputf8: false, role: 'recipient' })).toThrow(SMTPInvalidArgumentError);
      expect(() => toPath('jörg@example.org', { smtputf8: false, role: 'sender' })).toThrow(/non-ASCII local part/);
      expect(toPath('jörg@example.org', { smtputf8: true, role: 'sender' })).toBe('<jörg@example.org>');
    }
  });

  it('stays bounded: thousands of distinct addresses still give their own paths', () => {
    for (let i = 0; i < 3000; i++) expect(toPath(`u${i}@example.org`, { smtputf8: false, role: 'recipient' })).toBe(`<u${i}@example.org>`);
    expect(toPath('u7@example.org', { smtputf8: false, role: 'recipient' })).toBe('<u7@example.org>');
  });
});

describe('ESMTP parameters', () => {
  const ctx = { capabilities: caps('SIZE 100', '8BITMIME', 'SMTPUTF8', 'DSN', 'REQUIRETLS', 'MT-PRIORITY'), secure: true };

  it('renders typed MAIL options for advertised extensions, and explicit extra parameters as written', () => {
    expect(renderMailParameters({ size: 10, body: '8BITMIME', smtputf8: true, ret: 'FULL', envid: 'a b+c=', requireTls: true, extra: { 'MT-PRIORITY': '3', HOLDFOR: '10' } }, ctx))
      .toBe(' SIZE=10 BODY=8BITMIME SMTPUTF8 RET=FULL ENVID=a+20b+2Bc+3D REQUIRETLS MT-PRIORITY=3 HOLDFOR=10');
    expect(renderMailParameters({ size: 10, ret: 'HDRS' }, { capabilities: caps(), secure: false })).toBe('');
  });

  it('throws where dropping a parameter would change the meaning', () => {
    const none = { capabilities: caps(), secure: false };
    expect(() => renderMailParameters({ smtputf8: true }, none)).toThrow(SMTPNotSupportedError);
    expect(() => renderMailParameters({ body: '8BITMIME' }, none)).toThrow(SMTPNotSupportedError);
    expect(() => renderMailParameters({ requireTls: true }, { ...ctx, secure: false })).toThrow(/TLS-protected/);
    expect(() => renderMailParameters({ requireTls: true }, { capabilities: caps(), secure: true })).toThrow(/does not offer/);
  });

  it('validates DSN values', () => {
    expect(renderRcptParameters({ notify: ['SUCCESS', 'DELAY'], orcpt: 'bob@x.org' }, ctx)).toBe(' NOTIFY=SUCCESS,DELAY ORCPT=rfc822;bob@x.org');
    expect(() => renderRcptParameters({ notify: ['NEVER', 'SUCCESS'] as never }, ctx)).toThrow(SMTPInvalidArgumentError);
    expect(() => renderRcptParameters({ notify: ['SOMETIMES'] as never }, ctx)).toThrow(SMTPInvalidArgumentError);
    expect(() => renderMailParameters({ ret: 'ALL' as never }, ctx)).toThrow(SMTPInvalidArgumentError);
  });

  it('accepts smtplib-style option strings and validates their grammar', () => {
    expect(toMailOptions(['8bitmime', 'SMTPUTF8', 'ENVID=x+2By'])).toMatchObject({ body: '8BITMIME', smtputf8: true, envid: 'x+y' });
    expect(toRcptOptions(['NOTIFY=SUCCESS,FAILURE', 'ORCPT=rfc822;a+40b'])).toMatchObject({ notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;a@b' });
    for (const bad of ['X-OPT\nRCPT TO:<evil@x>', 'NOTIFY=NEVER\r\n', 'BAD KEY=1=2', '=x', 'K=v=w']) {
      expect(() => toMailOptions([bad])).toThrow(SMTPInvalidArgumentError);
    }
  });

  it('xtext round-trips', () => {
    for (const s of ['plain', 'a+b=c d', 'ünï\u00e7ode', '\x00\x7f']) expect(decodeXtext(encodeXtext(s))).toBe(s);
    expect(() => decodeXtext('a+zz')).toThrow(SMTPInvalidArgumentError);
  });
});

describe('Capabilities', () => {
  it('parses EHLO like smtplib, merging legacy AUTH=', () => {
    const c = caps('PIPELINING', 'SIZE 10485760', 'AUTH PLAIN LOGIN', 'AUTH=CRAM-MD5', 'x-custom  a b', '8BITMIME');
    expect(c.has('PIPELINING')).toBe(true);
    expect(c.maxSize).toBe(10485760);
    expect(c.authMechanisms).toEqual(['PLAIN', 'LOGIN', 'CRAM-MD5']);
    expect(c.get('x-custom')).toBe('a b');
    expect([...c.features.keys()]).toEqual(['pipelining', 'size', 'auth', 'x-custom', '8bitmime']);
  });

  it('answers from the features map as it is now (esmtpFeatures is that map, and callers may change it)', () => {
    const c = caps('SIZE 1000', '8BITMIME');
    expect(c.has('8bitmime')).toBe(true);
    expect(c.has('8BitMime')).toBe(true);
    expect(c.has('chunking')).toBe(false);
    expect(c.has('CHUNKING')).toBe(false);
    expect(c.maxSize).toBe(1000);
    c.features.set('size', '2000');
    expect(c.maxSize).toBe(2000);
    c.features.set('size', 'nonsense');
    expect(c.maxSize).toBeUndefined();
    c.features.delete('size');
    expect(c.maxSize).toBeUndefined();
    c.features.set('size', '2000');
    expect(c.maxSize).toBe(2000);
  });

  it('treats malformed SIZE as no limit', () => {
    for (const v of ['', 'abc', '-1', '0', '1e3', '0x10', '99999999999999999999999']) {
      expect(caps(`SIZE ${v}`).maxSize).toBeUndefined();
    }
  });
});
