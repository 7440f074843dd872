// The client against a real server running in-process (the npm smtp-server
// package) over loopback, with a throw-away CA for every TLS path.
import { createHmac } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LMTP, SMTP, SMTP_SSL, SMTPAuthenticationError, SMTPDataError, SMTPNotSupportedError,
  SMTPRecipientsRefused, SMTPServerDisconnected, SMTPTLSError, SMTPTimeoutError,
} from 'smtplib';
import { testPki } from '../support/certs.js';
import { startServer, type TestServer } from './helpers.js';

const pki = testPki();
const lookup: net.LookupFunction = ((_host: string, options: { all?: boolean }, cb: (...a: unknown[]) => void) => {
  if (options?.all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
  else cb(null, '127.0.0.1', 4);
}) as never;

function normalize(text: string | Buffer): Buffer {
  const s = Buffer.from(text as string).toString('latin1').replace(/\r\n|\r|\n/g, '\r\n');
  return Buffer.from(s.endsWith('\r\n') ? s : `${s}\r\n`, 'latin1');
}

describe('plain SMTP', () => {
  let server: TestServer;
  beforeAll(async () => { server = await startServer({ size: 20 * 1024 * 1024 }); });
  afterAll(() => server.close());

  it('sends, returns the refused map, and the message arrives byte-identical', async () => {
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, localHostname: 'client.test' });
    expect(smtp.tlsPolicy).toBe('none');
    const msg = 'From: a@example.org\nTo: b@example.org\nSubject: t\n\n.leading dot\r\nbare cr\rend';
    const refused = await smtp.sendmail('a@example.org', ['b@example.org', 'bad@example.org'], msg);
    expect(Object.keys(refused)).toEqual(['bad@example.org']);
    expect(refused['bad@example.org' as never]).toMatchObject({ code: 550 });
    const got = server.received.at(-1)!;
    expect(got.to).toEqual(['b@example.org']);
    expect(got.data.equals(normalize(msg))).toBe(true);
    expect(got.params).toMatchObject({ SIZE: String(normalize(msg).length) });
    await smtp.quit();
    expect(smtp.isConnected).toBe(false);
  });

  it('throws SMTPRecipientsRefused when all are refused, and stays usable', async () => {
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port });
    const error = await smtp.sendmail('a@example.org', ['bad1@example.org', 'bad2@example.org'], 'x').catch((e) => e);
    expect(error).toBeInstanceOf(SMTPRecipientsRefused);
    expect(Object.keys(error.recipients)).toEqual(['bad1@example.org', 'bad2@example.org']);
    const [code] = await smtp.noop();
    expect(code).toBe(250);
    await smtp.quit();
  });

  it('streams Readable and AsyncIterable bodies, and a 10 MB message arrives byte-identical', async () => {
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port });
    const line = '.a line that starts with a dot and is long enough to matter for throughput testing\n';
    const big = `Subject: big\n\n${line.repeat(Math.ceil((10 * 1024 * 1024) / line.length))}`;
    const chunks: Buffer[] = [];
    const buf = Buffer.from(big);
    for (let i = 0; i < buf.length; i += 65_521) chunks.push(buf.subarray(i, i + 65_521));
    await smtp.sendmail('a@example.org', 'b@example.org', Readable.from(chunks));
    expect(server.received.at(-1)!.data.equals(normalize(big))).toBe(true);
    async function* gen() { yield 'Subject: gen\r\n\r\n'; yield Buffer.from('one\r\n.two\r\n'); }
    await smtp.sendmail('a@example.org', 'b@example.org', gen());
    expect(server.received.at(-1)!.data.toString()).toBe('Subject: gen\r\n\r\none\r\n.two\r\n');
    await smtp.sendmail('a@example.org', 'b@example.org', new Uint8Array(Buffer.from('bytes\n')));
    expect(server.received.at(-1)!.data.toString()).toBe('bytes\r\n');
    await smtp.quit();
  });

  it('sendMessage takes the envelope from the headers and strips Bcc', async () => {
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port });
    await smtp.sendMessage('From: "A" <a@example.org>\r\nTo: b@example.org\r\nBcc: hidden@example.org\r\nSubject: s\r\n\r\nhi\r\n');
    const got = server.received.at(-1)!;
    expect(got.from).toBe('a@example.org');
    expect(got.to).toEqual(['b@example.org', 'hidden@example.org']);
    expect(got.data.toString()).not.toContain('hidden');
    await smtp.quit();
  });

  it('await using sends QUIT at the end of the block', async () => {
    let client: SMTP | undefined;
    {
      await using smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port });
      client = smtp;
      await smtp.noop();
    }
    expect(client.isConnected).toBe(false);
    await expect(client.noop()).rejects.toBeInstanceOf(SMTPServerDisconnected);
  });

  it('using the object before connecting throws SMTPServerDisconnected', async () => {
    const smtp = new SMTP();
    await expect(smtp.noop()).rejects.toThrow(/connect\(\) first/);
    await expect(smtp.sendmail('a@x', 'b@y', 'm')).rejects.toBeInstanceOf(SMTPServerDisconnected);
  });

  it('debug level 1 shows every line and masks AUTH', async () => {
    const authServer = await startServer({ authMethods: ['PLAIN', 'LOGIN'], onAuth: (auth, _s, cb) => cb(null, { user: auth.username }) });
    const lines: string[] = [];
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: authServer.port, debugLevel: 1, debugOutput: (l) => lines.push(l) });
    await smtp.login('user', 'hunter2-secret');
    await smtp.login('user', 'hunter2-secret', { mechanism: 'LOGIN' }).catch(() => {});
    await smtp.quit();
    const text = lines.join('\n');
    expect(text).toMatch(/^connect: /);
    expect(text).toContain("send: 'EHLO ");
    expect(text).toContain("send: 'AUTH PLAIN ****\\r\\n'");
    expect(text).toContain('reply: retcode (235)');
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain(Buffer.from('hunter2-secret').toString('base64'));
    expect(text).not.toContain(Buffer.from('\0user\0hunter2-secret').toString('base64'));
    await authServer.close();
  });
});

