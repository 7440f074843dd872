// SMTPPool: sending at scale over a bounded set of reused connections.
//
// Orchestration only; the parts live next to it:
//   rate-limiter.ts     one token bucket for the whole pool
//   retry-policy.ts     which failures are retried, and the backoff
//   pool-connection.ts  one SMTP client with age / messages / in-flight / lastUsed
//
// How a send flows: sendmail() queues a job (or rejects at once with
// ERR_SMTP_POOL_FULL past `maxQueued`). A synchronous dispatcher hands ready
// jobs to a connection with room (each connection carries up to
// `maxInFlightPerConnection` sends; the SMTP client pipelines them, so each
// message costs about one round trip), opening connections up to
// `maxConnections`, taking one rate-limit token per attempt. A finished
// attempt either settles the job or puts it back with a backoff delay.
//
// Delivery semantics (the table is in docs/sending-at-scale.md):
//   - A message is retried only when the server certainly did not accept it:
//     a connection failure before the end of data was written, 421, or a
//     transient 4xx reply. Backoff: exponential with full jitter.
//   - A permanent 5xx is never retried.
//   - deliveryStatus 'unknown' (the end of data was written, no reply came)
//     is not retried unless `retry.retryUnknown`; the send rejects with that
//     error, whose deliveryStatus tells the caller the message may exist.
//   - Recipients refused with 4xx at RCPT are retried alone, in a new
//     transaction; accepted and refused recipients of every attempt are
//     merged into one result.
//   - Each send settles exactly once: it resolves when at least one
//     recipient accepted the message (refused and `unknown` list the rest),
//     and rejects otherwise (with the last error, carrying `attempts`).
//   - Only replayable messages are retried (replay.ts): strings, bytes,
//     `{ path }`, an object whose stream() returns a fresh stream, or a
//     function returning a fresh MessageInput. A one-shot stream is sent at
//     most once; when it would have been retried, the send fails
//     'not-delivered' and its error says why and what to pass instead.
//   - Broken connections never return to the pool; a connection idle longer
//     than `noopAfterIdleMs` is checked with NOOP first.
//
// Retirement (reuse bounded by time, as Postfix's
// smtp_connection_reuse_time_limit, and optionally by count):
// `maxConnectionAge` (default 5 minutes) and `maxMessagesPerConnection`
// (default unlimited: Postfix calls count limits a "fatal attractor") retire a
// connection: no new sends, QUIT after its last one. Each connection draws its
// own limits from 80-100 % of the configured values, so connections opened
// together do not all retire together, and a retiring connection no longer
// counts against `maxConnections`: its replacement opens while it finishes.

import { EventEmitter } from 'node:events';
import type { SMTP } from '../client/smtp.js';
import type { SMTPOptions } from '../client/options.js';
import { toDkimSigner } from '../dkim/index.js';
import { readAll, toMessageSource } from '../message/source.js';
import { envelopeFromHeaders, readHeaderFields } from '../message/headers.js';
import { RefusedRecipients } from '../protocol/refused-recipients.js';
import type { DeliveryResult } from '../client/transaction.js';
import {
  SMTPAbortError,
  SMTPException,
  SMTPInvalidArgumentError,
  SMTPRecipientsRefused,
  SMTPResponseException,
} from '../errors.js';
import { syntheticReply, type Reply } from '../protocol/reply.js';
import { SMTPPoolError } from './errors.js';
import type {
  PoolSendMessageOptions,
  PoolSendOptions,
  PoolSendResult,
  PoolStats,
  PoolTimings,
  SMTPPoolEvents,
  SMTPPoolOptions,
} from './types.js';
import { Fifo } from '../session/fifo.js';
import { PoolConnection, type DisconnectReason } from './pool-connection.js';
import { RateLimiter } from './rate-limiter.js';
import { poolSendArguments } from './send-args.js';
import { notReplayable, replayOf, type PoolMessage, type Replay } from './replay.js';
import type { MailOptions, RcptOptions } from '../protocol/params.js';
import type { CallOptions } from '../client/call-options.js';
import {
  backoffDelay,
  classify,
  classifyConnectFailure,
  partitionRefusals,
  resolveRetryOptions,
  type ResolvedRetryOptions,
} from './retry-policy.js';

export type * from './types.js';
export type { DisconnectReason };
export type { PoolMessage } from './replay.js';

type Runner = (smtp: SMTP, to: string[], signal: AbortSignal | undefined) => Promise<DeliveryResult>;

