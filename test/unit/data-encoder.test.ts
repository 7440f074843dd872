import { describe, expect, it } from 'vitest';
import { DataEncoder, decodeData, quotedata } from 'smtplib';

function encode(input: string | Buffer, mode: 'data' | 'bdat' = 'data', splits: number[] = []): string {
  const bytes = Buffer.from(input as string, 'latin1');
  const e = new DataEncoder(mode);
  const out: Buffer[] = [];
  let last = 0;
  for (const at of [...splits, bytes.length]) {
    out.push(...e.encode(bytes.subarray(last, at)));
    last = at;
  }
  out.push(e.end());
  return Buffer.concat(out).toString('latin1');
}

describe('DataEncoder', () => {
  it('normalizes bare LF and bare CR to CRLF and doubles leading dots', () => {
    expect(encode('a\nb\rc\r\nd')).toBe('a\r\nb\r\nc\r\nd\r\n.\r\n');
    expect(encode('.x\n..y\n.\n')).toBe('..x\r\n...y\r\n..\r\n.\r\n');
    expect(encode('')).toBe('.\r\n');
    expect(encode('x\r\n')).toBe('x\r\n.\r\n');
  });

  it('neutralizes every SMTP smuggling sequence', () => {
    for (const seq of ['\n.\n', '\r.\r', '\r.\n', '\n.\r', '\n.\r\n', '\r\n.\n', '\r.\r\n', '\r\n.\r', '\r\n.\r\r\n', '\r\r\n.\r\r\n']) {
      const out = encode(`hi${seq}MAIL FROM:<ceo@bank>\r\n`);
      const body = out.slice(0, -5);
      expect(body.includes('\r\n.\r\n')).toBe(false);
      expect(/\r(?!\n)|(?<!\r)\n/.test(out)).toBe(false);
    }
  });

  it('gives the same output however the input is split', () => {
    const input = 'a\r\n.b\r\r\n\n.\r\nc\rd\n.e\r';
    const whole = encode(input);
    for (let i = 0; i <= input.length; i++) {
      for (let j = i; j <= input.length; j += 3) expect(encode(input, 'data', [i, j])).toBe(whole);
    }
  });

  it('BDAT mode normalizes without stuffing and ends the last line', () => {
    expect(encode('.a\nb', 'bdat')).toBe('.a\r\nb\r\n');
    expect(encode('', 'bdat')).toBe('');
  });

  it('counts content bytes without stuffing and marker (RFC 1870 SIZE)', () => {
    const e = new DataEncoder('data');
    e.encode(Buffer.from('.a\nb'));
    e.end();
    expect(e.contentBytes).toBe('.a\r\nb\r\n'.length);
  });

  it('round-trips through decodeData', () => {
    const input = 'x\n.y\n..z\r\n.\r\nend';
    expect(decodeData(Buffer.from(encode(input), 'latin1')).toString('latin1')).toBe(input.replace(/\r?\n/g, '\r\n') + '\r\n');
  });

  it('quotedata matches smtplib', () => {
    expect(quotedata('.a\nb\r.c\r\n')).toBe('..a\r\nb\r\n..c\r\n');
  });
});
