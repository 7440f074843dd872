// MailQueue: the queue's API over a store (a spool directory by default).
//
//   const queue = await MailQueue.open({ dir: '/var/spool/myapp' });
//   const { id } = await queue.enqueue({ from, to, message }, { idempotencyKey: orderId });
//   const worker = queue.worker({ smtp: { host: 'relay.example', port: 587, auth } });
//   await worker.start();
//   const done = await queue.wait(id, { timeoutMs: 60_000 });

import { EventEmitter } from 'node:events';
import { envelopeFromHeaders, removeBccHeaders, type SerializableMessage } from 'smtplib';
import { QueueError, checkId } from './errors.js';
import { SpoolStore, type SpoolStoreOptions } from './spool/spool-store.js';
import type { EnqueueStreamInput, QueueStore } from './store.js';
import { QueueWorker, type QueueWorkerOptions, type WorkerStats } from './worker.js';
import type { PurgeOptions, RetentionOptions } from './retention.js';
import {
  isTerminal,
  type EnqueueInput,
  type EnqueueOptions,
  type EnqueueResult,
  type ListFilter,
  type QueueEvents,
  type QueueMessage,
  type QueueStats,
  type TransitionEvent,
} from './types.js';

export interface MailQueueOptions {
  /** A spool directory (created if missing). */
  dir?: string;
  /** Or any store (RedisStore, or your own implementation of QueueStore). */
  store?: QueueStore;
  spool?: SpoolStoreOptions;
  /**
   * How long finished messages are kept: the default `retention` of this queue's workers (see
   * QueueWorkerOptions.retention: 7 days for delivered and for failed ones; `false` keeps them for ever).
   */
  retention?: RetentionOptions | false;
}

export interface WaitOptions {
  /** Give up after this long (ms). Default 30 000. */
  timeoutMs?: number;
  /** How often to look when the change may come from another process. Default 100 ms. */
  pollMs?: number;
  signal?: AbortSignal;
}

