// Issue 11, "Protocol correctness" and "Pool and lifecycle" (the SMTP client
// part): one test named after each item, on the wire with the scripted server.

import { mkdtempSync, writeFileSync, createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dc from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { GREET, local, play, smtplib } from './harness.js';

const CHUNKING = 'S: 220 mx ESMTP\nC: EHLO client.test\nS: 250-mx\nS: 250 CHUNKING\n';
const PIPE_CHUNKING = 'S: 220 mx ESMTP\nC: EHLO client.test\nS: 250-mx\nS: 250-PIPELINING\nS: 250 CHUNKING\n';

/** Lines of 12 bytes ("line-00001\r\n"), yielded with a pause so replies can arrive in between. */
async function* slowLines(count: number, pauseMs: number): AsyncIterable<string> {
  for (let i = 1; i <= count; i++) {
    yield `line-${String(i).padStart(5, '0')}\r\n`;
    await new Promise((r) => setTimeout(r, pauseMs));
  }
}

describe('BDAT refused', () => {
  it('BDAT refused: a 554 to the first chunk (no PIPELINING) is SMTPDataError, RSET follows, nothing more of the body, the connection stays usable', async () => {
    const script = `${CHUNKING}C: MAIL FROM:<a@x.org>\nS: 250 ok\nC: RCPT TO:<b@x.org>\nS: 250 ok\nC: BDAT 12\nC: line-00001\nS: 554 5.6.0 no\nC: RSET\nS: 250 ok\nC: NOOP\nS: 250 ok\n`;
    const out = await play(script, async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port, { chunkSize: 12 }));
      const error = await smtp.sendmail('a@x.org', ['b@x.org'], slowLines(4, 5)).catch((e: unknown) => e);
      const noop = await smtp.noop();
      smtp.close();
      return { error, noop: noop.code };
    });
    expect(out.wire.mismatch).toBeUndefined();
    expect((out.value as { error: unknown }).error).toMatchObject({ name: 'SMTPDataError', smtpCode: 554, deliveryStatus: 'not-delivered' });
    expect(out.wire.leftover.length).toBe(0);
  });

  it('BDAT refused: with PIPELINING a refusal that arrives mid-body stops the body there, then RSET', async () => {
    const script = `${PIPE_CHUNKING}C: MAIL FROM:<a@x.org>\nC: RCPT TO:<b@x.org>\nS: 250 ok\nS: 250 ok\nC: BDAT 12\nC: line-00001\nS: 452 4.3.1 out of space\nC: RSET\nS: 250 ok\nC: NOOP\nS: 250 ok\n`;
    const out = await play(script, async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port, { chunkSize: 12 }));
      const error = await smtp.sendmail('a@x.org', ['b@x.org'], slowLines(6, 120)).catch((e: unknown) => e);
      const noop = await smtp.noop();
      smtp.close();
      return { error, noop: noop.code };
    });
    expect(out.wire.mismatch).toBeUndefined();
    expect(out.sent).not.toContain('line-00003');
    expect((out.value as { error: unknown }).error).toMatchObject({ name: 'SMTPDataError', smtpCode: 452 });
    expect((out.value as { noop: number }).noop).toBe(250);
  });

  for (const position of [0, 1, 2]) {
    it(`BDAT refused: in a chained group of three BDAT LAST messages, a refusal at position ${position} fails that message only`, async () => {
      const body = (i: number) => `Subject: m${i}\r\n\r\nx\r\n`;
      let script = PIPE_CHUNKING;
      for (let i = 0; i < 3; i++) script += `C: MAIL FROM:<a@x.org>\nC: RCPT TO:<b${i}@x.org>\nC: BDAT ${body(i).length} LAST\nC: Subject: m${i}\nC: \nC: x\n`;
      for (let i = 0; i < 3; i++) script += `S: 250 ok\nS: 250 ok\nS: ${i === position ? '554 5.7.1 refused' : '250 queued'}\n`;
      script += 'C: NOOP\nS: 250 ok\n';
      const out = await play(script, async (port) => {
        const smtp = await smtplib.SMTP.connect(local(port));
        const results = await Promise.all([0, 1, 2].map((i) => smtp.sendmail('a@x.org', [`b${i}@x.org`], body(i)).then(() => 'ok', (e: smtplib.SMTPException) => e)));
        await smtp.noop();
        smtp.close();
        return results;
      });
      expect(out.wire.mismatch).toBeUndefined();
      const results = out.value as unknown[];
      results.forEach((r, i) => {
        if (i === position) expect(r).toMatchObject({ name: 'SMTPDataError', smtpCode: 554 });
        else expect(r).toBe('ok');
      });
    });
  }
});