interface Job {
  recipients: string[];
  pending: string[];
  accepted: string[];
  refused: RefusedRecipients;
  unknown: string[];
  reply?: Reply;
  attempts: number;
  replayable: boolean;
  run: Runner;
  signal: AbortSignal | undefined;
  onAbort?: (() => void) | undefined;
  enqueuedAt: number;
  startedAt?: number;
  notBefore: number;
  rateWaited: boolean;
  /** Where the job is: waiting, delayed (backoff), running, done. */
  state: 'ready' | 'delayed' | 'running' | 'done';
  resolve(result: PoolSendResult): void;
  reject(error: unknown): void;
}

export class SMTPPool extends EventEmitter<SMTPPoolEvents> {
  readonly options: Readonly<SMTPPoolOptions>;
  readonly #smtpOptions: SMTPOptions;
  readonly #retry: ResolvedRetryOptions;
  readonly #limiter: RateLimiter | undefined;
  readonly #maxConnections: number;
  readonly #maxMessages: number;
  readonly #random: () => number;
  readonly #maxInFlight: number;
  readonly #idleTimeout: number;
  readonly #ttl: number;
  readonly #maxQueued: number;
  readonly #noopAfterIdle: number;
  readonly #connectAttempts: number;
  /** Aborts connection opens under way when the pool is destroyed. */
  readonly #lifetime = new AbortController();

  #ready = new Fifo<Job>();
  #delayed: Job[] = [];
  #running = 0;
  #connections = new Set<PoolConnection>();
  #opening = 0;
  /** Failed connection rounds in a row (opens started together that fail together count once). */
  #connectFailures = 0;
  #connectRound = 0;
  #connectBlockedUntil = 0;
  /** TLS session tickets not used yet; each is given to one connection only (RFC 8446 §C.4). */
  #tlsTickets: Buffer[] = [];
  #wakeTimer: NodeJS.Timeout | undefined;
  #wakeAt = Infinity;
  #dispatching = false;
  #closing: Promise<void> | undefined;
  #closingResolve: (() => void) | undefined;
  #destroyed: Error | undefined;
  #stats = { sent: 0, failed: 0, retried: 0, rateLimitWaits: 0, connectionsOpened: 0, tlsResumed: 0, connectFailures: 0 };

  constructor(options: SMTPPoolOptions = {}) {
    super();
    this.options = { ...options };
    // auth (password, token) and tls (key, pfx) are secrets: keep them out of util.inspect and JSON.stringify.
    Object.defineProperty(this, 'options', { enumerable: false });
    const {
      auth,
      implicitTls,
      maxConnections,
      maxMessagesPerConnection,
      maxInFlightPerConnection,
      idleTimeout,
      connectionTTL,
      maxConnectionAge,
      rateLimit,
      retry,
      maxQueued,
      noopAfterIdleMs,
      tlsSessionResumption,
      connectAttempts,
      ...smtp
    } = options;
    void auth; void implicitTls; void tlsSessionResumption;
    // DKIM keys are checked here, once; the connections share the signer (which hides them).
    const dkim = smtp.dkim ? toDkimSigner(smtp.dkim) : undefined;
    this.#smtpOptions = dkim ? { ...smtp, dkim } : smtp;
    if (dkim) (this.options as SMTPPoolOptions).dkim = dkim;
    this.#retry = resolveRetryOptions(retry);
    this.#limiter = rateLimit ? new RateLimiter(rateLimit) : undefined;
    this.#maxConnections = positive('maxConnections', maxConnections ?? 5);
    this.#maxMessages = positive('maxMessagesPerConnection', maxMessagesPerConnection ?? Infinity);
    this.#random = Math.random;
    this.#maxInFlight = positive('maxInFlightPerConnection', maxInFlightPerConnection ?? 10);
    this.#idleTimeout = positive('idleTimeout', idleTimeout ?? 30_000);
    if (connectionTTL !== undefined && maxConnectionAge !== undefined && connectionTTL !== maxConnectionAge) {
      throw new SMTPInvalidArgumentError('connectionTTL is the old name of maxConnectionAge: give one of them');
    }
    this.#ttl = positive('maxConnectionAge', maxConnectionAge ?? connectionTTL ?? 300_000);
    this.#maxQueued = nonNegative('maxQueued', maxQueued ?? Infinity);
    this.#noopAfterIdle = nonNegative('noopAfterIdleMs', noopAfterIdleMs ?? 10_000);
    this.#connectAttempts = positiveInteger('connectAttempts', connectAttempts ?? 3);
  }

  // --- sending --------------------------------------------------------------

