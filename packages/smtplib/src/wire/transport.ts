// The byte stream under a session: writes with back-pressure and a deadline,
// reads delivered to one listener, one end-of-stream notification, and the
// hand-over of the same socket to TLS for STARTTLS. Knows nothing of SMTP.

import * as net from 'node:net';
import type * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { SMTPAbortError, SMTPException, SMTPServerDisconnected, SMTPTimeoutError } from '../errors.js';
import { isLoopbackAddress } from './connect.js';
import { isVerifiedTls } from './tls-options.js';

export interface TransportOptions {
  /** TLS from the first byte (implicit TLS). */
  secure: boolean;
  /** A Unix socket: always this machine. */
  unix: boolean;
  /**
   * The named target is a loopback name or literal ("localhost",
   * "127.0.0.1", "::1"). Whether the peer is on this machine is decided by
   * the name the caller gave, never by the socket alone: through a proxy or
   * tunnel (a connect hook, an ssh -L to a name in /etc/hosts) the socket's
   * peer is local while the server is not.
   */
  namedLoopback?: boolean;
  /** The stream came from the caller's connect hook (its socket says nothing about the server). */
  viaHook?: boolean;
}

export interface TransportEvents {
  data(chunk: Buffer): void;
  /** Called once, when the stream ends for any reason (error is undefined on a clean close). */
  end(error: Error | undefined): void;
}

