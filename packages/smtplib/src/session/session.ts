// One connection's conversation: replies matched to commands strictly in the
// order the commands were written (a FIFO of waiters, RFC 2920 §3.1), one
// absolute deadline per awaited reply (a slow-drip server cannot extend it),
// and one recovery rule: after a timeout, a protocol error, an abort while a
// reply is owed, or the server going away, the connection is destroyed and
// every pending waiter fails. A 421 reply is handed to its command and then
// closes the connection (RFC 5321 §3.8).

import {
  SMTPAbortError,
  SMTPException,
  SMTPProtocolError,
  SMTPServerDisconnected,
  SMTPTimeoutError,
  SMTPTLSError,
  type TimeoutPhase,
} from '../errors.js';
import { ReplyParser, type ReplyLimits } from '../protocol/reply-parser.js';
import type { Reply } from '../protocol/reply.js';
import type { Transport } from '../wire/transport.js';
import type { DebugLog } from './debug-log.js';
import { Fifo } from './fifo.js';
import { channels, publishClose, publishCommand, publishError, publishReply } from '../diagnostics.js';

export interface ExpectOptions {
  /** The command as shown in errors and logs (secrets already masked). */
  command: string;
  phase: TimeoutPhase;
  /** Milliseconds from now; Infinity or 0 for none. */
  timeout: number;
  /** The reply text is secret (SASL challenges): do not log it. */
  maskReply?: boolean;
  /** The end of message data was written: a lost reply means "maybe delivered". */
  afterDataEnd?: boolean | (() => boolean);
  /** This is STARTTLS: a 220 reply opens the window in which no byte may arrive. */
  startsTls?: boolean;
}

const noop = () => {};

/**
 * A reply awaited without a promise: settled (reply or error) by the time
 * any reply registered after it has settled, since replies are matched in
 * order and a failure fails every waiter still owed. A pipelined group reads
 * its earlier replies from handles once its last one has come: one promise
 * per group instead of one per command.
 */
export interface ReplyHandle {
  readonly reply: Reply | undefined;
  readonly error: Error | undefined;
}

/** A settled handle's reply; throws what failed it. Only for a handle known to be settled. */
export function settledReply(handle: ReplyHandle): Reply {
  if (handle.reply !== undefined) return handle.reply;
  throw handle.error ?? new SMTPProtocolError('internal error: a reply was read before it had come');
}

/** One awaited reply. A class, so every waiter has the same shape (this is the hot path). */
class Waiter implements ExpectOptions, ReplyHandle {
  readonly command: string;
  readonly phase: TimeoutPhase;
  readonly timeout: number;
  readonly maskReply: boolean;
  readonly afterDataEnd: boolean | (() => boolean);
  readonly startsTls: boolean;
  readonly deadline: number;
  resolve: (reply: Reply) => void = noop;
  reject: (error: Error) => void = noop;
  /** Undefined for a handle (expectHandle): its outcome is kept in `reply` or `error` instead. */
  promise: Promise<Reply> | undefined = undefined;
  reply: Reply | undefined = undefined;
  error: Error | undefined = undefined;

  constructor(command: string, phase: TimeoutPhase, timeout: number, afterDataEnd: boolean | (() => boolean), maskReply: boolean, startsTls: boolean, now: number) {
    this.command = command;
    this.phase = phase;
    this.timeout = timeout;
    this.maskReply = maskReply;
    this.afterDataEnd = afterDataEnd;
    this.startsTls = startsTls;
    this.deadline = timeout > 0 ? now + timeout : Infinity;
  }
}

/** Whether the whole message had left this process when the reply was lost. */
function isAfterDataEnd(waiter: ExpectOptions): boolean {
  return typeof waiter.afterDataEnd === 'function' ? waiter.afterDataEnd() : Boolean(waiter.afterDataEnd);
}

