// The hostile-server kit: a raw node:net loopback server whose every
// connection is driven by an async handler holding a `Peer`. A peer can send
// any bytes in one segment or split at every byte / by line / at seeded random
// points, delay, drip one byte at a time, stop reading (so the client's writes
// block once the windows fill), half-close (FIN), reset (RST) or close at any
// step, upgrade the same socket to TLS after any reply (optionally with
// plaintext sent first, in the same segment), and records every client byte
// with a timestamp, including bytes sent before the ClientHello.
//
// Compared with test/support/scripted-server.ts (a fixed script of steps),
// handlers here are code: they can react to what the client sent, count
// octets, and decide when to misbehave.

import net from 'node:net';
import tls from 'node:tls';
import { Duplex } from 'node:stream';
import * as smtplib from 'smtplib';
import { mulberry32, split } from '../support/scripted-server.js';

export type Split = 'whole' | 'byte' | 'line' | 'random';

export interface Chunk {
  /** ms since the peer connected. */
  at: number;
  bytes: Buffer;
  /** Arrived after upgradeTls() began and before the ClientHello (must never happen). */
  beforeHandshake: boolean;
  secure: boolean;
}

export interface SendOptions {
  split?: Split;
  seed?: number;
  /** Pause between pieces when split (ms, default 1). */
  gapMs?: number;
}

export class Peer {
  readonly raw: net.Socket;
  socket: net.Socket | tls.TLSSocket;
  readonly received: Chunk[] = [];
  readonly started = Date.now();
  /** Unconsumed client bytes (read*() consume from here). */
  #buffer = Buffer.alloc(0);
  #wake: (() => void) | undefined;
  #ended = false;
  #secure = false;
  #upgrading = false;
  readonly closed: Promise<void>;

