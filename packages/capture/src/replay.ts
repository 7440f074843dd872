// Replay: answers a client exactly as a recorded server did. Each connection
// gets the whole transcript: server lines are written, client lines are read
// and compared ("****" in a recording matches any text), `<starttls>` upgrades
// the socket, `<delay N>` waits. On the first difference the client gets
// "421 4.3.0 replay mismatch ..." and the connection closes; the mismatch is
// reported through `sessions`.
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { clientLineMatches, parseTranscriptText, type ParsedTranscript, type ReplayStep } from './transcript.js';

export interface ReplayOptions {
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** For `<starttls>` steps and SMTP_SSL recordings. */
  cert?: string;
  key?: string;
  /** Give up waiting for a client line after this long (default 30 s). */
  timeoutMs?: number;
}

export interface ReplaySession {
  /** Steps played. */
  completed: number;
  steps: number;
  mismatch?: { step: number; expected: string; actual: string } | undefined;
  /** True when the client went away (or timed out) before the script ended. */
  cutShort: boolean;
}

export class ReplayMismatchError extends Error {
  readonly code = 'ERR_CAPTURE_REPLAY_MISMATCH';
  constructor(readonly session: ReplaySession) {
    super(
      session.mismatch
        ? `the client sent ${JSON.stringify(session.mismatch.actual)} where the recording has ${JSON.stringify(session.mismatch.expected)} (step ${session.mismatch.step})`
        : `the client stopped after ${session.completed} of ${session.steps} recorded steps`,
    );
    this.name = 'ReplayMismatchError';
  }
}

export interface ReplayServer {
  readonly host: string;
  readonly port: number;
  readonly transcript: ParsedTranscript;
  /** One entry per finished connection. */
  readonly sessions: ReplaySession[];
  /** Resolves with the next finished session not yet handed out (in finishing order). */
  nextSession(): Promise<ReplaySession>;
  close(): Promise<void>;
}

/** Starts a replay server for a transcript file or text. */
export async function startReplay(source: { file: string } | { text: string }, options: ReplayOptions = {}): Promise<ReplayServer> {
  const transcript = parseTranscriptText('file' in source ? readFileSync(source.file, 'utf8') : source.text);
  const needsTls = transcript.className === 'SMTP_SSL' || transcript.steps.some((s) => s.kind === 'starttls');
  if (needsTls && (!options.cert || !options.key)) throw new Error('this recording uses TLS: give a certificate and key (cert, key)');
  const sessions: ReplaySession[] = [];
  const listeners: ((s: ReplaySession) => void)[] = [];
  const sockets = new Set<net.Socket>();
  let handedOut = 0;
  const finish = (s: ReplaySession): void => {
    sessions.push(s);
    const l = listeners.shift();
    if (l) {
      handedOut++;
      l(s);
    }
  };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    void play(socket, transcript, options).then(finish);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as net.AddressInfo;
  return {
    host: addr.address,
    port: addr.port,
    transcript,
    sessions,
    nextSession: () => {
      if (handedOut < sessions.length) return Promise.resolve(sessions[handedOut++]!);
      return new Promise((resolve) => listeners.push(resolve));
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

class LineReader {
  private buffer = '';
  private waiting: ((line: string | undefined) => void) | undefined;
  private ended = false;

  constructor(private socket: net.Socket | tls.TLSSocket) {
    this.attach(socket);
  }

  attach(socket: net.Socket | tls.TLSSocket): void {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('utf8');
      this.wake();
    });
    socket.on('end', () => this.end());
    socket.on('close', () => this.end());
  }

  detach(): string {
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('end');
    this.socket.removeAllListeners('close');
    const rest = this.buffer;
    this.buffer = '';
    return rest;
  }

  private end(): void {
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    if (!this.waiting) return;
    const line = this.take();
    if (line !== undefined || this.ended) {
      const w = this.waiting;
      this.waiting = undefined;
      w(line);
    }
  }

  private take(): string | undefined {
    const i = this.buffer.indexOf('\r\n');
    if (i < 0) return undefined;
    const line = this.buffer.slice(0, i);
    this.buffer = this.buffer.slice(i + 2);
    return line;
  }

  next(timeoutMs: number): Promise<string | undefined> {
    const line = this.take();
    if (line !== undefined || this.ended) return Promise.resolve(line);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        resolve(undefined);
      }, timeoutMs);
      this.waiting = (l) => {
        clearTimeout(timer);
        resolve(l);
      };
    });
  }
}

async function play(raw: net.Socket, t: ParsedTranscript, options: ReplayOptions): Promise<ReplaySession> {
  const steps: ReplayStep[] = t.steps;
  const session: ReplaySession = { completed: 0, steps: steps.length, cutShort: false };
  let socket: net.Socket | tls.TLSSocket = raw;
  if (t.className === 'SMTP_SSL') {
    socket = new tls.TLSSocket(raw, { isServer: true, cert: options.cert!, key: options.key! });
    socket.on('error', () => {});
  }
  const reader = new LineReader(socket);
  const timeout = options.timeoutMs ?? 30_000;
  let out = '';
  const flush = (): void => {
    if (out && !socket.destroyed) socket.write(out);
    out = '';
  };
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    if (step.kind === 'send') {
      out += `${step.line}\r\n`;
    } else if (step.kind === 'expect') {
      flush();
      const line = await reader.next(timeout);
      if (line === undefined) {
        session.cutShort = true;
        break;
      }
      if (!clientLineMatches(step.line, line)) {
        session.mismatch = { step: i + 1, expected: step.line, actual: line };
        const shown = step.line.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
        if (!socket.destroyed) socket.end(`421 4.3.0 replay mismatch at step ${i + 1}: the recording expects "${shown}"\r\n`);
        return session;
      }
    } else if (step.kind === 'delay') {
      flush();
      await new Promise((r) => setTimeout(r, step.ms));
    } else if (step.kind === 'starttls') {
      flush();
      // Anything the client sent before its handshake would be injected plaintext: dropped.
      reader.detach();
      const secure = new tls.TLSSocket(socket as net.Socket, { isServer: true, cert: options.cert!, key: options.key! });
      const ok = await new Promise<boolean>((resolve) => {
        secure.once('secure', () => resolve(true));
        secure.once('error', () => resolve(false));
      });
      if (!ok) {
        session.cutShort = true;
        break;
      }
      socket = secure;
      reader.attach(secure);
    } else if (step.kind === 'close') {
      flush();
      socket.end();
      session.completed = i + 1;
      return session;
    }
    session.completed = i + 1;
  }
  flush();
  if (!socket.destroyed) socket.end();
  return session;
}
