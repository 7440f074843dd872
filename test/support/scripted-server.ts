// A scripted SMTP server on loopback for exact wire tests. It plays a script
// of steps against the first connection: send bytes (whole, one byte per
// write, line by line, or at random split points), expect exact client bytes,
// upgrade the same socket to TLS, pause, half-close, reset. Every byte the
// client sent is recorded with a timestamp, including bytes that arrive
// between a STARTTLS reply and the TLS handshake.

import net from 'node:net';
import tls from 'node:tls';
import { Duplex } from 'node:stream';

export type SplitMode = 'whole' | 'byte' | 'line' | 'random';

export type Step =
  | { kind: 'send'; data: Buffer }
  | { kind: 'expect'; data: Buffer }
  | { kind: 'starttls' }
  | { kind: 'close' }
  | { kind: 'reset' }
  | { kind: 'end' }
  | { kind: 'stall' }
  | { kind: 'delay'; ms: number }
  | { kind: 'drip'; data: Buffer; intervalMs: number }
  | { kind: 'read-until-close' };

export interface Received {
  at: number;
  bytes: Buffer;
  /** Bytes arrived while the socket was plaintext after a 'starttls' step began. */
  beforeHandshake: boolean;
  secure: boolean;
}

export interface ScriptResult {
  /** Every client byte, in order. */
  received: Received[];
  /** All client bytes concatenated. */
  all: Buffer;
  /** Bytes the client sent after the STARTTLS reply and before its ClientHello (should be none). */
  injectedByClient: Buffer;
  /** Steps completed. */
  completed: number;
  /** Client bytes received after the last 'expect' step that no step consumed. */
  leftover: Buffer;
  /** Set when an 'expect' step saw other bytes. */
  mismatch?: { step: number; expected: string; actual: string };
}

export interface ScriptOptions {
  split?: SplitMode;
  seed?: number;
  /** Key and certificate for 'starttls' steps and implicit TLS. */
  tls?: tls.SecureContextOptions & { minVersion?: tls.SecureVersion; maxVersion?: tls.SecureVersion };
  /** Speak TLS from the first byte. */
  implicitTls?: boolean;
  /** Give up waiting for client bytes after this many ms (default 5000). */
  expectTimeout?: number;
  host?: string;
}

export interface ScriptedServer {
  port: number;
  host: string;
  /** Resolves when the script ends (or fails); never rejects. */
  done: Promise<ScriptResult>;
  close(): Promise<void>;
}

/** Parses "S: ..." / "C: ..." transcript text into steps (consecutive lines of one side are grouped). */
export function parseTranscript(text: string): Step[] {
  const steps: Step[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith('#')) continue;
    const m = /^([SC]):(?: (.*))?$/.exec(line);
    if (!m) throw new Error(`bad transcript line: ${line}`);
    const side = m[1]!;
    const body = m[2] ?? '';
    if (side === 'S') {
      const directive = /^<(\w[\w-]*)(?: (\d+))?>$/.exec(body);
      if (directive) {
        const name = directive[1]!;
        if (name === 'starttls' || name === 'close' || name === 'reset' || name === 'end' || name === 'stall' || name === 'read-until-close') steps.push({ kind: name });
        else if (name === 'delay') steps.push({ kind: 'delay', ms: Number(directive[2] ?? 0) });
        else throw new Error(`unknown directive ${body}`);
        continue;
      }
      const data = Buffer.from(`${unescape(body)}\r\n`, 'utf8');
      const last = steps[steps.length - 1];
      if (last?.kind === 'send') last.data = Buffer.concat([last.data, data]);
      else steps.push({ kind: 'send', data });
    } else {
      const data = Buffer.from(`${unescape(body)}\r\n`, 'utf8');
      const last = steps[steps.length - 1];
      if (last?.kind === 'expect') last.data = Buffer.concat([last.data, data]);
      else steps.push({ kind: 'expect', data });
    }
  }
  return steps;
}

/** "\xNN", "\r", "\n", "\t" and "\\" escapes in transcript text; "<CRLF-less>" suffix `\c` drops the line end. */
function unescape(text: string): string {
  return text.replace(/\\(x[0-9a-fA-F]{2}|r|n|t|\\)/g, (_, e: string) =>
    e === 'r' ? '\r' : e === 'n' ? '\n' : e === 't' ? '\t' : e === '\\' ? '\\' : String.fromCharCode(parseInt(e.slice(1), 16)),
  );
}