  constructor(raw: net.Socket) {
    this.raw = raw;
    this.socket = raw;
    raw.setNoDelay(true);
    raw.on('data', this.#onData);
    raw.on('error', () => this.#end());
    this.closed = new Promise((resolve) => raw.once('close', () => { this.#end(); resolve(); }));
    raw.on('end', () => this.#end());
  }

  readonly #onData = (chunk: Buffer) => {
    if (this.#upgrading && !this.#secure) {
      // Plaintext bytes after the upgrade began and before the ClientHello.
      const hello = chunk.indexOf(0x16);
      const before = hello === -1 ? chunk : chunk.subarray(0, hello);
      if (before.length) this.received.push({ at: Date.now() - this.started, bytes: before, beforeHandshake: true, secure: false });
      return;
    }
    this.received.push({ at: Date.now() - this.started, bytes: chunk, beforeHandshake: false, secure: this.#secure });
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    this.#wake?.();
  };

  #end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  get ended(): boolean {
    return this.#ended || this.raw.destroyed;
  }

  /** Every client byte so far (plaintext and decrypted), in order. */
  get all(): Buffer {
    return Buffer.concat(this.received.map((c) => c.bytes));
  }
  get text(): string {
    return this.all.toString('latin1');
  }
  /** Client bytes that arrived between upgradeTls() and the ClientHello. */
  get injected(): Buffer {
    return Buffer.concat(this.received.filter((c) => c.beforeHandshake).map((c) => c.bytes));
  }
  /** Unconsumed client bytes. */
  get pending(): Buffer {
    return this.#buffer;
  }

  // --- writing --------------------------------------------------------------

  /** Sends bytes, whole (one write, one segment) or split. Never throws on a dead socket. */
  async send(data: string | Buffer, options: SendOptions = {}): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    const pieces = splitBytes(bytes, options.split ?? 'whole', options.seed ?? 1);
    for (const piece of pieces) {
      if (this.ended || this.socket.destroyed) return;
      this.socket.write(piece);
      if (pieces.length > 1) await sleep(options.gapMs ?? 1);
    }
  }

  /** One byte every `intervalMs` (slow-loris). Stops when the socket dies or `until` says so. */
  async drip(data: string | Buffer, intervalMs: number, until?: () => boolean): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    for (const byte of bytes) {
      if (this.ended || this.socket.destroyed || until?.()) return;
      this.socket.write(Buffer.from([byte]));
      await sleep(intervalMs);
    }
  }

  /** Writes `make()` over and over (an endless reply) until the client goes away or `maxBytes` are sent. */
  async flood(make: () => Buffer, maxBytes = Infinity): Promise<number> {
    let sent = 0;
    while (!this.ended && !this.socket.destroyed && sent < maxBytes) {
      const piece = make();
      sent += piece.length;
      if (!this.socket.write(piece)) {
        await new Promise<void>((resolve) => {
          const done = () => { this.socket.off('drain', done); this.raw.off('close', done); resolve(); };
          this.socket.once('drain', done);
          this.raw.once('close', done);
        });
      }
    }
    return sent;
  }

  // --- reading --------------------------------------------------------------

  async #waitFor(predicate: () => boolean, timeout: number): Promise<boolean> {
    const deadline = Date.now() + timeout;
    while (!predicate()) {
      if (this.ended) return predicate();
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => { clearTimeout(t); resolve(); };
      });
      this.#wake = undefined;
    }
    return true;
  }

  /** The next CRLF-terminated client line (without CRLF); undefined at EOF/timeout. */
  async readLine(timeout = 5000): Promise<string | undefined> {
    const ok = await this.#waitFor(() => this.#buffer.indexOf('\r\n') !== -1, timeout);
    if (!ok) return undefined;
    const i = this.#buffer.indexOf('\r\n');
    const line = this.#buffer.subarray(0, i).toString('latin1');
    this.#buffer = this.#buffer.subarray(i + 2);
    return line;
  }

  /** Consumes client bytes up to and including `marker`; undefined at EOF/timeout. */
  async readUntil(marker: string | Buffer, timeout = 5000): Promise<Buffer | undefined> {
    const ok = await this.#waitFor(() => this.#buffer.indexOf(marker) !== -1, timeout);
    if (!ok) return undefined;
    const i = this.#buffer.indexOf(marker) + Buffer.byteLength(marker);
    const out = this.#buffer.subarray(0, i);
    this.#buffer = this.#buffer.subarray(i);
    return out;
  }

  /** Consumes a DATA stream through its end marker (which may be the first line). */
  async readData(timeout = 5000): Promise<Buffer | undefined> {
    const ok = await this.#waitFor(() => this.#buffer.length >= 3, timeout);
    if (ok && this.#buffer.subarray(0, 3).toString('latin1') === '.\r\n') return this.readBytes(3);
    return ok ? this.readUntil('\r\n.\r\n', timeout) : undefined;
  }

  /** Consumes exactly `n` client bytes; undefined at EOF/timeout. */
  async readBytes(n: number, timeout = 5000): Promise<Buffer | undefined> {
    const ok = await this.#waitFor(() => this.#buffer.length >= n, timeout);
    if (!ok) return undefined;
    const out = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return out;
  }

  /** Reads lines, answering each with `answer(line)` (undefined: no answer), until EOF or `stop`. */
  async serveLines(answer: (line: string) => string | undefined, timeout = 5000): Promise<void> {
    for (;;) {
      const line = await this.readLine(timeout);
      if (line === undefined) return;
      const out = answer(line);
      if (out !== undefined) await this.send(out);
    }
  }

  /** Waits until the client closes the connection (or `timeout`). Resolves true if it did. */
  async waitClosed(timeout = 5000): Promise<boolean> {
    return this.#waitFor(() => this.ended, timeout);
  }

  /** Waits `ms` and reports whether any new client bytes arrived. */
  async quietFor(ms: number): Promise<boolean> {
    const before = this.#buffer.length;
    await sleep(ms);
    return this.#buffer.length === before;
  }

  // --- flow and teardown ------------------------------------------------------

  /** Stops reading: the kernel buffers fill and the client's writes block. */
  stopReading(): void {
    this.raw.pause();
    // Shrink what the kernel will take so back-pressure comes quickly.
    (this.raw as net.Socket & { setRecvBufferSize?: (n: number) => void }).setRecvBufferSize?.(4096);
  }
  resumeReading(): void {
    this.raw.resume();
  }

  /** FIN: half-close our side; the client can still write. */
  halfClose(): void {
    this.socket.end();
  }
  /** RST. */
  reset(): void {
    this.raw.resetAndDestroy();
  }
  /** FIN and destroy. */
  close(): void {
    this.socket.end();
    this.socket.destroy();
    this.raw.destroy();
  }

  /**
   * Upgrades this same socket to a TLS server socket. `plaintextFirst` is
   * written in the same segment as `reply` before the handshake begins
   * (STARTTLS response injection). Call right after the reply is decided:
   * the reply and the upgrade happen together so no ClientHello byte is lost.
   */
  async upgradeTls(reply: string, context: tls.SecureContextOptions, plaintextFirst = ''): Promise<boolean> {
    this.#upgrading = true;
    this.raw.write(Buffer.from(reply + plaintextFirst, 'latin1'));
    // Raw bytes go to the TLS engine through a Duplex, so every byte stays visible here.
    let sawHello = false;
    const duplex = new Duplex({
      read() {},
      write: (chunk: Buffer, _enc, cb) => { if (!this.raw.destroyed) this.raw.write(chunk, () => cb()); else cb(); },
      final: (cb) => { this.raw.end(); cb(); },
    });
    const feed = (chunk: Buffer) => {
      if (!sawHello) {
        const hello = chunk.indexOf(0x16);
        const before = hello === -1 ? chunk : chunk.subarray(0, hello);
        if (before.length) this.received.push({ at: Date.now() - this.started, bytes: before, beforeHandshake: true, secure: false });
        if (hello === -1) return;
        sawHello = true;
        chunk = chunk.subarray(hello);
      }
      duplex.push(chunk);
    };
    this.raw.off('data', this.#onData);
    this.raw.on('data', feed);
    this.raw.on('end', () => duplex.push(null));
    const pre = this.#buffer;
    this.#buffer = Buffer.alloc(0);
    if (pre.length) feed(pre);
    const secure = new tls.TLSSocket(duplex as unknown as net.Socket, { isServer: true, ...context });
    const ok = await new Promise<boolean>((resolve) => {
      secure.once('secure', () => resolve(true));
      secure.once('error', () => resolve(false));
      secure.once('close', () => resolve(false));
      this.raw.once('close', () => resolve(false));
    });
    if (!ok) return false;
    this.#secure = true;
    this.socket = secure;
    secure.on('data', (chunk: Buffer) => {
      this.received.push({ at: Date.now() - this.started, bytes: chunk, beforeHandshake: false, secure: true });
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake?.();
    });
    secure.on('error', () => this.#end());
    secure.on('end', () => this.#end());
    return true;
  }
}

export type Handler = (peer: Peer) => Promise<void> | void;

export interface HostileServer {
  host: string;
  port: number;
  peers: Peer[];
  /** Resolves with the n-th peer (0-based) once it connects. */
  peer(n?: number): Promise<Peer>;
  /** Resolves when every handler started so far has returned. */
  settled(): Promise<void>;
  /** Errors thrown by handlers (a test should assert this is empty). */
  handlerErrors: unknown[];
  close(): Promise<void>;
}

/** Starts a loopback server on an ephemeral port; each connection runs `handler`. */
export async function hostileServer(handler: Handler, host = '127.0.0.1'): Promise<HostileServer> {
  const peers: Peer[] = [];
  const runs: Promise<void>[] = [];
  const handlerErrors: unknown[] = [];
  const waiting: Array<{ n: number; resolve: (p: Peer) => void }> = [];
  const server = net.createServer((socket) => {
    const peer = new Peer(socket);
    peers.push(peer);
    for (const w of waiting.filter((w) => w.n === peers.length - 1)) w.resolve(peer);
    runs.push(
      (async () => {
        try {
          await handler(peer);
        } catch (error) {
          handlerErrors.push(error);
        }
      })(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host,
    port,
    peers,
    handlerErrors,
    peer: (n = 0) => (peers[n] ? Promise.resolve(peers[n]!) : new Promise((resolve) => waiting.push({ n, resolve }))),
    settled: async () => { await Promise.all(runs); },
    close: () =>
      new Promise<void>((resolve) => {
        for (const p of peers) p.raw.destroy();
        server.close(() => resolve());
      }),
  };
}

export function splitBytes(data: Buffer, mode: Split, seed = 1): Buffer[] {
  return split(data, mode, mulberry32(seed));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// --- a small well-behaved ESMTP responder to build scenarios on --------------

export interface EsmtpOptions {
  greeting?: string;
  /** Extension lines after the server name in the EHLO reply. */
  extensions?: string[];
  /** Overrides the reply to a command line (return undefined to fall back to the default). */
  on?: (line: string, peer: Peer) => string | undefined | Promise<string | undefined>;
  /** Called with the raw message data after 354 (dot-terminated), returns the reply. */
  onData?: (data: Buffer, peer: Peer) => string | undefined | Promise<string | undefined>;
  split?: Split;
  lmtp?: boolean;
}

/** A correct ESMTP (or LMTP) server whose replies can be overridden line by line. */
export function esmtp(options: EsmtpOptions = {}): Handler {
  return async (peer) => {
    const send = (s: string) => peer.send(s, { split: options.split ?? 'whole' });
    await send(options.greeting ?? '220 mx.test ESMTP\r\n');
    for (;;) {
      const line = await peer.readLine(10_000);
      if (line === undefined) return;
      const custom = await options.on?.(line, peer);
      if (custom !== undefined) {
        if (custom !== '') await send(custom);
        if (/^DATA$/i.test(line) && custom.startsWith('354')) {
          const data = await peer.readData(10_000);
          if (data === undefined) return;
          const reply = (await options.onData?.(data, peer)) ?? '250 2.0.0 queued\r\n';
          if (reply !== '') await send(reply);
        }
        if (/^QUIT$/i.test(line) && custom !== '') { peer.close(); return; }
        continue;
      }
      const verb = line.split(' ')[0]!.toUpperCase();
      if (verb === 'EHLO' || verb === 'LHLO') {
        const ext = options.extensions ?? ['PIPELINING', '8BITMIME'];
        const lines = ['mx.test', ...ext];
        await send(lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}\r\n`).join(''));
      } else if (verb === 'HELO') await send('250 mx.test\r\n');
      else if (verb === 'DATA') {
        await send('354 go ahead\r\n');
        const data = await peer.readData(10_000);
        if (data === undefined) return;
        const reply = (await options.onData?.(data, peer)) ?? '250 2.0.0 queued\r\n';
        if (reply !== '') await send(reply);
      } else if (verb === 'BDAT') {
        const m = /^BDAT (\d+)( LAST)?$/i.exec(line);
        if (!m) { await send('501 bad BDAT\r\n'); continue; }
        const body = await peer.readBytes(Number(m[1]), 10_000);
        if (body === undefined) return;
        await send(`250 2.0.0 ${m[2] ? 'queued' : 'chunk'} ${m[1]}\r\n`);
      } else if (verb === 'QUIT') {
        await send('221 bye\r\n');
        peer.close();
        return;
      } else if (verb === 'RSET' || verb === 'NOOP' || verb === 'MAIL' || verb === 'RCPT') await send('250 2.0.0 ok\r\n');
      else await send('502 5.5.2 not implemented\r\n');
    }
  };
}

// --- client helpers -------------------------------------------------------------

export interface ClientOptions extends smtplib.SMTPOptions {}

export function clientOptions(server: HostileServer, extra: ClientOptions = {}): smtplib.SMTPOptions {
  return { host: server.host, port: server.port, localHostname: 'client.test', timeout: 3000, ...extra };
}

/** Runs `fn`, which must reject; returns the error. */
export async function rejection(fn: Promise<unknown> | (() => Promise<unknown>)): Promise<Error & Record<string, unknown>> {
  try {
    await (typeof fn === 'function' ? fn() : fn);
  } catch (error) {
    return error as Error & Record<string, unknown>;
  }
  throw new Error('expected a rejection, got a result');
}

/** Runs `fn`, which must throw synchronously or reject; returns the error. */
export async function thrown(fn: () => unknown): Promise<Error & Record<string, unknown>> {
  try {
    await fn();
  } catch (error) {
    return error as Error & Record<string, unknown>;
  }
  throw new Error('expected an error, got a result');
}

/** The identifying fields of an error, for one `toMatchObject`. */
export function shape(error: unknown): Record<string, unknown> {
  const e = error as Record<string, unknown>;
  const out: Record<string, unknown> = { name: e.name, code: e.code };
  for (const key of ['smtpCode', 'deliveryStatus', 'phase', 'timeout']) if (e[key] !== undefined) out[key] = e[key];
  return out;
}

/** Unstuffs a DATA stream (RFC 5321 §4.5.2) that ends in CRLF.CRLF. */
export function unstuff(data: Buffer): Buffer {
  return smtplib.decodeData(data);
}
