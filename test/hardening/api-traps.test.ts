// Issue 11, "API traps" and the SMTP side of "Pool and lifecycle"; issue 12's
// option validation and Python habits. One test named after each item.

import { describe, expect, it } from 'vitest';
import { GREET, local, play, smtplib } from './harness.js';

describe('call options', () => {
  it('SMTP.sendmail(from, to, msg, { signal }) takes { signal } as call options and aborts', async () => {
    const out = await play('S: 220 mx\nC: NOOP\nS: 250 ok\n', async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port));
      const error = await smtp.sendmail('a@x.org', ['b@x.org'], 'x\r\n', { signal: AbortSignal.abort(new Error('stop')) }).catch((e: unknown) => e);
      const fifth = await smtp.sendmail('a@x.org', ['b@x.org'], 'x\r\n', [], { signal: AbortSignal.abort() }).catch((e: unknown) => e);
      await smtp.noop(); // nothing was written: still usable
      smtp.close();
      return [error, fifth];
    });
    expect(out.wire.mismatch).toBeUndefined();
    for (const e of out.value as unknown[]) expect(e).toBeInstanceOf(smtplib.SMTPAbortError);
    expect(out.sent).toBe('NOOP\r\n');
  });

  it('SMTP.sendmail: a signal that fires while waiting aborts (SMTPAbortError, connection destroyed)', async () => {
    const controller = new AbortController();
    const out = await play(`${GREET}C: MAIL FROM:<a@x.org>\nC: RCPT TO:<b@x.org>\nC: DATA\nS: <stall>\n`, async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port));
      setTimeout(() => controller.abort(), 100);
      const error = await smtp.sendmail('a@x.org', ['b@x.org'], 'x\r\n', { signal: controller.signal }).catch((e: unknown) => e);
      return { error, connected: smtp.isConnected };
    }, { expectTimeout: 1000 });
    expect(out.value).toMatchObject({ connected: false });
    expect((out.value as { error: unknown }).error).toBeInstanceOf(smtplib.SMTPAbortError);
  });

  it('Mail and RCPT options are validated: an object with unknown keys is SMTPInvalidArgumentError, nothing written', async () => {
    const out = await play('S: 220 mx\nC: NOOP\nS: 250 ok\n', async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port));
      const errors = [
        await smtp.sendmail('a@x.org', ['b@x.org'], 'x', { sizes: 10 } as never).catch((e: unknown) => e),
        await smtp.sendmail('a@x.org', ['b@x.org'], 'x', {}, { notfy: 'NEVER' } as never).catch((e: unknown) => e),
        await smtp.sendmail('a@x.org', ['b@x.org'], 'x', { size: 1, signal: AbortSignal.timeout(1000) } as never).catch((e: unknown) => e),
      ];
      await smtp.noop();
      smtp.close();
      return errors;
    });
    const errors = out.value as Error[];
    for (const e of errors) expect(e).toBeInstanceOf(smtplib.SMTPInvalidArgumentError);
    expect(errors[2]!.message).toMatch(/pass \{ signal \} as the last argument/);
    expect(out.sent).toBe('NOOP\r\n');
  });

  it('AbortSignal on every entry point: an already-aborted signal writes nothing (NOOP, EHLO, QUIT, AUTH, putcmd, send) and leaves the connection usable', async () => {
    const out = await play('S: 220 mx\nC: EHLO client.test\nS: 250-mx\nS: 250 AUTH PLAIN\nC: NOOP\nS: 250 ok\n', async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port));
      await smtp.ehlo();
      const signal = AbortSignal.abort();
      const errors = [
        await smtp.noop({ signal }).catch((e: unknown) => e),
        await smtp.ehlo({ signal }).catch((e: unknown) => e),
        await smtp.login('u', 'p', { signal }).catch((e: unknown) => e),
        await smtp.putcmd('NOOP', { signal }).catch((e: unknown) => e),
        await smtp.send('NOOP\r\n', { signal }).catch((e: unknown) => e),
        await smtp.quit({ signal }).catch((e: unknown) => e),
      ];
      const connected = smtp.isConnected;
      await smtp.noop();
      smtp.close();
      return { errors, connected };
    });
    expect(out.wire.mismatch).toBeUndefined();
    const { errors, connected } = out.value as { errors: unknown[]; connected: boolean };
    for (const e of errors) expect(e).toBeInstanceOf(smtplib.SMTPAbortError);
    expect(connected).toBe(true);
    expect(out.sent).toBe('EHLO client.test\r\nNOOP\r\n');
  });

  it('return smtp.sendMessage(msg) inside await using: the send takes its place at once, disposal waits for it', async () => {
    const script = `${GREET}C: MAIL FROM:<a@x.org>\nC: RCPT TO:<b@x.org>\nC: DATA\nS: 250 ok\nS: 250 ok\nS: 354 go\nC: From: a@x.org\nC: To: b@x.org\nC: \nC: hi\nC: .\nS: 250 queued\nC: QUIT\nS: 221 bye\n`;
    const out = await play(script, async (port) => {
      const send = async () => {
        await using smtp = await smtplib.SMTP.connect(local(port));
        return smtp.sendMessage('From: a@x.org\r\nTo: b@x.org\r\n\r\nhi\r\n');
      };
      return send();
    });
    expect(out.wire.mismatch).toBeUndefined();
    expect(out.error).toBeUndefined();
    expect(out.value).toEqual({});
  });
});