export class Session {
  readonly transport: Transport;
  readonly debug: DebugLog;
  #parser: ReplyParser;
  #limits: Partial<ReplyLimits>;
  #waiters = new Fifo<Waiter>();
  #inbox: Reply[] = [];
  #owedRaw = 0;
  #timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires (ms since the epoch). */
  #timerAt = 0;
  /** The timer holds the process open (a reply is owed). */
  #timerRefed = false;
  readonly #onTimer = () => this.#onTimeout();
  #closed: Error | undefined;
  readonly #startedAt: number;
  #closePublished = false;
  /** Set between a STARTTLS 220 and the handshake: any byte now is an attack. */
  #upgrading = false;
  #injected = false;
  /** The waiter whose 421 reply closed the session. */
  #closedBy421: Waiter | undefined;

  constructor(transport: Transport, debug: DebugLog, limits: Partial<ReplyLimits> = {}) {
    this.transport = transport;
    this.debug = debug;
    this.#limits = limits;
    this.#parser = new ReplyParser(limits);
    this.#startedAt = performance.now();
    transport.listen({
      data: (chunk) => this.#onData(chunk),
      end: (error) => this.#onEnd(error),
    });
  }

  /** Open and usable. */
  get isOpen(): boolean {
    return this.#closed === undefined;
  }

  /** Why the session closed, if it did. */
  get closedReason(): Error | undefined {
    return this.#closed;
  }

  /** Replies still owed by the server. */
  get pendingReplies(): number {
    return this.#waiters.length;
  }

