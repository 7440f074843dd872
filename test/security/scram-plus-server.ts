// A small implicit-TLS SMTP server (not a test file) that runs a real
// SCRAM-SHA-256-PLUS exchange with tls-exporter channel binding (RFC 9266,
// RFC 5802, RFC 7677): it derives the expected client proof with node:crypto
// from the password and its own side of the TLS session's exporter, and
// answers 235 only if the proof and the binding both check out.

import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { serverTls } from './helpers.js';

export interface ScramPlusOptions {
  password: string;
  /** Corrupt the server's view of the binding data (a MitM with its own TLS session). */
  tamperBinding?: boolean;
  /** Send a wrong server signature (the client must refuse the "success"). */
  wrongServerSignature?: boolean;
  advertise?: string;
  /** Cap the server at TLS 1.2: the client must then bind with tls-unique (RFC 5929). */
  tls12?: boolean;
}

export interface ScramPlusRecord {
  lines: string[];
  gs2Header?: string;
  bindingChecked?: boolean;
  proofChecked?: boolean;
  protocol?: string | null;
}

export async function startScramPlusServer(options: ScramPlusOptions): Promise<{ port: number; record: ScramPlusRecord; close(): Promise<void> }> {
  const record: ScramPlusRecord = { lines: [] };
  const server = tls.createServer({ ...serverTls(), ...(options.tls12 ? { maxVersion: 'TLSv1.2' as const } : { minVersion: 'TLSv1.3' as const }) }, (socket) => {
    record.protocol = socket.getProtocol();
    let buffer = '';
    let state: 'ehlo' | 'auth' | 'final' | 'ack' | 'done' = 'ehlo';
    let clientFirstBare = '';
    let serverFirst = '';
    let saltedPassword = Buffer.alloc(0);
    let nonce = '';
    const send = (text: string) => socket.write(`${text}\r\n`);
    send('220 mx ESMTP');
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      let i: number;
      while ((i = buffer.indexOf('\r\n')) !== -1) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        record.lines.push(line);
        if (state === 'ehlo') {
          send('250-mx');
          send(`250 AUTH ${options.advertise ?? 'SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN'}`);
          state = 'auth';
        } else if (state === 'auth') {
          const m = /^AUTH SCRAM-SHA-256-PLUS (\S+)$/.exec(line);
          if (!m) { send('504 unexpected'); state = 'done'; continue; }
          const first = Buffer.from(m[1]!, 'base64').toString('utf8');
          const parts = (options.tls12 ? /^(p=tls-unique,[^,]*,)(n=[^,]*,r=([^,]+))$/ : /^(p=tls-exporter,[^,]*,)(n=[^,]*,r=([^,]+))$/).exec(first);
          if (!parts) { send('501 bad client-first'); state = 'done'; continue; }
          record.gs2Header = parts[1]!;
          clientFirstBare = parts[2]!;
          nonce = parts[3]! + randomBytes(12).toString('base64');
          const salt = randomBytes(16);
          const iterations = 4096;
          saltedPassword = pbkdf2Sync(options.password, salt, iterations, 32, 'sha256');
          serverFirst = `r=${nonce},s=${salt.toString('base64')},i=${iterations}`;
          send(`334 ${Buffer.from(serverFirst).toString('base64')}`);
          state = 'final';
        } else if (state === 'final') {
          const final = Buffer.from(line, 'base64').toString('utf8');
          const m = /^c=([^,]+),r=([^,]+),p=([^,]+)$/.exec(final);
          if (!m || m[2] !== nonce) { send('535 5.7.8 bad final message'); state = 'done'; continue; }
          // RFC 5929 §3.1: tls-unique is the first Finished of the handshake, the client's in a full handshake.
          let exporter = options.tls12 ? socket.getPeerFinished()! : socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
          if (options.tamperBinding) exporter = Buffer.from(exporter.map((b) => b ^ 0xff));
          const expectedC = Buffer.concat([Buffer.from(record.gs2Header!), exporter]).toString('base64');
          record.bindingChecked = m[1] === expectedC;
          const withoutProof = `c=${m[1]},r=${m[2]}`;
          const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
          const clientKey = createHmac('sha256', saltedPassword).update('Client Key').digest();
          const storedKey = createHash('sha256').update(clientKey).digest();
          const signature = createHmac('sha256', storedKey).update(authMessage).digest();
          const proof = Buffer.from(clientKey.map((b, k) => b ^ signature[k]!));
          const given = Buffer.from(m[3]!, 'base64');
          record.proofChecked = given.length === proof.length && timingSafeEqual(given, proof);
          if (!record.bindingChecked || !record.proofChecked) { send('535 5.7.8 authentication failed'); state = 'done'; continue; }
          const serverKey = createHmac('sha256', saltedPassword).update('Server Key').digest();
          let serverSignature = createHmac('sha256', serverKey).update(authMessage).digest();
          if (options.wrongServerSignature) serverSignature = Buffer.from(serverSignature.map((b) => b ^ 1));
          send(`334 ${Buffer.from(`v=${serverSignature.toString('base64')}`).toString('base64')}`);
          state = 'ack';
        } else if (state === 'ack') {
          send(line === '' ? '235 2.7.0 ok' : '535 expected an empty response');
          state = 'done';
        } else {
          send(line.toUpperCase() === 'QUIT' ? '221 bye' : '250 ok');
        }
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  return {
    port: (server.address() as AddressInfo).port,
    record,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}
