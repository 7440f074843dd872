// A worker: claims due messages from a store and delivers them through one
// SMTPPool, recording every attempt. Many workers (in one process or many)
// can share a store; a claim is only ever won by one of them.
//
// Delivery semantics across crashes: before messages are handed to the pool,
// the store records for each "attempt n is about to write the end of data"
// (markCommitting, one store round trip for all handed off in one turn; at
// most markAhead at a time, all claimed ones by default). A
// claim found with that mark and no recorded outcome was interrupted: its
// recipients become 'unknown' and are not sent again unless retryUnknown.
// (Marking before the pool takes the message, rather than in the pool's
// beforeCommit hook, lets each message ride whole - MAIL, RCPT, BDAT LAST and
// the body in one write - and queued messages chain behind it: one SMTP round
// trip per message instead of two plus a store round trip. The cost: a worker
// killed between the mark and the end of data leaves those messages (at most
// markAhead) 'unknown' although they were not sent - never a duplicate -
// unless its store notes, synchronously and in the pool's beforeCommitSync,
// which attempts began their end of data (markWriting; the spool does, and
// trusts its notes after a process crash on the same machine): those without
// a note are given back, not left 'unknown'.)
// Accepted recipients are never sent again; transiently refused ones are
// retried alone on the schedule.

import { EventEmitter } from 'node:events';
import { SMTPPool, statusCatalogue, type SMTPPoolOptions, type StatusCatalogue } from 'smtplib';
import { applyAttempt, applyInterrupted, pendingRecipients, restingState, type AttemptRecord } from './record.js';
import { fromError, fromResult } from './outcome.js';
import { resolveSchedule, type ResolvedSchedule, type RetrySchedule } from './schedule.js';
import { resolveRetention, retentionCutoffs, type ResolvedRetention, type RetentionOptions } from './retention.js';
import type { Claim, MessageBody, QueueStore } from './store.js';
import { QueueError } from './errors.js';
import type { StoredMessage } from './types.js';

/** Tries to record an attempt's outcome before giving up (about a minute of backoff). */
const FINISH_TRIES = 40;

export interface QueueWorkerOptions {
  /**
   * Where to deliver (a relay / smarthost): SMTPPool options. The worker makes and closes its own pool.
   * Its maxInFlightPerConnection defaults to 1 here: each message still goes in one write (MAIL, RCPT,
   * BDAT LAST and the body: one round trip), and a lost connection leaves at most one message unknown.
   * More lets whole messages chain on a connection (fewer round trips at high latency), and a lost
   * connection then leaves every message whose end of data it carried unknown.
   */
  smtp?: SMTPPoolOptions;
  /**
   * Or a pool you made; the worker does not close it. Its retry options should be `{ attempts: 1 }`
   * (the queue schedules retries). It must run each send's `beforeCommitSync` (an SMTPPool does): with
   * a store that takes writing notes the worker promises one before every end of data.
   */
  pool?: SMTPPool;
  /** Messages claimed at once. Default: maxConnections × 10 (50). */
  concurrency?: number;
  /**
   * How many claimed messages may be marked "about to write the end of data" and handed to the
   * pool at once. Default: all of them (concurrency): marks then go in large batches, and the pool
   * always has the next message ready. A worker killed with SIGKILL leaves every message it had
   * marked and not finished `unknown` (never resent), so fewer means fewer such unknowns after a
   * crash, at some throughput (each mark's round trip then sits before fewer sends). With a store
   * that notes which attempts began their end of data (SpoolStore: markWriting), a process crash on
   * the same machine leaves `unknown` only those; the rest go back to the queue.
   */
  markAhead?: number;
  /** Retry schedule; Postfix's by default (300 s doubling to 4000 s, bounce after 5 days). */
  schedule?: RetrySchedule;
  /** Resend recipients whose delivery is unknown (risking a duplicate). Default false. */
  retryUnknown?: boolean;
  /** How often to look for due messages when idle. Default 500 ms. */
  pollIntervalMs?: number;
  /** How often to look for dead workers' claims. Default 5000 ms. */
  recoverIntervalMs?: number;
  /** Reads replies; default smtplib's statusCatalogue. */
  catalogue?: StatusCatalogue;
  /**
   * How long finished messages are kept before this worker purges them (store.purge): delivered
   * ones and failed (bounced, unknown) ones 7 days by default, looked at once a minute by one worker
   * of all those sharing the store (store.takePurgeTurn). The purge runs beside the loop, never
   * in a claim or an attempt. `false` (or Infinity for both) keeps finished messages for ever.
   */
  retention?: RetentionOptions | false;
}