  /** Throws SMTPServerDisconnected (or the error that closed us) unless open. */
  assertOpen(): void {
    if (this.#closed) throw this.#disconnectedError(this.#closed);
  }

  /**
   * Registers a waiter for the next unclaimed reply. Call it, in order, for
   * every command just before writing it. The promise is pre-marked as
   * handled so a pipelined group can fail early without unhandled rejections.
   */
  expect(options: ExpectOptions): Promise<Reply> {
    return this.expectReply(options.command, options.phase, options.timeout, options.afterDataEnd ?? false, options.maskReply ?? false, options.startsTls ?? false);
  }

  /**
   * expect() without the options object: what a transaction calls for each
   * of its commands (one object less per command on the hot path).
   */
  expectReply(command: string, phase: TimeoutPhase, timeout: number, afterDataEnd: boolean | (() => boolean) = false, maskReply = false, startsTls = false): Promise<Reply> {
    if (this.#closed) {
      const failed = Promise.reject(this.#disconnectedError(this.#closed));
      failed.catch(noop);
      return failed;
    }
    const waiter = new Waiter(command, phase, timeout, afterDataEnd, maskReply, startsTls, timeout > 0 ? Date.now() : 0);
    const promise = new Promise<Reply>((resolve, reject) => {
      waiter.resolve = resolve;
      waiter.reject = reject;
    });
    // Marked handled only if it fails (#failAll): a catch() on every reply
    // would cost one more promise per command on the hot path.
    waiter.promise = promise;
    this.#waiters.push(waiter);
    if (this.#waiters.length === 1) this.#arm();
    return promise;
  }

  /**
   * expectReply() without a promise: the reply (or the error that failed the
   * session) is kept on the handle. Only for a command followed in the same
   * pipelined group by one whose reply is awaited (see ReplyHandle).
   */
  expectHandle(command: string, phase: TimeoutPhase, timeout: number, afterDataEnd: boolean | (() => boolean) = false): ReplyHandle {
    const waiter = new Waiter(command, phase, timeout, afterDataEnd, false, false, timeout > 0 ? Date.now() : 0);
    if (this.#closed) {
      waiter.error = this.#disconnectedError(this.#closed);
      return waiter;
    }
    this.#waiters.push(waiter);
    if (this.#waiters.length === 1) this.#arm();
    return waiter;
  }

  /** Command lines written are logged or published: someone reads them (else callers may skip building the list). */
  get logsCommands(): boolean {
    return this.debug.enabled || channels.command.hasSubscribers;
  }

  /** Writes command lines (logged as given) and/or data. Returns false if the caller should drain. */
  write(bytes: Buffer | readonly Buffer[], logLines?: readonly string[]): boolean {
    this.assertOpen();
    if (logLines && (this.debug.enabled || channels.command.hasSubscribers)) for (const line of logLines) { this.debug.send(line); publishCommand(this, line); }
    return this.transport.write(bytes);
  }

  /** Writes one command and waits for its reply. */
  async command(
    line: string,
    options: Omit<ExpectOptions, 'command'> & { logAs?: string; signal?: AbortSignal | undefined; midExchange?: boolean },
  ): Promise<Reply> {
    const shown = options.logAs ?? line;
    if (options.signal?.aborted) {
      // Checked before the write: nothing is owed, so the connection stays
      // usable, unless the server is waiting for this line (an AUTH exchange).
      const error = new SMTPAbortError(`aborted before ${shown.split(' ')[0] || 'the command'} was written`, { cause: options.signal.reason });
      if (options.midExchange) this.destroy(error);
      throw error;
    }
    const reply = this.expect({ ...options, command: shown });
    this.write(Buffer.from(`${line}\r\n`, 'utf8'), [shown]);
    return this.await(reply, options.signal);
  }

  /** smtplib's putcmd(): a raw write whose reply a later getReply() claims. */
  sendRaw(bytes: Buffer, logLine: string, owesReply: boolean): void {
    this.assertOpen();
    if (owesReply) this.#owedRaw++;
    this.debug.send(logLine);
    publishCommand(this, logLine);
    this.transport.write(bytes);
  }

  /** smtplib's getreply(): the next reply not claimed by a command. */
  async getReply(timeout: number, signal?: AbortSignal): Promise<Reply> {
    const queued = this.#inbox.shift();
    if (queued) {
      if (this.#owedRaw > 0) this.#owedRaw--;
      return queued;
    }
    if (this.#owedRaw > 0) this.#owedRaw--;
    return this.await(this.expect({ command: 'getreply', phase: 'command', timeout }), signal);
  }

  /**
   * Awaits a reply promise; if the signal fires first, the connection is
   * destroyed (a reply is still owed, so it cannot be reused).
   */
  await<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
    // Not async: without a signal the reply promise is returned as it is (hot path).
    if (!signal) return promise;
    if (signal.aborted) {
      this.destroy(new SMTPAbortError('aborted while waiting for the server', { cause: signal.reason }));
      return promise;
    }
    return this.#awaitWithSignal(promise, signal);
  }

  async #awaitWithSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
    const onAbort = () => this.destroy(new SMTPAbortError('aborted while waiting for the server', { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await promise;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Runs the TLS upgrade; fails closed if the server sent anything after its 220. */
  async upgrade(run: Parameters<Transport['upgrade']>[0]): Promise<void> {
    if (this.#injected || this.#parser.bufferedBytes > 0) {
      const error = new SMTPTLSError(
        'the server sent data after its STARTTLS 220 reply and before the TLS handshake; ' +
          'this is a response-injection attack (RFC 3207 §4.2, CVE-2021-38371 class), so the connection was closed',
      );
      this.destroy(error);
      throw error;
    }
    try {
      await this.transport.upgrade(run);
    } catch (error) {
      const failure = error instanceof SMTPException ? error : new SMTPTLSError(`TLS upgrade failed: ${(error as Error).message}`, { cause: error });
      this.destroy(failure);
      throw failure;
    } finally {
      this.#upgrading = false;
    }
    // Nothing from the plaintext phase survives.
    this.#parser = new ReplyParser(this.#limits);
    this.#inbox = [];
  }

  /** Closes gracefully (FIN); pending waiters fail with `reason`. */
  close(reason?: Error): void {
    if (this.#closed) return;
    this.#closed = reason ?? new SMTPServerDisconnected('connection closed');
    this.#failAll(this.#closed);
    this.transport.end();
  }

  /** Tears the connection down; pending waiters fail with `error`. */
  destroy(error: Error): void {
    if (this.#closed) {
      this.transport.destroy();
      return;
    }
    this.#closed = error;
    publishError(this, error, 'connection');
    this.#failAll(error);
    this.transport.destroy(error);
  }

  // --- incoming ----------------------------------------------------------

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    if (this.#upgrading) {
      // Bytes between the 220 and the handshake: never parsed, always fatal.
      this.#injected = true;
      return;
    }
    let replies: Reply[];
    try {
      replies = this.#parser.push(chunk);
    } catch (error) {
      // Replies completed before the error still answer their commands (as
      // they would have had the bytes arrived in separate segments).
      for (const reply of (error as { replies?: Reply[] }).replies ?? []) {
        if (this.#closed || this.#upgrading) break;
        this.#dispatch(reply);
      }
      this.destroy(error as Error);
      return;
    }
    for (let i = 0; i < replies.length; i++) {
      if (this.#closed) return;
      this.#dispatch(replies[i]!);
      if (this.#upgrading) {
        // Anything after the STARTTLS 220, complete or partial, was injected.
        if (i + 1 < replies.length || this.#parser.bufferedBytes > 0) this.#injected = true;
        return;
      }
    }
  }

  #dispatch(reply: Reply): void {
    const waiter = this.#waiters.shift();
    if (!waiter) {
      this.debug.reply(reply);
      publishReply(this, '(unsolicited)', reply, false);
      if (this.#owedRaw > this.#inbox.length) {
        this.#inbox.push(reply);
        return;
      }
      if (reply.code === 421) {
        // RFC 5321 §3.8: a server may announce it is closing at any time.
        this.close(new SMTPServerDisconnected(`the server closed the connection: ${reply.code} ${reply.message}`));
        return;
      }
      this.destroy(new SMTPProtocolError(`protocol error: unsolicited reply from the server: ${reply.code} ${reply.message}`));
      return;
    }
    if (this.debug.enabled) this.debug.reply(reply, waiter.maskReply);
    publishReply(this, waiter.command, reply, waiter.maskReply);
    if (waiter.startsTls && reply.code === 220) this.#upgrading = true;
    this.#arm();
    if (waiter.promise) waiter.resolve(reply);
    else waiter.reply = reply;
    if (reply.code === 421) {
      // RFC 5321 §3.8: a server answering 421 closes and carries out nothing
      // written after the command it answered, so every reply still owed
      // stands for a command that was not executed: 'not-delivered', even
      // for a whole message written ahead. (The other LMTP replies owed for
      // the same end of data are the exception: see #errorFor.)
      this.#closedBy421 = waiter;
      this.close(new SMTPServerDisconnected(`the server closed the connection: ${reply.code} ${reply.message}`, { deliveryStatus: 'not-delivered' }));
    }
  }

  #onEnd(error: Error | undefined): void {
    if (!this.#closePublished) {
      this.#closePublished = true;
      publishClose(this, this.#startedAt);
    }
    if (this.#closed) {
      this.#failAll(this.#closed);
      return;
    }
    const reason = new SMTPServerDisconnected(
      error ? `connection lost: ${error.message}` : 'the server closed the connection',
      error ? { cause: error } : {},
    );
    this.#closed = reason;
    publishError(this, reason, 'connection');
    this.#failAll(reason);
  }

  // --- deadlines and failure ---------------------------------------------

  /**
   * Keeps one timer armed for the head waiter's deadline. A timer already set
   * for an earlier moment is kept (deadlines mostly grow down the FIFO): when
   * it fires early, #onTimeout re-arms for what is left. This saves a timer
   * per reply on the hot path.
   */
  #arm(): void {
    const head = this.#waiters.at(0);
    if (!head || !Number.isFinite(head.deadline)) {
      // Nothing owed: the timer may stay scheduled (the next command usually
      // comes at once and would set it again), but it must not keep the
      // process alive. It is re-armed or dropped when it fires.
      if (this.#timer && this.#timerRefed) { this.#timer.unref(); this.#timerRefed = false; }
      return;
    }
    if (this.#timer && this.#timerAt <= head.deadline) {
      if (!this.#timerRefed) { this.#timer.ref(); this.#timerRefed = true; }
      return;
    }
    clearTimeout(this.#timer);
    this.#timerAt = head.deadline;
    this.#timerRefed = true;
    this.#timer = setTimeout(this.#onTimer, Math.max(0, head.deadline - Date.now()));
  }

  #onTimeout(): void {
    this.#timer = undefined;
    this.#timerAt = 0;
    this.#timerRefed = false;
    const head = this.#waiters.at(0);
    if (!head) return;
    if (head.deadline > Date.now()) {
      // The timer was set for an earlier waiter that has been answered since.
      this.#arm();
      return;
    }
    const timeout = head.timeout;
    const unknown = isAfterDataEnd(head);
    const maybe = unknown ? '; the message may have been delivered' : '';
    // An end-of-data reply that times out before the message left this process
    // is a write that never finished.
    const phase = head.phase === 'data-end' && !unknown ? 'data-write' : head.phase;
    this.destroy(
      new SMTPTimeoutError(phase, timeout, `timed out after ${timeout} ms waiting for the reply to ${head.command}${maybe}`, {
        ...(unknown ? { deliveryStatus: 'unknown' as const } : {}),
      }),
    );
  }

  #failAll(error: Error): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = 0;
    this.#timerRefed = false;
    const waiters = this.#waiters.drain();
    for (const waiter of waiters) {
      if (!waiter.promise) {
        waiter.error = this.#errorFor(waiter, error);
        continue;
      }
      // Pipelined groups fail early without unhandled rejections: a waiter may be awaited later or never.
      waiter.promise.catch(noop);
      waiter.reject(this.#errorFor(waiter, error));
    }
  }

  #errorFor(waiter: Waiter, error: Error): Error {
    if (!isAfterDataEnd(waiter) || !(error instanceof SMTPException)) return error;
    // LMTP: a 421 for one recipient after the data says nothing of the others'.
    const by421 = this.#closedBy421;
    const sameEndOfData = by421?.phase === 'data-end' && waiter.phase === 'data-end' && typeof waiter.afterDataEnd === 'function' && waiter.afterDataEnd === by421.afterDataEnd;
    if (error.deliveryStatus && !sameEndOfData) return error;
    // Same class, but this waiter's message may have been delivered.
    const copy = Object.create(Object.getPrototypeOf(error)) as SMTPException;
    // Every own property, the non-enumerable class brand included (instanceof relies on it).
    for (const key of Reflect.ownKeys(error)) Object.defineProperty(copy, key, Object.getOwnPropertyDescriptor(error, key)!);
    copy.deliveryStatus = 'unknown';
    Object.defineProperty(copy, 'message', {
      value: `${error.message} after the end of message data was sent; the message may have been delivered`,
      enumerable: false,
      writable: true,
      configurable: true,
    });
    Object.defineProperty(copy, 'stack', { value: error.stack, enumerable: false, writable: true, configurable: true });
    if (error.cause !== undefined) Object.defineProperty(copy, 'cause', { value: error.cause, enumerable: false, writable: true, configurable: true });
    return copy;
  }

  #disconnectedError(reason: Error): Error {
    if (reason instanceof SMTPServerDisconnected) {
      return new SMTPServerDisconnected(`not connected: ${reason.message}`, { cause: reason });
    }
    return new SMTPServerDisconnected(`not connected: the connection was closed after an error (${reason.message})`, { cause: reason });
  }
}