export async function startScriptedServer(steps: Step[], options: ScriptOptions = {}): Promise<ScriptedServer> {
  const host = options.host ?? '127.0.0.1';
  let resolveDone!: (r: ScriptResult) => void;
  const done = new Promise<ScriptResult>((r) => (resolveDone = r));
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    if (sockets.size > 1) return; // only the first connection is scripted
    void play(socket, steps, options).then(resolveDone);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    host,
    done,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function play(raw: net.Socket, steps: Step[], options: ScriptOptions): Promise<ScriptResult> {
  raw.setNoDelay(true);
  const received: Received[] = [];
  let buffered = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  let ended = false;
  let socket: net.Socket | tls.TLSSocket = raw;
  let secure = false;
  let handshaking = false;
  /** When TLS is up, raw bytes go to the TLS engine through this. */
  let feedTls: ((chunk: Buffer) => void) | undefined;
  const injected: Buffer[] = [];
  const rng = mulberry32(options.seed ?? 1);
  const result = (completed: number, mismatch?: ScriptResult['mismatch']): ScriptResult => ({
    received,
    all: Buffer.concat(received.map((r) => r.bytes)),
    injectedByClient: Buffer.concat(injected),
    completed,
    leftover: buffered,
    ...(mismatch ? { mismatch } : {}),
  });
  const onPlain = (chunk: Buffer) => {
    received.push({ at: Date.now(), bytes: chunk, beforeHandshake: false, secure });
    buffered = Buffer.concat([buffered, chunk]);
    wake?.();
  };
  const onEnd = () => {
    ended = true;
    wake?.();
  };
  raw.on('data', (chunk: Buffer) => (feedTls ? feedTls(chunk) : onPlain(chunk)));
  raw.on('end', onEnd);
  raw.on('close', onEnd);
  raw.on('error', onEnd);

  /** Wraps the raw socket in a server TLS session fed through a Duplex, so every raw byte stays visible. */
  const startTls = async (pre: Buffer): Promise<boolean> => {
    let sawHello = false;
    const duplex = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) { if (!raw.destroyed) raw.write(chunk, () => cb()); else cb(); },
      final(cb) { raw.end(); cb(); },
    });
    const feed = (chunk: Buffer) => {
      if (!sawHello) {
        const hello = chunk.indexOf(0x16);
        if (hello !== 0) {
          const before = hello === -1 ? chunk : chunk.subarray(0, hello);
          injected.push(before);
          received.push({ at: Date.now(), bytes: before, beforeHandshake: true, secure: false });
        }
        if (hello !== -1) sawHello = true;
      }
      duplex.push(chunk);
    };
    feedTls = feed;
    if (pre.length) feed(pre);
    const secureSocket = new tls.TLSSocket(duplex as unknown as net.Socket, { isServer: true, ...options.tls });
    const ok = await new Promise<boolean>((resolve) => {
      secureSocket.once('secure', () => resolve(true));
      secureSocket.once('error', () => resolve(false));
      secureSocket.once('close', () => resolve(false));
      raw.once('close', () => resolve(false));
    });
    if (!ok) return false;
    socket = secureSocket;
    secure = true;
    secureSocket.on('data', onPlain);
    secureSocket.on('end', onEnd);
    secureSocket.on('close', onEnd);
    secureSocket.on('error', onEnd);
    return true;
  };

  if (options.implicitTls && !(await startTls(Buffer.alloc(0)))) return result(0);

  const waitFor = async (predicate: () => boolean, timeout: number): Promise<boolean> => {
    const deadline = Date.now() + timeout;
    while (!predicate()) {
      if (ended) return predicate();
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        wake = () => { clearTimeout(t); resolve(); };
      });
      wake = undefined;
    }
    return true;
  };
  const write = async (data: Buffer) => {
    const pieces = split(data, options.split ?? 'whole', rng);
    for (const piece of pieces) {
      if (ended || socket.destroyed) return;
      socket.write(piece);
      if (pieces.length > 1) await new Promise((r) => setTimeout(r, 1));
    }
  };
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    switch (step.kind) {
      case 'send':
        await write(step.data);
        break;
      case 'drip':
        for (const byte of step.data) {
          if (ended) break;
          socket.write(Buffer.from([byte]));
          await new Promise((r) => setTimeout(r, step.intervalMs));
        }
        break;
      case 'expect': {
        const ok = await waitFor(() => buffered.length >= step.data.length, options.expectTimeout ?? 5000);
        const actual = buffered.subarray(0, step.data.length);
        if (!ok || !actual.equals(step.data)) {
          socket.destroy();
          raw.destroy();
          return result(i, { step: i, expected: step.data.toString('latin1'), actual: buffered.toString('latin1') });
        }
        buffered = buffered.subarray(step.data.length);
        break;
      }
      case 'starttls': {
        handshaking = true;
        const pre = buffered;
        buffered = Buffer.alloc(0);
        const ok = await startTls(pre);
        handshaking = false;
        if (!ok) {
          ended = true;
          return result(i);
        }
        break;
      }
      case 'delay':
        await new Promise((r) => setTimeout(r, step.ms));
        break;
      case 'stall':
      case 'read-until-close':
        await waitFor(() => false, options.expectTimeout ?? 5000);
        break;
      case 'close':
        socket.end();
        socket.destroy();
        raw.destroy();
        return result(i + 1);
      case 'end':
        socket.end();
        break;
      case 'reset':
        raw.resetAndDestroy();
        return result(i + 1);
    }
  }
  void handshaking;
  // Give the client a moment to send anything else, then record it.
  await waitFor(() => false, 50);
  return result(steps.length);
}

/** Splits bytes for writing: whole, one byte per piece, line by line, or at random points. */
export function split(data: Buffer, mode: SplitMode, rng: () => number): Buffer[] {
  if (mode === 'whole' || data.length <= 1) return [data];
  if (mode === 'byte') return [...data].map((b) => Buffer.from([b]));
  if (mode === 'line') {
    const out: Buffer[] = [];
    let start = 0;
    for (let i = 0; i < data.length; i++) {
      if (data[i] === 0x0a) { out.push(data.subarray(start, i + 1)); start = i + 1; }
    }
    if (start < data.length) out.push(data.subarray(start));
    return out;
  }
  const out: Buffer[] = [];
  let start = 0;
  while (start < data.length) {
    const size = 1 + Math.floor(rng() * Math.min(16, data.length - start));
    out.push(data.subarray(start, start + size));
    start += size;
  }
  return out;
}

/** A small seeded PRNG so random splits are repeatable. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
