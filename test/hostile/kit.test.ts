// The hostile kit's own abilities, checked against a raw socket and the client.

import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { SMTP, SMTPTLSError } from 'smtplib';
import { testPki } from '../support/certs.js';
import { clientOptions, hostileServer, rejection, shape, splitBytes, type HostileServer } from './kit.js';

let server: HostileServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function rawClient(s: HostileServer): Promise<{ socket: net.Socket; chunks: Array<{ at: number; bytes: Buffer }> }> {
  const socket = net.connect(s.port, s.host);
  socket.setNoDelay(true);
  const chunks: Array<{ at: number; bytes: Buffer }> = [];
  const t0 = Date.now();
  socket.on('data', (b: Buffer) => chunks.push({ at: Date.now() - t0, bytes: b }));
  socket.on('error', () => {});
  await new Promise((r) => socket.once('connect', r));
  return { socket, chunks };
}

describe('hostile kit', () => {
  it('splits whole, per byte, per line and at seeded random points', () => {
    const data = Buffer.from('250-a\r\n250-bb\r\n250 ccc\r\n');
    expect(splitBytes(data, 'whole')).toEqual([data]);
    expect(splitBytes(data, 'byte').length).toBe(data.length);
    expect(splitBytes(data, 'line').map(String)).toEqual(['250-a\r\n', '250-bb\r\n', '250 ccc\r\n']);
    const r1 = splitBytes(data, 'random', 7);
    expect(Buffer.concat(r1).equals(data)).toBe(true);
    expect(splitBytes(data, 'random', 7).map((b) => b.length)).toEqual(r1.map((b) => b.length));
  });

  it('drips one byte per interval, records client bytes with timestamps, reads lines', async () => {
    server = await hostileServer(async (peer) => {
      await peer.drip('220 x\r\n', 20);
      expect(await peer.readLine()).toBe('HELLO');
      await peer.send('bye\r\n');
    });
    const { socket, chunks } = await rawClient(server);
    await new Promise((r) => setTimeout(r, 200));
    expect(Buffer.concat(chunks.map((c) => c.bytes)).toString()).toBe('220 x\r\n');
    expect(chunks.length).toBeGreaterThanOrEqual(5);
    expect(chunks[chunks.length - 1]!.at - chunks[0]!.at).toBeGreaterThanOrEqual(80);
    socket.write('HELLO\r\n');
    await server.settled();
    const peer = await server.peer();
    expect(peer.text).toBe('HELLO\r\n');
    expect(peer.received[0]!.at).toBeGreaterThanOrEqual(100);
    socket.destroy();
  });

  it('stopReading makes the client back up; reset sends RST; halfClose sends FIN', async () => {
    server = await hostileServer(async (peer) => {
      peer.stopReading();
      await new Promise((r) => setTimeout(r, 300));
      peer.reset();
    });
    const { socket } = await rawClient(server);
    let full = false;
    for (let i = 0; i < 2000 && !full; i++) full = !socket.write(Buffer.alloc(64 * 1024));
    expect(full).toBe(true);
    const error = await new Promise<NodeJS.ErrnoException>((r) => socket.once('error', r));
    expect(error.code).toBe('ECONNRESET');
    await server.close();

    server = await hostileServer((peer) => { peer.halfClose(); });
    const c2 = await rawClient(server);
    await new Promise((r) => c2.socket.once('end', r));
    c2.socket.destroy();
  });

  it('upgrades the same socket to TLS after a reply, with plaintext injected first; the client fails closed', async () => {
    const pki = testPki();
    server = await hostileServer(async (peer) => {
      await peer.send('220 mx.test\r\n');
      await peer.readLine();
      await peer.send('250-mx.test\r\n250 STARTTLS\r\n');
      await peer.readLine();
      await peer.upgradeTls('220 go ahead\r\n', { key: pki.server.key, cert: pki.server.cert }, '250-injected\r\n250 PIPELINING\r\n');
    });
    const client = new SMTP(clientOptions(server, { tlsPolicy: 'required', tls: { ca: pki.ca } }));
    const error = await rejection(client.connect());
    expect(error).toBeInstanceOf(SMTPTLSError);
    expect(shape(error)).toMatchObject({ name: 'SMTPTLSError', code: 'ERR_SMTP_TLS' });
    const peer = await server.peer();
    expect(peer.text).toBe('EHLO client.test\r\nSTARTTLS\r\n');
    expect(peer.injected.length).toBe(0);
    client.close();
  });
});