  /**
   * Sends one message through the pool. A message that can be read again
   * (bytes, a string, `{ path }`, an object whose stream() returns a fresh
   * stream, or a function returning a fresh MessageInput) is retried when
   * the server certainly did not take it; a one-shot stream is not. Resolves once at least
   * one recipient accepted it; see PoolSendResult and the file comment.
   */
  sendmail(from: string, to: string | readonly string[], msg: PoolMessage, options?: PoolSendOptions): Promise<PoolSendResult>;
  /** The positional shape of SMTP.sendmail() (and Python's smtplib), with call options last. */
  sendmail(
    from: string,
    to: string | readonly string[],
    msg: PoolMessage,
    mailOptions?: MailOptions | readonly string[],
    rcptOptions?: RcptOptions | readonly string[],
    options?: CallOptions,
  ): Promise<PoolSendResult>;
  sendmail(
    from: string,
    to: string | readonly string[],
    msg: PoolMessage,
    mailOptions?: MailOptions | readonly string[] | PoolSendOptions,
    rcptOptions?: RcptOptions | readonly string[] | CallOptions,
    callOptions?: CallOptions,
  ): Promise<PoolSendResult> {
    // A send with no options (a queue worker's usual one) skips parsing them and the objects each
    // attempt would otherwise spread from them.
    const plain = mailOptions === undefined && rcptOptions === undefined && callOptions === undefined;
    let options: PoolSendOptions | undefined;
    if (!plain) {
      try {
        options = withDkimSigner(poolSendArguments(mailOptions, rcptOptions, callOptions));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const recipients = typeof to === 'string' ? [to] : [...to];
    let replay: Replay;
    try {
      replay = replayOf(msg);
    } catch (error) {
      return Promise.reject(error);
    }
    if (!options) {
      const run: Runner = (smtp, pending, signal) => smtp.deliver(from, pending, replay.take(), signal ? { signal } : undefined);
      return this.#submit(recipients, replay.replayable, run, undefined);
    }
    // The options object is poolSendArguments' own copy: without a signal it is passed as it is (no rest copy per send).
    const callerSignal = options.signal;
    let sendOptions: PoolSendOptions = options;
    if (callerSignal !== undefined) {
      const { signal: _signal, ...rest } = options;
      sendOptions = rest;
    }
    const run: Runner = (smtp, pending, signal) => smtp.deliver(from, pending, replay.take(), signal ? { ...sendOptions, signal } : sendOptions);
    return this.#submit(recipients, replay.replayable, run, callerSignal);
  }

  /**
   * Sends an RFC 5322 message, the envelope taken from its headers as
   * SMTP.sendMessage() does (Bcc removed). A message that can be read again
   * (bytes, a string, `{ path }`, an object whose stream() returns a fresh
   * stream, a function returning a fresh MessageInput) is read afresh by each
   * attempt (and once more for its header block when `from` or `to` is not
   * given); a one-shot stream is read into memory once, so it can be retried.
   */
  async sendMessage(message: PoolMessage, options: PoolSendMessageOptions = {}): Promise<PoolSendResult> {
    const refusal = this.#refusal();
    if (refusal) throw refusal;
    options = withDkimSigner(options);
    let replay = replayOf(message);
    if (!replay.replayable) replay = replayOf(await readAll(toMessageSource(replay.take())));
    let from = options.from;
    let to = options.to === undefined ? undefined : typeof options.to === 'string' ? [options.to] : [...options.to];
    if (from === undefined || to === undefined) {
      const envelope = envelopeFromHeaders(await readHeaderFields(toMessageSource(replay.take())));
      from ??= envelope.from;
      to ??= envelope.to;
    }
    if (to.length === 0) throw new SMTPInvalidArgumentError('the message has no To, Cc or Bcc recipients and none were given');
    const sender = from;
    const { signal: callerSignal, from: _from, to: _to, ...sendOptions } = options;
    void _from; void _to;
    const run: Runner = (smtp, pending, signal) =>
      smtp.deliverMessage(replay.take(), { ...sendOptions, from: sender, to: pending, ...(signal ? { signal } : {}) });
    return this.#submit(to, true, run, callerSignal);
  }

  #refusal(): SMTPPoolError | undefined {
    if (this.#destroyed) return new SMTPPoolError('ERR_SMTP_POOL_DESTROYED', 'the pool was destroyed', { cause: this.#destroyed });
    if (this.#closing) return new SMTPPoolError('ERR_SMTP_POOL_CLOSED', 'the pool is closed');
    return undefined;
  }

  #submit(recipients: string[], replayable: boolean, run: Runner, signal: AbortSignal | undefined): Promise<PoolSendResult> {
    const refusal = this.#refusal();
    if (refusal) return Promise.reject(refusal);
    if (recipients.length === 0) return Promise.reject(new SMTPInvalidArgumentError('no recipients given', { deliveryStatus: 'not-delivered' }));
    if (signal?.aborted) {
      return Promise.reject(new SMTPAbortError('aborted before the message was queued', { cause: signal.reason, deliveryStatus: 'not-delivered' }));
    }
    if (this.queued >= this.#maxQueued) {
      return Promise.reject(new SMTPPoolError('ERR_SMTP_POOL_FULL', `the pool's queue is full (maxQueued ${this.#maxQueued}); try again when it drains (the 'idle' event, or stats().queued)`));
    }
    return new Promise<PoolSendResult>((resolve, reject) => {
      const job: Job = {
        recipients,
        pending: recipients,
        accepted: [],
        refused: new RefusedRecipients(),
        unknown: [],
        attempts: 0,
        replayable,
        run,
        signal,
        enqueuedAt: performance.now(),
        notBefore: 0,
        rateWaited: false,
        state: 'ready',
        resolve,
        reject,
      };
      if (signal) {
        job.onAbort = () => this.#abortWaiting(job);
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.#ready.push(job);
      this.#dispatch();
    });
  }

  /** Sends waiting for a connection, backoff waits included. */
  get queued(): number {
    return this.#ready.length + this.#delayed.length;
  }

  // --- dispatching ----------------------------------------------------------

  /** Hands ready jobs to connections. Synchronous, so nothing can change under it. */
  #dispatch(): void {
    if (this.#dispatching) return;
    this.#dispatching = true;
    try {
      const now = performance.now();
      this.#promoteDelayed(now);
      while (this.#ready.length > 0) {
        const job = this.#ready.peek()!;
        if (job.state !== 'ready') {
          this.#ready.shift();
          continue;
        }
        const connection = this.#pickConnection(now);
        if (!connection) break;
        if (this.#limiter && !this.#limiter.tryTake()) {
          if (!job.rateWaited) {
            job.rateWaited = true;
            this.#stats.rateLimitWaits++;
          }
          this.#wake(now + this.#limiter.msUntilToken());
          break;
        }
        this.#ready.shift();
        void this.#attempt(job, connection);
      }
      this.#maybeOpen(now);
      this.#maybeIdle();
    } finally {
      this.#dispatching = false;
    }
  }

  #promoteDelayed(now: number): void {
    if (this.#delayed.length === 0) return;
    const still: Job[] = [];
    let next = Infinity;
    for (const job of this.#delayed) {
      if (job.state !== 'delayed') continue;
      if (job.notBefore <= now) {
        job.state = 'ready';
        this.#ready.push(job);
      } else {
        still.push(job);
        next = Math.min(next, job.notBefore);
      }
    }
    this.#delayed = still;
    if (next < Infinity) this.#wake(next);
  }

  /** An idle connection first (most recently used), else the least loaded one with room. */
  #pickConnection(now: number): PoolConnection | undefined {
    let idle: PoolConnection | undefined;
    let busy: PoolConnection | undefined;
    for (const connection of this.#connections) {
      if (!this.#usable(connection, now)) continue;
      if (connection.inFlight === 0) {
        if (!idle || connection.lastUsed > idle.lastUsed) idle = connection;
      } else if (connection.inFlight < this.#maxInFlight && (!busy || connection.inFlight < busy.inFlight)) {
        busy = connection;
      }
    }
    if (idle) return idle;
    // Prefer opening another connection while the busy ones are already pipelining.
    if (busy && busy.inFlight >= 2 && this.#canOpen(now) && this.#opening === 0) return undefined;
    return busy;
  }

  /** Whether a connection may take another send; retires it if it never will again. */
  #usable(connection: PoolConnection, now: number): boolean {
    if (connection.retiring || connection.checking) return false;
    if (!connection.alive) {
      this.#retire(connection, 'lost');
      return false;
    }
    if (connection.messages >= connection.messageLimit) {
      this.#retire(connection, 'max-messages');
      return false;
    }
    if (now - connection.createdAt >= connection.ageLimit) {
      this.#retire(connection, 'ttl');
      return false;
    }
    return true;
  }

  #canOpen(now: number): boolean {
    if (this.#destroyed) return false;
    // A retiring connection (finishing its last sends, then QUIT) does not
    // count: its replacement opens meanwhile, so the pool never stalls on a
    // retirement. Sockets (retiring ones included) stay below 2 × maxConnections.
    if (this.#activeConnections() + this.#opening >= this.#maxConnections) return false;
    if (this.#connections.size + this.#opening >= 2 * this.#maxConnections) return false;
    if (now < this.#connectBlockedUntil) {
      this.#wake(this.#connectBlockedUntil);
      return false;
    }
    return true;
  }

  /** Opens connections while ready jobs outnumber the room (one at a time after failures). */
  #maybeOpen(now: number): void {
    while (this.#ready.length > this.#opening && this.#canOpen(now)) {
      if (this.#connectFailures > 0 && this.#opening > 0) return;
      let room = 0;
      for (const connection of this.#connections) {
        if (!connection.retiring && !connection.checking && connection.alive && connection.inFlight === 0) room++;
      }
      if (room > 0) return;
      void this.#open();
    }
  }

  async #open(): Promise<void> {
    this.#opening++;
    const round = this.#connectRound;
    let connection: PoolConnection;
    try {
      const smtp: SMTPOptions = { ...this.#smtpOptions };
      const resume = this.options.tlsSessionResumption !== false;
      // Newest ticket first; a ticket is never handed to a second connection.
      const ticket = resume ? this.#tlsTickets.pop() : undefined;
      if (ticket) smtp.tls = { ...smtp.tls, session: ticket };
      connection = await PoolConnection.open({
        id: PoolConnection.newId(),
        smtp,
        implicitTls: Boolean(this.options.implicitTls),
        auth: this.options.auth,
        onTlsSession: resume ? (session) => this.#keepTicket(session) : undefined,
        signal: this.#lifetime.signal,
      });
    } catch (error) {
      this.#opening--;
      this.#onConnectFailure(error, round);
      return;
    }
    this.#opening--;
    if (this.#destroyed || (this.#closing && this.queued === 0 && this.#running === 0)) {
      void connection.quit();
      this.#dispatch();
      this.#checkClosed();
      return;
    }
    this.#connectFailures = 0;
    this.#connectRound++;
    this.#connectBlockedUntil = 0;
    // Staggered limits: each connection retires at 80-100 % of the configured ones.
    connection.messageLimit = jittered(this.#maxMessages, this.#random);
    connection.ageLimit = jittered(this.#ttl, this.#random);
    this.#connections.add(connection);
    this.#stats.connectionsOpened++;
    if (connection.tlsResumed) this.#stats.tlsResumed++;
    connection.onClose(() => this.#onConnectionClosed(connection));
    this.emit('connect', { id: connection.id, connectMs: connection.connectMs, secure: connection.smtp.isSecure, tlsResumed: connection.tlsResumed });
    this.#armIdle(connection);
    this.#dispatch();
  }

  /** Keeps a ticket for one later connection; the newest `2 × maxConnections` are enough. */
  #keepTicket(session: Buffer): void {
    if (this.#tlsTickets.some((t) => t.equals(session))) return;
    this.#tlsTickets.push(session);
    const keep = Math.min(64, 2 * this.#maxConnections);
    if (this.#tlsTickets.length > keep) this.#tlsTickets.splice(0, this.#tlsTickets.length - keep);
  }

  /**
   * A connection could not be opened. That is a fact about the destination,
   * not about a message: no send spends an attempt on it. A dead destination
   * (see classifyConnectFailure) fails every waiting send at once; one that
   * may come back is tried `connectAttempts` rounds in a row (opens started
   * together count as one round), with backoff, and then every waiting send
   * fails with the last error, unless a connection is still open to carry them.
   */
  #onConnectFailure(error: unknown, round: number): void {
    this.#stats.connectFailures++;
    this.#emitError(error);
    if (this.#destroyed) {
      this.#checkClosed();
      return;
    }
    if (round === this.#connectRound) {
      // The first failure of this round; the others of the same round add nothing.
      this.#connectRound++;
      this.#connectFailures++;
      const dead = classifyConnectFailure(error) === 'dead';
      if (dead || (this.#connectFailures >= this.#connectAttempts && !this.#hasLiveConnection())) {
        const tries = this.#connectFailures;
        this.#connectFailures = 0;
        this.#connectBlockedUntil = 0;
        for (const job of [...this.#ready.drain(), ...this.#delayed.splice(0)]) {
          if (job.state === 'ready' || job.state === 'delayed') this.#giveUp(job, error, { connectAttempts: tries });
        }
      } else {
        this.#connectBlockedUntil = performance.now() + backoffDelay(this.#connectFailures, this.#retry);
      }
    }
    this.#dispatch();
    this.#checkClosed();
  }

  #activeConnections(): number {
    let n = 0;
    for (const connection of this.#connections) if (!connection.retiring) n++;
    return n;
  }

  #hasLiveConnection(): boolean {
    for (const connection of this.#connections) if (connection.alive && !connection.retiring) return true;
    return false;
  }

  #onConnectionClosed(connection: PoolConnection): void {
    if (!this.#connections.delete(connection)) return;
    clearTimeout(connection.idleTimer);
    this.emit('disconnect', { id: connection.id, messages: connection.messages, reason: connection.retiring ? connection.retireReason ?? 'closed' : 'lost' });
    this.#dispatch();
    this.#checkClosed();
  }

  #retire(connection: PoolConnection, reason: DisconnectReason): void {
    if (!connection.retiring) {
      connection.retiring = true;
      connection.retireReason = reason;
    }
    clearTimeout(connection.idleTimer);
    if (connection.inFlight === 0 && !connection.checking) {
      if (connection.alive) void connection.quit();
      else connection.close();
    }
  }

  #armIdle(connection: PoolConnection): void {
    clearTimeout(connection.idleTimer);
    if (connection.inFlight > 0 || connection.retiring) return;
    connection.idleTimer = setTimeout(() => {
      if (connection.inFlight === 0) this.#retire(connection, 'idle');
    }, this.#idleTimeout);
    connection.idleTimer.unref?.();
  }

  // --- one attempt ------------------------------------------------------------

  async #attempt(job: Job, connection: PoolConnection): Promise<void> {
    const now = performance.now();
    job.state = 'running';
    this.#running++;
    job.startedAt ??= now;
    clearTimeout(connection.idleTimer);
    if (connection.inFlight === 0 && now - connection.lastUsed >= this.#noopAfterIdle) {
      connection.checking = true;
      connection.inFlight++;
      const ok = await connection.check(job.signal);
      connection.inFlight--;
      connection.checking = false;
      if (!ok) {
        // Nothing of this send was written: it goes back to the front, no attempt spent.
        this.#running--;
        this.#retire(connection, 'noop-failed');
        if (job.signal?.aborted) {
          this.#giveUp(job, new SMTPAbortError('aborted before the message was sent', { cause: job.signal.reason, deliveryStatus: 'not-delivered' }));
        } else {
          job.state = 'ready';
          this.#ready.unshift(job);
        }
        this.#dispatch();
        this.#checkClosed();
        return;
      }
    }
    job.attempts++;
    if (job.attempts > 1) this.#stats.retried++;
    connection.inFlight++;
    connection.messages++;
    // Its last send: retire it now (QUIT after that send), so that the
    // dispatch below opens the replacement while this one finishes.
    if (connection.messages >= connection.messageLimit) this.#retire(connection, 'max-messages');
    let result: DeliveryResult | undefined;
    let failure: unknown;
    try {
      result = await connection.deliver((smtp) => job.run(smtp, job.pending, job.signal));
    } catch (error) {
      failure = error;
    }
    connection.inFlight--;
    connection.lastUsed = performance.now();
    this.#running--;
    if (result) this.#onResult(job, result);
    else this.#onError(job, failure);
    if (!connection.alive) this.#retire(connection, 'lost');
    else if (connection.retiring || connection.messages >= connection.messageLimit) this.#retire(connection, connection.retireReason ?? 'max-messages');
    else if (performance.now() - connection.createdAt >= connection.ageLimit) this.#retire(connection, 'ttl');
    else this.#armIdle(connection);
    this.#dispatch();
    this.#checkClosed();
  }

  #onResult(job: Job, result: DeliveryResult): void {
    job.accepted.push(...result.accepted);
    job.reply = result.reply;
    const { transient, permanent } = partitionRefusals(result.refused);
    for (const [address, reply] of permanent) job.refused.set(address, reply);
    if (transient.size > 0 && this.#canRetry(job)) {
      job.pending = [...transient.keys()];
      this.#delay(job, performance.now());
      return;
    }
    for (const [address, reply] of transient) job.refused.set(address, reply);
    this.#succeed(job);
  }

  #onError(job: Job, error: unknown): void {
    const callerAborted = Boolean(job.signal?.aborted);
    if (error instanceof SMTPRecipientsRefused) {
      const { transient, permanent } = partitionRefusals(error.recipients);
      for (const [address, reply] of permanent) job.refused.set(address, reply);
      if (transient.size > 0 && this.#canRetry(job)) {
        job.pending = [...transient.keys()];
        this.#delay(job, performance.now());
        return;
      }
      for (const [address, reply] of transient) job.refused.set(address, reply);
      if (job.accepted.length > 0) this.#succeed(job);
      else {
        const refused = new SMTPRecipientsRefused(job.refused, { deliveryStatus: 'not-delivered', cause: error });
        this.#fail(job, transient.size > 0 && this.#blockedByReplay(job) ? notReplayable(refused) : refused);
      }
      return;
    }
    const verdict = classify(error, { retryUnknown: this.#retry.retryUnknown, callerAborted });
    if (verdict.retry && this.#canRetry(job)) {
      this.#delay(job, performance.now());
      return;
    }
    if (verdict.retry && this.#blockedByReplay(job)) error = notReplayable(error);
    this.#giveUp(job, error);
  }

  /**
   * Settles a send that will not be tried again. When an earlier attempt
   * already delivered it to some recipients (the others were refused with
   * 4xx and waited for a retry), it resolves with those, the rest listed as
   * refused (or unknown): rejecting would report delivered mail as not
   * delivered.
   */
  #giveUp(job: Job, error: unknown, fields?: { connectAttempts: number }): void {
    if (job.accepted.length > 0) {
      if (error instanceof SMTPException && error.deliveryStatus === 'unknown') job.unknown.push(...job.pending);
      else for (const address of job.pending) job.refused.set(address, replyOf(error));
      this.#succeed(job);
      return;
    }
    this.#fail(job, error, fields);
  }

  #canRetry(job: Job): boolean {
    return job.attempts < this.#retry.attempts && job.replayable && !job.signal?.aborted && !this.#destroyed;
  }

  /** It would be retried now, but its message (a one-shot stream) cannot be read again. */
  #blockedByReplay(job: Job): boolean {
    return !job.replayable && job.attempts < this.#retry.attempts && !job.signal?.aborted && !this.#destroyed;
  }

  #delay(job: Job, now: number): void {
    job.state = 'delayed';
    job.notBefore = now + backoffDelay(job.attempts, this.#retry);
    this.#delayed.push(job);
    this.#wake(job.notBefore);
  }

  #wake(at: number): void {
    if (at >= this.#wakeAt) return;
    clearTimeout(this.#wakeTimer);
    this.#wakeAt = at;
    this.#wakeTimer = setTimeout(() => {
      this.#wakeTimer = undefined;
      this.#wakeAt = Infinity;
      this.#dispatch();
    }, Math.max(0, Math.ceil(at - performance.now())));
  }

  // --- settling -----------------------------------------------------------------

  #timings(job: Job): PoolTimings {
    const end = performance.now();
    const started = job.startedAt ?? end;
    return { queuedMs: started - job.enqueuedAt, sendMs: end - started, totalMs: end - job.enqueuedAt };
  }

  #settle(job: Job): boolean {
    if (job.state === 'done') return false;
    job.state = 'done';
    if (job.signal && job.onAbort) job.signal.removeEventListener('abort', job.onAbort);
    return true;
  }

  #succeed(job: Job): void {
    if (!this.#settle(job)) return;
    this.#stats.sent++;
    const result: PoolSendResult = {
      accepted: job.accepted,
      refused: job.refused,
      reply: job.reply!,
      attempts: job.attempts,
      timings: this.#timings(job),
      unknown: job.unknown,
    };
    job.resolve(result);
    if (this.listenerCount('message') > 0) this.emit('message', { status: 'sent', result });
  }

  #fail(job: Job, error: unknown, fields?: { connectAttempts: number }): void {
    if (!this.#settle(job)) return;
    this.#stats.failed++;
    const annotated = withAttempts(error, job.attempts, fields);
    const timings = this.#timings(job);
    job.reject(annotated);
    if (this.listenerCount('message') > 0) this.emit('message', { status: 'failed', error: annotated, attempts: job.attempts, timings });
  }

  #abortWaiting(job: Job): void {
    if (job.state !== 'ready' && job.state !== 'delayed') return;
    // (A running send is aborted by the client through the same signal.)
    this.#giveUp(job, new SMTPAbortError('aborted before the message was sent', { cause: job.signal?.reason, deliveryStatus: 'not-delivered' }));
    this.#dispatch();
    this.#checkClosed();
  }

  #emitError(error: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', error instanceof Error ? error : new Error(String(error)));
  }

  #idleEmitted = false;
  #maybeIdle(): void {
    const idle = this.queued === 0 && this.#running === 0;
    if (idle && !this.#idleEmitted) {
      this.#idleEmitted = true;
      if (this.listenerCount('idle') > 0) queueMicrotask(() => this.emit('idle'));
    } else if (!idle) {
      this.#idleEmitted = false;
    }
  }

  // --- ending -------------------------------------------------------------------

  /** Finishes every queued send (retries included), then QUITs every connection. New sends are refused. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = new Promise<void>((resolve) => {
      this.#closingResolve = resolve;
    });
    this.#checkClosed();
    return this.#closing;
  }

  #checkClosed(): void {
    if (!this.#closingResolve || this.queued > 0 || this.#running > 0) return;
    if (this.#opening > 0) return; // #open() calls back here when it settles
    const connections = [...this.#connections];
    const resolve = this.#closingResolve;
    this.#closingResolve = undefined;
    clearTimeout(this.#wakeTimer);
    for (const connection of connections) connection.retiring = true;
    void Promise.all(connections.map((connection) => {
      connection.retireReason ??= 'closed';
      return connection.quit();
    })).then(() => resolve());
  }

  /** Fails every send not yet on the wire, closes every connection at once (in-flight sends fail with their connection). */
  destroy(error?: Error): void {
    if (this.#destroyed) return;
    this.#destroyed = error ?? new SMTPPoolError('ERR_SMTP_POOL_DESTROYED', 'the pool was destroyed');
    const reason = error ?? this.#destroyed;
    this.#lifetime.abort(reason); // connection opens under way end now, without waiting for their deadlines
    clearTimeout(this.#wakeTimer);
    this.#limiter?.cancel(reason);
    for (const job of [...this.#ready.drain(), ...this.#delayed.splice(0)]) {
      if (job.state === 'ready' || job.state === 'delayed') this.#giveUp(job, reason);
    }
    for (const connection of this.#connections) {
      connection.retiring = true;
      connection.retireReason ??= 'closed';
      connection.close();
    }
    if (this.#closingResolve) {
      const resolve = this.#closingResolve;
      this.#closingResolve = undefined;
      resolve();
    }
    this.#closing ??= Promise.resolve();
  }

  /** `await using pool = new SMTPPool(...)`: close() at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // --- observing ----------------------------------------------------------------

  stats(): PoolStats {
    let idle = 0;
    let busy = 0;
    for (const connection of this.#connections) {
      if (connection.inFlight > 0) busy++;
      else idle++;
    }
    return {
      connections: { open: this.#connections.size, idle, busy, opening: this.#opening },
      queued: this.queued,
      inFlight: this.#running,
      sent: this.#stats.sent,
      failed: this.#stats.failed,
      retried: this.#stats.retried,
      rateLimitWaits: this.#stats.rateLimitWaits,
      connectionsOpened: this.#stats.connectionsOpened,
      tlsResumed: this.#stats.tlsResumed,
      connectFailures: this.#stats.connectFailures,
    };
  }
}

function positive(name: string, value: number): number {
  if (!(value > 0)) throw new RangeError(`${name} must be > 0, got ${value}`);
  return value;
}

/** A limit drawn uniformly from [80 %, 100 %] of `limit` (never above it; a count stays >= 1). */
function jittered(limit: number, random: () => number): number {
  if (!Number.isFinite(limit)) return limit;
  const value = limit * (0.8 + 0.2 * random());
  return Number.isInteger(limit) ? Math.max(1, Math.min(limit, Math.ceil(value))) : value;
}

function positiveInteger(name: string, value: number): number {
  if (!(Number.isInteger(value) && value > 0)) throw new SMTPInvalidArgumentError(`${name} must be an integer > 0, got ${value}`);
  return value;
}

function nonNegative(name: string, value: number): number {
  if (!(value >= 0)) throw new RangeError(`${name} must be >= 0, got ${value}`);
  return value;
}

/** The reply an error stands for, for the refused map. */
function replyOf(error: unknown): Reply {
  if (error instanceof SMTPResponseException) {
    if (error.reply) return error.reply;
    if (error.smtpCode > 0) return syntheticReply(error.smtpCode, error.smtpError);
  }
  const message = error instanceof Error ? error.message : String(error);
  return syntheticReply(451, `4.4.0 not delivered: ${message}`);
}

/** A copy of the error (same class and fields) with `attempts`; errors can be shared between sends. */
function withAttempts(error: unknown, attempts: number, fields?: { connectAttempts: number }): unknown {
  if (!(error instanceof Error)) return error;
  const copy = Object.create(Object.getPrototypeOf(error)) as Error;
  for (const key of Reflect.ownKeys(error)) {
    Object.defineProperty(copy, key, Object.getOwnPropertyDescriptor(error, key)!);
  }
  Object.defineProperty(copy, 'attempts', { value: attempts, enumerable: true, writable: true, configurable: true });
  if (fields) Object.defineProperty(copy, 'connectAttempts', { value: fields.connectAttempts, enumerable: true, writable: true, configurable: true });
  // Errors raised before a transaction started (connect, EHLO, a connection
  // found closed) carry no deliveryStatus: nothing of the message was sent.
  if (copy instanceof SMTPException && !copy.deliveryStatus) copy.deliveryStatus = 'not-delivered';
  return copy;
}

/** A send's own dkim option checked once, at the call, rather than parsed again by every attempt. */
function withDkimSigner<T extends PoolSendOptions>(options: T): T {
  return options.dkim ? { ...options, dkim: toDkimSigner(options.dkim) } : options;
}