describe('Greeting timeout, STARTTLS refused', () => {
  it('Greeting timeout is an SMTPTimeoutError with phase greeting and the SMTP_SSL sentence', async () => {
    const out = await play('S: <stall>\n', (port) => smtplib.SMTP.connect(local(port, { timeout: 300 })), { expectTimeout: 800 });
    expect(out.error).toBeInstanceOf(smtplib.SMTPTimeoutError);
    expect(out.error).toMatchObject({ phase: 'greeting', diagnosis: 'implicit-tls-expected' });
    expect((out.error as Error).message).toMatch(/If this port expects implicit TLS, use SMTP_SSL/);
  });

  it('STARTTLS refused: the SMTPTLSError itself carries smtpCode and smtpError', async () => {
    const out = await play('S: 220 mx ESMTP\nC: EHLO client.test\nS: 250-mx\nS: 250 STARTTLS\nC: STARTTLS\nS: 454 4.7.0 TLS not available\n', (port) =>
      smtplib.SMTP.connect(local(port, { tlsPolicy: 'required' })));
    expect(out.error).toBeInstanceOf(smtplib.SMTPTLSError);
    expect(out.error).toMatchObject({ smtpCode: 454, smtpError: '4.7.0 TLS not available', enhancedStatus: '4.7.0', diagnosis: 'starttls-refused' });
    expect((out.error as smtplib.SMTPTLSError).isTransient).toBe(true);
  });
});

describe('LMTP replies missing after DATA', () => {
  it('LMTP replies missing after DATA: the timeout names every recipient whose reply never came (pendingRecipients)', async () => {
    const script = 'S: 220 lmtp\nC: LHLO client.test\nS: 250 lmtp\nC: MAIL FROM:<a@x.org>\nS: 250 ok\nC: RCPT TO:<r1@x.org>\nS: 250 ok\nC: RCPT TO:<r2@x.org>\nS: 250 ok\nC: RCPT TO:<r3@x.org>\nS: 250 ok\nC: DATA\nS: 354 go\nC: Subject: s\nC: \nC: x\nC: .\nS: 250 r1 delivered\nS: <stall>\n';
    const out = await play(script, async (port) => {
      const lmtp = await smtplib.LMTP.connect(local(port, { timeouts: { dataEnd: 400 } }));
      try {
        return await lmtp.sendmail('a@x.org', ['r1@x.org', 'r2@x.org', 'r3@x.org'], 'Subject: s\r\n\r\nx\r\n');
      } finally {
        lmtp.close();
      }
    }, { expectTimeout: 1500 });
    expect(out.error).toMatchObject({ name: 'SMTPTimeoutError', deliveryStatus: 'unknown', pendingRecipients: ['r2@x.org', 'r3@x.org'] });
  });
});

describe('timeouts, debug, dispose', () => {
  it('timeout: 0 and negative timeouts are SMTPInvalidArgumentError; Infinity is spelled out', () => {
    for (const bad of [0, -1, Number.NaN]) {
      expect(() => new smtplib.SMTP({ timeout: bad })).toThrow(smtplib.SMTPInvalidArgumentError);
      expect(() => new smtplib.SMTP({ timeouts: { command: bad } })).toThrow(/positive number of milliseconds/);
    }
    expect(new smtplib.SMTP({ timeout: Infinity }).timeouts.command).toBe(Infinity);
  });

  it('timeout under 100: a one-time warning says timeouts are milliseconds', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    new smtplib.SMTP({ timeout: 30 });
    new smtplib.SMTP({ timeout: 10 });
    await new Promise((r) => setTimeout(r, 20));
    process.off('warning', onWarning);
    const ours = warnings.filter((w) => (w as { code?: string }).code === 'SMTPLIB_TIMEOUT_MILLISECONDS');
    expect(ours).toHaveLength(1);
    expect(ours[0]!.message).toMatch(/milliseconds, not seconds.*30000/);
  });

  it('setDebugLevel(2) timestamps have microseconds like smtplib (HH:MM:SS.ffffff)', async () => {
    const lines: string[] = [];
    const out = await play('S: 220 mx\nC: NOOP\nS: 250 ok\n', async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port, { debugOutput: (l) => lines.push(l) }));
      smtp.setDebugLevel(2);
      await smtp.noop();
      smtp.close();
    });
    expect(out.error).toBeUndefined();
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toMatch(/^\d{2}:\d{2}:\d{2}\.\d{6} /);
  });

  it('[Symbol.asyncDispose] does not throw a failed QUIT (documented) but reports it on smtplib:error and the debug log', async () => {
    const errors: unknown[] = [];
    const lines: string[] = [];
    const onError = (e: unknown) => errors.push(e);
    dc.subscribe(smtplib.ERROR_CHANNEL, onError);
    try {
      const out = await play('S: 220 mx\nC: QUIT\nS: <close>\n', async (port) => {
        const smtp = await smtplib.SMTP.connect(local(port, { debugLevel: 1, debugOutput: (l) => lines.push(l) }));
        await smtp[Symbol.asyncDispose]();
        return smtp.isConnected;
      });
      expect(out.error).toBeUndefined();
      expect(out.value).toBe(false);
    } finally {
      dc.unsubscribe(smtplib.ERROR_CHANNEL, onError);
    }
    expect(lines.join('\n')).toMatch(/dispose: QUIT failed: .*\(not thrown\)/);
    expect(errors.some((e) => (e as { error?: Error }).error?.name === 'SMTPServerDisconnected')).toBe(true);
  });
});

