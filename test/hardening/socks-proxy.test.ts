// Security: "Cleartext credentials through a proxy or tunnel" (issue 11).
// A real SOCKS5 proxy (Debian's Dante, danted) on loopback forwards to a
// scripted server. The client names a remote host and opens the stream with
// a `connect` hook (the npm `socks` client): the socket's peer is the proxy on
// 127.0.0.1, but the server is "remote", so PLAIN must never go out in
// cleartext, under tlsPolicy 'none' or a stripped 'opportunistic'.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SocksClient } from 'socks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { local, play, smtplib } from './harness.js';

const danted = ['/usr/sbin/danted', '/usr/bin/danted'].find((p) => spawnSync(p, ['-v']).status === 0);
const missing = danted ? undefined : 'danted (Debian package dante-server) is not installed';
if (missing && process.env.CI === 'true') throw new Error(`${missing}: the SOCKS5 proxy suite cannot run`);
if (missing) console.warn(`skipping the SOCKS5 proxy suite: ${missing}`);

let proxy: ChildProcess | undefined;
let proxyPort = 0;

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function waitListening(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`danted did not listen on ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  if (!danted) return;
  proxyPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'smtplib-socks-'));
  const conf = join(dir, 'danted.conf');
  writeFileSync(conf, [
    'logoutput: stderr',
    `internal: 127.0.0.1 port = ${proxyPort}`,
    'external: 127.0.0.1',
    'clientmethod: none',
    'socksmethod: none',
    ...(process.getuid?.() === 0 ? ['user.privileged: root', 'user.unprivileged: nobody'] : []),
    'client pass { from: 127.0.0.1/32 to: 0.0.0.0/0 }',
    'socks pass { from: 127.0.0.1/32 to: 127.0.0.1/32 command: connect }',
    '',
  ].join('\n'));
  proxy = spawn(danted, ['-f', conf, '-N', '1', '-p', join(dir, 'pid')], { stdio: 'ignore' });
  await waitListening(proxyPort, 10_000);
});

afterAll(() => {
  proxy?.kill('SIGTERM');
});

/** A connect hook through the SOCKS5 proxy; the remote name resolves (in this test) to the scripted server. */
function viaSocks(serverPort: number, seen: string[]) {
  return async (target: { host: string; port: number }) => {
    seen.push(`${target.host}:${target.port}`);
    const { socket } = await SocksClient.createConnection({
      proxy: { host: '127.0.0.1', port: proxyPort, type: 5 },
      command: 'connect',
      destination: { host: '127.0.0.1', port: serverPort },
    });
    return socket;
  };
}

const PLAIN_ONLY = 'S: 220 mx ESMTP\nC: EHLO client.test\nS: 250-mx\nS: 250 AUTH PLAIN LOGIN\nS: <read-until-close>\n';

describe.skipIf(!danted)('Cleartext credentials through a proxy or tunnel (real SOCKS5 proxy)', () => {
  it('Cleartext credentials through a proxy: PLAIN is refused under tlsPolicy none, nothing secret reaches the server', async () => {
    const seen: string[] = [];
    const out = await play(PLAIN_ONLY, async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port, { host: 'mail.example.test', port: 587, tlsPolicy: 'none', connect: viaSocks(port, seen) }));
      expect((smtp.socket as net.Socket).remoteAddress).toBe('127.0.0.1'); // the proxy: a loopback peer
      await smtp.ehlo();
      try {
        return await smtp.login('user', 'secret-password');
      } finally {
        smtp.close();
      }
    }, { expectTimeout: 1000 });
    expect(seen).toEqual(['mail.example.test:587']);
    expect(out.error).toBeInstanceOf(smtplib.SMTPNotSupportedError);
    expect(out.error).toMatchObject({ diagnosis: 'cleartext-auth-refused' });
    expect(out.sent).toBe('EHLO client.test\r\n');
    expect(out.sent).not.toContain(Buffer.from('\0user\0secret-password').toString('base64'));
  });

  it('Cleartext credentials through a proxy: a stripped opportunistic STARTTLS still refuses PLAIN and LOGIN', async () => {
    const seen: string[] = [];
    const out = await play(PLAIN_ONLY, async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port, { host: 'mail.example.test', port: 587, tlsPolicy: 'opportunistic', connect: viaSocks(port, seen) }));
      expect(smtp.isSecure).toBe(false); // STARTTLS was not offered: stripped
      const errors = [];
      for (const mechanism of ['PLAIN', 'LOGIN']) errors.push(await smtp.login('user', 'secret-password', { mechanism }).catch((e: unknown) => e));
      smtp.close();
      return errors;
    }, { expectTimeout: 1000 });
    expect(out.value).toHaveLength(2);
    for (const error of out.value as unknown[]) expect(error).toMatchObject({ name: 'SMTPNotSupportedError', diagnosis: 'cleartext-auth-refused' });
    expect(out.sent).toBe('EHLO client.test\r\n');
  });

  it('Cleartext credentials through a proxy: a tunnel addressed as 127.0.0.1 counts as this machine (documented limit)', async () => {
    const out = await play(`S: 220 mx ESMTP\nC: EHLO client.test\nS: 250-mx\nS: 250 AUTH PLAIN\nC: AUTH PLAIN ${Buffer.from('\0user\0pw').toString('base64')}\nS: 235 ok\n`, async (port) => {
      const smtp = await smtplib.SMTP.connect(local(port, { host: '127.0.0.1', port: 2525, connect: viaSocks(port, []) }));
      await smtp.ehlo();
      const reply = await smtp.login('user', 'pw');
      smtp.close();
      return reply.code;
    });
    expect(out.value).toBe(235);
  });
});
