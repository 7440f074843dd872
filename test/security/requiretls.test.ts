// REQUIRETLS (RFC 8689) as a sendmail option: refused before MAIL unless the
// session is TLS and the server advertises it.

import { describe, expect, it } from 'vitest';
import { expectError, run, serverTls, smtplib } from './helpers.js';

const { SMTP_SSL, SMTPNotSupportedError } = smtplib;

const ehlo = (ext: string) => `S: 220 mx ESMTP
C: EHLO client.test
S: 250-mx
S: 250 ${ext}
`;

describe('REQUIRETLS', () => {
  it('refused on a plaintext session even when advertised; no MAIL written; the connection stays usable', async () => {
    const out = await run(ehlo('REQUIRETLS') + 'C: NOOP\nS: 250 ok\n', async (connect) => {
      const c = await connect();
      const error = await c.sendmail('a@example.org', ['b@example.org'], 'hi\n', { requireTls: true }).then(() => null, (e: unknown) => e);
      expectError(error, SMTPNotSupportedError, 'ERR_SMTP_NOT_SUPPORTED', 'REQUIRETLS needs a TLS-protected session');
      expect(c.isConnected).toBe(true);
      await c.noop();
    });
    expect(out.error).toBeNull();
    expect(out.wire).toBe('EHLO client.test\r\nNOOP\r\n');
  });

  it('refused over TLS when the server does not advertise it; no MAIL written', async () => {
    const out = await run(ehlo('SIZE 1000') + 'C: NOOP\nS: 250 ok\n', async (connect) => {
      const c = await connect();
      const error = await c.sendmail('a@example.org', ['b@example.org'], 'hi\n', { requireTls: true }).then(() => null, (e: unknown) => e);
      expectError(error, SMTPNotSupportedError, 'ERR_SMTP_NOT_SUPPORTED', 'REQUIRETLS was asked for but the server does not offer it');
      await c.noop();
    }, { cls: SMTP_SSL, server: { tls: serverTls(), implicitTls: true } });
    expect(out.error).toBeNull();
    expect(out.wire).toBe('EHLO client.test\r\nNOOP\r\n');
  });

  it('refused through sendMessage/deliver too (the option is checked wherever MAIL is built)', async () => {
    const out = await run(ehlo('SIZE 1000') + 'S: <read-until-close>', async (connect) => {
      const c = await connect();
      await c.sendMessage('From: a@example.org\r\nTo: b@example.org\r\n\r\nhi\r\n', { mailOptions: { requireTls: true } });
    }, { client: () => ({ timeout: 1500 }) });
    expectError(out.error, SMTPNotSupportedError, 'ERR_SMTP_NOT_SUPPORTED', 'REQUIRETLS');
    expect(out.wire).toBe('EHLO client.test\r\n');
  });

  it('sent as a MAIL parameter over TLS when advertised', async () => {
    const out = await run(
      ehlo('REQUIRETLS') +
        `C: MAIL FROM:<a@example.org> REQUIRETLS
S: 250 ok
C: RCPT TO:<b@example.org>
S: 250 ok
C: DATA
S: 354 go
C: hi
C: .
S: 250 ok
`,
      async (connect) => {
        const c = await connect();
        return c.sendmail('a@example.org', ['b@example.org'], 'hi\n', { requireTls: true });
      },
      { cls: SMTP_SSL, server: { tls: serverTls(), implicitTls: true } },
    );
    expect(out.error).toBeNull();
    expect(out.server.mismatch).toBeUndefined();
  });

  it('the raw string form ["REQUIRETLS"] gets the same checks', async () => {
    const out = await run(ehlo('REQUIRETLS') + 'C: NOOP\nS: 250 ok\n', async (connect) => {
      const c = await connect();
      const error = await c.sendmail('a@example.org', ['b@example.org'], 'hi\n', ['REQUIRETLS']).then(() => null, (e: unknown) => e);
      expectError(error, SMTPNotSupportedError, 'ERR_SMTP_NOT_SUPPORTED', 'REQUIRETLS needs a TLS-protected session');
      await c.noop();
    });
    expect(out.error).toBeNull();
    expect(out.wire).toBe('EHLO client.test\r\nNOOP\r\n');
  });
});
