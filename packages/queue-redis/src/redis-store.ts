// The distributed store: BullMQ on Redis. Any number of worker processes on
// any number of machines share one queue; BullMQ gives the claims (a job is
// locked by one worker's token, and a lock that stops being renewed - a dead
// worker - is taken back by its stalled-job check), the due times (delayed
// jobs), priorities and one global rate limit (its limiter lives in Redis).
// This store keeps the rest next to it, in its own keys:
//
//   {p}:msg:{id}        hash: json (the StoredMessage), body, worker (the claimer, while active)
//   {p}:ids             zset of every message id by creation time (list, stats)
//   {p}:due             zset of pending, not held, not claimed message ids by next attempt time
//   {p}:active          zset of claimed message ids by claim time
//   {p}:held            set of held ids (a held message has no BullMQ job)
//   {p}:idem:{sha256}   an idempotency key's message id (SET NX: one winner); no expiry: it goes
//                       with its message (purge), so a key's window is the message's retention
//   {p}:marks:{id}      set of claim tokens whose attempt is about to write (or wrote) the
//                       end of data and has not recorded its outcome (see markCommitting)
//   {p}:worker:{id}     a live worker's heartbeat (expires)
//   {p}:dest:{domain}   zset of claims holding a per-destination slot, by lease expiry
//   {p}:orphan-scan     taken (SET NX, a minute to live) by the worker that looks for
//                       messages with no BullMQ job this minute (see recover)
//   {p}:purge-turn      taken (SET NX PX) by the worker that purges finished messages for the
//                       whole queue this turn (see takePurgeTurn, purge)
//
// A finished message keeps its msg hash (without its body when delivered) and its place in ids
// until purge() removes them, with its idempotency key: workers do it for their retention (MailQueue
// option `retention`, 7 days by default), `smtplib queue purge` on demand.
//
// The BullMQ job of a message has the message id as its job id and carries
// nothing else. Durability is Redis's: run it with appendonly yes and
// appendfsync always for "durable before enqueue resolves" (docs/queue.md).

