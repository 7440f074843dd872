// TLS session resumption between the pool's connections, against smtp-server
// on implicit TLS with a certificate from a throw-away CA made per run.
// Prints the handshake figures with and without resumption (TCP_NODELAY on;
// the documented figures come from bench/tls-resumption.js, docs/tls-resumption.md).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMTPPool, SMTPTLSError } from '../../packages/smtplib/src/index.js';
import { message, startFaultServer } from './helpers.js';

let dir: string;
let ca: string;
let key: string;
let cert: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'smtplib-pool-tls-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=pool test CA');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'server.ext');
  ca = readFileSync(join(dir, 'ca.pem'), 'utf8');
  key = readFileSync(join(dir, 'server.key'), 'utf8');
  cert = readFileSync(join(dir, 'server.pem'), 'utf8');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Implicit-TLS front (node:tls) for the scripted SMTP server; measures each handshake on the server side. */
async function tlsServer() {
  const smtp = await startFaultServer();
  const handshakes: number[] = [];
  const accepted = new Map<number, number>();
  const server = tls.createServer({ key, cert }, (secure) => {
    const start = accepted.get(secure.remotePort ?? -1);
    if (start !== undefined) handshakes.push(performance.now() - start);
    secure.setNoDelay(true); // without it, Nagle + delayed ACK add ~40 ms to a full handshake on loopback
    const upstream = net.connect(smtp.port, '127.0.0.1');
    upstream.setNoDelay(true);
    secure.pipe(upstream).pipe(secure);
    secure.on('error', () => upstream.destroy());
    upstream.on('error', () => secure.destroy());
    secure.on('close', () => upstream.destroy());
  });
  server.on('connection', (socket: net.Socket) => {
    socket.setNoDelay(true);
    accepted.set(socket.remotePort ?? -1, performance.now());
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    handshakes,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await smtp.close();
    },
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
};

async function run(resumption: boolean, port: number) {
  const pool = new SMTPPool({
    host: '127.0.0.1',
    port,
    implicitTls: true,
    tls: { ca },
    localHostname: 'client.test',
    maxConnections: 1,
    maxMessagesPerConnection: 1, // a new connection for every message
    tlsSessionResumption: resumption,
    timeout: 5000,
  });
  const connects: { connectMs: number; tlsResumed: boolean; secure: boolean }[] = [];
  pool.on('connect', (event) => connects.push(event));
  for (let i = 0; i < 20; i++) await pool.sendmail('a@example.test', 'b@example.test', message(i));
  await pool.close();
  return connects;
}

describe('SMTPPool TLS session resumption', () => {
  it('resumes the TLS session on every connection after the first, and says how much it saves', async () => {
    const server = await tlsServer();
    try {
      await run(true, server.port); // warm up (JIT, first tickets), not measured
      server.handshakes.splice(0);
      const full = await run(false, server.port);
      const fullHandshakes = server.handshakes.splice(0);
      const resumed = await run(true, server.port);
      const resumedHandshakes = server.handshakes.splice(0);

      expect(full).toHaveLength(20);
      expect(resumed).toHaveLength(20);
      expect(full.every((c) => c.secure)).toBe(true);
      expect(full.filter((c) => c.tlsResumed)).toHaveLength(0);
      expect(resumed[0]!.tlsResumed).toBe(false);
      expect(resumed.slice(1).every((c) => c.tlsResumed)).toBe(true);

      const f = (n: number) => `${n.toFixed(2)} ms`;
      console.log(
        [
          'TLS handshake (server side, TCP accept → secure; includes one loopback round trip), median of 20, RSA-2048:',
          `  full handshake:    ${f(median(fullHandshakes))}`,
          `  resumed session:   ${f(median(resumedHandshakes.slice(1)))}`,
          'Connection ready (client side: TCP + TLS + greeting + EHLO), median:',
          `  without resumption: ${f(median(full.map((c) => c.connectMs)))}`,
          `  with resumption:    ${f(median(resumed.slice(1).map((c) => c.connectMs)))}`,
        ].join('\n'),
      );
    } finally {
      await server.close();
    }
  });

  it('still verifies the certificate: a pool without the CA fails closed, without retries', async () => {
    const server = await tlsServer();
    try {
      const pool = new SMTPPool({ host: '127.0.0.1', port: server.port, implicitTls: true, localHostname: 'client.test', timeout: 5000 });
      const error = await pool.sendmail('a@example.test', 'b@example.test', message(1)).catch((e) => e);
      expect(error).toBeInstanceOf(SMTPTLSError);
      expect(error.attempts).toBe(0); // the message never reached a server
      expect(error.connectAttempts).toBe(1);
      pool.destroy();
    } finally {
      await server.close();
    }
  });
});
