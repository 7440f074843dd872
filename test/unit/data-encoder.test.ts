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

  it('a chunk with more insertions than the scan first has room for (1024) is encoded in full', () => {
    const input = '\n.'.repeat(3000) + 'x\r'.repeat(2000);
    expect(encode(input)).toBe(quotedata(input) + '.\r\n'); // the last bare CR already became a line end
    expect(encode(input, 'data', [1, 4001, 4002])).toBe(quotedata(input) + '.\r\n'); // the last bare CR already became a line end
  });

  it('reuseOutput: a long stream is encoded into a few buffers handed back by release(), never one per chunk', () => {
    const block = Buffer.from('.a dotted line\r\n'.repeat(4000), 'latin1');
    const reused = new DataEncoder('data', { reuseOutput: true });
    const fresh = new DataEncoder('data');
    const memory = new Set<ArrayBufferLike>();
    for (let i = 0; i < 200; i++) {
      const [piece] = reused.encode(block);
      expect(piece!.equals(fresh.encode(block)[0]!)).toBe(true);
      memory.add(piece!.buffer);
      reused.release(piece!);
    }
    expect(memory.size).toBe(1);
    expect(reused.lentSlots).toBe(0);
  });

  it('reuseOutput: pieces not released are never written over; past the slots it falls back to fresh buffers', () => {
    const e = new DataEncoder('data', { reuseOutput: true });
    const held: { piece: Buffer; copy: Buffer }[] = [];
    for (let i = 0; i < 20; i++) {
      const block = Buffer.from(`.line ${i}\n`.repeat(1000), 'latin1');
      const [piece] = e.encode(block);
      held.push({ piece: piece!, copy: Buffer.from(piece!) });
    }
    for (const { piece, copy } of held) expect(piece.equals(copy)).toBe(true);
    expect(new Set(held.map((h) => h.piece.buffer)).size).toBe(20);
    // A piece that is not the encoder's (an input slice) is ignored by release().
    e.release(Buffer.from('x'.repeat(8192)));
    for (const { piece } of held) e.release(piece);
    expect(e.lentSlots).toBe(0);
  });

  it('a message whose encoding is its own bytes comes back as one view of it, whatever splits its windows', () => {
    // 87-byte lines put CRLFs across 64 KiB window edges (the CR held back until the next window).
    // 16-byte lines after one byte put a CRLF across every 64 KiB window edge (the CR held back until the next window).
    const message = Buffer.from('x' + 'abcdefghijklmn\r\n'.repeat(20000), 'latin1');
    expect(message[65535]).toBe(0x0d); // the first window ends on a CR
    for (const mode of ['bdat', 'data'] as const) {
      const e = new DataEncoder(mode);
      const pieces = e.encode(message);
      expect(pieces).toHaveLength(1);
      expect(pieces[0]!.buffer).toBe(message.buffer); // a view: nothing copied
      expect(pieces[0]!.equals(message)).toBe(true);
      expect(e.insertedBytes).toBe(0);
    }
  });

  it('encode(chunk, start, end) encodes those bytes as encode() of a slice would', () => {
    const input = Buffer.from('a\r\n.b\r\r\n\n.\r\nc\rd\n.e\r'.repeat(7000), 'latin1');
    for (const mode of ['data', 'bdat'] as const) {
      for (const cuts of [[0, input.length], [0, 7, 65536, 65537, 100000, input.length], [0, 65535, input.length]]) {
        const ranged = new DataEncoder(mode);
        const sliced = new DataEncoder(mode);
        const a: Buffer[] = [];
        const b: Buffer[] = [];
        for (let k = 1; k < cuts.length; k++) {
          a.push(...ranged.encode(input, cuts[k - 1], cuts[k]));
          b.push(...sliced.encode(input.subarray(cuts[k - 1], cuts[k])));
        }
        a.push(ranged.end());
        b.push(sliced.end());
        expect(Buffer.concat(a).equals(Buffer.concat(b))).toBe(true);
        expect(ranged.contentBytes).toBe(sliced.contentBytes);
      }
    }
  });

  it('quotedata matches smtplib', () => {
    expect(quotedata('.a\nb\r.c\r\n')).toBe('..a\r\nb\r\n..c\r\n');
  });
});