describe('TLS', () => {
  let server: TestServer;
  let implicit: TestServer;
  beforeAll(async () => {
    server = await startServer({ key: pki.server.key, cert: pki.server.cert });
    implicit = await startServer({ secure: true, key: pki.server.key, cert: pki.server.cert });
  });
  afterAll(async () => { await server.close(); await implicit.close(); });

  it('STARTTLS verified against the CA, with the name connected to', async () => {
    const smtp = await SMTP.connect({ host: 'mail.example.test', port: server.port, lookup, tls: { ca: pki.ca } });
    expect(smtp.tlsPolicy).toBe('required');
    expect(smtp.isSecure).toBe(true);
    expect(smtp.hasExtn('starttls')).toBe(false);
    await smtp.sendmail('a@example.org', 'b@example.org', 'secure\n');
    expect(server.received.at(-1)!.secure).toBe(true);
    await smtp.quit();
  });

  it('refuses an unknown CA by default, with an explaining SMTPTLSError', async () => {
    const error = await SMTP.connect({ host: 'mail.example.test', port: server.port, lookup }).catch((e) => e);
    expect(error).toBeInstanceOf(SMTPTLSError);
    expect(error.message).toMatch(/unknown authority|self-signed|could not be verified/);
  });

  it('refuses a certificate for another name', async () => {
    const error = await SMTP.connect({ host: 'wrong.example.test', port: server.port, lookup, tls: { ca: pki.ca } }).catch((e) => e);
    expect(error).toBeInstanceOf(SMTPTLSError);
    expect(error.message).toContain('another name');
  });

  it('manual starttls() on a loopback connection, then EHLO again', async () => {
    const smtp = await SMTP.connect({ host: 'localhost', port: server.port, tls: { ca: pki.ca } });
    expect(smtp.isSecure).toBe(false);
    await smtp.ehlo();
    expect(smtp.hasExtn('STARTTLS')).toBe(true);
    const reply = await smtp.starttls();
    expect(reply.code).toBe(220);
    expect(smtp.ehloResp).toBeNull();
    expect(smtp.esmtpFeatures.size).toBe(0);
    await expect(smtp.starttls()).rejects.toBeInstanceOf(SMTPNotSupportedError);
    await smtp.sendmail('a@example.org', 'b@example.org', 'x\n');
    expect(server.received.at(-1)!.secure).toBe(true);
    await smtp.quit();
  });

  it('SMTP_SSL: implicit TLS, verified', async () => {
    const smtp = await SMTP_SSL.connect({ host: 'localhost', port: implicit.port, tls: { ca: pki.ca } });
    expect(smtp.isSecure).toBe(true);
    await smtp.sendmail('a@example.org', 'b@example.org', 'over tls\n');
    expect(implicit.received.at(-1)!.secure).toBe(true);
    await smtp.quit();
    await expect(SMTP_SSL.connect({ host: 'localhost', port: implicit.port })).rejects.toBeInstanceOf(SMTPTLSError);
  });

  it('SMTP on port 465 connects with implicit TLS as SMTP_SSL would', async () => {
    const connect = () => net.connect(implicit.port, '127.0.0.1');
    const smtp = await SMTP.connect({ host: 'localhost', port: 465, connect, tls: { ca: pki.ca } });
    expect(smtp.tlsPolicy).toBe('implicit');
    expect(smtp.isSecure).toBe(true);
    await smtp.quit();
  });

  it('plaintext to a TLS port explains what to use', async () => {
    const error = await SMTP.connect({ host: '127.0.0.1', port: implicit.port, timeout: 500 }).catch((e) => e);
    expect(error).toBeInstanceOf(SMTPTimeoutError);
    expect(error.phase).toBe('greeting');
    expect(error.diagnosis).toBe('implicit-tls-expected');
    expect(error.message).toMatch(/SMTP_SSL/);
  });

  it('implicit TLS to a plaintext port explains what to use', async () => {
    const plain = await startServer();
    const error = await SMTP_SSL.connect({ host: 'localhost', port: plain.port, tls: { ca: pki.ca }, timeout: 2000 }).catch((e) => e);
    expect(error).toBeInstanceOf(SMTPTLSError);
    expect(error.message).toMatch(/STARTTLS/);
    await plain.close();
  });
});