import { EventEmitter } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import { Job, Queue, Worker, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import {
  QueueError,
  applyInterrupted,
  emptyCounts,
  isPurgeable,
  isTerminal,
  purgeCutoffs,
  pendingRecipients,
  resolveSchedule,
  restingState,
  view,
  type Claim,
  type EnqueueInput,
  type EnqueueOptions,
  type EnqueueResult,
  type ListFilter,
  type QueueEvents,
  type QueueMessage,
  type QueueState,
  type QueueStats,
  type QueueStore,
  type PurgeOptions,
  type RetrySchedule,
  type StoredMessage,
  type TransitionEvent,
} from 'smtplib-queue';
import { TurnBatch, checkId, latestCutoff, newRecord, requeue } from 'smtplib-queue/internal';

export interface RedisStoreOptions {
  /** redis://host:port/db (default redis://127.0.0.1:6379). */
  url?: string;
  /** Key prefix and BullMQ queue name. Default 'smtplibq'. */
  prefix?: string;
  /** One rate limit for every worker of this queue, anywhere: at most `max` messages per `durationMs`. */
  rateLimit?: { max: number; durationMs: number };
  /** Claims at once per recipient domain, across all workers: { 'example.com': 2, '*': 10 }. */
  destinationLimits?: Record<string, number>;
  /** A claim whose worker stops renewing it for this long is given to another worker. Default 30 000 ms. */
  lockDurationMs?: number;
  /** How often workers look for such claims. Default lockDurationMs / 2. */
  stalledIntervalMs?: number;
  /** How long open() waits for Redis to answer (it keeps reconnecting meanwhile). Default 30 000 ms. */
  connectTimeoutMs?: number;
}

interface Held {
  job: Job;
  token: string;
  slots: string[];
}

/** A job this worker locked and has not claimed yet. */
interface Fetched {
  job: Job;
  token: string;
  /** Fetched with a completion: locked with the finished job's token, to be replaced when claimed. */
  chained?: true;
}

interface WorkerEntry {
  bull: Worker;
  jobs: Map<string, Held>;
  /**
   * Jobs BullMQ handed over with a completion (moveToCompleted's fetchNext: the
   * next job comes back in the same script call), locked with the finished
   * job's token and not yet claimed; claim() takes these first.
   */
  fetched: Fetched[];
  /** Set by unregisterWorker: no more fetching ahead. */
  closing: boolean;
  timer: NodeJS.Timeout;
  seq: number;
}

/** An end-of-data mark asked for (see markCommitting). */
interface Mark { key: string; lock: string; token: string; resolve(): void; reject(error: unknown): void }
/** An outcome asked for (see #outcome): its keys and arguments in FINISH_IF_OWNED. */
interface Outcome { keys: string[]; args: (string | number)[]; resolve(result: [number, string | null]): void; reject(error: unknown): void }

/** Our Lua scripts, loaded once per connection and run by EVALSHA (EVAL sent each script's text, ~1 KB, every call). */
type ScriptCall = (numKeys: number, ...args: (string | number | Buffer)[]) => Promise<unknown>;
interface Scripts {
  /** The claim script with Buffer replies (ioredis makes the variant for every defined command): bodies stay bytes. */
  smtplibqClaimBuffer: ScriptCall;
  smtplibqMark: ScriptCall;
  smtplibqFinish: ScriptCall;
  smtplibqTakeSlots: ScriptCall;
  smtplibqEnqueue: ScriptCall;
  smtplibqUnclaim: ScriptCall;
  smtplibqPurge: ScriptCall;
  smtplibqReleaseKey: ScriptCall;
}

/** How often, at most, some worker of the queue looks for pending messages with no BullMQ job (recover()). */
const ORPHAN_SCAN_MS = 60_000;

/** How many fetched-ahead jobs a worker keeps at most (each holds a lock until claimed). */
const MAX_FETCHED = 64;

/** Ids read (and messages removed, by one script call) per step of a purge: its memory is this many records. */
const PURGE_PAGE = 500;

export class RedisStore extends EventEmitter<QueueEvents> implements QueueStore {
  readonly kind = 'redis';
  readonly prefix: string;
  readonly #url: string;
  readonly #options: RedisStoreOptions;
  readonly #lockMs: number;
  readonly #connectTimeoutMs: number;
  #redis: Redis | undefined;
  #queue: Queue | undefined;
  readonly #workers = new Map<string, WorkerEntry>();
  readonly #marks = new TurnBatch<Mark>((batch) => this.#flushMarks(batch));
  #lastOrphanScan = 0;
  /** Bodies read with their claims, until the attempt is recorded. */
  readonly #bodies = new Map<string, Buffer>();
  #closed = false;
  /** Round trips to Redis made by markCommitting (for tests: one per batch). */
  markRoundTrips = 0;
  readonly #outcomes = new TurnBatch<Outcome>((batch) => this.#flushOutcomes(batch));
  /** Round trips to Redis made by finish (for tests: one per batch of outcomes asked for in one turn). */
  outcomeRoundTrips = 0;

  constructor(options: RedisStoreOptions = {}) {
    super();
    this.#options = options;
    this.#url = options.url ?? 'redis://127.0.0.1:6379';
    this.prefix = options.prefix ?? 'smtplibq';
    if (!/^[A-Za-z0-9_.-]+$/.test(this.prefix)) throw new RangeError(`prefix must be letters, digits, _ . -; got ${JSON.stringify(this.prefix)}`);
    this.#lockMs = options.lockDurationMs ?? 30_000;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 30_000;
  }

  #k(...parts: string[]): string {
    return [this.prefix, ...parts].join(':');
  }

  /** Where an idempotency key lives: {p}:idem:{sha256 of the key} (any key, of any length, is one safe name). */
  #idemKey(key: string): string {
    return this.#k('idem', createHash('sha256').update(key).digest('hex'));
  }

  get #r(): Redis {
    if (!this.#redis || this.#closed) throw new QueueError('ERR_QUEUE_CLOSED', 'the Redis queue store is not open');
    return this.#redis;
  }

  get #scripts(): Scripts {
    return this.#r as unknown as Scripts;
  }

  #connection(): ConnectionOptions {
    const url = new URL(this.#url);
    return {
      host: url.hostname || '127.0.0.1',
      port: Number(url.port || 6379),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      db: Number(url.pathname.slice(1) || 0),
      maxRetriesPerRequest: null,
    };
  }

  async open(): Promise<void> {
    this.#redis = new Redis({ ...(this.#connection() as object), lazyConnect: true, maxRetriesPerRequest: 20 } as never);
    this.#redis.on('error', (error) => this.#error(error));
    // ioredis runs a defined command by EVALSHA, and by EVAL when Redis lost its script cache (a restart).
    this.#redis.defineCommand('smtplibqClaim', { lua: CLAIM_IF_OWNED });
    this.#redis.defineCommand('smtplibqMark', { lua: MARK_IF_OWNED });
    this.#redis.defineCommand('smtplibqFinish', { lua: FINISH_IF_OWNED });
    this.#redis.defineCommand('smtplibqTakeSlots', { lua: TAKE_SLOTS });
    this.#redis.defineCommand('smtplibqEnqueue', { lua: ENQUEUE });
    this.#redis.defineCommand('smtplibqUnclaim', { lua: UNCLAIM_IF_OWNED });
    this.#redis.defineCommand('smtplibqPurge', { lua: PURGE_FINISHED });
    this.#redis.defineCommand('smtplibqReleaseKey', { lua: RELEASE_KEY });
    await this.#connected(this.#redis);
    this.#queue = new Queue(this.prefix, { connection: this.#connection() });
    this.#queue.on('error', (error) => this.#error(error));
    await this.#queue.waitUntilReady();
    await this.recover();
  }

  /**
   * Waits until Redis answers. ioredis's connect() fails as soon as one attempt
   * is refused, but a worker (re)started while Redis restarts should wait for it,
   * as its reconnects do, not die; it gives up after connectTimeoutMs.
   */
  async #connected(redis: Redis): Promise<void> {
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        redis.off('ready', onReady);
        reject(new QueueError('ERR_QUEUE_STORE', `Redis at ${this.#where()} did not answer within ${this.#connectTimeoutMs} ms; is redis-server running and reachable?`));
      }, this.#connectTimeoutMs);
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      redis.once('ready', onReady);
    });
    // The first attempt's own failure is not final: ioredis keeps reconnecting and 'ready' settles it.
    redis.connect().catch(() => undefined);
    try {
      await ready;
    } catch (error) {
      redis.disconnect();
      throw error;
    }
  }

  #where(): string {
    const url = new URL(this.#url);
    return `${url.hostname || '127.0.0.1'}:${url.port || 6379}`;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    for (const worker of [...this.#workers.keys()]) await this.unregisterWorker(worker);
    this.#closed = true;
    await this.#queue?.close();
    await this.#redis?.quit().catch(() => undefined);
  }

  #error(error: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', error instanceof Error ? error : new Error(String(error)));
  }

  /** `event` is the caller's own new object: `at` is set on it (a spread copy with one more property cost V8 ~2.5 us, twice per message). */
  #emit(event: Omit<TransitionEvent, 'at'>): void {
    const full = event as TransitionEvent;
    full.at = Date.now();
    this.emit('transition', full);
  }

  #addJob(message: StoredMessage): Promise<unknown> {
    return this.#queue!.add('message', { id: message.id }, {
      jobId: message.id,
      delay: Math.max(0, message.nextAttemptAt - Date.now()),
      // BullMQ: 1 is the highest priority; ours: 9 is.
      priority: 10 - message.priority,
      removeOnComplete: true,
      removeOnFail: true,
    });
  }

  // --- enqueue -------------------------------------------------------------------

  async enqueue(input: EnqueueInput, options: EnqueueOptions = {}): Promise<EnqueueResult> {
    const now = Date.now();
    const { record: stored, body } = newRecord(input, options, now);
    const id = stored.id;
    // One script writes the message, its idempotency key and its place in
    // ids and due, all or nothing; then BullMQ adds its job. Two round trips,
    // each waiting for Redis's fsync (appendfsync always), where separate
    // writes waited for three (four with a key). A stop between the two leaves a pending message
    // with no job: recover() gives it one.
    const keys = [this.#k('msg', id), this.#k('ids'), this.#k('due')];
    if (options.idempotencyKey !== undefined) keys.push(this.#idemKey(options.idempotencyKey));
    const existing = (await this.#scripts.smtplibqEnqueue(keys.length, ...keys, JSON.stringify(stored), body, id, now, stored.nextAttemptAt)) as string | null;
    if (existing !== null) return { id: existing, created: false };
    await this.#addJob(stored);
    this.#emit({ id, from: 'new', to: 'queued' });
    return { id, created: true };
  }

  // --- reading -------------------------------------------------------------------

  async #load(id: string): Promise<{ message: StoredMessage; worker?: string } | undefined> {
    const [json, worker] = await this.#r.hmget(this.#k('msg', id), 'json', 'worker');
    if (!json) return undefined;
    return { message: JSON.parse(json) as StoredMessage, ...(worker ? { worker } : {}) };
  }

  async #viewOf(message: StoredMessage, worker: string | undefined, held: boolean, alive: (w: string) => Promise<boolean>): Promise<QueueMessage> {
    const active = worker && !held && !isTerminal(restingState(message)) && (await alive(worker)) ? worker : undefined;
    return view(message, { ...(active ? { active } : {}), held });
  }

  #aliveCache(): (worker: string) => Promise<boolean> {
    const cache = new Map<string, Promise<boolean>>();
    return (worker) => {
      let known = cache.get(worker);
      if (!known) {
        known = this.#r.exists(this.#k('worker', worker)).then((n) => n === 1);
        cache.set(worker, known);
      }
      return known;
    };
  }

  async get(id: string): Promise<QueueMessage | undefined> {
    checkId(id);
    const loaded = await this.#load(id);
    if (!loaded) return undefined;
    const held = (await this.#r.sismember(this.#k('held'), id)) === 1;
    return this.#viewOf(loaded.message, loaded.worker, held, this.#aliveCache());
  }

  async body(id: string): Promise<Buffer> {
    checkId(id);
    // Read with the claim (same round trip) when this process claimed it.
    const cached = this.#bodies.get(id);
    if (cached) return cached;
    const body = await this.#r.hgetBuffer(this.#k('msg', id), 'body');
    if (!body) throw new QueueError('ERR_QUEUE_NOT_FOUND', `the body of message ${id} is not in Redis (delivered messages keep only their record)`, { messageId: id });
    return body;
  }

  async #allViews(): Promise<QueueMessage[]> {
    const r = this.#r;
    const ids = await r.zrange(this.#k('ids'), '0', '-1');
    const held = new Set(await r.smembers(this.#k('held')));
    const alive = this.#aliveCache();
    const out: QueueMessage[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const slice = ids.slice(i, i + 500);
      const pipeline = r.pipeline();
      for (const id of slice) pipeline.hmget(this.#k('msg', id), 'json', 'worker');
      const rows = (await pipeline.exec()) ?? [];
      for (const [error, row] of rows) {
        if (error) throw error;
        const [json, worker] = row as [string | null, string | null];
        if (!json) continue;
        const message = JSON.parse(json) as StoredMessage;
        out.push(await this.#viewOf(message, worker ?? undefined, held.has(message.id), alive));
      }
    }
    return out;
  }

  async list(filter: ListFilter = {}): Promise<QueueMessage[]> {
    const states = filter.state === undefined ? undefined : new Set(typeof filter.state === 'string' ? [filter.state] : filter.state);
    const search = filter.search?.toLowerCase();
    const out = (await this.#allViews()).filter((m) => {
      if (states && !states.has(m.state)) return false;
      if (search && !m.from.toLowerCase().includes(search) && !m.recipients.some((r) => r.address.toLowerCase().includes(search))) return false;
      return true;
    });
    out.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
    return filter.limit !== undefined ? out.slice(0, filter.limit) : out;
  }

  async stats(): Promise<QueueStats> {
    const messages = emptyCounts();
    const recipients = emptyCounts();
    let oldest = Infinity;
    for (const m of await this.#allViews()) {
      messages[m.state]++;
      for (const r of m.recipients) recipients[r.state]++;
      if (!isTerminal(m.state)) oldest = Math.min(oldest, m.createdAt);
    }
    const pending = messages.queued + messages.deferred + messages.active + messages.held;
    return { messages, recipients, pending, oldestPendingMs: oldest === Infinity ? 0 : Date.now() - oldest };
  }

  async nextDueAt(): Promise<number | undefined> {
    const first = await this.#r.zrange(this.#k('due'), '0', '0', 'WITHSCORES');
    return first.length === 2 ? Number(first[1]) : undefined;
  }

  // --- workers -------------------------------------------------------------------

  async registerWorker(): Promise<string> {
    const host = os.hostname().toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 20) || 'host';
    const worker = `${host}-${process.pid}-${randomBytes(4).toString('hex')}`;
    const lockMs = this.#lockMs;
    const bull = new Worker(this.prefix, null, {
      connection: this.#connection(),
      autorun: false,
      lockDuration: lockMs,
      stalledInterval: this.#options.stalledIntervalMs ?? Math.max(500, lockMs / 2),
      // A stalled message goes back to wait however often its workers died: the store decides what that means.
      maxStalledCount: Number.MAX_SAFE_INTEGER,
      ...(this.#options.rateLimit ? { limiter: limiterWindows(this.#options.rateLimit) } : {}),
    });
    bull.on('error', (error) => this.#error(error));
    await bull.waitUntilReady();
    void bull.startStalledCheckTimer().catch((error: unknown) => this.#error(error));
    const entry: WorkerEntry = { bull, jobs: new Map(), fetched: [], closing: false, seq: 0, timer: setInterval(() => void this.#renew(worker, entry), Math.max(200, lockMs / 3)) };
    entry.timer.unref();
    this.#workers.set(worker, entry);
    await this.#r.set(this.#k('worker', worker), String(process.pid), 'PX', lockMs);
    return worker;
  }

  /** Renews the worker's heartbeat, its claims' locks and their destination slots. */
  async #renew(worker: string, entry: WorkerEntry): Promise<void> {
    try {
      const r = this.#r;
      await r.set(this.#k('worker', worker), String(process.pid), 'PX', this.#lockMs);
      const until = Date.now() + this.#lockMs;
      for (const [id, held] of entry.jobs) {
        await held.job.extendLock(held.token, this.#lockMs);
        for (const slot of held.slots) await r.zadd(this.#k('dest', slot), until, `${worker}:${id}`);
      }
      for (const { job, token } of entry.fetched) await job.extendLock(token, this.#lockMs);
    } catch (error) {
      this.#error(error);
    }
  }

  async unregisterWorker(worker: string): Promise<void> {
    const entry = this.#workers.get(worker);
    if (!entry) return;
    clearInterval(entry.timer);
    entry.closing = true;
    for (const id of [...entry.jobs.keys()]) await this.unclaim(worker, id).catch((error) => this.#error(error));
    // Fetched ahead and never claimed: back to the queue, due at once (nothing was read or written for them).
    for (const { job, token } of entry.fetched.splice(0)) await job.moveToDelayed(Date.now() + 1, token).catch((error: unknown) => this.#error(error));
    this.#workers.delete(worker);
    await entry.bull.close();
    await this.#r.del(this.#k('worker', worker)).catch(() => undefined);
  }

  #entry(worker: string): WorkerEntry {
    const entry = this.#workers.get(worker);
    if (!entry) throw new QueueError('ERR_QUEUE_INVALID', `worker ${worker} is not registered with this store`);
    return entry;
  }

  /** The per-destination slots a message needs: its recipient domains with a limit. */
  #destinations(message: StoredMessage): { domain: string; limit: number }[] {
    const limits = this.#options.destinationLimits;
    if (!limits) return [];
    const domains = new Set(pendingRecipients(message).map((a) => a.slice(a.lastIndexOf('@') + 1).toLowerCase()));
    const out: { domain: string; limit: number }[] = [];
    for (const domain of domains) {
      const limit = limits[domain] ?? limits['*'];
      if (limit !== undefined) out.push({ domain, limit });
    }
    return out;
  }

  /** Takes a slot for each destination, all or none (a Lua script: atomic across workers). */
  async #takeSlots(worker: string, message: StoredMessage): Promise<string[] | undefined> {
    const wanted = this.#destinations(message);
    if (wanted.length === 0) return [];
    const now = Date.now();
    const keys = wanted.map((w) => this.#k('dest', w.domain));
    const ok = (await this.#scripts.smtplibqTakeSlots(keys.length, ...keys, now, now + this.#lockMs, `${worker}:${message.id}`, ...wanted.map((w) => w.limit))) as number;
    return ok === 1 ? wanted.map((w) => w.domain) : undefined;
  }

  async #freeSlots(worker: string, id: string, slots: string[]): Promise<void> {
    for (const slot of slots) await this.#r.zrem(this.#k('dest', slot), `${worker}:${id}`);
  }

  /**
   * Claims in batches. The jobs: those BullMQ handed over with earlier
   * completions (fetched), then one BullMQ fetch per job still wanted, all
   * sent at once. Then one script call records every claim and returns each
   * record, its unresolved end-of-data marks and its body. With destination
   * limits, the records are read first (their recipients' domains decide the
   * slots). One or two round trips for the batch, not several per message.
   */
  async claim(worker: string, limit: number): Promise<Claim[]> {
    const entry = this.#entry(worker);
    const claims: Claim[] = [];
    let tries = 0;
    while (claims.length < limit && tries < limit * 2) {
      const want = limit - claims.length;
      tries += want;
      const jobs: Fetched[] = entry.fetched.splice(0, want);
      if (jobs.length < want) {
        const fetched = await Promise.all(Array.from({ length: want - jobs.length }, () => {
          const token = this.#token(entry, worker);
          return entry.bull.getNextJob(token, { block: false }).then((job) => (job ? { job, token } : undefined));
        }));
        for (const j of fetched) if (j) jobs.push(j);
      }
      if (jobs.length === 0) break;
      const asides: Promise<unknown>[] = [];
      const candidates = this.#options.destinationLimits ? await this.#slotted(worker, jobs, asides) : jobs.map((j) => ({ ...j, slots: [] as string[] }));
      await Promise.all(asides);
      if (candidates.length === 0) continue;
      claims.push(...(await this.#claimJobs(worker, entry, candidates)));
    }
    return claims;
  }

  /** A new lock token, never used before by this store. */
  #token(entry: WorkerEntry, worker: string): string {
    return `${worker}:${entry.seq++}`;
  }

  /**
   * With destination limits: reads the jobs' records, takes their slots, and
   * returns those that got them; the others go back for 200 ms (not an attempt).
   */
  async #slotted(worker: string, jobs: Fetched[], asides: Promise<unknown>[]): Promise<(Fetched & { slots: string[] })[]> {
    const read = this.#r.pipeline();
    for (const { job } of jobs) read.hget(this.#k('msg', job.id!), 'json');
    const rows = (await read.exec()) ?? [];
    for (const [error] of rows) if (error) throw error;
    const out: (Fetched & { slots: string[] })[] = [];
    await Promise.all(jobs.map(async (j, i) => {
      const json = rows[i]![1] as string | null;
      // No record: the claim script finds it gone and completes the job.
      const slots = json ? await this.#takeSlots(worker, JSON.parse(json) as StoredMessage) : [];
      if (slots) out.push({ ...j, slots });
      else asides.push(this.#aside(j.job.moveToDelayed(Date.now() + 200, j.token)));
    }));
    return out;
  }

  /** One script call: the claims recorded, each with its record, marks and body read in the same step (see CLAIM_IF_OWNED). */
  async #claimJobs(worker: string, entry: WorkerEntry, won: { job: Job; token: string; slots: string[]; chained?: true }[]): Promise<Claim[]> {
    const now = Date.now();
    // Every claim gets a token of its own, set on the lock by the script: a job fetched with a
    // completion is locked with the finished job's token, and a token must name one claim (marks
    // and late writes are told apart by it).
    const fresh = won.map((j) => (j.chained ? this.#token(entry, worker) : j.token));
    const keys = [this.#k('due'), this.#k('active'), this.#k('held'), ...won.flatMap(({ job }) => [this.#k('msg', job.id!), this.#lockKey(job.id!), this.#k('marks', job.id!)])];
    const args = [worker, now, ...won.flatMap(({ job, token }, i) => [job.id!, token, fresh[i]!])];
    const results = (await this.#scripts.smtplibqClaimBuffer(keys.length, ...keys, ...args)) as [number, Buffer | number | null, number, Buffer | null][];
    const claims: Claim[] = [];
    const finished: Promise<unknown>[] = [];
    won.forEach(({ job, slots }, i) => {
      const [status, json, marks, body] = results[i]!;
      const token = fresh[i]!;
      if (status !== 2) {
        // 0: the lock is no longer ours (taken for dead meanwhile): another worker has the job.
        // 1: finished, deleted or held: nothing left to do. 3: not due yet (retried early): back to delayed.
        if (status === 1) finished.push(job.moveToCompleted('gone', token, false).catch(() => undefined));
        if (status === 3) finished.push(this.#aside(job.moveToDelayed(json as number, token)));
        if (slots.length > 0) finished.push(this.#freeSlots(worker, job.id!, slots).catch(() => undefined));
        return;
      }
      const message = JSON.parse((json as Buffer).toString()) as StoredMessage;
      const id = message.id;
      entry.jobs.set(id, { job, token, slots });
      if (body) this.#bodies.set(id, body);
      claims.push({ message, interrupted: marks > 0 });
      this.#emit({ id, from: restingState(message), to: 'active' });
    });
    await Promise.all(finished);
    return claims;
  }

  markCommitting(worker: string, id: string, attempt: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const token = this.#workers.get(worker)?.jobs.get(checkId(id))?.token ?? '';
      void attempt; // a mark names its claim (the lock token), not an attempt number: see CLAIM_IF_OWNED
      this.#marks.add({ key: this.#k('marks', id), lock: this.#lockKey(id), token, resolve, reject });
    });
  }

  /**
   * One script for every mark asked for in this turn. A mark is set only
   * while its worker still holds the job's lock (and the lock is extended):
   * a worker that lost its claim while Redis was away must not go on to the
   * end of data, since another worker may be sending the same message.
   */
  async #flushMarks(batch: Mark[]): Promise<void> {
    try {
      const keys = batch.flatMap((m) => [m.lock, m.key]);
      this.markRoundTrips++;
      const owned = (await this.#scripts.smtplibqMark(keys.length, ...keys, this.#lockMs, ...batch.map((m) => m.token))) as number[];
      batch.forEach((m, i) => (owned[i] === 1 ? m.resolve() : m.reject(new QueueError('ERR_QUEUE_CLAIM_LOST', `the lock on ${m.lock} is no longer this worker's (it was taken for dead while Redis was away); the end of data was not written`))));
    } catch (error) {
      for (const mark of batch) mark.reject(error);
    }
  }

  /**
   * A job put back while claiming (not claimed): its failure is reported, not
   * the claim's. Handled at once, because the claim may fail before it awaits
   * these (Redis gone mid-claim), and an unhandled rejection would end the
   * worker's process; a job left active is recovered when its lock expires.
   */
  #aside(promise: Promise<unknown>): Promise<unknown> {
    return promise.catch((error: unknown) => this.#error(error));
  }

  #lockKey(id: string): string {
    return `${this.#queue!.toKey(id)}:lock`;
  }

  /** Writes the message (and its indexes) in one MULTI. */
  async #write(message: StoredMessage, extra: { clearWorker?: boolean } = {}): Promise<QueueState> {
    const state: QueueState = message.held ? 'held' : restingState(message);
    const key = this.#k('msg', message.id);
    const multi = this.#r.multi().hset(key, 'json', JSON.stringify(message));
    if (extra.clearWorker) multi.hdel(key, 'worker').zrem(this.#k('active'), message.id);
    if (state === 'delivered') multi.hdel(key, 'body');
    if (isTerminal(state) || message.held) multi.zrem(this.#k('due'), message.id);
    else multi.zadd(this.#k('due'), message.nextAttemptAt, message.id);
    if (message.held) multi.sadd(this.#k('held'), message.id);
    else multi.srem(this.#k('held'), message.id);
    const results = await multi.exec();
    for (const [error] of results ?? []) if (error) throw error;
    return state;
  }

  /**
   * Records an outcome (FINISH_IF_OWNED) together with every other outcome
   * asked for in this turn: one script call, one write to the socket and one
   * reply for the batch, as for the marks. With many connections per worker,
   * replies that arrive in the same event-loop turn end their attempts in the
   * same turn; each sent its own call before (one round trip per message).
   * Each message's part is checked and written on its own inside the script.
   */
  #outcome(keys: string[], args: (string | number)[]): Promise<[number, string | null]> {
    return new Promise((resolve, reject) => {
      this.#outcomes.add({ keys, args, resolve, reject });
    });
  }

  async #flushOutcomes(batch: Outcome[]): Promise<void> {
    try {
      const keys = [this.#k('due'), this.#k('active'), this.#k('held'), ...batch.flatMap((o) => o.keys)];
      this.outcomeRoundTrips++;
      const results = (await this.#scripts.smtplibqFinish(keys.length, ...keys, ...batch.flatMap((o) => o.args))) as [number, string | null][];
      batch.forEach((o, i) => {
        const result = results[i]!;
        if (result[0] === -1) o.reject(new QueueError('ERR_QUEUE_STORE', `recording the outcome failed in Redis: ${String(result[1])}`));
        else o.resolve(result);
      });
    } catch (error) {
      for (const o of batch) o.reject(error);
    }
  }

  async finish(worker: string, message: StoredMessage): Promise<void> {
    const entry = this.#entry(worker);
    this.#bodies.delete(message.id);
    const held = entry.jobs.get(message.id);
    const id = message.id;
    const [code, storedJson] = await this.#outcome(
      [this.#k('msg', id), this.#lockKey(id), this.#k('marks', id)],
      [held?.token ?? '', message.attempts, JSON.stringify(message), restingState(message) === 'delivered' ? 'delivered' : isTerminal(restingState(message)) ? 'terminal' : 'pending', message.nextAttemptAt, id, worker],
    );
    // 2: another worker recorded this attempt first (it was cut off, and wrote the reply it
    // had); that record stands, and the claim is given up according to it.
    const stored = code === 2 && storedJson ? (JSON.parse(storedJson) as StoredMessage) : message;
    const to: QueueState = restingState(stored);
    if (code === 0) {
      entry.jobs.delete(id);
      if (held) await this.#freeSlots(worker, id, held.slots).catch(() => undefined);
      throw new QueueError('ERR_QUEUE_CLAIM_LOST', `message ${id} was recovered by another worker while this one was cut off; its record stands`, { messageId: id });
    }
    if (held) {
      try {
        if (isTerminal(to)) {
          // The next job comes back from the same script call (BullMQ's fetchNext, as its own
          // workers run): one call fewer per message. It waits, locked, for the next claim().
          const next = await held.job.moveToCompleted(to, held.token, !entry.closing && entry.fetched.length < MAX_FETCHED);
          this.#stash(entry, next, held.token);
        } else await held.job.moveToDelayed(Math.max(Date.now() + 1, stored.nextAttemptAt), held.token);
      } catch (error) {
        // The record is written. A job whose lock was lost (Redis was away
        // longer than the lock) is taken back by the stalled check, and the
        // next claim reads the record: a finished message is completed, a
        // deferred one waits its turn. Nothing is sent twice.
        this.#error(error);
      }
      entry.jobs.delete(id);
      await this.#freeSlots(worker, id, held.slots);
    }
    if (code === 2) throw new QueueError('ERR_QUEUE_CLAIM_LOST', `attempt ${message.attempts} of message ${id} was recorded by the worker that made it (after it was cut off); its record stands`, { messageId: id });
    this.#emit({ id, from: 'active', to, recipients: message.recipients.map((r) => ({ address: r.address, state: r.state })) });
  }

  /** Keeps the job moveToCompleted fetched (its raw data: [job hash, id, ...]) for the next claim. */
  #stash(entry: WorkerEntry, next: unknown, token: string): void {
    if (!Array.isArray(next) || !next[0] || typeof next[1] !== 'string') return;
    const job = Job.fromJSON(entry.bull, next[0] as never, next[1]);
    job.token = token;
    // Fetched while the worker was being unregistered: given back at once, as unregisterWorker gives back the others.
    if (entry.closing) void this.#aside(job.moveToDelayed(Date.now() + 1, token));
    else entry.fetched.push({ job, token, chained: true });
  }

  async unclaim(worker: string, id: string): Promise<void> {
    const entry = this.#entry(worker);
    const held = entry.jobs.get(id);
    this.#bodies.delete(id);
    if (!held) return;
    entry.jobs.delete(id);
    // In one script, and only while this worker still holds the job's lock: read and then written in
    // two steps, a late write in between (the worker that took the message over, recording its
    // outcome) left a finished message in the due index, and the next claimer's worker field gone.
    await this.#scripts.smtplibqUnclaim(5, this.#k('msg', id), this.#k('active'), this.#k('due'), this.#k('held'), this.#lockKey(id), id, held.token);
    await held.job.moveToDelayed(Date.now() + 1, held.token);
    await this.#freeSlots(worker, id, held.slots);
    const loaded = await this.#load(id);
    if (loaded) this.#emit({ id, from: 'active', to: restingState(loaded.message) });
  }

  // --- operators -----------------------------------------------------------------

  async #require(id: string): Promise<{ message: StoredMessage; held: boolean; worker?: string }> {
    checkId(id);
    const loaded = await this.#load(id);
    if (!loaded) throw new QueueError('ERR_QUEUE_NOT_FOUND', `no message ${id} in the queue (\`smtplib queue list\` shows what is there)`, { messageId: id });
    const held = (await this.#r.sismember(this.#k('held'), id)) === 1;
    return { message: loaded.message, held, ...(loaded.worker ? { worker: loaded.worker } : {}) };
  }

  /** Removes the message's BullMQ job; a job locked by a worker cannot be removed (ERR_QUEUE_ACTIVE). */
  async #removeJob(id: string, worker: string | undefined): Promise<void> {
    const active = (): QueueError => new QueueError('ERR_QUEUE_ACTIVE', `message ${id} is being delivered${worker ? ` by worker ${worker}` : ''}; try again when the attempt ends`, { messageId: id });
    if (worker && (await this.#r.exists(this.#k('worker', worker))) === 1) throw active();
    const job = await this.#queue!.getJob(id);
    if (!job) return;
    if ((await job.getState()) === 'active') throw active();
    try {
      await job.remove();
    } catch (error) {
      throw new QueueError('ERR_QUEUE_ACTIVE', `message ${id} could not be taken from the queue (${(error as Error).message}); try again`, { messageId: id, cause: error });
    }
  }

  async hold(id: string): Promise<boolean> {
    const { message, held, worker } = await this.#require(id);
    if (held) return true;
    const before = restingState(message);
    if (isTerminal(before)) return false;
    await this.#removeJob(id, worker);
    await this.#write({ ...message, held: true }, { clearWorker: true });
    this.#emit({ id, from: before, to: 'held' });
    return true;
  }

  async release(id: string): Promise<boolean> {
    const { message, held } = await this.#require(id);
    if (!held) return false;
    const { held: _held, ...rest } = message;
    void _held;
    const next: StoredMessage = { ...rest, nextAttemptAt: Date.now() };
    const to = await this.#write(next);
    await this.#addJob(next);
    this.#emit({ id, from: 'held', to });
    return true;
  }

  async retry(id: string): Promise<boolean> {
    const { message, held, worker } = await this.#require(id);
    if (held) return false;
    const before = restingState(message);
    if (before === 'delivered') return false;
    if (isTerminal(before)) {
      if (!(await this.#r.hexists(this.#k('msg', id), 'body'))) return false;
      const next = requeue(message, Date.now(), true);
      const to = await this.#write(next);
      await this.#addJob(next);
      this.#emit({ id, from: before, to });
      return true;
    }
    const job = await this.#queue!.getJob(id);
    if (worker && (await this.#r.exists(this.#k('worker', worker))) === 1) throw new QueueError('ERR_QUEUE_ACTIVE', `message ${id} is being delivered by worker ${worker}`, { messageId: id });
    const next = requeue(message, Date.now(), false);
    await this.#write(next);
    if (!job) await this.#addJob(next);
    else if (await job.isDelayed()) await job.promote().catch(() => undefined);
    this.#emit({ id, from: before, to: before });
    return true;
  }

  async retryAll(): Promise<string[]> {
    const ids = await this.#r.zrange(this.#k('due'), '0', '-1');
    const now = Date.now();
    const out: string[] = [];
    for (const id of ids) {
      const loaded = await this.#load(id);
      if (!loaded) continue;
      if (loaded.message.nextAttemptAt <= now) {
        out.push(id);
        continue;
      }
      try {
        if (await this.retry(id)) out.push(id);
      } catch (error) {
        if (!(error instanceof QueueError)) throw error;
      }
    }
    return out;
  }

  async delete(id: string): Promise<boolean> {
    const { message, held, worker } = await this.#require(id);
    const before = held ? 'held' : restingState(message);
    if (!held && !isTerminal(before)) await this.#removeJob(id, worker);
    const multi = this.#r.multi().del(this.#k('msg', id)).zrem(this.#k('ids'), id).zrem(this.#k('due'), id).zrem(this.#k('active'), id).srem(this.#k('held'), id);
    multi.del(this.#k('marks', id));
    // The key goes with its message, as in a purge (while it still names it): enqueued again with it,
    // the message is queued anew, not answered with the id of one that no longer exists.
    if (message.idempotencyKey !== undefined) (multi as unknown as { smtplibqReleaseKey: (...args: unknown[]) => unknown }).smtplibqReleaseKey(1, this.#idemKey(message.idempotencyKey), id);
    await multi.exec();
    this.#emit({ id, from: before, to: 'deleted' });
    return true;
  }

  // --- retention -----------------------------------------------------------------

  /**
   * Removes finished messages that finished before the cutoff (see QueueStore.purge). {p}:ids is
   * walked by score (creation time) up to the latest cutoff (a message created after it cannot have
   * finished before it), PURGE_PAGE ids at a time: their records read in one pipeline, and those
   * isPurgeable() picks removed by one script call (PURGE_FINISHED), which checks the same rule again
   * atomically with the removal: a message retried or claimed meanwhile stays. What stays keeps its
   * place in ids, so the next page starts after the ones kept so far.
   */
  async purge(options: PurgeOptions): Promise<number> {
    const cutoffs = purgeCutoffs(options);
    const latest = latestCutoff(cutoffs);
    if (latest === undefined) return 0;
    const r = this.#r;
    const cut = (state: 'delivered' | 'bounced' | 'unknown'): string => (cutoffs[state] === undefined ? '' : String(cutoffs[state]));
    let purged = 0;
    for (let kept = 0; !options.signal?.aborted; ) {
      const ids = await r.zrangebyscore(this.#k('ids'), '-inf', `(${latest}`, 'LIMIT', kept, PURGE_PAGE);
      if (ids.length === 0) return purged;
      const read = r.pipeline();
      for (const id of ids) read.hget(this.#k('msg', id), 'json');
      const rows = (await read.exec()) ?? [];
      const keys = [this.#k('ids'), this.#k('due'), this.#k('active'), this.#k('held')];
      const args: string[] = [cut('delivered'), cut('bounced'), cut('unknown')];
      const chosen: string[] = [];
      ids.forEach((id, i) => {
        const [error, json] = rows[i]!;
        if (error) throw error;
        if (typeof json !== 'string') return;
        const message = JSON.parse(json) as StoredMessage;
        if (!isPurgeable(message, cutoffs)) return;
        const key = message.idempotencyKey === undefined ? undefined : this.#idemKey(message.idempotencyKey);
        keys.push(this.#k('msg', id), this.#k('marks', id), key ?? this.#k('msg', id));
        args.push(id, key === undefined ? '0' : '1');
        chosen.push(id);
      });
      let removed = 0;
      if (chosen.length > 0) {
        const states = (await this.#scripts.smtplibqPurge(keys.length, ...keys, ...args)) as string[];
        states.forEach((state, i) => {
          if (state === '') return;
          removed++;
          this.#emit({ id: chosen[i]!, from: state as QueueState, to: 'deleted' });
        });
      }
      purged += removed;
      kept += ids.length - removed;
    }
    return purged;
  }

  /** The queue-wide purge turn: {p}:purge-turn, SET NX with `everyMs` to live (one winner per turn). */
  async takePurgeTurn(everyMs: number): Promise<boolean> {
    return (await this.#r.set(this.#k('purge-turn'), String(process.pid), 'PX', Math.max(1, Math.round(everyMs)), 'NX')) === 'OK';
  }

  // --- recovery ------------------------------------------------------------------

  /**
   * Dead workers' claims come back through BullMQ's stalled-job check (their
   * locks expire); claim() then sees an unresolved end-of-data mark. Here:
   * pending messages that have no job (an enqueue or release that stopped
   * between writing the message and adding its job) get one. At most once a
   * minute for the whole queue, not once per worker process: the first to
   * take {p}:orphan-scan (SET NX, a minute to live) scans; the others skip.
   * The scan asks only whether each job's hash exists (EXISTS, pipelined),
   * not for the job itself: it reads every pending message's id, and it used
   * to read each one's whole BullMQ job (HGETALL) in every worker process.
   */
  async recover(options: { retryUnknown?: boolean; schedule?: RetrySchedule } = {}): Promise<number> {
    void options;
    if (Date.now() - this.#lastOrphanScan < ORPHAN_SCAN_MS) return 0;
    this.#lastOrphanScan = Date.now();
    const r = this.#r;
    if ((await r.set(this.#k('orphan-scan'), String(process.pid), 'PX', ORPHAN_SCAN_MS, 'NX')) !== 'OK') return 0;
    let fixed = 0;
    const ids = [...(await r.zrange(this.#k('due'), '0', '-1')), ...(await r.zrange(this.#k('active'), '0', '-1'))];
    for (let i = 0; i < ids.length; i += 500) {
      const slice = ids.slice(i, i + 500);
      const exists = r.pipeline();
      for (const id of slice) exists.exists(this.#queue!.toKey(id));
      const rows = (await exists.exec()) ?? [];
      for (let j = 0; j < slice.length; j++) {
        const [error, found] = rows[j]!;
        if (error) throw error;
        if (found === 1) continue;
        const loaded = await this.#load(slice[j]!);
        if (!loaded || loaded.message.held || isTerminal(restingState(loaded.message))) continue;
        await this.#addJob(loaded.message);
        fixed++;
      }
    }
    return fixed;
  }

  /** For a claim found interrupted while recovering outside a worker (tests, tools). */
  static settleInterrupted(message: StoredMessage, retryUnknown: boolean, schedule?: RetrySchedule): StoredMessage {
    return applyInterrupted(message, Date.now(), resolveSchedule(schedule), retryUnknown);
  }
}

/**
 * BullMQ's limiter counts claims in fixed windows: all `max` claims of a
 * window can go at its start, and a span that straddles two windows can hold
 * up to twice the limit. The same rate in windows ten times shorter (when the
 * numbers divide evenly) spreads the claims across the period and bounds any
 * span of `durationMs` to 1.1 x `max` (measured: test/queue/ratelimit).
 */
function limiterWindows(rate: { max: number; durationMs: number }): { max: number; duration: number } {
  for (let k = 10; k > 1; k--) {
    if (rate.max % k === 0 && rate.durationMs % k === 0 && rate.durationMs / k >= 50) return { max: rate.max / k, duration: rate.durationMs / k };
  }
  return { max: rate.max, duration: rate.durationMs };
}

/**
 * KEYS: pairs of (job lock, marks set). ARGV: lock duration, then one claim token per pair.
 * A mark is the claim's token added to the message's marks set, and only while
 * that claim still holds the job's lock.
 */
const MARK_IF_OWNED = `
local out = {}
for i = 1, #KEYS, 2 do
  local token = ARGV[1 + (i + 1) / 2]
  if token ~= '' and redis.call('GET', KEYS[i]) == token then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    redis.call('SADD', KEYS[i + 1], token)
    redis.call('EXPIRE', KEYS[i + 1], 2592000)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
`;

/** A record is pending (claimable, due for another attempt) while a recipient is queued or deferred: the one statement of it in Lua. */
const LUA_PENDING = `
local function pending(record)
  for _, r in ipairs(record.recipients) do
    if r.state == 'queued' or r.state == 'deferred' then return true end
  end
  return false
end
`;

/**
 * KEYS: msg hash, active, due, held, job lock. ARGV: id, the claim's lock token.
 * Gives a claimed message back (a worker leaving), only while the lock is still
 * the claim's: the worker field and the active entry go, and the message is due
 * again if its record is pending and it is not held. Returns 1, or 0 when the
 * lock is another's (the message was taken over; its index is theirs).
 */
const UNCLAIM_IF_OWNED = `
${LUA_PENDING}
if redis.call('GET', KEYS[5]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], 'worker')
redis.call('ZREM', KEYS[2], ARGV[1])
local json = redis.call('HGET', KEYS[1], 'json')
if json and redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 0 then
  local record = cjson.decode(json)
  if pending(record) then redis.call('ZADD', KEYS[3], record.nextAttemptAt, ARGV[1]) end
end
return 1
`;

/**
 * KEYS: due, active, held, then per message: msg hash, job lock, marks set.
 * ARGV: worker, now, then per message: id, lock token, the claim's own token.
 * Per message: {0} the lock is not this worker's; {1} nothing left to do
 * (deleted, held or finished); {3, next attempt time} not due yet (taken
 * early: a job's due time and its record's can differ after a retry);
 * {2, json, marks, body} claimed. Except for {0}, the lock is set to the
 * claim's own token (its time to live kept).
 *
 * The record and its marks are read in one script, so a claimer sees either
 * the record before a cut-off worker's late write together with that worker's
 * mark (interrupted: not sent again), or the record after it (the outcome
 * that worker had). Read one after the other, a late write in between showed
 * neither, and the message went out twice.
 */
const CLAIM_IF_OWNED = `
${LUA_PENDING}
local out = {}
local now = tonumber(ARGV[2])
for i = 0, (#KEYS - 3) / 3 - 1 do
  local msg, lock, marks = KEYS[4 + 3 * i], KEYS[5 + 3 * i], KEYS[6 + 3 * i]
  local id, token, own = ARGV[3 + 3 * i], ARGV[4 + 3 * i], ARGV[5 + 3 * i]
  if redis.call('GET', lock) ~= token then
    out[#out + 1] = {0}
  else
    if own ~= token then redis.call('SET', lock, own, 'KEEPTTL') end
    local json = redis.call('HGET', msg, 'json')
    local record = nil
    if json and redis.call('SISMEMBER', KEYS[3], id) == 0 then
      record = cjson.decode(json)
      if not pending(record) then record = nil end
    end
    if not record then
      out[#out + 1] = {1}
    elseif record.nextAttemptAt > now + 1000 then
      out[#out + 1] = {3, record.nextAttemptAt}
    else
      redis.call('HSET', msg, 'worker', ARGV[1])
      redis.call('ZREM', KEYS[1], id)
      redis.call('ZADD', KEYS[2], now, id)
      out[#out + 1] = {2, json, redis.call('SCARD', marks), redis.call('HGET', msg, 'body')}
    end
  end
end
return out
`;

/**
 * KEYS: due, active, held, then per message: msg hash, job lock, marks set.
 * ARGV per message: token, attempts, json, delivered|terminal|pending, next attempt time, id, worker.
 * Returns per message: {1} written, {0} not written (the claim was lost and its record
 * would add nothing true), {2, stored json} the lock holder finds this attempt
 * already recorded by the worker that made it: that record stands; {-1, error}
 * that message's part failed (pcall: the others' stand on their own, as when
 * each was its own call).
 *
 * Each attempt number is recorded once. A worker that was cut off (its lock
 * expired) records late only the attempt it marked, while its mark is still
 * there, i.e. while no claimer has seen the record without it: it writes the
 * reply it had and takes its mark away in the same step. A worker that never
 * marked sent nothing, and its late write is dropped: written, it would count
 * an attempt that did not happen and move the attempt number under the
 * worker that holds the message now (whose mark a later claimer would then
 * not find).
 */
const FINISH_IF_OWNED = `
local due, active, held = KEYS[1], KEYS[2], KEYS[3]
local function finish(msg, lock, marks, token, attempts, json, outcome, nextAt, id, worker)
  local owned = token ~= '' and redis.call('GET', lock) == token
  local current = redis.call('HGET', msg, 'json')
  if not current then return {0} end
  local recorded = cjson.decode(current).attempts >= tonumber(attempts)
  if not owned then
    if recorded or token == '' or redis.call('SISMEMBER', marks, token) == 0 then return {0} end
  elseif recorded then
    redis.call('HDEL', msg, 'worker')
    redis.call('ZREM', active, id)
    redis.call('DEL', marks)
    return {2, current}
  end
  redis.call('HSET', msg, 'json', json)
  if owned or redis.call('HGET', msg, 'worker') == worker then
    redis.call('HDEL', msg, 'worker')
    redis.call('ZREM', active, id)
  end
  if outcome == 'delivered' then redis.call('HDEL', msg, 'body') end
  if outcome == 'pending' then redis.call('ZADD', due, nextAt, id) else redis.call('ZREM', due, id) end
  redis.call('SREM', held, id)
  -- The lock holder resolves every mark (those it saw when it claimed, and its own:
  -- only a lock holder adds one); a late writer only its own.
  if owned then redis.call('DEL', marks) else redis.call('SREM', marks, token) end
  return {1}
end
local out = {}
for i = 0, (#KEYS - 3) / 3 - 1 do
  local a = 7 * i
  local ok, result = pcall(finish, KEYS[4 + 3 * i], KEYS[5 + 3 * i], KEYS[6 + 3 * i],
    ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7])
  if ok then out[#out + 1] = result else out[#out + 1] = {-1, type(result) == 'table' and result.err or tostring(result)} end
end
return out
`;

/** KEYS: an idempotency key. ARGV: a message id. Removes the key while it names that message (a key reused since stays). */
const RELEASE_KEY = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * KEYS: ids, due, active, held, then per message: msg hash, marks set, idempotency key (the msg
 * hash again when the message has none). ARGV: the cutoffs for delivered, bounced and unknown ('' :
 * that state is kept), then per message: id, 1 when it has an idempotency key.
 * Removes each message that is finished before its state's cutoff (retention.ts's isPurgeable, the
 * same rule, checked again here so that a message retried, held or claimed since it was read stays):
 * its hash (record and body), its marks, its place in every index, and its idempotency key while
 * that still names it. Returns per message its state when removed, '' when kept.
 */
const PURGE_FINISHED = `
local cutoff = { delivered = tonumber(ARGV[1]), bounced = tonumber(ARGV[2]), unknown = tonumber(ARGV[3]) }
local function finished(record)
  local delivered, unknown = false, false
  for _, r in ipairs(record.recipients) do
    if r.state == 'queued' or r.state == 'deferred' then return nil end
    if r.state == 'unknown' then unknown = true end
    if r.state == 'delivered' then delivered = true end
  end
  if unknown then return 'unknown' end
  if delivered then return 'delivered' end
  return 'bounced'
end
local out = {}
for i = 0, (#KEYS - 4) / 3 - 1 do
  local msg, marks, idem = KEYS[5 + 3 * i], KEYS[6 + 3 * i], KEYS[7 + 3 * i]
  local id, keyed = ARGV[4 + 2 * i], ARGV[5 + 2 * i]
  local json = redis.call('HGET', msg, 'json')
  local state = nil
  if json and redis.call('SISMEMBER', KEYS[4], id) == 0 and redis.call('ZSCORE', KEYS[3], id) == false then
    local record = cjson.decode(json)
    state = finished(record)
    local before = state and cutoff[state]
    if record.held == true or type(record.finishedAt) ~= 'number' or not before or record.finishedAt >= before then state = nil end
  end
  if state then
    redis.call('DEL', msg, marks)
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
    redis.call('SREM', KEYS[4], id)
    if keyed == '1' and redis.call('GET', idem) == id then redis.call('DEL', idem) end
    out[#out + 1] = state
  else
    out[#out + 1] = ''
  end
end
return out
`;

/**
 * KEYS: one sorted set per destination. ARGV: now, lease expiry, member, then one limit per key.
 * Drops expired leases, then takes a slot in every set or in none.
 */
/**
 * A new message: KEYS msg, ids, due[, idem]; ARGV json, body, id, now, due at.
 * With an idempotency key already taken, writes nothing and returns the id it
 * names; else writes the message, the key, and its place in ids and due, and
 * returns nil.
 */
const ENQUEUE = `
if KEYS[4] then
  local existing = redis.call('GET', KEYS[4])
  if existing then return existing end
end
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'body', ARGV[2])
if KEYS[4] then redis.call('SET', KEYS[4], ARGV[3]) end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[3])
return false
`;

const TAKE_SLOTS = `
local n = #KEYS
for i = 1, n do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[1])
  if redis.call('ZSCORE', KEYS[i], ARGV[3]) == false and redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[3 + i]) then
    return 0
  end
end
for i = 1, n do
  redis.call('ZADD', KEYS[i], ARGV[2], ARGV[3])
end
return 1
`;
