// `smtplib probe` against `smtplib serve` (plaintext + STARTTLS, implicit TLS),
// a certificate for another name, and a closed port.
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSelfSigned } from '../../packages/cli/src/certs.js';
import { startDebugServer } from '../../packages/cli/src/serve.js';
import { assertBuilt, freePort, run, spawnServe, tempDir } from './helpers.js';

const tmp = tempDir();
const cleanups: (() => unknown)[] = [tmp.cleanup];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('smtplib probe', () => {
  let port = 0;
  const certFile = join(tmp.dir, 'serve.pem');
  beforeAll(async () => {
    assertBuilt();
    const srv = await spawnServe(['--starttls', '--auth', 'alice:pw', '--size', '5000000', '--cert-out', certFile]);
    cleanups.push(srv.stop);
    port = srv.port;
  });

  it('reports EHLO before and after STARTTLS, TLS, the certificate and AUTH; flags the self-signed certificate', async () => {
    const r = await run(['probe', `127.0.0.1:${port}`, '--json']);
    expect(r.code).toBe(76);
    const rep = JSON.parse(r.stdout);
    expect(rep.mode).toBe('plaintext');
    expect(rep.greeting).toMatch(/^220 /);
    expect(Object.keys(rep.ehloBeforeTls.features)).toContain('STARTTLS');
    expect(Object.keys(rep.ehloAfterTls.features)).not.toContain('STARTTLS');
    expect(rep.starttls).toMatchObject({ offered: true, ok: true });
    expect(rep.tls.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(rep.tls.authorized).toBe(false);
    expect(rep.tls.hostnameOk).toBe(true);
    expect(rep.tls.chain[0].names).toEqual(expect.arrayContaining(['localhost', '127.0.0.1']));
    expect(rep.tls.chain[0].daysLeft).toBeGreaterThan(20);
    expect(rep.authMechanisms.afterTls).toEqual(['PLAIN', 'LOGIN', 'CRAM-MD5']);
    expect(rep.size).toBe(5000000);
    expect(rep.findings.some((f: { level: string; message: string }) => f.level === 'error' && /self-signed/.test(f.message))).toBe(true);
  });

  it('trusts the certificate given with --ca and then finds no error', async () => {
    const r = await run(['probe', `127.0.0.1:${port}`, '--ca', certFile]);
    expect(r.stdout).toMatch(/chain trusted; name matches/);
    expect(r.stdout).toMatch(/EHLO before TLS:/);
    expect(r.stdout).toMatch(/EHLO after TLS:/);
    expect(r.stdout).toMatch(/SIZE: 5000000 bytes/);
    expect(r.stdout).not.toMatch(/ERROR/);
    expect(r.code).toBe(0);
  });

  it('detects implicit TLS on a port where a plaintext greeting never comes', async () => {
    const srv = await spawnServe(['--tls']);
    cleanups.push(srv.stop);
    const r = await run(['probe', `localhost:${srv.port}`, '--json', '--timeout', '2']);
    const rep = JSON.parse(r.stdout);
    expect(rep.mode).toBe('implicit-tls');
    expect(rep.greeting).toMatch(/^220 /);
    expect(rep.findings.map((f: { message: string }) => f.message).join('\n')).toMatch(/implicit TLS.*--tls implicit/);
  });

  it('says when the certificate is for another name', async () => {
    const ca = await generateSelfSigned([], { isCA: true });
    const leaf = await generateSelfSigned(['mail.example.test'], { ca: { cert: ca.cert, key: ca.key } });
    const caFile = join(tmp.dir, 'ca.pem');
    writeFileSync(caFile, ca.cert);
    const s = await startDebugServer({ port: 0, starttls: true, cert: leaf.cert, key: leaf.key });
    cleanups.push(() => s.close());
    const r = await run(['probe', `127.0.0.1:${s.port}`, '--ca', caFile, '--json']);
    expect(r.code).toBe(76);
    const rep = JSON.parse(r.stdout);
    expect(rep.tls.authorized).toBe(true);
    expect(rep.tls.hostnameOk).toBe(false);
    expect(rep.findings.find((f: { level: string }) => f.level === 'error').message).toMatch(/certificate is for mail\.example\.test.*not for 127\.0\.0\.1/);
    // Checked against the right name, everything is fine.
    const ok = await run(['probe', `127.0.0.1:${s.port}`, '--ca', caFile, '--servername', 'mail.example.test']);
    expect(ok.code).toBe(0);
    // Without the CA, the issuer is unknown (not self-signed).
    const untrusted = await run(['probe', `127.0.0.1:${s.port}`, '--servername', 'mail.example.test']);
    expect(untrusted.code).toBe(76);
    expect(untrusted.stdout).toMatch(/CA this system does not trust.*--ca FILE/);
  });

  it('exits 69 with a diagnosis when nothing listens', async () => {
    const closed = await freePort();
    const r = await run(['probe', `127.0.0.1:${closed}`]);
    expect(r.code).toBe(69);
    expect(r.stdout).toMatch(/nothing listens on 127\.0\.0\.1:\d+/);
  });

  /** A loopback server that answers with the given lines (greeting, then one reply per command). */
  async function scripted(greeting: string, replies: (line: string) => string): Promise<number> {
    const sockets = new Set<net.Socket>();
    const srv = net.createServer((sock) => {
      sockets.add(sock);
      sock.on('error', () => {});
      sock.write(greeting);
      let buf = '';
      sock.on('data', (d) => {
        buf += d.toString('latin1');
        for (let nl = buf.indexOf('\r\n'); nl >= 0; nl = buf.indexOf('\r\n')) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 2);
          if (/^QUIT/i.test(line)) sock.end('221 bye\r\n');
          else sock.write(replies(line));
        }
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      for (const x of sockets) x.destroy();
      return new Promise<void>((r) => srv.close(() => r()));
    });
    return (srv.address() as net.AddressInfo).port;
  }

  it('reads legacy AUTH= lines (merged into AUTH by the library\'s Capabilities)', async () => {
    const p = await scripted('220 legacy.test ESMTP\r\n', (l) => (/^EHLO/i.test(l) ? '250-legacy.test\r\n250-AUTH=LOGIN PLAIN\r\n250 SIZE 1000\r\n' : '250 ok\r\n'));
    const r = await run(['probe', `127.0.0.1:${p}`, '--json']);
    const rep = JSON.parse(r.stdout);
    expect(rep.authMechanisms.beforeTls).toEqual(['LOGIN', 'PLAIN']);
    expect(rep.size).toBe(1000);
  });

  it('bounds what it reads: an endless reply line is reported as not SMTP, not buffered', async () => {
    const sockets = new Set<net.Socket>();
    let sent = 0;
    const srv = net.createServer((sock) => {
      sockets.add(sock);
      sock.on('error', () => {});
      const chunk = Buffer.alloc(64 * 1024, 'A');
      const pump = (): void => {
        while (!sock.destroyed && sent < 64 * 1024 * 1024) {
          sent += chunk.length;
          if (!sock.write(chunk)) return void sock.once('drain', pump);
        }
      };
      sock.write('220');
      pump();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      for (const x of sockets) x.destroy();
      return new Promise<void>((r) => srv.close(() => r()));
    });
    const r = await run(['probe', `127.0.0.1:${(srv.address() as net.AddressInfo).port}`, '--json', '--timeout', '3']);
    const rep = JSON.parse(r.stdout);
    expect(rep.mode).toBe('not-smtp');
    expect(r.code).toBe(76);
    expect(rep.findings.map((f: { message: string }) => f.message).join('\n')).toMatch(/longer than the limit/);
    // It stopped reading long before the server ran out of data.
    expect(sent).toBeLessThan(64 * 1024 * 1024);
  });

  it('reaches an LMTP server on a Unix socket (LHLO)', async () => {
    const path = join(tmp.dir, 'lmtp.sock');
    const lmtp = new SMTPServer({ lmtp: true, authOptional: true, disabledCommands: ['STARTTLS'], banner: 'unix lmtp', logger: false });
    await new Promise<void>((r) => lmtp.listen(path, r));
    cleanups.push(() => new Promise<void>((r) => lmtp.close(() => r())));
    const r = await run(['probe', path, '--lmtp', '--json']);
    const rep = JSON.parse(r.stdout);
    expect(rep.host).toBe(path);
    expect(rep.port).toBeUndefined();
    expect(rep.mode).toBe('plaintext');
    expect(rep.greeting).toMatch(/^220 .*unix lmtp/);
    expect(rep.ehloBeforeTls.lines.length).toBeGreaterThan(0);
    const text = await run(['probe', path, '--lmtp']);
    expect(text.stdout).toMatch(new RegExp(`^Probe of ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: plaintext SMTP`, 'm'));
  });

  it('--fingerprint: a matching certificate is trusted, another one is an error', async () => {
    const { X509Certificate } = await import('node:crypto');
    const { readFileSync } = await import('node:fs');
    const fp = new X509Certificate(readFileSync(certFile)).fingerprint256;
    const ok = await run(['probe', `127.0.0.1:${port}`, '--fingerprint', fp.replace(/:/g, '').toLowerCase()]);
    expect(ok.stdout).toMatch(/matches --fingerprint/);
    expect(ok.code, ok.stdout).toBe(0);
    const bad = await run(['probe', `127.0.0.1:${port}`, '--fingerprint', 'AA'.repeat(32)]);
    expect(bad.code).toBe(76);
    expect(bad.stdout).toMatch(/is not the one given with --fingerprint/);
  });
});