describe('AUTH against smtp-server', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({
      authMethods: ['PLAIN', 'LOGIN', 'CRAM-MD5'],
      onAuth(auth, _session, cb) {
        const ok = auth.method === 'CRAM-MD5' ? auth.validatePassword!('pässwörd') : auth.password === 'pässwörd';
        cb(ok && auth.username === 'üser' ? null : new Error('bad credentials'), ok ? { user: auth.username } : undefined);
      },
    });
  });
  afterAll(() => server.close());

  for (const mechanism of ['PLAIN', 'LOGIN', 'CRAM-MD5']) {
    it(`${mechanism} with UTF-8 credentials`, async () => {
      const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port });
      const reply = await smtp.login('üser', 'pässwörd', { mechanism });
      expect(reply.code).toBe(235);
      expect(smtp.isAuthenticated).toBe(true);
      await smtp.sendmail('a@example.org', 'b@example.org', 'authed\n');
      expect(server.received.at(-1)!.user).toBe('üser');
      await smtp.quit();
    });
  }

  it('picks PLAIN over CRAM-MD5 by default; a wrong password is SMTPAuthenticationError (535)', async () => {
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port });
    const error = await smtp.login('üser', 'wrong').catch((e) => e);
    expect(error).toBeInstanceOf(SMTPAuthenticationError);
    expect(error.smtpCode).toBe(535);
    expect(error.mechanism).toBe('PLAIN');
    expect(JSON.stringify(error)).not.toContain('wrong');
    await smtp.quit();
  });

  it('auth() with an smtplib-style callable', async () => {
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port });
    await smtp.ehlo();
    const reply = await smtp.auth('CRAM-MD5', (challenge) =>
      challenge === null ? '' : `üser ${createHmac('md5', 'pässwörd').update(challenge).digest('hex')}`, { initialResponseOk: false });
    expect(reply.code).toBe(235);
    await smtp.quit();
  });
});

describe('LMTP over a Unix socket', () => {
  it('reads one reply per accepted recipient and reports failures in the refused map', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'lmtp-')), 'lmtp.sock');
    const server = await startServer({ lmtp: true, listen: path, lmtpFail: ['full@example.org'] });
    const lmtp = await LMTP.connect({ host: path });
    expect(lmtp.tlsPolicy).toBe('none');
    const refused = await lmtp.sendmail('a@example.org', ['one@example.org', 'bad@example.org', 'full@example.org', 'two@example.org'], 'lmtp\n');
    expect(Object.keys(refused).sort()).toEqual(['bad@example.org', 'full@example.org']);
    expect(refused['full@example.org' as never]).toMatchObject({ code: 552 });
    const result = await lmtp.deliver('a@example.org', ['one@example.org', 'full@example.org'], 'again\n');
    expect(result.accepted).toEqual(['one@example.org']);
    expect(result.recipientReplies?.get('full@example.org')?.code).toBe(552);
    const all = await lmtp.sendmail('a@example.org', ['full@example.org'], 'x\n').catch((e) => e);
    expect(all).toBeInstanceOf(SMTPDataError);
    await lmtp.quit();
    await server.close();
  });
});

describe('timeouts', () => {
  it('a server that never greets: SMTPTimeoutError with phase greeting', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    const started = Date.now();
    const error = await SMTP.connect({ host: '127.0.0.1', port, timeout: 300 }).catch((e) => e);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(error).toBeInstanceOf(SMTPTimeoutError);
    expect(error.phase).toBe('greeting');
    silent.close();
  });
});