describe('constructors and options', () => {
  it("new SMTP('host', 2999) records smtplib's positional arguments and does not connect to localhost:25", () => {
    const smtp = new smtplib.SMTP('mail.example.test', 2999, 'client.test', 5000);
    expect(smtp.isConnected).toBe(false);
    expect(smtp.localHostname).toBe('client.test');
    expect(smtp.timeout).toBe(5000);
    expect(smtp.tlsPolicy).toBe('required'); // a remote name: the named host is used, not localhost
    expect(() => new smtplib.SMTP('mail.example.test', '25' as never)).toThrow(smtplib.SMTPInvalidArgumentError);
  });

  it('Constructors and option validation throw SMTPInvalidArgumentError with a code, never bare RangeError/TypeError', () => {
    const cases: unknown[] = [{ bogus: 1 }, { port: 0 }, { port: 70000 }, { host: 5 }, { tlsPolicy: 'strict' }, { chunkSize: -1 }, { family: 5 }, { fingerprint: 'zz' }, { timeouts: { connct: 10 } }, 42];
    for (const options of cases) {
      let error: unknown;
      try { new smtplib.SMTP(options as never); } catch (e) { error = e; }
      expect(error, JSON.stringify(options)).toBeInstanceOf(smtplib.SMTPInvalidArgumentError);
      expect((error as smtplib.SMTPException).code).toBe('ERR_SMTP_INVALID_ARGUMENT');
    }
    expect(() => new smtplib.SMTP({ bogus: 1 } as never)).toThrow(/unknown SMTP option "bogus"/);
  });

  it('instanceof across subclasses: a plain SMTPDataError is not a Quota, and Quota keeps its name', () => {
    class Quota extends smtplib.SMTPDataError {}
    const plain = new smtplib.SMTPDataError(552, 'full');
    const quota = new Quota(552, 'full');
    expect(plain instanceof Quota).toBe(false);
    expect(quota instanceof Quota).toBe(true);
    expect(quota instanceof smtplib.SMTPDataError).toBe(true);
    expect(quota instanceof smtplib.SMTPException).toBe(true);
    expect(quota.name).toBe('Quota');
    expect(plain.name).toBe('SMTPDataError');
    expect(quota.code).toBe('ERR_SMTP_DATA');
  });

  it('No test-harness detail in library code: port 4465 is not treated as an implicit-TLS port', async () => {
    const net = await import('node:net');
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as import('node:net').AddressInfo).port;
    const error = await smtplib.SMTP.connect({
      host: 'mail.example.test', port: 4465, timeout: 200, tlsPolicy: 'none',
      connect: () => net.connect({ host: '127.0.0.1', port }),
    }).catch((e: unknown) => e);
    silent.close();
    expect(error).toMatchObject({ name: 'SMTPTimeoutError', phase: 'greeting' });
    // 465 would get "probably expects implicit TLS"; 4465 (an interop harness port) gets the generic sentence.
    expect((error as Error).message).toMatch(/If this port expects implicit TLS, use SMTP_SSL; otherwise check the host and port/);
  });

  it("login() on a loopback server that offers AUTH only after STARTTLS says loopback defaults to tlsPolicy: 'none' and what to set", async () => {
    const out = await play('S: 220 mx\nC: EHLO client.test\nS: 250-mx\nS: 250 STARTTLS\n', async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port));
      try { return await smtp.login('u', 'p'); } finally { smtp.close(); }
    });
    expect(out.error).toBeInstanceOf(smtplib.SMTPNotSupportedError);
    expect(out.error).toMatchObject({ diagnosis: 'auth-requires-starttls' });
    expect((out.error as Error).message).toMatch(/loopback default to tlsPolicy: 'none'; set tlsPolicy: 'required'/);
  });
});
