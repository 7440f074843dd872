import { describe, expect, it } from 'vitest';
import { ReplyParser, SMTPProtocolError } from 'smtplib';

const parse = (text: string | Buffer, limits = {}) => new ReplyParser(limits).push(Buffer.from(text as string));

describe('ReplyParser', () => {
  it('parses single and multi-line replies, joined as smtplib joins them', () => {
    const [a, b] = parse('220 mx ready\r\n250-mx\r\n250-PIPELINING\r\n250 SIZE 10\r\n');
    expect(a!.code).toBe(220);
    expect(a!.message).toBe('mx ready');
    expect(b!.lines).toEqual(['mx', 'PIPELINING', 'SIZE 10']);
    expect(b!.message).toBe('mx\nPIPELINING\nSIZE 10');
    const [code, message] = b!;
    expect([code, message]).toEqual([250, 'mx\nPIPELINING\nSIZE 10']);
    expect(b).toEqual({ code: 250, message: 'mx\nPIPELINING\nSIZE 10', lines: ['mx', 'PIPELINING', 'SIZE 10'] });
    expect(parse('550 5.1.1 no\r\n')[0]).toEqual({ code: 550, message: '5.1.1 no', lines: ['5.1.1 no'], enhancedStatus: '5.1.1' });
  });

  it('gives the same replies for every split of the same bytes', () => {
    const bytes = Buffer.from('220-a\r\n220 b\r\n250 ok\r\n354 go\r\n');
    const whole = new ReplyParser().push(bytes).map(String);
    for (let i = 0; i <= bytes.length; i++) {
      const p = new ReplyParser();
      const got = [...p.push(bytes.subarray(0, i)), ...p.push(bytes.subarray(i))].map(String);
      expect(got).toEqual(whole);
    }
  });

  it('parses enhanced status codes whose class matches the reply code', () => {
    expect(parse('550 5.1.1 no such user\r\n')[0]!.enhancedStatus).toBe('5.1.1');
    expect(parse('250 2.0.0 ok\r\n')[0]!.enhancedStatus).toBe('2.0.0');
    expect(parse('550 2.1.1 odd\r\n')[0]!.enhancedStatus).toBeUndefined();
    expect(parse('250 1.2.3.4 hello\r\n')[0]!.enhancedStatus).toBeUndefined();
    // The fast path (one-digit subject and detail) and the general one agree.
    expect(parse('354 3.0.0 go ahead\r\n')[0]!.enhancedStatus).toBeUndefined(); // class 3 is not a status class
    expect(parse('250 2.1.5\r\n')[0]!.enhancedStatus).toBe('2.1.5');
    expect(parse('250 2.1.5\tok\r\n')[0]!.enhancedStatus).toBe('2.1.5');
    expect(parse('250 2.1.5ok\r\n')[0]!.enhancedStatus).toBeUndefined();
    expect(parse('550 5.01.010 padded\r\n')[0]!.enhancedStatus).toBe('5.1.10');
    expect(parse('550 5.7.26 dmarc\r\n')[0]!.enhancedStatus).toBe('5.7.26');
    expect(parse('550 5.7\r\n')[0]!.enhancedStatus).toBeUndefined();
    const r = parse('451 4.7.1 greylisted\r\n')[0]!;
    expect(r.isTransient).toBe(true);
    expect(r.isPermanent).toBe(false);
  });

  it('accepts a bare code and LF-only line ends; never ends a line at a bare CR', () => {
    expect(parse('250\r\n')[0]!.message).toBe('');
    expect(parse('250 ok\n')[0]!.message).toBe('ok');
    expect(parse('250 a\rb\r\n')[0]!.message).toBe('a?b');
  });

  for (const bad of ['XXX ok', '0', '01', '012', '1234 ok', '25 ok', '250ok', '099 ok', '600 ok', ' 250 ok', '2a0 ok', '250\tok', '']) {
    it(`rejects malformed line ${JSON.stringify(bad)}`, () => {
      expect(() => parse(`${bad}\r\n`)).toThrow(SMTPProtocolError);
    });
  }

  it('rejects a code change inside a multi-line reply', () => {
    expect(() => parse('250-first\r\n354 second\r\n')).toThrow(/code changed/);
  });

  it('bounds line length, reply length and line count', () => {
    const p = new ReplyParser({ maxLineLength: 100 });
    expect(() => p.push(Buffer.from(`250 ${'x'.repeat(200)}`))).toThrow(/longer than the limit/);
    expect(() => parse(`250 ${'x'.repeat(200)}\r\n`, { maxLineLength: 100 })).toThrow(SMTPProtocolError);
    expect(() => parse('250-x\r\n'.repeat(20), { maxReplyLines: 10 })).toThrow(/more lines/);
    expect(() => parse('250-xxxxxxxxxx\r\n'.repeat(20), { maxReplyLength: 100 })).toThrow(/longer than the limit/);
  });

  it('replaces control characters and decodes Latin-1 when not UTF-8', () => {
    expect(parse('250 a\x1b[31mb\x00c\r\n')[0]!.message).toBe('a?[31mb?c');
    expect(parse(Buffer.from([0x32, 0x35, 0x30, 0x20, 0xe9, 0x0d, 0x0a]))[0]!.message).toBe('é');
    expect(parse('250 caf\u00e9\r\n')[0]!.message).toBe('café');
  });
});
