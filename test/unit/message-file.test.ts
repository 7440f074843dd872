// `{ path, start }`: a message that is the tail of a file (a queue's spool
// file holds a record line before the message). The bytes from `start` are
// sent, SIZE= says their length, every reading (a retry, DKIM's second
// pass) starts at `start` again, and a start that cannot be an offset in the
// file is refused with a typed error before anything is written.
// `eightBit` says what the file's writer saw (a file is not scanned ahead of
// MAIL): BODY=8BITMIME as for the same bytes in memory.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SMTPInvalidArgumentError, SMTPPool } from '../../packages/smtplib/src/index.js';
import { readAll, toMessageSource } from '../../packages/smtplib/src/message/source.js';
import { local, play, smtplib } from '../hardening/harness.js';
import { message, startFaultServer, type FaultContext } from '../pool/helpers.js';
import { startServer } from '../integration/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'smtplib-message-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A file holding a record line (with a decoy X-Soak-Id) before `body`; returns its path and the body's offset. */
function spooled(name: string, body: string | Buffer): { path: string; start: number } {
  const record = Buffer.from('{"record":"X-Soak-Id: decoy"}\nX-Soak-Id: decoy\n');
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([record, Buffer.isBuffer(body) ? body : Buffer.from(body)]));
  return { path, start: record.length };
}

const SIZE_8BIT = 'S: 220 mx\nC: EHLO client.test\nS: 250-mx\nS: 250-PIPELINING\nS: 250-8BITMIME\nS: 250 SIZE 100000\n';