export class Transport {
  #stream: Duplex;
  #events: TransportEvents | undefined;
  #ended = false;
  #error: Error | undefined;
  #secure: boolean;
  #unix: boolean;
  #namedLoopback: boolean;
  #viaHook: boolean;
  #drainWaiters = new Set<() => void>();
  readonly #onData = (chunk: Buffer) => this.#events?.data(chunk);
  readonly #onError = (error: Error) => this.#finish(error);
  readonly #onClose = () => this.#finish(undefined);
  #corked = false;
  readonly #uncork = (stream: Duplex) => {
    this.#corked = false;
    stream.uncork();
  };
  readonly #onDrain = () => {
    for (const wake of this.#drainWaiters) wake();
    this.#drainWaiters.clear();
  };

  constructor(stream: Duplex, options: TransportOptions) {
    this.#stream = stream;
    this.#secure = options.secure;
    this.#unix = options.unix;
    this.#namedLoopback = options.namedLoopback ?? false;
    this.#viaHook = options.viaHook ?? false;
    (stream as net.Socket).setNoDelay?.(true);
    this.#attach();
  }

  /** The stream in use now: a tls.TLSSocket once TLS is up. */
  get stream(): Duplex {
    return this.#stream;
  }
  get secure(): boolean {
    return this.#secure;
  }
  get ended(): boolean {
    return this.#ended;
  }
  /** TLS is up and its certificate was verified (chain and name, or the pin); false without TLS. */
  get verified(): boolean {
    return this.#secure && isVerifiedTls(this.#stream);
  }
  /**
   * The peer is on this machine: a Unix socket, or a loopback name or literal
   * the caller named. Through a connect hook that is all we know (a tunnel
   * addressed as 127.0.0.1 cannot be told from a local server); without one
   * the socket must also really be connected to a loopback address.
   */
  get peerIsLocal(): boolean {
    if (this.#unix) return true;
    if (!this.#namedLoopback) return false;
    if (this.#viaHook) return true;
    return isLoopbackAddress((this.#stream as net.Socket).remoteAddress);
  }

  listen(events: TransportEvents): void {
    this.#events = events;
  }

  /**
   * Queues bytes. Several buffers go out in one write (writev) so a pipelined
   * group leaves as one segment. Returns false when the kernel buffer is full
   * and the caller should await `drain()` before writing more.
   * `written` is called once, when every byte of this write has left our
   * hands (or the stream failed); on a socket (`copiesWrites`) the caller
   * may then reuse the buffers. It is never called if the transport has
   * already ended.
   */
  write(chunks: Buffer | readonly Buffer[], written?: () => void): boolean {
    if (this.#ended) return true;
    if (written === undefined) return this.#write(chunks, undefined);
    let called = false;
    const once = () => {
      if (called) return;
      called = true;
      written();
    };
    const ok = this.#write(chunks, once);
    // A socket write the kernel took at once leaves nothing queued, but its
    // callback waits for a tick that a body pulled from an always-ready
    // source may not yield for a long time: report it now.
    if (this.#stream.writableLength === 0 && !this.#corked) once();
    return ok;
  }

  /**
   * The stream copies what it is given before its write callback (a TCP or
   * Unix socket: the kernel; TLS: the cipher), so a written buffer may be
   * reused. A caller's own Duplex (a connect hook) may keep it: never reuse.
   */
  get copiesWrites(): boolean {
    return this.#stream instanceof net.Socket;
  }

  #write(chunks: Buffer | readonly Buffer[], written: (() => void) | undefined): boolean {
    const stream = this.#stream;
    if (Buffer.isBuffer(chunks)) return stream.write(chunks, written);
    if (chunks.length === 1) return stream.write(chunks[0]!, written);
    // Corked until the end of this tick, the pieces (and any group written
    // right behind them, such as chained BDAT LAST transactions) leave in one
    // writev: no copy to join them, one system call.
    if (!this.#corked) {
      this.#corked = true;
      stream.cork();
      process.nextTick(this.#uncork, stream);
    }
    let ok = true;
    const pieces = chunks.length <= MAX_WRITEV_PIECES ? chunks : coalesce(chunks);
    // A stream completes writes in order: the last piece's callback means all were written.
    let last = pieces.length - 1;
    while (last >= 0 && pieces[last]!.length === 0) last--;
    if (last < 0) {
      if (written) process.nextTick(written);
      return !(stream as Duplex & { writableNeedDrain?: boolean }).writableNeedDrain;
    }
    for (let i = 0; i <= last; i++) {
      const piece = pieces[i]!;
      if (i === last) ok = stream.write(piece, written) && ok;
      else if (piece.length) ok = stream.write(piece) && ok;
    }
    return ok;
  }

  /**
   * Nothing to wait for: open and under the high-water mark. Hot paths check
   * this before calling drain(), which costs a promise and a microtask even
   * when it has nothing to do.
   */
  get clear(): boolean {
    return !this.#ended && !(this.#stream as Duplex & { writableNeedDrain?: boolean }).writableNeedDrain;
  }

  /** Waits until buffered writes have drained, within `timeout` ms. */
  async drain(timeout: number, signal?: AbortSignal): Promise<void> {
    const stream = this.#stream as Duplex & { writableNeedDrain?: boolean };
    if (this.#ended) throw this.#closedError();
    if (!stream.writableNeedDrain) return;
    await new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (error?: Error) => {
        clearTimeout(timer);
        this.#drainWaiters.delete(wake);
        signal?.removeEventListener('abort', onAbort);
        // Part of a message may be on the wire: the stream can never be reused.
        if (error && !this.#ended) this.destroy(error);
        if (error) reject(error);
        else resolve();
      };
      const wake = () => done(this.#ended ? this.#closedError() : undefined);
      const onAbort = () => done(new SMTPAbortError('aborted while writing message data', { cause: signal?.reason }));
      if (Number.isFinite(timeout) && timeout > 0) {
        timer = setTimeout(
          () => done(new SMTPTimeoutError('data-write', timeout, `timed out after ${timeout} ms waiting for the server to read message data`)),
          timeout,
        );
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#drainWaiters.add(wake);
    });
  }

  /**
   * Hands the socket to `upgrade` (which returns a TLS socket over it). Our
   * listeners are detached first so no plaintext byte is read after this point.
   */
  async upgrade(upgrade: (stream: Duplex) => Promise<tls.TLSSocket>): Promise<void> {
    this.#detach();
    const plain = this.#stream;
    let secure: tls.TLSSocket;
    try {
      secure = await upgrade(plain);
    } catch (error) {
      plain.destroy();
      this.#finish(error as Error);
      throw error;
    }
    this.#stream = secure;
    this.#secure = true;
    secure.setNoDelay?.(true);
    this.#attach();
  }

  /** Ends the stream gracefully (FIN), then destroys it. */
  end(): void {
    if (this.#ended) return;
    this.#stream.end();
    const stream = this.#stream;
    setTimeout(() => stream.destroy(), 1000).unref();
  }

  /** Tears the stream down at once. */
  destroy(error?: Error): void {
    this.#stream.destroy();
    this.#finish(error);
  }

  #attach(): void {
    this.#stream.on('data', this.#onData);
    this.#stream.on('error', this.#onError);
    this.#stream.on('close', this.#onClose);
    this.#stream.on('end', this.#onClose);
    this.#stream.on('drain', this.#onDrain);
  }

  #detach(): void {
    this.#stream.off('data', this.#onData);
    this.#stream.off('error', this.#onError);
    this.#stream.off('close', this.#onClose);
    this.#stream.off('end', this.#onClose);
    this.#stream.off('drain', this.#onDrain);
  }

  #finish(error: Error | undefined): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    // Keep an error listener: late socket errors after teardown must not crash the process.
    this.#stream.on('error', () => {});
    this.#onDrain();
    this.#events?.end(error);
  }

  #closedError(): Error {
    // If the stream was torn down by one of our own typed errors (a deadline,
    // an abort), report that rather than a generic disconnect.
    if (this.#error instanceof SMTPException) return this.#error;
    return new SMTPServerDisconnected('connection closed while writing', this.#error ? { cause: this.#error } : {});
  }
}

/** More pieces than this in one write are joined first (a writev of hundreds of slices costs more than a copy). */
const MAX_WRITEV_PIECES = 16;

/** Pieces smaller than this are copied together; larger ones go as they are. */
const COALESCE_BYTES = 64 * 1024;

/**
 * Joins runs of small buffers (the encoder's slices around each stuffed dot,
 * a command group) into buffers of up to 64 KiB, so a write costs one stream
 * request per batch rather than one per slice.
 */
export function coalesce(chunks: readonly Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  let run: Buffer[] = [];
  let runBytes = 0;
  const flush = () => {
    if (run.length === 1) out.push(run[0]!);
    else if (run.length > 1) out.push(Buffer.concat(run, runBytes));
    run = [];
    runBytes = 0;
  };
  for (const chunk of chunks) {
    if (chunk.length === 0) continue;
    if (chunk.length >= COALESCE_BYTES) {
      flush();
      out.push(chunk);
      continue;
    }
    if (runBytes + chunk.length > COALESCE_BYTES) flush();
    run.push(chunk);
    runBytes += chunk.length;
  }
  flush();
  return out;
}