export interface AttemptEvent {
  id: string;
  attempt: number;
  /** The message after the attempt. */
  message: StoredMessage;
  durationMs: number;
}

export interface WorkerStats {
  attempts: number;
  delivered: number;
  deferred: number;
  bounced: number;
  unknown: number;
  inFlight: number;
}

export interface QueueWorkerEvents {
  attempt: [AttemptEvent];
  error: [Error];
}

export class QueueWorker extends EventEmitter<QueueWorkerEvents> {
  readonly store: QueueStore;
  readonly #pool: SMTPPool;
  readonly #ownsPool: boolean;
  readonly #concurrency: number;
  readonly #schedule: ResolvedSchedule;
  readonly #retryUnknown: boolean;
  readonly #pollMs: number;
  readonly #recoverMs: number;
  readonly #catalogue: StatusCatalogue;
  readonly #retention: ResolvedRetention | undefined;
  #lastPurge = 0;
  /** The purge running beside the loop, if one is (see #retain). */
  #purging: Promise<void> | undefined;
  /** Aborted by stop(): a purge of a large backlog ends at its next page, not when it is done. */
  readonly #stopPurge = new AbortController();
  readonly #handOffLimit: number;
  /** Claims wait until this many slots are free (see #loop). */
  readonly #refillAt: number;
  #handedOff = 0;
  readonly #handOffWaiters: (() => void)[] = [];
  #id: string | undefined;
  #inFlight = new Set<Promise<void>>();
  #running: Promise<void> | undefined;
  #stopping = false;
  #wake: (() => void) | undefined;
  #lastRecover = 0;
  #stats: WorkerStats = { attempts: 0, delivered: 0, deferred: 0, bounced: 0, unknown: 0, inFlight: 0 };
  readonly #onTransition = (event: { to: string }): void => {
    if (event.to === 'queued' || event.to === 'deferred') this.#wake?.();
  };

  constructor(store: QueueStore, options: QueueWorkerOptions = {}) {
    super();
    this.store = store;
    if (options.pool) {
      this.#pool = options.pool;
      this.#ownsPool = false;
    } else {
      this.#pool = new SMTPPool({ maxInFlightPerConnection: 1, ...options.smtp, retry: { ...options.smtp?.retry, attempts: 1 } });
      this.#ownsPool = true;
    }
    const smtp = options.smtp ?? {};
    this.#concurrency = options.concurrency ?? (smtp.maxConnections ?? 5) * 10;
    if (!(this.#concurrency >= 1)) throw new RangeError(`concurrency must be >= 1, got ${options.concurrency}`);
    this.#refillAt = Math.max(1, Math.ceil(this.#concurrency / 4));
    this.#handOffLimit = options.markAhead ?? this.#concurrency;
    if (!(this.#handOffLimit >= 1)) throw new RangeError(`markAhead must be >= 1, got ${options.markAhead}`);
    this.#schedule = resolveSchedule(options.schedule);
    this.#retryUnknown = Boolean(options.retryUnknown);
    this.#pollMs = options.pollIntervalMs ?? 500;
    this.#recoverMs = options.recoverIntervalMs ?? 5000;
    this.#catalogue = options.catalogue ?? statusCatalogue;
    this.#retention = resolveRetention(options.retention);
    this.#pool.on('error', () => undefined); // connection failures are recorded per message
  }

  /** This worker's id in the store (after start()). */
  get id(): string | undefined {
    return this.#id;
  }

  get pool(): SMTPPool {
    return this.#pool;
  }

  stats(): WorkerStats {
    return { ...this.#stats, inFlight: this.#inFlight.size };
  }

  /** Starts the loop; resolves once the worker is registered. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#id = await this.#register();
    this.store.on('transition', this.#onTransition);
    this.#running = this.#loop(false);
  }

  /** Runs until nothing is due and nothing is in flight, then stops. Resolves with the stats. */
  async runUntilIdle(): Promise<WorkerStats> {
    if (this.#running) throw new Error('runUntilIdle() on a worker that is already running');
    this.#id = await this.#register();
    this.#running = this.#loop(true);
    await this.#running;
    await this.#shutdown();
    return this.stats();
  }

  /** Stops claiming, lets attempts in flight finish, gives up the registration (and closes its own pool). */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#stopPurge.abort();
    this.#wake?.();
    await this.#running;
    await this.#shutdown();
  }

  async #shutdown(): Promise<void> {
    this.store.off('transition', this.#onTransition);
    if (this.#ownsPool) await this.#pool.close();
    if (this.#id) await this.store.unregisterWorker(this.#id);
  }

  async #loop(untilIdle: boolean): Promise<void> {
    const worker = this.#id!;
    while (!this.#stopping) {
      const now = Date.now();
      if (now - this.#lastRecover >= this.#recoverMs) {
        this.#lastRecover = now;
        await this.store.recover({ retryUnknown: this.#retryUnknown, schedule: this.#schedule }).catch((error) => this.#error(error));
      }
      if (this.#retention && !this.#purging && now - this.#lastPurge >= this.#retention.intervalMs) {
        this.#lastPurge = now;
        this.#purging = this.#retain(this.#retention).catch((error) => this.#error(error)).finally(() => (this.#purging = undefined));
      }
      const room = this.#concurrency - this.#inFlight.size;
      let claimed = 0;
      // Claims are made in batches of at least a quarter of the concurrency (while the other three
      // quarters still keep the pool busy), not one claim per finished message: each claim, and the
      // batch of end-of-data marks it leads to, costs directory syncs and a turn of its own.
      if (room >= this.#refillAt) {
        let claims: Claim[] = [];
        try {
          claims = await this.store.claim(worker, room);
        } catch (error) {
          this.#error(error);
        }
        claimed = claims.length;
        for (const task of this.#processGroup(worker, claims)) {
          const tracked = task.catch((error) => this.#error(error));
          this.#inFlight.add(tracked);
          void tracked.finally(() => {
            this.#inFlight.delete(tracked);
            this.#wake?.();
          });
        }
      }
      if (untilIdle && claimed === 0 && this.#inFlight.size === 0) break;
      if (claimed > 0 && this.#inFlight.size < this.#concurrency) continue;
      await this.#sleep(claimed === 0 && this.#inFlight.size === 0 ? await this.#idleDelay() : this.#pollMs);
    }
    await Promise.all(this.#inFlight);
    // Run until idle (`queue flush`, `queue run`): the queue being idle ends the run, not a purge of a
    // long done/ that started beside it (stopped at its next page; the next run's purge goes on).
    if (untilIdle) this.#stopPurge.abort();
    await this.#purging;
  }

  /**
   * Purges what the retention no longer keeps, when this worker gets the queue's turn: not awaited by
   * the loop (claims and attempts go on meanwhile), one at a time per worker, awaited before it stops.
   */
  async #retain(retention: ResolvedRetention): Promise<void> {
    if (!(await this.store.takePurgeTurn(retention.intervalMs))) return;
    await this.store.purge({ ...retentionCutoffs(retention, Date.now()), signal: this.#stopPurge.signal });
  }

  async #idleDelay(): Promise<number> {
    const next = await this.store.nextDueAt().catch(() => undefined);
    if (next === undefined) return this.#pollMs;
    return Math.max(0, Math.min(this.#pollMs, next - Date.now()));
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    });
  }

  /**
   * One task per claimed message. The group's bodies are read and its marks
   * written together (the store batches calls made in one turn into one round
   * trip), then every message goes to the pool at once, so the pool can
   * pipeline them.
   */
  #processGroup(worker: string, claims: readonly Claim[]): Promise<void>[] {
    return claims.map((claim) => this.#process(worker, claim));
  }

  async #process(worker: string, claim: Claim): Promise<void> {
    let message = claim.message;
    const startedAt = Date.now();
    if (claim.interrupted) {
      message = applyInterrupted(message, startedAt, this.#schedule, this.#retryUnknown);
      if (!this.#retryUnknown || pendingRecipients(message).length === 0) {
        await this.#record(worker, message, startedAt);
        return;
      }
    }
    const pending = pendingRecipients(message);
    if (pending.length === 0) {
      await this.#finish(worker, message);
      return;
    }
    const attempt = message.attempts + 1;
    const id = message.id;
    let record: AttemptRecord;
    let body: MessageBody; // in memory or a re-readable file: the pool takes either as it is
    await this.#handOff();
    try {
      try {
        // Both in this turn for every message handed off in it: one store round trip each.
        [body] = await Promise.all([this.store.body(id), this.store.markCommitting(worker, id, attempt)]);
      } catch (error) {
        this.#handedBack();
        throw error;
      }
    } catch (error) {
      if (error instanceof QueueError && error.code === 'ERR_QUEUE_CLAIM_LOST') {
        this.#error(error); // another worker owns it now: nothing was sent, nothing to record
        return;
      }
      // Nothing was written to the server: the attempt did not happen.
      const text = error instanceof Error ? error.message : String(error);
      record = { decisions: pending.map((address) => ({ address, result: 'deferred', kind: 'transient', advice: `the store could not record the attempt, nothing was sent: ${text}` })), startedAt, error: text };
      message = applyAttempt(message, record, Date.now(), this.#schedule);
      await this.#record(worker, message, startedAt);
      return;
    }
    try {
      // A store that can note which marked attempts reached their end of data (the spool) is told
      // just before that write; no options object otherwise for a message without MAIL or RCPT
      // parameters (most): the pool then has none to parse.
      const store = this.store;
      const noteWriting = store.markWriting ? () => store.markWriting!(worker, id, attempt) : undefined;
      // (The pool copies only the options given: an undefined one is as if left out.)
      const result = await (message.mailOptions || message.rcptOptions || noteWriting
        ? this.#pool.sendmail(message.from, pending, body, { mailOptions: message.mailOptions as never, rcptOptions: message.rcptOptions as never, beforeCommitSync: noteWriting })
        : this.#pool.sendmail(message.from, pending, body));
      record = fromResult(result, pending, startedAt, this.#catalogue, this.#retryUnknown);
    } catch (error) {
      record = fromError(error, pending, startedAt, this.#catalogue, this.#retryUnknown);
    } finally {
      this.#handedBack();
    }
    message = applyAttempt(message, record, Date.now(), this.#schedule);
    await this.#record(worker, message, startedAt);
  }

  /** Registers with the store; as a worker that notes every end of data it writes, where the store takes notes (see #process). */
  #register(): Promise<string> {
    return this.store.markWriting ? this.store.registerWorker({ writingNotes: true }) : this.store.registerWorker();
  }

  /** Waits until the message may be marked and given to the pool (markAhead); those freed in one turn are marked in one batch. */
  #handOff(): Promise<void> {
    if (this.#handedOff < this.#handOffLimit) {
      this.#handedOff++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#handOffWaiters.push(resolve));
  }

  #handedBack(): void {
    const next = this.#handOffWaiters.shift();
    if (next) next(); // the slot passes on
    else this.#handedOff--;
  }

  async #record(worker: string, message: StoredMessage, startedAt: number): Promise<void> {
    await this.#finish(worker, message);
    this.#stats.attempts++;
    const state = restingState(message);
    if (state === 'delivered' || state === 'bounced' || state === 'unknown' || state === 'deferred') this.#stats[state]++;
    if (this.listenerCount('attempt') > 0) this.emit('attempt', { id: message.id, attempt: message.attempts, message, durationMs: Date.now() - startedAt });
  }

  /**
   * Records an attempt, trying again while the store is unreachable (a Redis
   * restart): the outcome must not be lost, and giving the claim back
   * instead could resend a message that was accepted.
   */
  async #finish(worker: string, message: StoredMessage): Promise<void> {
    for (let tries = 1; ; tries++) {
      try {
        await this.store.finish(worker, message);
        return;
      } catch (error) {
        // Another worker owns the message now (this one was taken for dead): its record wins.
        if (error instanceof QueueError && error.code === 'ERR_QUEUE_CLAIM_LOST') {
          this.#error(error);
          return;
        }
        if (tries >= FINISH_TRIES) throw error;
        this.#error(error);
        await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** tries)));
      }
    }
  }

  #error(error: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', error instanceof Error ? error : new Error(String(error)));
  }
}