describe('ESMTP parameters and stream bodies', () => {
  it('ESMTP parameters the server did not advertise: explicit extra and string options go as written; the library adds SIZE only when advertised', async () => {
    const script = `${GREET}C: MAIL FROM:<a@x.org> RET=HDRS X-TRACE=1\nC: RCPT TO:<b@x.org> NOTIFY=NEVER\nC: DATA\nS: 250 ok\nS: 250 ok\nS: 354 go\nC: x\nC: .\nS: 250 ok\nC: MAIL FROM:<a@x.org> MT-PRIORITY=3\nC: RCPT TO:<b@x.org>\nC: DATA\nS: 250 ok\nS: 250 ok\nS: 354 go\nC: y\nC: .\nS: 250 ok\n`;
    const out = await play(script, async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port));
      await smtp.sendmail('a@x.org', ['b@x.org'], 'x\r\n', ['X-TRACE=1', 'RET=HDRS'], ['NOTIFY=NEVER']);
      await smtp.sendmail('a@x.org', ['b@x.org'], 'y\r\n', { extra: { 'MT-PRIORITY': '3' }, ret: 'FULL' }, { notify: 'NEVER' });
      smtp.close();
    });
    expect(out.wire.mismatch).toBeUndefined();
    expect(out.error).toBeUndefined();
  });

  it('Stream bodies: SIZE= is declared for a file stream whose length is known', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smtplib-size-'));
    const file = join(dir, 'm.eml');
    writeFileSync(file, 'Subject: s\r\n\r\nbody\r\n');
    const script = `S: 220 mx\nC: EHLO client.test\nS: 250-mx\nS: 250-PIPELINING\nS: 250 SIZE 1000\nC: MAIL FROM:<a@x.org> SIZE=20\nC: RCPT TO:<b@x.org>\nC: DATA\nS: 250 ok\nS: 250 ok\nS: 354 go\nC: Subject: s\nC: \nC: body\nC: .\nS: 250 ok\n`;
    const out = await play(script, async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port));
      await smtp.sendmail('a@x.org', ['b@x.org'], createReadStream(file));
      smtp.close();
    });
    expect(out.wire.mismatch).toBeUndefined();
    expect(out.error).toBeUndefined();
  });

  it('Stream bodies: a file larger than the server SIZE is refused before MAIL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smtplib-size-'));
    const file = join(dir, 'big.eml');
    writeFileSync(file, 'Subject: s\r\n\r\n' + 'x'.repeat(2000) + '\r\n');
    const out = await play('S: 220 mx\nC: EHLO client.test\nS: 250-mx\nS: 250 SIZE 1000\nC: NOOP\nS: 250 ok\n', async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port));
      const error = await smtp.sendmail('a@x.org', ['b@x.org'], { path: file }).catch((e: unknown) => e);
      await smtp.noop();
      smtp.close();
      return error;
    });
    expect(out.wire.mismatch).toBeUndefined();
    expect(out.value).toMatchObject({ name: 'SMTPDataError', smtpCode: 552, deliveryStatus: 'not-delivered' });
  });
});
