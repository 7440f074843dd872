// What a queue needs from where it keeps its messages. Two implementations:
// SpoolStore (a directory, the default) and RedisStore (BullMQ on Redis).
// Every store passes the same conformance suite (test/queue/conformance.ts).

import type { EventEmitter } from 'node:events';
import type { MessageFile } from 'smtplib';
import type { PurgeOptions } from './retention.js';
import type { RetrySchedule } from './schedule.js';
import type { EnqueueInput, EnqueueOptions, EnqueueResult, ListFilter, QueueEvents, QueueMessage, QueueStats, StoredMessage } from './types.js';

/** enqueue()'s input with the message as a stream of bytes. */
export interface EnqueueStreamInput extends Omit<EnqueueInput, 'message'> {
  message: AsyncIterable<Uint8Array>;
}

/**
 * A message's bytes for an attempt, as the worker hands them to the pool: in
 * memory (a small message, or a store whose values are whole anyway), or a
 * file the pool reads while it sends and reads again for each retry (it must
 * exist until the attempt's outcome is recorded).
 */
export type MessageBody = Buffer | MessageFile;

/** A message a worker now owns, until it calls finish() or unclaim(). */
export interface Claim {
  message: StoredMessage;
  /**
   * An earlier attempt recorded that it was about to write the end of data
   * and never recorded its outcome (its worker died): that attempt's
   * recipients may have the message.
   */
  interrupted: boolean;
}

export interface QueueStore extends EventEmitter<QueueEvents> {
  /** 'spool' or 'redis'. */
  readonly kind: string;
  /** Creates what is missing and recovers what crashed workers left. */
  open(): Promise<void>;
  close(): Promise<void>;

  /** Resolves once the message is durable. */
  enqueue(input: EnqueueInput, options?: EnqueueOptions): Promise<EnqueueResult>;
  /**
   * The same for a message read from a stream, stored as it arrives (memory: about one chunk), for
   * MailQueue.enqueueMessage. Optional: a store without it is given the message collected into one Buffer
   * (RedisStore: a message is one Redis value, so it is held whole anyway; Redis caps a value at 512 MB).
   */
  enqueueStream?(input: EnqueueStreamInput, options?: EnqueueOptions): Promise<EnqueueResult>;
  get(id: string): Promise<QueueMessage | undefined>;
  list(filter?: ListFilter): Promise<QueueMessage[]>;
  stats(): Promise<QueueStats>;
  /** Not attempted until released. False when the message is finished. Throws ERR_QUEUE_ACTIVE while an attempt runs. */
  hold(id: string): Promise<boolean>;
  release(id: string): Promise<boolean>;
  /** Due now; unknown and bounced recipients are queued again (an operator's decision). */
  retry(id: string): Promise<boolean>;
  delete(id: string): Promise<boolean>;
  /** Every pending (queued or deferred) message due now; returns their ids. */
  retryAll(): Promise<string[]>;
  /**
   * Removes finished messages (delivered, bounced, unknown; never queued, deferred, active or held)
   * that finished before the cutoff (isPurgeable), with their bodies and their idempotency keys (the
   * key can then enqueue a new message); returns how many. Memory and work per step are bounded
   * (a page of names or ids at a time), whatever the number of finished messages. Safe to run while
   * workers deliver and while another purge runs: each message is removed once. get() of a purged
   * message gives undefined, like any unknown id.
   */
  purge(options: PurgeOptions): Promise<number>;
  /**
   * Takes the queue-wide turn to purge for `everyMs`: true for one caller per `everyMs` among all
   * processes sharing the store (retention runs in one worker at a time). Only a saving: purges that
   * race are safe.
   */
  takePurgeTurn(everyMs: number): Promise<boolean>;

  // --- workers ---------------------------------------------------------------
  /**
   * Registers a worker; returns its id (its claims are recovered if it dies). `writingNotes`: the
   * worker calls markWriting before every end of data it writes (QueueWorker does, where the store
   * has markWriting); only such a worker's notes are trusted by recovery.
   */
  registerWorker(options?: { writingNotes?: boolean }): Promise<string>;
  unregisterWorker(worker: string): Promise<void>;
  /** Claims up to `limit` due messages, highest priority first; no two workers ever claim the same message. */
  claim(worker: string, limit: number): Promise<Claim[]>;
  body(id: string): Promise<MessageBody>;
  /** Records that attempt `attempt` of message `id` is about to write its end of data (batched: one round trip per group of calls). */
  markCommitting(worker: string, id: string, attempt: number): Promise<void>;
  /**
   * Optional. Called synchronously just before the write that carries the end of data of a marked
   * attempt (smtplib's beforeCommitSync), so that after a crash a marked attempt that never got here
   * is known not to have been delivered and is given back instead of left `unknown`. Only for a
   * worker registered with `writingNotes`, which promises a note before EVERY end of data it writes
   * (a worker without that option, and any worker whose notes are not trusted, leaves every marked,
   * unfinished attempt `unknown`). Must be cheap (no wait for a disk or a network); throws when the
   * note cannot be made (the end of data is then not written). SpoolStore notes it in the page
   * cache, trusted after a process crash on the same machine.
   */
  markWriting?(worker: string, id: string, attempt: number): void;
  /** Stores the message after an attempt and gives up the claim. */
  finish(worker: string, message: StoredMessage): Promise<void>;
  /** Gives up a claim without an attempt. */
  unclaim(worker: string, id: string): Promise<void>;
  /** Reclaims messages of dead workers; returns how many were given back or settled. */
  recover(options?: { retryUnknown?: boolean; schedule?: RetrySchedule }): Promise<number>;
  /** When the next pending message is due (ms since the epoch), or undefined when none is. */
  nextDueAt(): Promise<number | undefined>;
}
