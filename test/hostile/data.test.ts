// Section F: DATA encoding, SMTP smuggling, BDAT. The server keeps the raw
// DATA stream and checks that the only CRLF.CRLF is the last one, that no
// bare CR or LF exists, and that unstuffing gives back the normalized input.

import { afterEach, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { SMTP, SMTPDataError, SMTPInvalidArgumentError, SMTPRecipientsRefused } from 'smtplib';
import { clientOptions, esmtp, hostileServer, rejection, shape, sleep, type EsmtpOptions, type HostileServer, type Peer } from './kit.js';

let server: HostileServer | undefined;
let client: SMTP | undefined;
afterEach(async () => {
  client?.close();
  client = undefined;
  await server?.close();
  server = undefined;
});

/** What a correct encoder must produce from `input` in DATA mode (reference, written independently). */
export function expectedData(input: Buffer): Buffer {
  let text = input.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n');
  if (text.length && !text.endsWith('\r\n')) text += '\r\n';
  text = text.replace(/(^|\r\n)\./g, '$1..');
  return Buffer.from(`${text}.\r\n`, 'latin1');
}
export function normalized(input: Buffer): Buffer {
  let text = input.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n');
  if (text.length && !text.endsWith('\r\n')) text += '\r\n';
  return Buffer.from(text, 'latin1');
}

/** The invariants every DATA stream must satisfy. */
function checkDataStream(wire: Buffer, input: Buffer): void {
  const text = wire.toString('latin1');
  expect(text.endsWith('\r\n.\r\n') || text === '.\r\n').toBe(true);
  const body = text.slice(0, -3);
  expect(body.includes('\r\n.\r\n')).toBe(false);
  expect(/\r(?!\n)|(?<!\r)\n/.test(text)).toBe(false);
  expect(/(^|\r\n)\.(?!\.)/.test(body)).toBe(false);
  expect(Buffer.from(body.replace(/(^|\r\n)\./g, '$1'), 'latin1').equals(normalized(input))).toBe(true);
  expect(wire.equals(expectedData(input))).toBe(true);
}

interface Recorder {
  commands: string[];
  data: Buffer[];
  bdat: Array<{ declared: number; last: boolean; bytes: Buffer; after?: string }>;
}

/** An ESMTP server that records command lines, DATA streams and BDAT chunks. */
function recording(options: EsmtpOptions & { chunking?: boolean } = {}): { rec: Recorder; handler: ReturnType<typeof esmtp> } {
  const rec: Recorder = { commands: [], data: [], bdat: [] };
  const handler = esmtp({
    extensions: options.extensions ?? ['PIPELINING', '8BITMIME', ...(options.chunking ? ['CHUNKING'] : [])],
    ...options,
    on: async (line, peer) => {
      rec.commands.push(line);
      const prev = rec.bdat[rec.bdat.length - 1];
      if (prev && prev.after === undefined) prev.after = line;
      const m = /^BDAT (\d+)( LAST)?$/.exec(line);
      if (m) {
        const bytes = (await peer.readBytes(Number(m[1]), 5000)) ?? Buffer.alloc(0);
        rec.bdat.push({ declared: Number(m[1]), last: Boolean(m[2]), bytes });
        return `250 2.0.0 ${m[2] ? 'queued' : 'chunk ok'}\r\n`;
      }
      return options.on?.(line, peer);
    },
    onData: (data, peer) => {
      rec.data.push(data);
      return options.onData?.(data, peer);
    },
  });
  return { rec, handler };
}

const SMUGGLING = ['\n.\n', '\r.\r', '\r.\n', '\n.\r', '\n.\r\n', '\r\n.\n', '\r.\r\n', '\r\n.\r', '\r\n\x00.\r\n', '\r\n.\x00\r\n', '\r\n.\r\r\n', '\r\r\n.\r\r\n'];
const FAKE = 'MAIL FROM:<ceo@bank.test>\r\nRCPT TO:<victim@bank.test>\r\nDATA\r\nSubject: fake\r\n\r\nsend money\r\n.\r\n';

describe('F. DATA encoding, SMTP smuggling, BDAT', () => {
  it('F1 smuggling sequences followed by a fake transaction arrive as body text of exactly one message', async () => {
    const { rec, handler } = recording({ extensions: ['8BITMIME'] });
    server = await hostileServer(handler);
    client = await SMTP.connect(clientOptions(server));
    for (const seq of SMUGGLING) {
      const body = `Subject: t\r\n\r\nbefore${seq}${FAKE}after`;
      const result = await client.sendmail('a@x.test', ['b@y.test'], body);
      expect(result.size).toBe(0);
      checkDataStream(rec.data[rec.data.length - 1]!, Buffer.from(body, 'latin1'));
    }
    await client.quit();
    await server.settled();
    // One MAIL per call: no fake transaction was ever read as commands.
    expect(rec.commands.filter((c) => c.startsWith('MAIL')).length).toBe(SMUGGLING.length);
    expect(rec.commands.filter((c) => c.includes('ceo@bank'))).toEqual([]);
    expect(rec.data.length).toBe(SMUGGLING.length);
  });

  it('F2 a Buffer / Uint8Array body with bare CR before "." is normalized exactly like a string', async () => {
    const { rec, handler } = recording({ extensions: ['8BITMIME'] });
    server = await hostileServer(handler);
    client = await SMTP.connect(clientOptions(server));
    for (const seq of SMUGGLING) {
      const text = `Subject: t\r\n\r\nx${seq}${FAKE}`;
      const bytes = Buffer.from(text, 'latin1');
      await client.sendmail('a@x.test', ['b@y.test'], text);
      await client.sendmail('a@x.test', ['b@y.test'], bytes);
      await client.sendmail('a@x.test', ['b@y.test'], new Uint8Array(bytes));
      const [s, b, u] = rec.data.slice(-3) as [Buffer, Buffer, Buffer];
      expect(b.equals(s)).toBe(true);
      expect(u.equals(s)).toBe(true);
      checkDataStream(b, bytes);
    }
  });

  it('F2b a body in memory of many 64 KiB windows (DATA): plain text, bare LFs, a late dot line, smuggling at a window edge: each arrives exactly encoded', async () => {
    const { rec, handler } = recording({ extensions: ['8BITMIME', 'SIZE'] });
    server = await hostileServer(handler);
    client = await SMTP.connect(clientOptions(server));
    const line = 'The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.\r\n';
    const text = Buffer.from(`Subject: big\r\n\r\n${line.repeat(3000)}`, 'latin1');
    const edge = 2 * 65536 - 2;
    const bodies = [
      text, // encoded ahead: slices of the message
      Buffer.from(text.toString('latin1').replace(/\r\n/g, '\n'), 'latin1'), // bare LFs: measured, encoded as written
      Buffer.concat([text.subarray(0, 3 * 65536 + 5), Buffer.from('\r\n.dot\r\n'), text.subarray(3 * 65536 + 5)]),
      Buffer.concat([text.subarray(0, edge), Buffer.from(`\r.\r${FAKE}`, 'latin1'), text.subarray(edge)]),
    ];
    for (const body of bodies) {
      await client.sendmail('a@x.test', ['b@y.test'], body);
      checkDataStream(rec.data[rec.data.length - 1]!, body);
    }
    // SIZE= is the normalized content size whichever way the body went.
    const sizes = rec.commands.filter((c) => c.startsWith('MAIL FROM')).map((c) => Number(/SIZE=(\d+)/.exec(c)?.[1]));
    expect(sizes).toEqual(bodies.map((b) => normalized(b).length));
  });

  it('F2c a body in memory of several MiB (DATA), written as it is up to its first line starting with ".": dots at the start, at and after a write seam, none, an unended last line', async () => {
    const { rec, handler } = recording({ extensions: ['8BITMIME', 'SIZE'] });
    server = await hostileServer(handler);
    client = await SMTP.connect(clientOptions(server));
    const line = 'The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.\r\n';
    /** Text lines, exactly n bytes, ending with CRLF. */
    const upTo = (n: number): Buffer => {
      const whole = Math.floor(n / line.length) - 1;
      return Buffer.from(line.repeat(whole) + 'y'.repeat(n - whole * line.length - 2) + '\r\n', 'latin1');
    };
    const MiB = 1024 * 1024; // the transaction's largest write
    const WINDOW = 64 * 1024; // the first write: one window (then 1 MiB each), so the writes' seams are at WINDOW + k MiB
    const dotted = (at: number, dot: string) => Buffer.concat([upTo(at), Buffer.from(dot, 'latin1'), upTo(MiB + 77)]);
    const bodies = [
      upTo(2 * MiB + MiB / 2), // no dot: four writes as they are
      dotted(WINDOW, '.a\r\n'), // the LF ends the first write's range, its dot starts the next
      dotted(WINDOW + 1, '.b\r\n'), // the LF starts the second range
      dotted(WINDOW - 1, '.\r\n'), // a lone dot, its LF the range's second-to-last byte
      dotted(WINDOW + MiB, '..c\r\n'), // at the second seam
      dotted(WINDOW + MiB - 64, '.d\r\n'), // a 64-byte scan step before it
      dotted(MiB, '.e\r\n'), // inside the second write, on a 64 KiB window seam of the search
      Buffer.concat([Buffer.from('.lead\r\n'), upTo(2 * MiB)]),
      Buffer.concat([upTo(2 * MiB), Buffer.from('an unended last line\r\n.x', 'latin1')]), // not as it is: measured, encoded as written
    ];
    for (const body of bodies) {
      await client.sendmail('a@x.test', ['b@y.test'], body);
      checkDataStream(rec.data[rec.data.length - 1]!, body);
    }
    const sizes = rec.commands.filter((c) => c.startsWith('MAIL FROM')).map((c) => Number(/SIZE=(\d+)/.exec(c)?.[1]));
    expect(sizes).toEqual(bodies.map((b) => normalized(b).length));
  });

  it('F3 dot-stuffing across chunk boundaries: every 2-way split and byte-by-byte streaming give the unchunked bytes', async () => {
    const { rec, handler } = recording({ extensions: ['8BITMIME'] });
    server = await hostileServer(handler);
    client = await SMTP.connect(clientOptions(server));
    const message = Buffer.from('.lead\r\n..two\n.x\r.y\r\n\r\n.\r\n.\n\r.\rz\r', 'latin1');
    await client.sendmail('a@x.test', ['b@y.test'], message);
    const reference = rec.data[0]!;
    checkDataStream(reference, message);
    for (let k = 0; k <= message.length; k++) {
      await client.sendmail('a@x.test', ['b@y.test'], Readable.from([message.subarray(0, k), message.subarray(k)]));
      expect(rec.data[rec.data.length - 1]!.toString('latin1'), `split at ${k}`).toBe(reference.toString('latin1'));
    }
    await client.sendmail('a@x.test', ['b@y.test'], Readable.from([...message].map((b) => Buffer.from([b]))));
    expect(rec.data[rec.data.length - 1]!.equals(reference)).toBe(true);
    // The named hazards: "...\r" + "\n.x", "...\n" + ".x", "\r" + "\n".
    for (const parts of [['a\r', '\n.x'], ['a\n', '.x'], ['\r', '\n'], ['a\r', '.\r', '\n']]) {
      const whole = Buffer.from(parts.join(''), 'latin1');
      await client.sendmail('a@x.test', ['b@y.test'], Readable.from(parts.map((p) => Buffer.from(p, 'latin1'))));
      expect(rec.data[rec.data.length - 1]!.equals(expectedData(whole)), JSON.stringify(parts)).toBe(true);
    }
  });

  it("F5 lines over 998 octets: sent as is by default; longLines: 'reject' refuses before MAIL (bytes) or drops the connection (stream)", async () => {
    const { rec, handler } = recording({ extensions: ['PIPELINING', '8BITMIME'] });
    server = await hostileServer(handler);
    const line = 'x'.repeat(5000);
    const body = `Subject: long\r\n\r\n${line}\r\nend\r\n`;
    client = await SMTP.connect(clientOptions(server));
    await client.sendmail('a@x.test', ['b@y.test'], body);
    expect(rec.data[0]!.toString('latin1')).toBe(`${body}.\r\n`);
    client.close();

    client = await SMTP.connect(clientOptions(server, { longLines: 'reject' }));
    await client.ehlo();
    const peer = await server.peer(1);
    await peer.quietFor(20);
    const before = peer.all.length;
    // Exactly 998 octets is fine; 999 is not, whatever the line end (CRLF, LF, CR, end of message).
    await client.sendmail('a@x.test', ['b@y.test'], `Subject: t\r\n\r\n${'y'.repeat(998)}\r\n`);
    for (const bad of [`${'y'.repeat(999)}\r\n`, `a\n${'y'.repeat(999)}\nb`, `a\r${'y'.repeat(999)}`, line]) {
      const error = await rejection(client.sendmail('a@x.test', ['b@y.test'], bad));
      expect(error).toBeInstanceOf(SMTPInvalidArgumentError);
      expect(shape(error)).toMatchObject({ name: 'SMTPInvalidArgumentError', code: 'ERR_SMTP_INVALID_ARGUMENT', deliveryStatus: 'not-delivered' });
    }
    await peer.quietFor(30);
    expect(peer.all.subarray(before).toString('latin1')).toBe(
      'MAIL FROM:<a@x.test> BODY=7BIT\r\nRCPT TO:<b@y.test>\r\nDATA\r\n'.replace(' BODY=7BIT', '') + `Subject: t\r\n\r\n${'y'.repeat(998)}\r\n.\r\n`,
    );
    expect(client.isConnected).toBe(true);
    // A streamed body: the long line is found mid-stream (split across chunks); the connection is dropped, no end marker.
    const error = await rejection(client.sendmail('a@x.test', ['b@y.test'], Readable.from([Buffer.from('Subject: s\r\n\r\nok\r\n' + 'z'.repeat(600)), Buffer.from('z'.repeat(600) + '\r\n')])));
    expect(shape(error)).toMatchObject({ name: 'SMTPInvalidArgumentError', deliveryStatus: 'not-delivered' });
    expect(client.isConnected).toBe(false);
    await peer.waitClosed(2000);
    expect(peer.all.subarray(before).toString('latin1')).not.toContain('z\r\n.\r\n');
  });

  for (const [code, pipelining] of [[554, true], [451, true], [503, true], [554, false], [451, false], [503, false]] as const) {
    it(`F6 DATA refused with ${code} (${pipelining ? 'pipelined' : 'lock-step'}): no body bytes, RSET, SMTPDataError`, async () => {
      const { rec, handler } = recording({ on: (line) => (line === 'DATA' ? `${code} 5.5.1 no thanks\r\n` : undefined) });
      server = await hostileServer(handler);
      client = await SMTP.connect(clientOptions(server, { pipelining }));
      await client.ehlo();
      const peer = await server.peer();
      await peer.quietFor(20);
      const before = peer.all.length;
      const error = await rejection(client.sendmail('a@x.test', ['b@y.test'], 'Subject: t\r\n\r\nBODY-MARKER\r\nMAIL FROM:<x@y>\r\n'));
      expect(error).toBeInstanceOf(SMTPDataError);
      expect(shape(error)).toMatchObject({ name: 'SMTPDataError', code: 'ERR_SMTP_DATA', smtpCode: code, deliveryStatus: 'not-delivered' });
      await peer.quietFor(50);
      expect(peer.all.subarray(before).toString('latin1')).toBe('MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nRSET\r\n');
      expect(rec.data).toEqual([]);
      expect(client.isConnected).toBe(true);
    });
  }

  it('F7 no body byte arrives before the 354 is written (354 held back 600 ms)', async () => {
    let sent354 = 0;
    const { rec, handler } = recording({
      on: async (line, peer) => {
        if (line !== 'DATA') return undefined;
        const quiet = await peer.quietFor(600);
        expect(quiet).toBe(true);
        sent354 = Date.now() - peer.started;
        return '354 now\r\n';
      },
    });
    server = await hostileServer(handler);
    client = await SMTP.connect(clientOptions(server));
    await client.sendmail('a@x.test', ['b@y.test'], 'Subject: t\r\n\r\nBODY\r\n');
    const peer = await server.peer();
    const bodyChunk = peer.received.find((c) => c.bytes.includes('BODY'));
    expect(bodyChunk!.at).toBeGreaterThanOrEqual(sent354);
    expect(rec.data.length).toBe(1);
  });

  it('F8 all recipients refused: lock-step never sends DATA; pipelined reads the DATA reply, sends no body, RSETs', async () => {
    for (const pipelining of [false, true]) {
      const { rec, handler } = recording({
        on: (line) => (line.startsWith('RCPT') ? '550 5.1.1 no such user\r\n' : line === 'DATA' ? '554 5.5.1 no valid recipients\r\n' : undefined),
      });
      server = await hostileServer(handler);
      client = await SMTP.connect(clientOptions(server, { pipelining }));
      await client.ehlo();
      const peer = await server.peer();
      await peer.quietFor(20);
      const before = peer.all.length;
      const error = await rejection(client.sendmail('a@x.test', ['b@y.test', 'c@y.test'], 'Subject: t\r\n\r\nBODY\r\n'));
      expect(error).toBeInstanceOf(SMTPRecipientsRefused);
      expect(shape(error)).toMatchObject({ name: 'SMTPRecipientsRefused', code: 'ERR_SMTP_RECIPIENTS_REFUSED', deliveryStatus: 'not-delivered' });
      const recipients = (error as unknown as SMTPRecipientsRefused).recipients;
      const codes = Object.fromEntries([...recipients].map(([k, v]) => [k, v.code]));
      expect(codes).toEqual({ 'b@y.test': 550, 'c@y.test': 550 });
      await peer.quietFor(50);
      expect(peer.all.subarray(before).toString('latin1')).toBe(
        'MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\n' + (pipelining ? 'DATA\r\n' : '') + 'RSET\r\n',
      );
      expect(rec.data).toEqual([]);
      client.close();
      await server.close();
    }
    server = undefined;
  });

  it('F2c BODY=8BITMIME for bytes in memory: declared exactly when a byte is over 127, wherever it sits, in DATA and BDAT', async () => {
    // The encoder's scan finds the 8-bit byte (there is no separate pass): in
    // a short body, at the edges of its 64 KiB windows, as the very last byte.
    const line = 'The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.\r\n';
    const large = Buffer.from(`Subject: big\r\n\r\n${line.repeat(3000)}`, 'latin1');
    const withHigh = (body: Buffer, at: number): Buffer => {
      const copy = Buffer.from(body);
      copy[at] = 0xe9;
      return copy;
    };
    const small = Buffer.from('Subject: s\r\n\r\nplain\r\n', 'latin1');
    const bodies: [Buffer, boolean][] = [
      [small, false],
      [withHigh(small, small.length - 3), true],
      [large, false],
      [withHigh(large, 65535), true],
      [withHigh(large, 65536), true],
      [withHigh(large, 2 * 65536 + 17), true],
      [withHigh(large, large.length - 3), true],
      [Buffer.concat([large, Buffer.from([0xc3, 0xa9])]), true], // the last byte, no final line end
    ];
    for (const chunking of [false, true]) {
      const { rec, handler } = recording({ chunking });
      server = await hostileServer(handler);
      client = await SMTP.connect(clientOptions(server));
      for (const [body] of bodies) await client.sendmail('a@x.test', ['b@y.test'], body);
      await client.quit();
      await server.settled();
      const declared = rec.commands.filter((c) => c.startsWith('MAIL FROM')).map((c) => c.includes(' BODY=8BITMIME'));
      expect(declared, chunking ? 'BDAT' : 'DATA').toEqual(bodies.map(([, high]) => high));
      await server.close();
    }
    server = undefined;
  });

  it('F9 BDAT: each chunk declares exactly the octets that follow, normalized, unstuffed, no trailing ".", then a command', async () => {
    const body = Buffer.from('Subject: bdat\n\n.dot line\nbare lf\rbare cr\r\n..two\n' + 'q'.repeat(100) + '\n.', 'latin1');
    for (const [chunkSize, pipelining] of [[16, true], [16, false], [1 << 20, true], [7, false]] as const) {
      const { rec, handler } = recording({ chunking: true });
      server = await hostileServer(handler);
      client = await SMTP.connect(clientOptions(server, { chunkSize, pipelining }));
      await client.sendmail('a@x.test', ['b@y.test'], body);
      await client.sendmail('a@x.test', ['b@y.test'], Readable.from([body.subarray(0, 10), body.subarray(10)]));
      await client.quit();
      await server.settled();
      expect(rec.data).toEqual([]);
      const lasts = rec.bdat.filter((c) => c.last);
      expect(lasts.length).toBe(2);
      for (const chunk of rec.bdat) {
        expect(chunk.bytes.length).toBe(chunk.declared);
        expect(chunk.declared).toBeLessThanOrEqual(chunkSize);
        // What follows a chunk is a command line.
        expect(chunk.after).toMatch(/^(BDAT \d+( LAST)?|MAIL FROM:.*|QUIT)$/);
      }
      const firstLast = rec.bdat.indexOf(lasts[0]!);
      const message1 = Buffer.concat(rec.bdat.slice(0, firstLast + 1).map((c) => c.bytes));
      const message2 = Buffer.concat(rec.bdat.slice(firstLast + 1).map((c) => c.bytes));
      expect(message1.toString('latin1')).toBe(normalized(body).toString('latin1'));
      expect(message2.equals(message1)).toBe(true);
      expect(rec.commands.filter((c) => c.startsWith('DATA'))).toEqual([]);
      await server.close();
    }
    server = undefined;
  });

  it('F9b BDAT, chunkSize unset: a body in memory over 1 MiB is one chunk of its exact size; a stream goes in chunks of 1 MiB', async () => {
    // 3 MB with bare LFs and a leading dot on some lines: the one chunk declares the normalized size.
    const body = Buffer.from('Subject: one chunk\n\n' + '.dot line\nplain line\r\n'.repeat(120_000) + 'end', 'latin1');
    for (const pipelining of [true, false]) {
      const { rec, handler } = recording({ chunking: true });
      server = await hostileServer(handler);
      client = await SMTP.connect(clientOptions(server, { pipelining }));
      await client.sendmail('a@x.test', ['b@y.test'], body);
      await client.sendmail('a@x.test', ['b@y.test'], Readable.from([body.subarray(0, 1000), body.subarray(1000)]));
      await client.quit();
      await server.settled();
      const lasts = rec.bdat.filter((c) => c.last);
      expect(lasts.length).toBe(2);
      const firstLast = rec.bdat.indexOf(lasts[0]!);
      expect(firstLast, 'the body in memory: one chunk').toBe(0);
      expect(rec.bdat[0]!.declared).toBe(normalized(body).length);
      expect(rec.bdat[0]!.bytes.equals(normalized(body))).toBe(true);
      expect(rec.bdat[0]!.after).toMatch(/^MAIL FROM:/);
      const streamed = rec.bdat.slice(1);
      expect(streamed.length).toBe(Math.ceil(normalized(body).length / (1 << 20)));
      for (const chunk of streamed) expect(chunk.declared).toBeLessThanOrEqual(1 << 20);
      expect(Buffer.concat(streamed.map((c) => c.bytes)).equals(normalized(body))).toBe(true);
      await server.close();
    }
    server = undefined;
  });

  it('F11 SIZE: a message over the declared limit is refused before MAIL; SIZE= is the normalized octet count', async () => {
    const { rec, handler } = recording({ extensions: ['PIPELINING', 'SIZE 1000'] });
    server = await hostileServer(handler);
    client = await SMTP.connect(clientOptions(server));
    await client.ehlo();
    const peer = await server.peer();
    await peer.quietFor(20);
    const before = peer.all.length;
    const error = await rejection(client.sendmail('a@x.test', ['b@y.test'], 'x'.repeat(1990) + '\n'));
    expect(error).toBeInstanceOf(SMTPDataError);
    expect(shape(error)).toMatchObject({ name: 'SMTPDataError', code: 'ERR_SMTP_DATA', smtpCode: 552, deliveryStatus: 'not-delivered' });
    await peer.quietFor(30);
    expect(peer.all.subarray(before).length).toBe(0);
    // 10 bare LFs become CRLF (+10), 3 leading dots are stuffed on the wire but not counted.
    const body = '.a\n.b\n.c\n' + 'line\n'.repeat(7);
    await client.sendmail('a@x.test', ['b@y.test'], body);
    const expectedSize = Buffer.byteLength(body) + 10;
    expect(rec.commands).toContain(`MAIL FROM:<a@x.test> SIZE=${expectedSize}`);
    expect(rec.data[0]!.length).toBe(expectedSize + 3 + 3);
    // A streamed body over the limit in DATA mode: the connection is dropped, the message never ends.
    await sleep(1);
    const streamError = await rejection(client.sendmail('a@x.test', ['b@y.test'], Readable.from([Buffer.alloc(600, 0x61), Buffer.alloc(600, 0x62)])));
    expect(shape(streamError)).toMatchObject({ name: 'SMTPDataError', smtpCode: 552, deliveryStatus: 'not-delivered' });
    expect(client.isConnected).toBe(false);
    expect(rec.data.length).toBe(1);
  });
});

export type { Peer };