export class MailQueue extends EventEmitter<QueueEvents> {
  readonly store: QueueStore;
  readonly #retention: RetentionOptions | false | undefined;
  #forward = (event: TransitionEvent): void => {
    this.emit('transition', event);
  };

  constructor(store: QueueStore, options: Pick<MailQueueOptions, 'retention'> = {}) {
    super();
    this.store = store;
    this.#retention = options.retention;
    store.on('transition', this.#forward);
  }

  /** Opens (and recovers) a queue. */
  static async open(options: MailQueueOptions): Promise<MailQueue> {
    const store = options.store ?? (options.dir ? new SpoolStore(options.dir, options.spool) : undefined);
    if (!store) throw new QueueError('ERR_QUEUE_INVALID', 'MailQueue.open needs `dir` (a spool directory) or `store`');
    await store.open();
    return new MailQueue(store, options.retention === undefined ? {} : { retention: options.retention });
  }

  /** Resolves with the id once the message is durable. */
  enqueue(input: EnqueueInput, options?: EnqueueOptions): Promise<EnqueueResult> {
    return this.store.enqueue(input, options);
  }

  /**
   * Enqueues a message object (smtplib-email's EmailMessage, or anything with
   * stream()), as sendMessage() would send it: the envelope from its headers
   * unless `from`/`to` are given, Bcc and Resent-Bcc removed from what is stored.
   * Only the header block is held in memory: the rest streams into a store
   * that has enqueueStream (the spool); a store without it gets the message
   * collected into one Buffer (RedisStore keeps a message as one value anyway).
   */
  async enqueueMessage(message: SerializableMessage, options: EnqueueOptions & { from?: string; to?: string | readonly string[] } = {}): Promise<EnqueueResult> {
    const { from, to, ...rest } = options;
    const source = message.stream()[Symbol.asyncIterator]();
    let stored: EnqueueStreamInput;
    try {
      const { header, after, ended } = await readHeaderBlock(source);
      const envelope = envelopeFromHeaders(header, { from, to });
      // What the message says it needs is stored with it, so every attempt declares it (SMTPUTF8, BODY=8BITMIME).
      const needs = message.smtpRequirements?.();
      const mailOptions = needs?.smtputf8 || needs?.eightBitMime
        ? { ...(needs.smtputf8 ? { smtputf8: true } : {}), ...(needs.eightBitMime ? { body: '8BITMIME' } : {}) }
        : undefined;
      stored = { from: envelope.from, to: envelope.to, message: messageStream(removeBccHeaders(header), after, ended ? undefined : source), ...(mailOptions ? { mailOptions } : {}) };
    } catch (error) {
      await source.return?.();
      throw error;
    }
    if (this.store.enqueueStream) return this.store.enqueueStream(stored, rest);
    const chunks: Buffer[] = [];
    for await (const chunk of stored.message) chunks.push(Buffer.from(chunk));
    return this.enqueue({ ...stored, message: Buffer.concat(chunks) }, rest);
  }

  get(id: string): Promise<QueueMessage | undefined> {
    return this.store.get(id);
  }

  list(filter?: ListFilter): Promise<QueueMessage[]> {
    return this.store.list(filter);
  }

  stats(): Promise<QueueStats> {
    return this.store.stats();
  }

  hold(id: string): Promise<boolean> {
    return this.store.hold(id);
  }

  release(id: string): Promise<boolean> {
    return this.store.release(id);
  }

  retry(id: string): Promise<boolean> {
    return this.store.retry(id);
  }

  delete(id: string): Promise<boolean> {
    return this.store.delete(id);
  }

  /**
   * Removes finished messages that finished before the cutoff, with their bodies and idempotency keys
   * (the key then enqueues a new message); returns how many. get() of a purged message gives
   * undefined and wait() rejects with ERR_QUEUE_NOT_FOUND, as for any unknown id. Workers do this
   * themselves for their retention; this is for an operator (`smtplib queue purge`).
   */
  purge(options: PurgeOptions): Promise<number> {
    return this.store.purge(options);
  }

  /** A worker on this queue (call start() or runUntilIdle()); its retention defaults to the queue's. */
  worker(options?: QueueWorkerOptions): QueueWorker {
    return new QueueWorker(this.store, this.#retention === undefined || options?.retention !== undefined ? options : { ...options, retention: this.#retention });
  }

  /**
   * Attempts every queued and deferred message now, and resolves when those
   * attempts have ended (messages that fail again are deferred as usual).
   */
  async flush(options?: QueueWorkerOptions): Promise<{ ids: string[]; stats: WorkerStats }> {
    const ids = await this.store.retryAll();
    const stats = await this.worker(options).runUntilIdle();
    return { ids, stats };
  }

  /** Resolves with the message once it is delivered, bounced or unknown; rejects after timeoutMs. */
  async wait(id: string, options: WaitOptions = {}): Promise<QueueMessage> {
    checkId(id);
    const timeoutMs = options.timeoutMs ?? 30_000;
    const pollMs = options.pollMs ?? 100;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = await this.store.get(id);
      if (!message) throw new QueueError('ERR_QUEUE_NOT_FOUND', `no message ${id} in the queue`, { messageId: id });
      if (isTerminal(message.state)) return message;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new QueueError('ERR_QUEUE_WAIT_TIMEOUT', `message ${id} is still ${message.state} after ${timeoutMs} ms (attempts: ${message.attempts}); wait longer or look at it with \`smtplib queue show ${id}\``, { messageId: id });
      }
      if (options.signal?.aborted) throw new QueueError('ERR_QUEUE_WAIT_TIMEOUT', `waiting for ${id} was aborted`, { messageId: id, cause: options.signal.reason });
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.off('transition', onEvent);
          options.signal?.removeEventListener('abort', done);
          resolve();
        };
        const onEvent = (event: TransitionEvent): void => {
          if (event.id === id) done();
        };
        const timer = setTimeout(done, Math.min(pollMs, left));
        this.on('transition', onEvent);
        options.signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  async close(): Promise<void> {
    this.store.off('transition', this.#forward);
    await this.store.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

const bytesOf = (chunk: Uint8Array | string): Buffer => (typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));

/**
 * Reads a message stream up to the end of its header block (the first empty
 * line, LF or CRLF: the rule of smtplib's findHeaderEnd, which the core does
 * not export): `header` with its blank line, `after` what the last chunk held
 * beyond it. A message without an empty line is all header (`ended`).
 */
async function readHeaderBlock(source: AsyncIterator<Uint8Array | string>): Promise<{ header: Buffer; after: Buffer; ended: boolean }> {
  let held: Buffer = Buffer.alloc(0);
  let lineStart = 0; // where the line being scanned starts
  for (;;) {
    const next = await source.next();
    if (next.done) return { header: held, after: Buffer.alloc(0), ended: true };
    held = held.length === 0 ? bytesOf(next.value) : Buffer.concat([held, bytesOf(next.value)]);
    for (let lf = held.indexOf(0x0a, lineStart); lf >= 0; lf = held.indexOf(0x0a, lineStart)) {
      const empty = lf === lineStart || (lf === lineStart + 1 && held[lineStart] === 0x0d);
      lineStart = lf + 1;
      if (empty) return { header: held.subarray(0, lineStart), after: held.subarray(lineStart), ended: false };
    }
  }
}

/** The stored message as a stream: the (Bcc-less) header block, the rest of its chunk, then the source's remaining chunks. */
async function* messageStream(header: Buffer, after: Buffer, source: AsyncIterator<Uint8Array | string> | undefined): AsyncGenerator<Uint8Array> {
  yield header;
  if (after.length > 0) yield after;
  if (!source) return;
  try {
    for (let next = await source.next(); !next.done; next = await source.next()) yield bytesOf(next.value);
  } finally {
    await source.return?.();
  }
}