describe('{ path, start }: the tail of a file', () => {
  it('the source: size is the file size minus start, and every reading gives the bytes from start', async () => {
    const body = 'Subject: s\r\n\r\nbody\r\n';
    const file = spooled('size.eml', body);
    const source = toMessageSource(file);
    expect(source).toMatchObject({ kind: 'stream', size: body.length });
    expect((await readAll(source)).toString()).toBe(body);
    if (source.kind !== 'stream') throw new Error('not a stream');
    expect((await readAll({ kind: 'stream', chunks: source.reopen!() })).toString()).toBe(body);
    expect(toMessageSource({ path: file.path, start: 0 })).toMatchObject({ size: file.start + body.length });
  });

  it('on the wire: SIZE= is the tail\'s length and only the tail is sent', async () => {
    const body = 'Subject: s\r\n\r\nbody\r\n';
    const file = spooled('wire.eml', body);
    const script = `${SIZE_8BIT}C: MAIL FROM:<a@x.org> SIZE=${body.length}\nC: RCPT TO:<b@x.org>\nC: DATA\nS: 250 ok\nS: 250 ok\nS: 354 go\nC: Subject: s\nC: \nC: body\nC: .\nS: 250 ok\n`;
    const out = await play(script, async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port));
      await smtp.sendmail('a@x.org', ['b@x.org'], file);
      smtp.close();
    });
    expect(out.wire.mismatch).toBeUndefined();
    expect(out.error).toBeUndefined();
    expect(out.sent).not.toContain('decoy');
  });

  it('eightBit: BODY=8BITMIME is declared for a file known to hold a byte over 127, as for the same bytes in memory', async () => {
    const body = Buffer.from('Subject: s\r\n\r\ncaf\xc3\xa9\r\n', 'latin1');
    const file = spooled('8bit.eml', body);
    const sends = async (message: smtplib.MessageInput, mail: string): Promise<void> => {
      const script = `${SIZE_8BIT}C: ${mail}\nC: RCPT TO:<b@x.org>\nC: DATA\nS: 250 ok\nS: 250 ok\nS: 354 go\nC: Subject: s\nC: \nC: café\nC: .\nS: 250 ok\n`;
      const out = await play(script, async (port) => {
        const smtp = await smtplib.SMTP.connect(local(port));
        await smtp.sendmail('a@x.org', ['b@x.org'], message);
        smtp.close();
      });
      expect(out.wire.mismatch).toBeUndefined();
      expect(out.error).toBeUndefined();
    };
    await sends(body, `MAIL FROM:<a@x.org> SIZE=${body.length} BODY=8BITMIME`);
    await sends({ ...file, eightBit: true }, `MAIL FROM:<a@x.org> SIZE=${body.length} BODY=8BITMIME`);
    // Not said: a file is not read ahead, so nothing is declared (README: "8-bit content in a stream goes without BODY=").
    await sends(file, `MAIL FROM:<a@x.org> SIZE=${body.length}`);
  });

  it('DKIM-signed (the file read twice, both from start): the signature goes in front of the tail, BODY=8BITMIME still declared', async () => {
    const body = Buffer.from('From: a@x.org\r\nTo: b@x.org\r\nSubject: s\r\n\r\ncaf\xc3\xa9\r\n', 'latin1');
    const file = spooled('dkim.eml', body);
    const privateKey = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const server = await startServer({ size: 100_000 });
    try {
      const smtp = await smtplib.SMTP.connect(local(server.port, { dkim: { domain: 'x.org', selector: 's1', privateKey } }));
      await smtp.sendmail('a@x.org', ['b@x.org'], { ...file, eightBit: true });
      smtp.close();
      const [got] = server.received;
      expect(got!.params).toMatchObject({ BODY: '8BITMIME' });
      expect(got!.data.toString('latin1')).toMatch(/^DKIM-Signature: [^]*\r\nFrom: a@x.org\r\n/);
      expect(got!.data.subarray(got!.data.length - body.length).equals(body)).toBe(true);
      expect(got!.data.toString('latin1')).not.toContain('decoy');
    } finally {
      await server.close();
    }
  });

  it('sendMessage (the envelope read from the header block first): the tail is sent, BODY=8BITMIME still declared', async () => {
    const body = Buffer.from('From: a@x.org\r\nTo: b@x.org\r\nBcc: c@x.org\r\nSubject: s\r\n\r\ncaf\xc3\xa9\r\n', 'latin1');
    const file = spooled('message.eml', body);
    const server = await startServer({ size: 100_000 });
    try {
      const smtp = await smtplib.SMTP.connect(local(server.port));
      await smtp.sendMessage({ ...file, eightBit: true });
      smtp.close();
      const [got] = server.received;
      expect(got!.to.sort()).toEqual(['b@x.org', 'c@x.org']);
      expect(got!.params).toMatchObject({ BODY: '8BITMIME' });
      expect(got!.data.toString('latin1')).toBe(body.toString('latin1').replace('Bcc: c@x.org\r\n', ''));
    } finally {
      await server.close();
    }
  });

  for (const start of [-1, 1.5, Number.NaN, '3' as unknown as number, 10_000]) {
    it(`a bad start (${String(start)}${typeof start === 'string' ? ' as a string' : ''}) is refused with SMTPInvalidArgumentError before anything is sent`, async () => {
      const file = spooled(`bad-${String(start)}.eml`, 'Subject: s\r\n\r\nbody\r\n');
      expect(() => toMessageSource({ path: file.path, start })).toThrow(SMTPInvalidArgumentError);
      const pool = new SMTPPool({ host: '127.0.0.1', port: 9, localHostname: 'client.test' });
      try {
        await expect(pool.sendmail('a@x.org', 'b@x.org', { path: file.path, start })).rejects.toThrow(SMTPInvalidArgumentError);
      } finally {
        pool.destroy();
      }
    });
  }

  it('a retry on a new connection reads the file from start again (SMTPPool, a 421 at the end of data)', async () => {
    const file = spooled('retry.eml', message('tail', 'X-Pad: from a spool file\r\n'));
    const thirdLines: string[] = [];
    let faulted = false;
    const server = await startFaultServer({
      fault: (ctx: FaultContext) => {
        if (ctx.verb === 'DATA-LINE') thirdLines.push(ctx.line);
        if (ctx.stage !== 'end-of-data' || faulted) return undefined;
        faulted = true;
        return { reply: '421 4.3.2 closing' };
      },
    });
    const pool = new SMTPPool({ host: '127.0.0.1', port: server.port, localHostname: 'client.test', timeout: 5000, retry: { attempts: 3, minDelayMs: 1, maxDelayMs: 5 } });
    try {
      const result = await pool.sendmail('a@example.test', 'b@example.test', file);
      expect(result.attempts).toBe(2);
      expect(server.stats.connections).toBe(2);
      expect(server.deliveries.get('tail b@example.test')).toBe(1);
      expect(server.deliveries.get('decoy b@example.test')).toBeUndefined();
      expect(thirdLines).toEqual(['Subject: test tail', 'Subject: test tail']);
    } finally {
      pool.destroy();
      await server.close();
    }
  });
});
