// The embedded store: one spool directory, no server, no dependency.
// The layout and its invariants are documented in docs/queue.md ("The spool
// directory"); in short:
//
//   spool.json                   format marker and version
//   tmp/                         every file is written here first (fsync), then renamed into place; and up to
//                                SPARES_MAX emptied claim entries kept to be written as record files (see #spares)
//   data/<id>                    the message as enqueued: its record (one line of JSON), a newline, then
//                                the message bytes; written once (one fsync), before the message is visible anywhere
//   queue/<due>-<pp>-<q|d>-<id>.json   pending (queued / deferred); the name carries the due time
//                                (13 digits, ms), the priority + 10, and whether it was attempted.
//                                Empty until the first attempt: the record is then data/<id>'s first line
//   active/<worker>/<id>.json    claimed: exactly one worker owns it (claimed by rename, which only one wins)
//   active/<worker>/writing      the attempts of a worker that notes them which began their end of data
//                                (page cache, no fsync: see writing.ts)
//   hold/<id>.json               held by an operator
//   done/<state>-<id>.json       finished: delivered, bounced or unknown
//   commit/<id>@<attempt>        "attempt n is about to write the end of data" (empty; durable by a dir fsync)
//   idem/<sha256 of key>         an idempotency key's message id (created by link(), which only one wins;
//                                removed with its message by a purge or a delete)
//   purge-turn                   the queue-wide turn to purge finished messages (link(); taken over once stale)
//   workers/<worker>.json        a registered worker: host, pid, process start, machine life (boot id, pid
//                                namespace), `notes` if it notes every end of data it writes; renamed in whole
//                                after its active/ dir (and its writing notes file) is made; touched as a heartbeat
//
// Outcomes recorded together share one record file (one line per message, one fsync), hard-linked
// under each message's name in queue/ or done/; a reader takes its message's line (recordIn).
//
// A message's JSON is in exactly one of queue/, active/*/, hold/, done/ -
// except for a moment in place(), which writes the new copy before removing
// the claimed one; a copy in a dead worker's active/ dir that also exists
// elsewhere is that moment's leftover and is removed by recovery.

import { EventEmitter } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, opendir, readFile, rmdir, stat, utimes, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { basename, join } from 'node:path';
import { QueueError, checkId, isId } from '../errors.js';
import { TurnBatch } from '../turn-batch.js';
import { applyInterrupted, newRecord, newStreamedRecord, requeue, restingState, view } from '../record.js';
import { emptyMessage } from '../validate.js';
import { resolveSchedule, type RetrySchedule } from '../schedule.js';
import type { Claim, EnqueueStreamInput, QueueStore } from '../store.js';
import {
  emptyCounts,
  isTerminal,
  type EnqueueInput,
  type EnqueueOptions,
  type EnqueueResult,
  type ListFilter,
  type QueueEvents,
  type QueueMessage,
  type QueueState,
  type QueueStats,
  type StoredMessage,
  type TransitionEvent,
} from '../types.js';
import { BODY_IN_MEMORY_MAX, hasEightBit, noteEightBit, readDataFile, readRecordLine, type SpooledBody } from './body-file.js';
import { DirSyncer, settledStamp, stampNow, cpuMsSince, createMarker, exists, linkIfAbsent, linkReplacing, linkWhilePresent, moveIfPresent, readText, readdir, removeName, rename, renameName, scanDir, sizeOf, touch, unlinkIfPresent, writeDurable, writeDurableStream, writeSmallDurable } from './durable.js';
import { CONTROL_SUFFIX, DueSelection, LISTED_MAX, QUEUE_NAME, listingOrder, mergeAt, queueNameId } from './listing.js';
import { idCreatedAt } from '../ids.js';
import { WRITING_FILE, WritingNotes, createWritingNotes, machineLife, readWritingNotes } from './writing.js';
import { FINISHED_STATES, isPurgeable, latestCutoff, purgeCutoffs, type FinishedState, type PurgeOptions } from '../retention.js';

// Version 3: a record file may hold the records of several messages, one per line (outcomes recorded
// together share one file and one fsync, linked under each message's name). A version 2 spool is a
// valid version 3 spool (every file holds one record) and is upgraded on open.
const FORMAT = { format: 'smtplib-queue spool', version: 3 };
const UPGRADABLE = [2];
const DONE_NAME = /^(delivered|bounced|unknown)-([0-9a-z]+)\.json$/;
/**
 * A listing of queue/ (see #listDue) serves the claims that follow while it holds names, for
 * LISTING_MS or LISTING_SHARE times what it cost to make, whichever is longer: with a short queue a
 * message another process puts in queue/ (at any priority) is seen within LISTING_MS; with a long one
 * the listing (a pass over all of queue/) takes at most about 1/LISTING_SHARE of a worker's main
 * thread, and such a message may wait that much longer (a worker with nothing to do looks every
 * pollIntervalMs anyway; what this process queues is merged at once: see #queued).
 */
const LISTING_MS = 250;
const LISTING_SHARE = 20;
/** How long, at most, a listing that found nothing due rests while queue/ does not change (see #resting). */
const UNCHANGED_REST_MS = 60_000;
/**
 * A listing holds the first LISTED_MAX due names in claim order, or 1/LISTED_PART of the due names,
 * whichever is more, up to LISTED_CAP: each listing then serves a number of claims that grows with the
 * queue, so the pass over queue/ per message claimed stays about the same from a few thousand messages
 * waiting to LISTED_CAP x LISTED_PART (about a million); beyond that it grows again, slowly. A longer
 * listing costs memory: the names kept while it is made survive the young generation's collections,
 * and V8 grows the young generation with them. bench/suites/queue/backlog.mjs, 4 workers, backlog of
 * 256,000 against 8,000: 1/16 (16,384 names) raised a worker's peak RSS by 25 % (CPU per message +14 %);
 * 1/32, by 4 % (CPU +11 %; a listing also ends LISTING_SHARE times its cost after it was made, before
 * its workers have claimed most of it).
 */
const LISTED_PART = 32;
const LISTED_CAP = 32_768;
/**
 * Outcome group commit (see #scheduleOutcomes): while outcomes keep coming (the last batch held more
 * than one), a batch gathers for up to OUTCOME_GATHER_MS after its first outcome, or until it holds
 * OUTCOME_GROUP, before it is written. Each batch costs a new record file (on ext4 without a journal,
 * creating a file while bodies are being deleted cost about 200 us of CPU, in recently_deleted()),
 * its fsync and a directory fsync: bench/suites/queue/profile.mjs measured 5.5 outcomes per batch
 * without the wait. An outcome's latency rises by the wait at most; a worker that records one at a
 * time (recovery, a single message) never waits.
 */
const OUTCOME_GATHER_MS = 4;
const OUTCOME_GROUP = 32;
/**
 * Spare inodes for record files (see #placeAll): at most this many emptied claim entries are kept in
 * tmp/ to be written as the next batches' record files.
 */
const SPARES_MAX = 2;
/**
 * A spare is used within this long of being made, else removed: its mtime is set when it is made, and
 * every open() removes tmp/ files older than 10 minutes (#cleanTmp), so none is removed while in use.
 */
const SPARE_MS = 300_000;
/** done/ names read (and messages taken) per step of a purge: its memory is this many names, whatever done/ holds. */
const PURGE_PAGE = 256;
/**
 * Names of a dead worker's claim directory settled per pass over queue/ (see #settlePage): recovery's
 * memory is this many names and ids, whatever the directory holds.
 */
const RECOVER_PAGE = 1024;
/** A claimed name whose record or body could not be read goes back to queue/ due this much later (see #claimListed). */
const CLAIM_FAILED_RETRY_MS = 60_000;
/**
 * Messages a purge removes at once (see #purgePage). `node bench/suites/queue/purge.mjs spool 5000`
 * (load 5 to 6 on 2 cores): 1,100 to 1,800 us a message one at a time, 420 to 500 four at a time.
 */
const PURGE_LANES = 4;

export interface SpoolStoreOptions {
  /** A heartbeat older than this marks a worker on another host as dead. Default 60 000 ms. */
  leaseMs?: number;
}

interface Located {
  where: 'queue' | 'active' | 'hold' | 'done';
  path: string;
  worker?: string;
}

/** An end-of-data mark asked for (see markCommitting): the mark's name and the claim it is a second name of. */
interface Mark { path: string; claim: string; worker: string; resolve(): void; reject(error: unknown): void }

/**
 * A worker's listing of queue/: due names in the order it claims them, the next one to try, when it
 * was made, and how long it serves (LISTING_MS, or longer if it was costly: see LISTING_SHARE).
 */
interface Listing {
  names: string[];
  next: number;
  at: number;
  serves: number;
  /** What making it cost (main-thread ms). */
  cost: number;
  /** When the earliest name it saw that was not yet due is due (or one this process queued since): see #resting. */
  later: number;
  /** queue/'s mtime read before the scan, if it had settled then (settledStamp): see #resting. */
  stamp: bigint | undefined;
}

interface WorkerFile {
  host: string;
  pid: number;
  procStart?: string;
  startedAt: number;
  /** machineLife() of its process: a recoverer with the same one trusts its writing notes once its pid is gone (see writing.ts). */
  life?: string;
  /** Registered with `writingNotes`: it notes every end of data it writes, in active/<worker>/writing. */
  notes?: true;
}

/** Why recover() may settle a worker's claims: a worker that notes its ends of data, whose process ended on this machine since boot ('ended': its writing notes hold), or any other dead one ('lost'). */
type Liveness = 'alive' | 'ended' | 'lost';

export class SpoolStore extends EventEmitter<QueueEvents> implements QueueStore {
  readonly kind = 'spool';
  readonly dir: string;
  /** `dir`, normalized, with a trailing '/' (see #p). */
  readonly #prefix: string;
  readonly #leaseMs: number;
  readonly #syncer = new DirSyncer();
  readonly #workers = new Map<string, NodeJS.Timeout>();
  /** Each worker's notes of attempts writing their end of data (see writing.ts and markWriting). */
  readonly #writing = new Map<string, WritingNotes>();
  /** The workers registered with `writingNotes`. */
  readonly #noting = new Set<string>();
  /** This process's machineLife(), written in its workers' files. */
  readonly #life = machineLife();
  #control: Promise<string> | undefined;
  readonly #marks = new TurnBatch<Mark>((batch) => this.#flushMarks(batch));
  #outcomes: { worker: string; from: string; message: StoredMessage; resolve(): void; reject(error: unknown): void }[] = [];
  /** A batch of outcomes is being written, or its write is scheduled (see #scheduleOutcomes). */
  #outcomesBusy = false;
  /** The batch of outcomes being written, until it is (see #drainOutcomes). */
  #outcomesRun: Promise<void> | undefined;
  /** The wait for more outcomes to gather (see OUTCOME_GATHER_MS), while one runs. */
  #outcomesTimer: NodeJS.Timeout | undefined;
  /** When the first outcome waiting in #outcomes arrived. */
  #outcomesSince = 0;
  /** How many outcomes the last batch held: more than one means they keep coming, so the next batch gathers. */
  #lastOutcomeBatch = 0;
  /** tmp/ names of record files: unique to this store (random) and counted (no random bytes per file). */
  readonly #tmpPrefix = randomBytes(6).toString('hex');
  #tmpCount = 0;
  /**
   * tmp/ names of emptied claim entries (an empty file whose message's outcome is recorded, moved here
   * instead of unlinked), written as the next record files: a record file then costs no new inode. On
   * ext4 without a journal (this machine), creating a file while messages' files are being deleted
   * costs about 200 us of CPU (recently_deleted() walks the inode bitmap).
   */
  readonly #spares: { path: string; at: number }[] = [];
  /** Bodies read with their claims (see #readClaimed), until the attempt takes them: small ones in memory, larger ones as their file. */
  readonly #bodies = new Map<string, SpooledBody>();
  /** Each worker's listing of queue/ (see #listDue). */
  readonly #listings = new Map<string, Listing>();
  /** Per worker, the error of a claim that returned the messages it had won before it failed (see claim). */
  readonly #claimFailures = new Map<string, unknown>();
  /** Each worker's listing being made, if one is (see #relist). */
  readonly #listingsMaking = new Map<string, Promise<Listing>>();
  /** Names this process put in queue/ while a listing was being made, one array per listing under way (see #queued). */
  readonly #listingsUnderWay = new Set<string[]>();
  /** How many names the next listing holds (see LISTED_PART), from how many the last one found due. */
  #listSize = LISTED_MAX;
  /** Ids whose new copy is in place while their claimed copy is not yet removed (see #place). */
  readonly #placing = new Set<string>();
  #closed = false;
  /** Whether this store has swept commit/ once (see #sweepMarks). */
  #swept = false;

  constructor(dir: string, options: SpoolStoreOptions = {}) {
    super();
    this.dir = dir;
    const root = join(dir);
    this.#prefix = root.endsWith('/') ? root : `${root}/`;
    this.#leaseMs = options.leaseMs ?? 60_000;
  }

  /**
   * A path in the spool. `parts` are names (fixed directory names, ids, worker ids, names read from
   * the spool's own directories: never '.', '..' or containing '/'), so joining them with '/' is
   * path.join's result without its normalizing (0.57 us per call, about ten calls per message).
   */
  #p(...parts: string[]): string {
    return this.#prefix + parts.join('/');
  }

  /** For tests: directory fsyncs so far. */
  get dirSyncs(): number {
    return this.#syncer.syncs;
  }

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    let marker: string | undefined;
    try {
      marker = await readFile(this.#p('spool.json'), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (marker !== undefined) {
      const found = JSON.parse(marker) as { format?: string; version?: number };
      if (found.format !== FORMAT.format || (found.version !== FORMAT.version && !UPGRADABLE.includes(found.version!))) {
        throw new QueueError('ERR_QUEUE_LAYOUT', `${this.dir} is not a version ${FORMAT.version} smtplib-queue spool (spool.json says ${marker.trim()}); point --queue-dir at an empty or spool directory`);
      }
      if (found.version !== FORMAT.version) marker = undefined; // written again below: the upgrade
    }
    for (const sub of ['tmp', 'data', 'queue', 'active', 'hold', 'done', 'commit', 'idem', 'workers']) {
      await mkdir(this.#p(sub), { recursive: true, mode: 0o700 });
    }
    if (marker === undefined) {
      await unlinkIfPresent(this.#p('tmp', `spool.${process.pid}.json`));
      await writeDurable(this.#p('tmp', `spool.${process.pid}.json`), JSON.stringify(FORMAT) + '\n');
      await rename(this.#p('tmp', `spool.${process.pid}.json`), this.#p('spool.json'));
      await this.#syncer.sync(this.dir);
    }
    await this.#cleanTmp();
    await this.recover();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#drainOutcomes();
    for (const worker of [...this.#workers.keys()]) await this.unregisterWorker(worker);
    for (const spare of this.#spares.splice(0)) await unlinkIfPresent(spare.path).catch(() => undefined);
    await this.#syncer.close();
  }

  /** Files in tmp/ older than 10 minutes belong to writes that crashed. */
  async #cleanTmp(): Promise<void> {
    const cutoff = Date.now() - 600_000;
    for (const name of await readdir(this.#p('tmp'))) {
      try {
        const info = await stat(this.#p('tmp', name));
        if (info.mtimeMs < cutoff) await unlinkIfPresent(this.#p('tmp', name));
      } catch {
        // gone already
      }
    }
  }

  /** `event` is the caller's own new object: `at` is set on it (a spread copy with one more property cost V8 ~2.5 us, twice per message). */
  #emit(event: Omit<TransitionEvent, 'at'>): void {
    const full = event as TransitionEvent;
    full.at = Date.now();
    this.emit('transition', full);
  }

  // --- enqueue -------------------------------------------------------------------

  async enqueue(input: EnqueueInput, options: EnqueueOptions = {}): Promise<EnqueueResult> {
    this.#assertOpen();
    const { record: stored, body } = newRecord(input, options, Date.now());
    // A body the pool will read from the file: what the core would have found scanning it in memory (body-file.ts).
    if (body.length > BODY_IN_MEMORY_MAX) stored.eightBit = hasEightBit(body);
    // One file, one fsync: the record's first version and the body. The entry
    // in queue/ is an empty file (its name says all a claim needs to find it):
    // durable by the directory's fsync alone, with no content to lose.
    const dataTmp = this.#p('tmp', `${stored.id}.eml`);
    await writeDurable(dataTmp, [Buffer.from(JSON.stringify(stored) + '\n', 'utf8'), body]);
    return this.#publish(stored, dataTmp, options);
  }

  /**
   * enqueue() for a message read from a stream: written to tmp/ as it arrives
   * (never held whole), then fsynced and published like any other. The record
   * line is written first with room for the size and eightBit (spaces, which
   * JSON allows), written over them once the stream has ended.
   */
  async enqueueStream(input: EnqueueStreamInput, options: EnqueueOptions = {}): Promise<EnqueueResult> {
    this.#assertOpen();
    const stored = newStreamedRecord(input, options, Date.now());
    const { size, ...rest } = stored;
    void size;
    const before = Buffer.from(JSON.stringify(rest).slice(0, -1) + ',"size":', 'utf8');
    const room = 16 + ',"eightBit":false'.length; // digits of Number.MAX_SAFE_INTEGER, then the flag
    const head = Buffer.concat([before, Buffer.from(' '.repeat(room) + '}\n', 'utf8')]);
    const dataTmp = this.#p('tmp', `${stored.id}.eml`);
    const seen = { eightBit: false };
    const length = await writeDurableStream(dataTmp, head, noteEightBit(input.message, seen), (bodyLength) => {
      if (bodyLength === 0) throw emptyMessage();
      return { position: before.length, bytes: Buffer.from(`${bodyLength},"eightBit":${seen.eightBit}`.padEnd(room, ' '), 'utf8') };
    });
    return this.#publish({ ...stored, size: length, eightBit: seen.eightBit }, dataTmp, options);
  }

  /** Makes a message whose data file is durable in tmp/ visible: idempotency key, data/, then queue/. */
  async #publish(stored: StoredMessage, dataTmp: string, options: EnqueueOptions): Promise<EnqueueResult> {
    const id = stored.id;
    if (options.idempotencyKey !== undefined) {
      const existing = await this.#claimKey(options.idempotencyKey, id);
      if (existing) {
        await unlinkIfPresent(dataTmp);
        return { id: existing, created: false };
      }
    }
    await rename(dataTmp, this.#p('data', id));
    // The body is durable before the message becomes visible in queue/.
    await this.#syncer.sync(this.#p('data'));
    const name = queueName(stored);
    await createMarker(this.#p('queue', name));
    await Promise.all([this.#syncer.sync(this.#p('queue')), options.idempotencyKey !== undefined ? this.#syncer.sync(this.#p('idem')) : undefined]);
    this.#queued(name);
    this.#emit({ id, from: 'new', to: 'queued' });
    return { id, created: true };
  }

  /** Links idem/<hash> to our id; returns the first message's id if the key was used. */
  async #claimKey(key: string, id: string): Promise<string | undefined> {
    const target = this.#idemPath(key);
    const tmp = this.#p('tmp', `${id}.idem`);
    await writeDurable(tmp, id);
    try {
      for (let tries = 0; tries < 2; tries++) {
        if (linkIfAbsent(tmp, target)) return undefined;
        const existing = await this.#keyOwner(target);
        if (existing === undefined) continue; // removed meanwhile: link again
        // An enqueue that crashed after linking the key but before the message
        // became visible leaves a key pointing at nothing: reuse the key then.
        if (!(await this.#locate(existing)) && !exists(this.#p('data', existing))) {
          const info = await stat(target).catch(() => undefined);
          if (info && Date.now() - info.mtimeMs > 60_000) {
            await unlinkIfPresent(target);
            continue;
          }
        }
        return existing;
      }
      throw new QueueError('ERR_QUEUE_STORE', `could not record idempotency key (it changed twice while being read); try again`);
    } finally {
      await unlinkIfPresent(tmp);
    }
  }

  /** The message id an idempotency key's file (#idemPath) names; undefined when there is no such file. */
  async #keyOwner(path: string): Promise<string | undefined> {
    try {
      return (await readFile(path, 'utf8')).trim();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** Where an idempotency key lives: idem/<sha256 of the key> (any key, of any length, is one safe name). */
  #idemPath(key: string): string {
    return this.#p('idem', createHash('sha256').update(key).digest('hex'));
  }

  // --- reading -------------------------------------------------------------------

  async #queueNames(): Promise<string[]> {
    return (await readdir(this.#p('queue'))).filter((name) => QUEUE_NAME.test(name));
  }

  async #activeDirs(): Promise<string[]> {
    return readdir(this.#p('active'));
  }

  /** Message `id`'s name in queue/, if it is there: a scan that stops once found, holding no list of names. */
  async #queuedName(id: string): Promise<string | undefined> {
    const suffix = `-${id}.json`;
    let found: string | undefined;
    await scanDir(this.#p('queue'), (name) => {
      if (!name.endsWith(suffix) || !QUEUE_NAME.test(name)) return false;
      found = name;
      return true;
    });
    return found;
  }

  /** Finds a message's current file; looks again if it moved while being looked for. */
  async #locate(id: string): Promise<Located | undefined> {
    for (let round = 0; round < 3; round++) {
      const queued = await this.#queuedName(id);
      if (queued) return { where: 'queue', path: this.#p('queue', queued) };
      for (const worker of await this.#activeDirs()) {
        const path = this.#p('active', worker, `${id}.json`);
        if (exists(path)) return { where: 'active', path, worker };
      }
      if (exists(this.#p('hold', `${id}.json`))) return { where: 'hold', path: this.#p('hold', `${id}.json`) };
      const finished = this.#finishedState(id);
      if (finished !== undefined) return { where: 'done', path: this.#p('done', `${finished}-${id}.json`) };
      // Back through active and queue: a record a worker moved from active to
      // queue (a retry) after the queue was read above is found here, so a
      // message retried as fast as it is looked up is never lost from view.
      for (const worker of await this.#activeDirs()) {
        const path = this.#p('active', worker, `${id}.json`);
        if (exists(path)) return { where: 'active', path, worker };
      }
      const requeued = await this.#queuedName(id);
      if (requeued) return { where: 'queue', path: this.#p('queue', requeued) };
    }
    return undefined;
  }

  /** A message's record: its file, or while that is empty (never attempted) data/<id>'s first line. */
  async #read(path: string): Promise<StoredMessage | undefined> {
    try {
      const id = idOfPath(path);
      const text = await readText(path);
      if (text !== '') return recordIn(text, id, path);
      return readRecordLine(this.#p('data', id)); // the record written at enqueue, not the body
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /**
   * A claimed message's record. A message never attempted has its record in
   * data/<id>, before its body: one read gives both for a small message, and
   * the body is kept for the attempt that follows (no second read of the
   * file); a larger body is kept as its file, never read here (body-file.ts).
   */
  async #readClaimed(path: string, id: string): Promise<StoredMessage | undefined> {
    // Most claims are of messages never attempted, whose entry is empty: one stat says so
    // (open + fstat + close did, three calls).
    const size = sizeOf(path);
    if (size === undefined) return undefined;
    if (size > 0) {
      let text: string;
      try {
        text = await readText(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
      if (text !== '') return recordIn(text, id, path);
    }
    const { record, body } = await readDataFile(this.#p('data', id));
    this.#bodies.set(id, body);
    return record;
  }

  async #viewAt(located: Located): Promise<QueueMessage | undefined> {
    const stored = await this.#read(located.path);
    if (!stored) return undefined;
    return view(stored, { ...(located.worker ? { active: located.worker } : {}), held: located.where === 'hold' });
  }

  async get(id: string): Promise<QueueMessage | undefined> {
    checkId(id);
    for (let round = 0; round < 50; round++) {
      const located = await this.#locate(id);
      if (located) {
        const message = await this.#viewAt(located);
        if (message) return message;
      } else if (!exists(this.#p('data', id))) {
        return undefined;
      }
      // A message that still has its body exists: it moved while being looked
      // for (a claim and a retry racing the lookup). Look again.
      await new Promise((r) => setTimeout(r, 2));
    }
    return undefined;
  }

  /** The message's bytes: in memory up to BODY_IN_MEMORY_MAX, else `{ path, start }` of data/<id> (which exists until the outcome is recorded). */
  async body(id: string): Promise<SpooledBody> {
    checkId(id);
    const kept = this.#bodies.get(id);
    if (kept) {
      this.#bodies.delete(id);
      return kept;
    }
    try {
      return (await readDataFile(this.#p('data', id))).body;
    } catch (error) {
      throw new QueueError('ERR_QUEUE_NOT_FOUND', `the body of message ${id} is not in the spool (delivered messages keep only their record)`, { cause: error, messageId: id });
    }
  }

  /** Every file holding a message, with where it is. */
  async #all(states?: ReadonlySet<QueueState>): Promise<Located[]> {
    const want = (...s: QueueState[]): boolean => !states || s.some((x) => states.has(x));
    const out: Located[] = [];
    if (want('queued', 'deferred')) for (const name of await this.#queueNames()) out.push({ where: 'queue', path: this.#p('queue', name) });
    if (want('active')) {
      for (const worker of await this.#activeDirs()) {
        let names: string[] = [];
        try {
          names = await readdir(this.#p('active', worker));
        } catch {
          continue;
        }
        for (const name of names) if (name.endsWith('.json')) out.push({ where: 'active', path: this.#p('active', worker, name), worker });
      }
    }
    if (want('held')) for (const name of await readdir(this.#p('hold'))) if (name.endsWith('.json')) out.push({ where: 'hold', path: this.#p('hold', name) });
    if (want('delivered', 'bounced', 'unknown')) {
      for (const name of await readdir(this.#p('done'))) {
        const match = DONE_NAME.exec(name);
        if (match && want(match[1] as QueueState)) out.push({ where: 'done', path: this.#p('done', name) });
      }
    }
    return out;
  }

  async list(filter: ListFilter = {}): Promise<QueueMessage[]> {
    const states = filter.state === undefined ? undefined : new Set(typeof filter.state === 'string' ? [filter.state] : filter.state);
    const search = filter.search?.toLowerCase();
    const out: QueueMessage[] = [];
    for (const located of await this.#all(states)) {
      const message = await this.#viewAt(located);
      if (!message) continue;
      if (states && !states.has(message.state)) continue;
      if (search && !message.from.toLowerCase().includes(search) && !message.recipients.some((r) => r.address.toLowerCase().includes(search))) continue;
      out.push(message);
    }
    out.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
    return filter.limit !== undefined ? out.slice(0, filter.limit) : out;
  }

  async stats(): Promise<QueueStats> {
    const messages = emptyCounts();
    const recipients = emptyCounts();
    let oldest = Infinity;
    const now = Date.now();
    for (const located of await this.#all()) {
      const message = await this.#viewAt(located);
      if (!message) continue;
      messages[message.state]++;
      for (const r of message.recipients) recipients[r.state]++;
      if (!isTerminal(message.state)) oldest = Math.min(oldest, message.createdAt);
    }
    const pending = messages.queued + messages.deferred + messages.active + messages.held;
    return { messages, recipients, pending, oldestPendingMs: oldest === Infinity ? 0 : now - oldest };
  }

  async nextDueAt(): Promise<number | undefined> {
    // A worker's listing that found nothing due knows (see #resting), within its freshness.
    for (const listing of this.#listings.values()) if (this.#resting(listing)) return listing.later === Infinity ? undefined : listing.later;
    let next: string | undefined;
    await scanDir(this.#p('queue'), (name) => {
      // The name starts with its due time, 13 digits: the smallest name is the earliest due.
      if ((next === undefined || name < next) && QUEUE_NAME.test(name)) next = name;
    });
    return next === undefined ? undefined : Number(next.slice(0, 13));
  }

  // --- workers -------------------------------------------------------------------

  async registerWorker(options: { writingNotes?: boolean } = {}): Promise<string> {
    return this.#register('', Boolean(options.writingNotes));
  }

  async #register(suffix: string, writingNotes = false): Promise<string> {
    this.#assertOpen();
    const host = os.hostname().toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 20) || 'host';
    const worker = `${host}-${process.pid}-${randomBytes(4).toString('hex')}${suffix}`;
    if (writingNotes) this.#noting.add(worker);
    await this.#publishWorker(worker);
    const beat = setInterval(() => {
      const now = new Date();
      utimes(this.#p('workers', `${worker}.json`), now, now).catch(() => undefined);
    }, Math.max(1000, this.#leaseMs / 4));
    beat.unref();
    this.#workers.set(worker, beat);
    return worker;
  }

  /** Makes `worker`'s claim directory and publishes its file (registration, and a rejoin after being taken for dead). */
  async #publishWorker(worker: string): Promise<void> {
    const notes = this.#noting.has(worker);
    const file: WorkerFile = { host: os.hostname(), pid: process.pid, startedAt: Date.now(), ...(procStart(process.pid) ? { procStart: procStart(process.pid)! } : {}), ...(this.#life ? { life: this.#life } : {}), ...(notes ? { notes: true as const } : {}) };
    // The claim directory first, then the file, written in tmp/ and renamed into workers/ whole. A
    // recovery running meanwhile in another process then sees either a fresh directory with no file
    // (alive: see #alive) or the whole file. Written in place after the directory... before it, a
    // recovery that read the file still empty took the worker for dead, removed its directory (made
    // meanwhile, still empty) and its file, and the worker claimed nothing from then on: every rename
    // into its missing directory failed as if another worker had won (a traced, slower worker process
    // of bench/suites/queue/compiles.mjs, 2 runs of about 30).
    await mkdir(this.#p('active', worker), { recursive: true, mode: 0o700 });
    // Before the worker file says `notes`: a recovery that trusts the notes finds the file (see writing.ts).
    // A new file after a rejoin: the old one went with the claim directory, and so did the claims of the
    // attempts it noted, so the open notes start afresh; one still there is kept, with its notes.
    if (notes && createWritingNotes(this.#p('active', worker, WRITING_FILE))) this.#closeWriting(worker);
    const tmp = this.#p('tmp', `${worker}.json`);
    await writeFile(tmp, JSON.stringify(file));
    await rename(tmp, this.#p('workers', `${worker}.json`));
    await this.#syncer.sync(this.#p('active'));
  }

  /**
   * A worker whose claim directory is gone was taken for dead (its heartbeat older than leaseMs, seen
   * from another host, or its process thought gone) and recovered: what it held went back to queue/ or
   * was settled by the recovery rules, and its marks and outcomes now fail with ERR_QUEUE_CLAIM_LOST.
   * Without this check every later claim failed silently (a rename into a missing directory reads as
   * another worker having won) and the worker sent nothing for the rest of its life. It registers
   * again under the same name and says so once, by this error; its next claim works.
   */
  async #rejoin(worker: string): Promise<never> {
    if (!this.#workers.has(worker)) {
      throw new QueueError('ERR_QUEUE_CLAIM_LOST', `${worker} is not a worker registered with this store (registerWorker() gives one); nothing was claimed`);
    }
    this.#listings.delete(worker);
    await this.#publishWorker(worker);
    throw new QueueError('ERR_QUEUE_CLAIM_LOST', `worker ${worker} had been taken for dead (its heartbeat was older than leaseMs, or its process looked gone) and its claims were recovered by another worker; it has registered again and claims from its next call on. If this repeats, raise leaseMs or look for event-loop stalls and clock steps on this host`);
  }

  async unregisterWorker(worker: string): Promise<void> {
    const beat = this.#workers.get(worker);
    if (!beat) return;
    clearInterval(beat);
    this.#workers.delete(worker);
    this.#noting.delete(worker);
    this.#listings.delete(worker);
    this.#claimFailures.delete(worker);
    try {
      // Outcomes it asked for are recorded first: a claim given back with its outcome still gathering would
      // be queued again, and the outcome then refused as a lost claim.
      await this.#drainOutcomes();
      // Whatever it still holds goes back (an attempt that wrote its end of data is settled by recovery rules).
      await this.#settleWorkerDir(worker, {}, true);
    } finally {
      // Its notes file stays until what it holds is settled (a later recovery reads it); its descriptor goes now.
      this.#closeWriting(worker);
    }
    await unlinkIfPresent(this.#p('active', worker, WRITING_FILE));
    await unlinkIfPresent(this.#p('workers', `${worker}.json`));
    await this.#syncer.forget(this.#p('active', worker));
    if (this.#control && worker === (await this.#control)) this.#control = undefined;
  }

  /** The store's own worker id, for operator commands and recovery (their claims are recovered like anyone's). */
  #controlWorker(): Promise<string> {
    this.#control ??= this.#register(CONTROL_SUFFIX);
    return this.#control;
  }

  async claim(worker: string, limit: number): Promise<Claim[]> {
    this.#assertOpen();
    const failed = this.#claimFailures.get(worker);
    if (failed !== undefined) {
      // The error of a claim that had already won messages (and returned them): reported now.
      this.#claimFailures.delete(worker);
      throw failed;
    }
    // One stat per claim (claims come in batches): a missing directory means this worker was recovered as dead.
    // Only a directory that is gone means the worker was taken for dead: a stat that fails otherwise
    // (EIO, ESTALE) is thrown, never answered by a rejoin (which would start its writing notes afresh).
    if (!exists(this.#p('active', worker))) await this.#rejoin(worker);
    const won: StoredMessage[] = [];
    try {
      await this.#claimInto(worker, limit, won);
    } catch (error) {
      // Messages already renamed into this worker's directory are returned, not stranded there (a live
      // worker's claims are recovered by no one until it unregisters); the error is this worker's next
      // claim's, so it is still reported (QueueWorker: an 'error' event).
      if (won.length === 0) throw error;
      this.#claimFailures.set(worker, error);
    }
    // A stat per claimed message (a few us each, on the main thread), not a readdir of commit/ per
    // claim: that readdir waited on the threadpool behind the fsyncs and body unlinks, 2 to 3 ms per
    // claim (4 workers, 4,000 messages: 230 to 290 ms per worker process).
    const claims: Claim[] = [];
    for (const message of won) {
      let interrupted: boolean;
      try {
        interrupted = exists(this.#p('commit', `${message.id}@${message.attempts + 1}`));
      } catch (error) {
        // Not known whether its last attempt was marked (a stat's EIO): not returned as a claim, given
        // back (the next claim looks again), the error reported by this worker's next claim.
        if (!this.#claimFailures.has(worker)) this.#claimFailures.set(worker, error);
        await this.unclaim(worker, message.id).catch(() => undefined); // left: settled when the worker unregisters
        continue;
      }
      this.#emit({ id: message.id, from: restingState(message), to: 'active' });
      claims.push({ message, interrupted });
    }
    return claims;
  }

  /** claim()'s work: due names taken from the worker's listing (made again when needed) into `won`. */
  async #claimInto(worker: string, limit: number, won: StoredMessage[]): Promise<void> {
    let listing = this.#listings.get(worker);
    let listed = false;
    // A listing that found nothing due and rests (see #resting) is not made again, stale or not.
    const stale = listing !== undefined && Date.now() - listing.at > listing.serves && !this.#resting(listing);
    // A costly listing (a long queue: it serves longer than LISTING_MS) is made again beside the claims;
    // a cheap one when the claim needs it, as it is then freshest.
    const costly = listing !== undefined && listing.serves > LISTING_MS;
    if (!listing || (listing.next >= listing.names.length && !this.#resting(listing)) || (stale && !costly)) {
      listing = await this.#relist(worker);
      listed = true;
    } else if (costly && (stale || listing.names.length - listing.next < listing.names.length / 4)) {
      // Stale, or a quarter of it left: the next listing is made meanwhile, and the claims go on from
      // this one. A claim that waited for it left its worker's pool to drain: with 256,000 messages
      // waiting a pass over queue/ took a few hundred ms between claims, and 4 workers delivered 29 %
      // fewer messages a second than with 8,000, at about the same CPU per message (backlog.mjs).
      // Not for a cheap listing: claims from a stale one try names other workers took since (a failed
      // rename, and its exception, each): in the 4-worker cell of bench/suites/queue.js, 8,000 messages,
      // about 2,600 failed renames per worker process against about 530 when it waited for the new one.
      void this.#relist(worker).catch(() => undefined); // an error is met again, by the claim that waits for a listing
    }
    await this.#claimListed(worker, listing, limit, won);
    if (won.length < limit && !listed && !this.#resting(listing)) {
      // The listing ran dry (other workers took its names): look at queue/ again.
      listing = await this.#relist(worker);
      await this.#claimListed(worker, listing, limit, won);
    }
  }

  /**
   * Lists queue/'s due names in the order `worker` claims them, for this and its next claims (the
   * first #listSize in claim order; for LISTING_MS, or LISTING_SHARE times what it cost; until other
   * workers have taken its names): a claim then costs its renames, not a pass over the whole queue.
   * queue/ is read a chunk at a time (scanDir) and only the first names in claim order are kept
   * (DueSelection): its CPU grows with the queue's length N as N log(#listSize), its memory not at
   * all (a readdir() and a sort of every name held them all: at a million names, about a second and
   * 60 MB per listing per worker). Names, not parsed objects: due is a string comparison. With several
   * workers the listing is the worker's stripe first (stripeOrder).
   */
  async #listDue(worker: string): Promise<Listing> {
    const now = Date.now();
    const registered = readdir(this.#p('workers'));
    registered.catch(() => undefined); // awaited below; not an unhandled rejection when queue/'s scan throws first
    const selection = new DueSelection(this.#listSize, now);
    // Before the scan: a name added or removed from here on changes queue/'s mtime. (Before the
    // registration below: a stat that throws leaves nothing registered.)
    const stamp = settledStamp(this.#p('queue'));
    const queuedMeanwhile: string[] = [];
    this.#listingsUnderWay.add(queuedMeanwhile);
    let scan: { ms: number };
    let workers: string[];
    try {
      scan = await scanDir(this.#p('queue'), (name) => selection.add(name));
      // Still under way while workers/ is read: a name queued in that wait is merged below too (the
      // listing it would otherwise join is the one this replaces).
      workers = await registered;
    } finally {
      this.#listingsUnderWay.delete(queuedMeanwhile);
    }
    const start = process.cpuUsage();
    const names = listingOrder(selection.names(), workers, worker);
    // A name this process queued during the scan may have been read or not: merged (a name twice
    // in a listing costs a failed rename).
    for (const name of queuedMeanwhile) names.splice(mergeAt(names, 0, name), 0, name);
    const cost = scan.ms + cpuMsSince(start); // CPU, not wall time (see cpuMsSince)
    this.#listSize = Math.min(LISTED_CAP, Math.max(LISTED_MAX, Math.ceil(selection.due / LISTED_PART)));
    const listing: Listing = { names, next: 0, at: now, serves: Math.max(LISTING_MS, LISTING_SHARE * cost), cost, later: selection.later(), stamp };
    if (this.#workers.has(worker)) this.#listings.set(worker, listing); // not for a worker unregistered meanwhile
    return listing;
  }

  /** A new listing for `worker` (#listDue), or the one already being made. */
  #relist(worker: string): Promise<Listing> {
    let making = this.#listingsMaking.get(worker);
    if (making === undefined) {
      making = this.#listDue(worker).finally(() => this.#listingsMaking.delete(worker));
      this.#listingsMaking.set(worker, making);
    }
    return making;
  }

  /**
   * A name this process just put in queue/ (an enqueue, an outcome that defers, a message given back
   * or released): when it is due, merged into every listing of this process's workers in claim order
   * (mergeAt), so it is claimed without waiting for the next listing (it used to throw every listing
   * away: a worker that also deferred listed the whole queue for nearly every claim). One not yet due
   * is seen by a listing made once it is.
   */
  #queued(name: string): void {
    const due = Number(name.slice(0, 13));
    if (due > Date.now()) {
      for (const listing of this.#listings.values()) listing.later = Math.min(listing.later, due);
      return;
    }
    for (const [worker, listing] of this.#listings) {
      // A listing grown far past its size by merges (this process queues faster than its workers
      // claim) is dropped instead: the next claim lists queue/ again, where those names are.
      if (listing.names.length - listing.next > 2 * LISTED_CAP) this.#listings.delete(worker);
      else listing.names.splice(mergeAt(listing.names, listing.next, name), 0, name);
    }
    for (const meanwhile of this.#listingsUnderWay) meanwhile.push(name);
  }

  /**
   * A listing that found nothing due is used again, not made again at every claim, for LISTING_SHARE
   * times what it cost and until the earliest name it saw not yet due is: an idle worker beside a
   * long deferred queue passed over all of it at every poll (and nextDueAt a second time). 32,000
   * messages deferred, one worker at the default pollIntervalMs, its process's CPU over 5 s (a one-off
   * script, load 1.3-1.5): 333 ms before, 205 to 251 ms with this (a listing there costs about 15 ms,
   * so it rests about 300 ms; the longer the queue, the longer it rests). With a short queue this is a
   * few ms, so a message another process queues is seen as soon as before.
   * Past that, it still rests while queue/ has not changed since before its scan (one stat: no name
   * added or removed, by any process; one this process adds is merged or moves `later`, see #queued),
   * for up to UNCHANGED_REST_MS: an idle worker beside a long deferred queue then lists it about once
   * a minute, not once per LISTING_SHARE times its cost (`node bench/suites/queue/idle.mjs`).
   */
  #resting(listing: Listing): boolean {
    const now = Date.now();
    if (listing.names.length !== 0 || now >= listing.later) return false;
    const age = now - listing.at;
    if (age < 0) return false; // the clock stepped back: the listing's age says nothing
    if (age <= LISTING_SHARE * listing.cost) return true;
    return listing.stamp !== undefined && age <= UNCHANGED_REST_MS && stampNow(this.#p('queue')) === listing.stamp;
  }

  /**
   * Claims listed names in order until `won` holds `limit`: a rename into the worker's directory,
   * which only one worker wins (a name another worker took first is skipped).
   */
  async #claimListed(worker: string, listing: Listing, limit: number, won: StoredMessage[]): Promise<void> {
    while (won.length < limit && listing.next < listing.names.length) {
      const name = listing.names[listing.next++]!;
      const id = queueNameId(name);
      if (this.#placing.has(id)) continue; // this process is moving it (see #placeAll)
      const path = this.#p('active', worker, `${id}.json`);
      if (!moveIfPresent(this.#p('queue', name), path)) continue; // another worker won
      let message: StoredMessage | undefined;
      try {
        message = await this.#readClaimed(path, id);
      } catch (error) {
        if (!(error instanceof QueueError && error.code === 'ERR_QUEUE_STORE')) {
          // Its record or body could not be read (a file damaged or removed by hand, an I/O error): back
          // to queue/, due CLAIM_FAILED_RETRY_MS later (not at the head of the queue, where every claim
          // would meet it first), and the error thrown (claim() still returns what it won before).
          moveIfPresent(path, this.#p('queue', `${String(Date.now() + CLAIM_FAILED_RETRY_MS).padStart(13, '0')}${name.slice(13)}`));
          throw error;
        }
        // A name that holds no record of its message (a power loss brought back a name of a file
        // written over since: see #settleWorkerDir) is a leftover: removed unread, and the claims
        // won before it are still returned.
        await unlinkIfPresent(path);
        continue;
      }
      if (message) won.push(message);
    }
  }

  markCommitting(worker: string, id: string, attempt: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#marks.add({ path: this.#p('commit', `${checkId(id)}@${attempt}`), claim: this.#p('active', worker, `${id}.json`), worker, resolve, reject });
    });
  }

  /**
   * Notes, synchronously and without an fsync, that attempt `attempt` of `id` is about to write its
   * end of data (the pool's beforeCommitSync): after a process crash, a marked attempt with no note
   * certainly was not delivered (see writing.ts). Throws when the note cannot be written.
   */
  markWriting(worker: string, id: string, attempt: number): void {
    let notes = this.#writing.get(worker);
    if (!notes) {
      if (!this.#workers.has(worker)) throw claimLost(this.#p('active', worker, `${id}.json`));
      if (!this.#noting.has(worker)) throw new QueueError('ERR_QUEUE_INVALID', `markWriting: worker ${worker} was not registered with { writingNotes: true }; its notes would not be trusted`);
      notes = new WritingNotes(this.#p('active', worker, WRITING_FILE));
      this.#writing.set(worker, notes);
    }
    notes.note(checkId(id), attempt);
  }

  #closeWriting(worker: string): void {
    const notes = this.#writing.get(worker);
    this.#writing.delete(worker);
    try {
      notes?.close();
    } catch {
      // a close that fails changes nothing: the notes were written
    }
  }

  /** One round trip for every mark asked for in this turn: claims made durable, marks created, one fsync of commit/. */
  async #flushMarks(batch: Mark[]): Promise<void> {
    try {
      // The claims and the marks both durable before any end of data is written; in either order, so the fsyncs run side by side.
      const [, owned] = await Promise.all([
        Promise.all([...new Set(batch.map((m) => m.worker))].map((w) => this.#syncer.sync(this.#p('active', w)))),
        (async () => {
          // Only a worker that still holds its claim may go on to the end of data. The mark is made as a
          // second name of the claimed file (a mark is only a name: its bytes are never read), so making
          // it is also the test that the claim is still held: link() fails when the claim is gone.
          const held = batch.map((m) => linkWhilePresent(m.claim, m.path));
          await this.#syncer.sync(this.#p('commit'));
          return held;
        })(),
      ]);
      batch.forEach((m, i) => (owned[i] ? m.resolve() : m.reject(claimLost(m.claim))));
    } catch (error) {
      for (const m of batch) m.reject(error);
    }
  }

  /**
   * Records an attempt's outcome and gives up the claim. Outcomes asked for in
   * one turn are written together (see #flushOutcomes): one file and one fsync
   * for all of them, not one each.
   */
  finish(worker: string, message: StoredMessage): Promise<void> {
    this.#bodies.delete(message.id);
    const from = this.#p('active', worker, `${checkId(message.id)}.json`);
    return new Promise<void>((resolve, reject) => {
      if (this.#outcomes.length === 0) this.#outcomesSince = Date.now();
      this.#outcomes.push({ worker, from, message, resolve, reject });
      this.#scheduleOutcomes();
    });
  }

  /**
   * Group commit: one batch of outcomes is written at a time; those asked for
   * meanwhile wait for it and go together in the next (the busier the worker,
   * the larger the batches, so the fewer the fsyncs per message). While they
   * keep coming (the last batch held more than one), a batch also gathers for
   * up to OUTCOME_GATHER_MS, or until it holds OUTCOME_GROUP.
   */
  #scheduleOutcomes(): void {
    if (this.#outcomesBusy || this.#outcomes.length === 0) return;
    const wait = !this.#closed && this.#lastOutcomeBatch > 1 && this.#outcomes.length < OUTCOME_GROUP ? this.#outcomesSince + OUTCOME_GATHER_MS - Date.now() : 0;
    if (wait > 0) {
      this.#outcomesTimer ??= setTimeout(this.#writeOutcomes, wait);
      return;
    }
    if (this.#outcomesTimer) clearTimeout(this.#outcomesTimer);
    this.#outcomesTimer = undefined;
    this.#outcomesBusy = true;
    setImmediate(this.#writeOutcomes); // the rest of this turn's outcomes join it
  }

  readonly #writeOutcomes = (): void => {
    this.#outcomesTimer = undefined;
    this.#outcomesBusy = true;
    this.#outcomesRun = this.#flushOutcomes().finally(() => {
      this.#outcomesBusy = false;
      this.#outcomesRun = undefined;
      this.#scheduleOutcomes();
    });
  };

  /**
   * Writes every outcome already asked for (one still gathering goes at once) and waits for it: close()
   * gives up the workers' claims only after their recorded attempts are durable, so no outcome asked for
   * before close() is lost and its message queued again.
   */
  async #drainOutcomes(): Promise<void> {
    while (this.#outcomes.length > 0 || this.#outcomesBusy) {
      if (this.#outcomesTimer) {
        clearTimeout(this.#outcomesTimer);
        this.#writeOutcomes();
      }
      await (this.#outcomesRun ?? new Promise<void>((resolve) => setImmediate(resolve)));
    }
  }

  /**
   * Group commit of outcomes: the claims still held are placed together
   * (#placeAll: one record file fsynced, linked under each message's new
   * name, directories fsynced, claimed copies removed), then each attempt's
   * marks go, and a delivered message's body.
   */
  async #flushOutcomes(): Promise<void> {
    const batch = this.#outcomes;
    this.#outcomes = [];
    this.#lastOutcomeBatch = batch.length;
    try {
      // Only the worker that still holds its claim may record (it was not taken for dead).
      // A claim is lost only when its file is missing: a stat that fails otherwise (EIO) fails the batch
      // (the worker tries again), and the attempt's writing note is kept meanwhile.
      const held = batch.map((o) => exists(o.from));
      const owned = batch.filter((_, i) => held[i]);
      batch.forEach((o, i) => {
        if (held[i]) return;
        this.#writing.get(o.worker)?.release(o.message.id);
        o.reject(claimLost(o.from));
      });
      if (owned.length === 0) return;
      const states = await this.#placeAll(owned);
      // Durable: these attempts' writing notes may be written over.
      for (const o of owned) this.#writing.get(o.worker)?.release(o.message.id);
      // The outcomes are durable and the claims gone. The files they made useless go, before the
      // callers return: a delivered message's body (a delivered message has no body), then the mark
      // of this attempt and of the one before (a resent interrupted attempt). In that order, and a
      // body that could not be removed keeps its marks: a body left (by a worker killed between the
      // two, or an error) has its mark beside it, and the mark is how recovery finds it (#sweepMarks;
      // removed the other way round, nothing pointed at it, and it stayed until a purge). A mark of an
      // attempt already recorded is never read, so one that cannot be removed is left.
      const bodiesGone = await Promise.all(owned.map(({ message }, i) => (states[i] === 'delivered' ? unlinkIfPresent(this.#p('data', message.id)).then(() => true, () => false) : true)));
      owned.forEach(({ message }, i) => {
        if (!bodiesGone[i]) return;
        for (let n = message.attempts; n >= 1 && n >= message.attempts - 1; n--) {
          try {
            removeName(this.#p('commit', `${message.id}@${n}`));
          } catch {
            // left: see above
          }
        }
      });
      owned.forEach(({ message, resolve }, i) => {
        this.#emit({ id: message.id, from: 'active', to: states[i]!, recipients: message.recipients.map((r) => ({ address: r.address, state: r.state })) });
        resolve();
      });
    } catch (error) {
      for (const o of batch) o.reject(error);
    }
  }

  async unclaim(worker: string, id: string): Promise<void> {
    const from = this.#p('active', worker, `${checkId(id)}.json`);
    this.#bodies.delete(id);
    this.#writing.get(worker)?.release(id);
    const message = await this.#read(from);
    if (!message) return;
    const name = queueName(message);
    await rename(from, this.#p('queue', name));
    this.#queued(name);
    this.#emit({ id, from: 'active', to: restingState(message) });
  }

  /** Where a message's record goes for its state: [dir, name]. */
  #destination(message: StoredMessage): { state: QueueState; dir: string; name: string } {
    const state: QueueState = message.held ? 'held' : restingState(message);
    if (message.held) return { state, dir: 'hold', name: `${message.id}.json` };
    if (isTerminal(state)) return { state, dir: 'done', name: `${state}-${message.id}.json` };
    return { state, dir: 'queue', name: queueName(message) };
  }

  /**
   * Writes the message's new copy where its state says (tmp/ → fsync →
   * rename → fsync dir), then removes the claimed copy. Returns the state.
   */
  async #place(from: string, message: StoredMessage): Promise<QueueState> {
    return (await this.#placeAll([{ from, message }]))[0]!;
  }

  /**
   * #place for several messages at once, with one record file and one fsync:
   * every record, one per line, is written to one file in tmp/ and fsynced;
   * that file is linked under each message's new name (a second name for the
   * same durable bytes: no fsync of its own; the first message's by rename), the directories are fsynced
   * (shared), and only then are the claimed copies removed. Readers take the
   * line with their message's id (recordIn). Returns each message's state.
   */
  async #placeAll(items: readonly { from: string; message: StoredMessage }[]): Promise<QueueState[]> {
    const places = items.map(({ message }) => this.#destination(message));
    const tmp = await this.#writeRecords(items.map(({ message }) => JSON.stringify(message)).join('\n'), items.length === 1 ? items[0]!.message.id : 'batch');
    // From the rename until the old copy is gone, this process must not claim
    // the new copy: the claim would land on the path about to be unlinked.
    for (const { message } of items) this.#placing.add(message.id);
    try {
      // The others' records are links to the file, then it becomes the first's by rename (no unlink
      // of tmp/'s name; the links come first: once in queue/, another process may claim a name).
      for (let i = 1; i < places.length; i++) linkReplacing(tmp, this.#p(places[i]!.dir, places[i]!.name), `${tmp}.${places[i]!.name}`);
      renameName(tmp, this.#p(places[0]!.dir, places[0]!.name));
      await Promise.all([...new Set(places.map((p) => p.dir))].map((dir) => this.#syncer.sync(this.#p(dir))));
      // The claimed copies go; an empty one (an entry never attempted) is kept as a spare (see
      // #spares) instead, moved out of the claim directory into tmp/: its message's new copy is
      // durable, and an empty file holds no record of any message (entries are made one per message,
      // O_EXCL; their other names are marks, whose bytes are never read), so writing over it later
      // changes no record. Empty is checked here, by a stat, not remembered from the claim: a record
      // file (never empty) can be shared by several messages' names. At most SPARES_MAX stats a batch.
      let looked = 0;
      for (const { from } of items) {
        if (this.#spares.length < SPARES_MAX && looked++ < SPARES_MAX && sizeOf(from) === 0) {
          const spare = { path: this.#p('tmp', `${this.#tmpPrefix}${(this.#tmpCount++).toString(36)}.spare`), at: Date.now() };
          if (moveIfPresent(from, spare.path)) {
            touch(spare.path, spare.at); // its mtime was its enqueue's: see SPARE_MS
            this.#spares.push(spare);
          }
        } else {
          removeName(from);
        }
      }
    } finally {
      for (const { message } of items) this.#placing.delete(message.id);
    }
    // Claimable by this process's workers once the claimed copies are gone (#placing), not before.
    for (const place of places) if (place.dir === 'queue') this.#queued(place.name);
    return places.map((p) => p.state);
  }

  /**
   * Writes a batch's records (one per line) to a file in tmp/ and fsyncs it; returns its path. The
   * file is a spare (an emptied claim entry, see #spares) when there is one, else a new file.
   */
  async #writeRecords(text: string, name: string): Promise<string> {
    const spare = this.#spares.pop();
    if (spare !== undefined && Date.now() - spare.at < SPARE_MS) {
      await writeSmallDurable(spare.path, text, true);
      return spare.path;
    }
    if (spare !== undefined) removeName(spare.path); // too old to be safe from another process's #cleanTmp
    const tmp = this.#p('tmp', `${name}.${this.#tmpPrefix}${(this.#tmpCount++).toString(36)}.json`);
    await writeSmallDurable(tmp, text);
    return tmp;
  }

  // --- operators -----------------------------------------------------------------

  /** Claims a message for an operator command, wherever it rests; throws while a worker holds it. */
  async #take(id: string, allowed: readonly Located['where'][], seen?: Located): Promise<{ worker: string; path: string; message: StoredMessage; was: Located['where'] } | undefined> {
    checkId(id);
    for (let round = 0; round < 3; round++) {
      // `seen`: where the caller just saw it (retryAll), tried first; if it moved since, looked for.
      const located = round === 0 && seen ? seen : await this.#locate(id);
      if (!located) throw new QueueError('ERR_QUEUE_NOT_FOUND', `no message ${id} in the queue (\`smtplib queue list\` shows what is there)`, { messageId: id });
      if (located.where === 'active') {
        throw new QueueError('ERR_QUEUE_ACTIVE', `message ${id} is being delivered by worker ${located.worker}; try again when the attempt ends`, { messageId: id });
      }
      if (!allowed.includes(located.where)) return undefined;
      if (this.#placing.has(id)) {
        await new Promise((r) => setTimeout(r, 5)); // this process is still moving it: look again
        continue;
      }
      const worker = await this.#controlWorker();
      const path = this.#p('active', worker, `${id}.json`);
      if (!moveIfPresent(located.path, path)) continue; // moved meanwhile: look again
      const message = await this.#read(path);
      if (!message) continue;
      return { worker, path, message, was: located.where };
    }
    throw new QueueError('ERR_QUEUE_ACTIVE', `message ${id} kept moving while being looked at; try again`, { messageId: id });
  }

  async hold(id: string): Promise<boolean> {
    const taken = await this.#take(id, ['queue', 'hold']);
    if (!taken) return false;
    const before = taken.was === 'hold' ? 'held' : restingState(taken.message);
    await this.#place(taken.path, { ...taken.message, held: true });
    if (before !== 'held') this.#emit({ id, from: before, to: 'held' });
    return true;
  }

  async release(id: string): Promise<boolean> {
    const taken = await this.#take(id, ['hold']);
    if (!taken) return false;
    const { held, ...rest } = taken.message;
    void held;
    const next: StoredMessage = { ...rest, nextAttemptAt: Date.now() };
    const to = await this.#place(taken.path, next);
    this.#emit({ id, from: 'held', to });
    return true;
  }

  retry(id: string): Promise<boolean> {
    return this.#retry(id);
  }

  async #retry(id: string, seen?: Located): Promise<boolean> {
    // Looked at before the message is taken: a stat that throws then leaves it where it was. (Its body
    // cannot go meanwhile: a purge takes the message first, and then #take finds it gone.)
    const hasBody = exists(this.#p('data', checkId(id)));
    const taken = await this.#take(id, ['queue', 'done'], seen);
    if (!taken) return false;
    const before = restingState(taken.message);
    const resend = taken.was === 'done' && (before === 'unknown' || before === 'bounced') && hasBody;
    if (taken.was === 'done' && !resend) {
      await this.#place(taken.path, taken.message); // put it back as it was
      return false;
    }
    const next = requeue(taken.message, Date.now(), taken.was === 'done');
    const to = await this.#place(taken.path, next);
    this.#emit({ id, from: before, to });
    return true;
  }

  async retryAll(): Promise<string[]> {
    const now = Date.now();
    const ids: string[] = [];
    for (const name of await this.#queueNames()) {
      const match = QUEUE_NAME.exec(name)!;
      const id = match[4]!;
      if (Number(match[1]) <= now) {
        ids.push(id);
        continue;
      }
      try {
        // Taken by its name as listed: looking each one up by id again was a pass over queue/ per message.
        if (await this.#retry(id, { where: 'queue', path: this.#p('queue', name) })) ids.push(id);
      } catch (error) {
        if (!(error instanceof QueueError)) throw error; // claimed meanwhile: a worker has it
      }
    }
    return ids;
  }

  async delete(id: string): Promise<boolean> {
    const taken = await this.#take(id, ['queue', 'hold', 'done']);
    if (!taken) return false;
    const before = taken.was === 'hold' ? 'held' : restingState(taken.message);
    await this.#removeBelongings(taken.message);
    removeName(taken.path);
    this.#emit({ id, from: before, to: 'deleted' });
    return true;
  }

  // --- retention -----------------------------------------------------------------

  /**
   * Removes finished messages that finished before the cutoff (see QueueStore.purge). done/ is read
   * as a stream (opendir), PURGE_PAGE names at a time, never listed whole. A name whose id was created
   * at or after its state's cutoff is passed over unread (ids start with their creation time, and a
   * message finishes after it is created); each of the others is taken by rename into this
   * store's control worker's claim directory (only one process wins a rename: a racing purge, retry
   * or delete), read, and either removed (isPurgeable: idempotency key, body, marks, record) or put
   * back under the same name. A purge that dies midway leaves a claimed copy, which recovery puts back
   * in done/ (its body maybe gone already): the next purge removes it.
   */
  async purge(options: PurgeOptions): Promise<number> {
    this.#assertOpen();
    const cutoffs = purgeCutoffs(options);
    if (latestCutoff(cutoffs) === undefined) return 0;
    let purged = 0;
    let page: { name: string; id: string }[] = [];
    for await (const entry of await opendir(this.#p('done'), { bufferSize: PURGE_PAGE })) {
      const match = DONE_NAME.exec(entry.name);
      if (!match) continue;
      const cutoff = cutoffs[match[1] as FinishedState];
      const created = idCreatedAt(match[2]!);
      if (cutoff === undefined || created === undefined || created >= cutoff) continue;
      page.push({ name: entry.name, id: match[2]! });
      if (page.length >= PURGE_PAGE) {
        if (options.signal?.aborted) return purged;
        purged += await this.#purgePage(page, cutoffs);
        page = [];
      }
    }
    if (page.length > 0 && !options.signal?.aborted) purged += await this.#purgePage(page, cutoffs);
    return purged;
  }

  /**
   * A page's messages, PURGE_LANES at a time: each message waits on the threadpool (its record's
   * read, its body's unlink), so one at a time left the purge mostly waiting; a few at a time still
   * leave the threadpool's other threads to the workers' fsyncs. Resolves with how many went.
   */
  async #purgePage(page: readonly { name: string; id: string }[], cutoffs: ReturnType<typeof purgeCutoffs>): Promise<number> {
    const holder = await this.#controlWorker();
    let next = 0;
    let purged = 0;
    const lane = async (): Promise<void> => {
      while (next < page.length) {
        const { name, id } = page[next++]!;
        if (await this.#purgeOne(name, id, holder, cutoffs)) purged++;
      }
    };
    await Promise.all(Array.from({ length: PURGE_LANES }, lane));
    return purged;
  }

  async #purgeOne(name: string, id: string, holder: string, cutoffs: ReturnType<typeof purgeCutoffs>): Promise<boolean> {
    const done = this.#p('done', name);
    const claimed = this.#p('active', holder, `${id}.json`);
    // Names of small files are moved and removed synchronously (as everywhere in the spool: a few us
    // each, where a trip to the threadpool costs the event loop more); the body's unlink goes to the threadpool.
    // A message this process is placing (its control worker settling or retrying it) is left to it: the
    // rename below would land on the claimed name that placing is about to remove.
    if (this.#placing.has(id)) return false;
    if (!moveIfPresent(done, claimed)) return false; // gone, or another process took it first
    let message: StoredMessage | undefined;
    try {
      message = await this.#read(claimed);
    } catch {
      message = undefined; // unreadable: left as it was, for an operator to look at
    }
    if (!message || !isPurgeable(message, cutoffs)) {
      moveIfPresent(claimed, done);
      return false;
    }
    try {
      await this.#removeBelongings(message);
    } catch (error) {
      // Put back where the next purge finds it (not left in the control worker's directory, where it
      // would show as active and refuse retry and delete while this process lives).
      moveIfPresent(claimed, done);
      throw error;
    }
    removeName(claimed);
    this.#emit({ id, from: restingState(message), to: 'deleted' });
    return true;
  }

  /**
   * What goes with a message that is deleted or purged, before its record (which the caller holds
   * claimed, and removes last): its idempotency key first (while the record is still there, an
   * enqueue with the key gets this id, never a key that names nothing while another enqueue reuses
   * it; after, the key queues a new message), its body, and the marks of its last attempts.
   */
  async #removeBelongings(message: StoredMessage): Promise<void> {
    const { id } = message;
    if (message.idempotencyKey !== undefined) await this.#releaseKey(message.idempotencyKey, id);
    await unlinkIfPresent(this.#p('data', id));
    for (let n = message.attempts + 1; n >= 1 && n >= message.attempts - 1; n--) removeName(this.#p('commit', `${id}@${n}`));
  }

  /** Removes idem/<sha256 of key> if it still names message `id` (a key can have been reused since). */
  async #releaseKey(key: string, id: string): Promise<void> {
    const path = this.#idemPath(key);
    if ((await this.#keyOwner(path)) === id) await unlinkIfPresent(path);
  }

  /**
   * The queue-wide purge turn: the file purge-turn, made by link() (one process wins), taken over
   * once older than `everyMs` - by rename to a name of this store's own (one process wins that too),
   * and given back by link() if what it took turns out to be fresh (another process took the turn
   * between the look and the rename).
   */
  async takePurgeTurn(everyMs: number): Promise<boolean> {
    this.#assertOpen();
    const turn = this.#p('purge-turn');
    // Names of this call's own (two workers of one store may ask at once).
    const call = (this.#tmpCount++).toString(36);
    const mine = this.#p('tmp', `${this.#tmpPrefix}${call}.turn`);
    const taken = this.#p('tmp', `${this.#tmpPrefix}${call}.taken`);
    await writeFile(mine, `${process.pid}\n`);
    try {
      if (linkIfAbsent(mine, turn)) return true;
      const info = await stat(turn).catch(() => undefined);
      if (info && Date.now() - info.mtimeMs < everyMs) return false;
      if (!moveIfPresent(turn, taken)) return linkIfAbsent(mine, turn);
      if (Date.now() - (await stat(taken)).mtimeMs < everyMs) {
        linkIfAbsent(taken, turn);
        return false;
      }
      return linkIfAbsent(mine, turn);
    } finally {
      await unlinkIfPresent(mine);
      await unlinkIfPresent(taken);
    }
  }

  // --- recovery ------------------------------------------------------------------

  async recover(options: { retryUnknown?: boolean; schedule?: RetrySchedule } = {}): Promise<number> {
    let settled = 0;
    let dead = false;
    const registered = new Set((await readdir(this.#p('workers'))).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)));
    const dirs = new Set(await this.#activeDirs());
    for (const worker of new Set([...registered, ...dirs])) {
      if (this.#workers.has(worker)) continue;
      const liveness = await this.#liveness(worker);
      if (liveness === 'alive') continue;
      // Read once the process is known to be gone: it writes no more notes.
      const notes = liveness === 'ended' ? readWritingNotes(this.#p('active', worker, WRITING_FILE)) : undefined;
      settled += await this.#settleWorkerDir(worker, options, false, notes);
      await unlinkIfPresent(this.#p('active', worker, WRITING_FILE)).catch(() => undefined);
      await rmdir(this.#p('active', worker)).catch(() => undefined);
      await unlinkIfPresent(this.#p('workers', `${worker}.json`));
      dead = true;
    }
    if (dead || !this.#swept) {
      this.#swept = true;
      await this.#sweepMarks();
    }
    return settled;
  }

  /**
   * Removes what a worker killed while it finished a batch of outcomes left behind: for each mark in
   * commit/ whose message is finished (its record in done/), the body of a delivered message and the
   * mark itself; and the marks of a message that is gone. #flushOutcomes removes bodies before marks, so a body left by such a kill still has
   * its mark; without this it stayed until the retention purge (with large messages, megabytes per
   * kill). commit/ holds the marks of attempts under way (a worker's concurrency each) and such
   * leftovers: a stat or two per name. Run by the first recover() of a store and after each dead
   * worker: a leftover appears only when a worker dies, and whoever recovers that worker sweeps.
   * Only finished messages are touched: a mark of a message still pending is its attempt's (or an
   * interrupted attempt's, read by its next claim: invariant 4).
   */
  async #sweepMarks(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.#p('commit'));
    } catch {
      return;
    }
    for (const name of names) {
      const at = name.lastIndexOf('@');
      const id = at > 0 ? name.slice(0, at) : '';
      if (!isId(id)) continue;
      const finished = this.#finishedState(id);
      // Neither finished nor with a body: the message is gone (purged or deleted: a pending message
      // always has its body, invariant 2), and so is any reader of its marks.
      if (finished === undefined && exists(this.#p('data', id))) continue;
      // A body that cannot be removed keeps its mark: looked at again by the next sweep.
      if (finished === 'delivered' && !(await unlinkIfPresent(this.#p('data', id)).then(() => true, () => false))) continue;
      try {
        removeName(this.#p('commit', name));
      } catch {
        // left: a mark of a finished message is never read
      }
    }
  }

  /**
   * Gives back or settles every message a dead (or leaving) worker holds, RECOVER_PAGE names of its
   * claim directory at a time (read as a stream, never listed whole; see #settlePage).
   */
  async #settleWorkerDir(worker: string, options: { retryUnknown?: boolean; schedule?: RetrySchedule }, own = false, notes?: ReadonlySet<string>): Promise<number> {
    let names: AsyncIterable<{ name: string }>;
    try {
      names = await opendir(this.#p('active', worker), { bufferSize: RECOVER_PAGE });
    } catch {
      return 0; // gone: another process recovered it
    }
    const schedule = resolveSchedule(options.schedule);
    let settled = 0;
    let page: string[] = [];
    // Names are moved and removed while the directory is read: a name neither added nor removed meanwhile
    // is read exactly once (readdir's rule). A name added meanwhile (a worker taken for dead while it
    // lived claims again) may be read or not: it is taken like the others, or left for a later recovery.
    for await (const { name } of names) {
      if (!name.endsWith('.json')) continue;
      page.push(name);
      if (page.length < RECOVER_PAGE) continue;
      settled += await this.#settlePage(worker, page, schedule, options, own, notes);
      page = [];
    }
    if (page.length > 0) settled += await this.#settlePage(worker, page, schedule, options, own, notes);
    return settled;
  }

  /**
   * Gives back or settles a page of names of `worker`'s claim directory. Every name is first taken:
   * moved by rename into this store's own worker directory (unless `own`), so two processes recovering
   * the same dead worker never both act on a name, and a copy taken cannot move while recovery looks
   * for others. Then, for all the page at once, each taken message is looked for elsewhere: hold/,
   * done/ and the other claim directories (stats), queue/ (one pass, #queuedIds: a pass per name made
   * recovering a worker with C claims beside N queued messages cost C x N names read, minutes of the
   * recovering worker's main thread at 200 claims and a million queued), then the stats again. A
   * taken copy whose message rests elsewhere too is place()'s leftover, the old copy (invariant 1):
   * removed. Any other is read, and given back to queue/ or settled (an interrupted attempt:
   * invariant 4).
   *
   * Taken before looked for: looking first let the other copy move between the look and the decision
   * (a live worker that had claimed a leftover's new copy deferred it back into queue/ under a new
   * name after the pass, and the leftover was given back as a second copy; a worker taken for dead
   * while alive claimed a message again after the pass, and its claim was removed as a leftover). The
   * other copy can still be missed by moving twice while recovery looks (out of queue/ ahead of the
   * pass and back in behind it, between the two rounds of stats), as with one pass per name.
   * A name whose copy this store's own directory already holds (an operator's command in this process
   * has the message) is left for a later recovery. Names taken and not yet settled when an error ends
   * the page go back to the dead worker's directory, for the next recovery.
   */
  async #settlePage(worker: string, names: readonly string[], schedule: ReturnType<typeof resolveSchedule>, options: { retryUnknown?: boolean }, own: boolean, notes?: ReadonlySet<string>): Promise<number> {
    const holder = own ? worker : await this.#controlWorker();
    const taken: { id: string; from: string; path: string }[] = [];
    let settled = 0;
    let done = 0;
    try {
      // Taken inside the try: an error while taking (a stat's EIO) gives back what was taken so far too.
      for (const name of names) {
        const id = name.slice(0, -5);
        const from = this.#p('active', worker, name);
        const to = this.#p('active', holder, name);
        if (own) taken.push({ id, from, path: from });
        else if (!exists(to) && moveIfPresent(from, to)) taken.push({ id, from, path: to });
        // (not moved: another process is recovering it, or this store holds a copy: see above)
      }
      const otherDirs = async (): Promise<string[]> => (await this.#activeDirs()).filter((dir) => dir !== worker && dir !== holder);
      let others = await otherDirs();
      const elsewhere = new Set(taken.filter((t) => this.#restsElsewhere(t.id, others)).map((t) => t.id));
      for (const id of await this.#queuedIds(new Set(taken.map((t) => t.id).filter((id) => !elsewhere.has(id))))) elsewhere.add(id);
      others = await otherDirs();
      for (const t of taken) if (!elsewhere.has(t.id) && this.#restsElsewhere(t.id, others)) elsewhere.add(t.id);
      for (; done < taken.length; done++) {
        const { id, path } = taken[done]!;
        if (elsewhere.has(id)) {
          await unlinkIfPresent(path); // place() had written the new copy; this one is the old one
          continue;
        }
        let message: StoredMessage | undefined;
        try {
          message = await this.#read(path);
        } catch (error) {
          if (!(error instanceof QueueError && error.code === 'ERR_QUEUE_STORE')) throw error;
          // A copy that holds no record of its message: a claimed name that a power loss brought back
          // after its file had become a spare and been written over with other messages' records (their
          // own copies are elsewhere). It is a leftover, like the stale copy above: removed unread.
          await unlinkIfPresent(path);
          continue;
        }
        if (!message) continue;
        const attempt = `${id}@${message.attempts + 1}`;
        let interrupted = exists(this.#p('commit', attempt));
        if (interrupted && notes && !notes.has(attempt)) {
          // Marked, but its end of data was never begun (writing.ts): the attempt did not happen. Its
          // mark goes first, so the message is given back as it was, never taken for interrupted.
          removeName(this.#p('commit', attempt));
          interrupted = false;
        }
        if (interrupted) {
          const next = applyInterrupted(message, Date.now(), schedule, Boolean(options.retryUnknown));
          await this.finish(holder, next);
        } else {
          await this.#place(path, message);
          this.#emit({ id, from: 'active', to: message.held ? 'held' : restingState(message) });
        }
        settled++;
      }
    } finally {
      // An error ended the page: what was taken and not settled goes back where it was found.
      if (!own) for (const t of taken.slice(done)) moveIfPresent(t.path, t.from);
    }
    return settled;
  }

  /** Which of `ids` have a name in queue/: one pass (stopped once all are found), holding only the ids found. */
  async #queuedIds(ids: ReadonlySet<string>): Promise<Set<string>> {
    const found = new Set<string>();
    await scanDir(this.#p('queue'), (name) => {
      const id = queueNameId(name);
      if (ids.has(id) && QUEUE_NAME.test(name)) found.add(id);
      return found.size === ids.size;
    });
    return found;
  }

  /** Whether message `id` has a copy in hold/, done/ or one of the claim directories `dirs` (stats: no directory read). */
  #restsElsewhere(id: string, dirs: readonly string[]): boolean {
    if (exists(this.#p('hold', `${id}.json`))) return true;
    if (this.#finishedState(id) !== undefined) return true;
    for (const dir of dirs) if (exists(this.#p('active', dir, `${id}.json`))) return true;
    return false;
  }

  /** The state under which message `id` rests in done/ (a stat per finished state), or undefined. */
  #finishedState(id: string): FinishedState | undefined {
    return FINISHED_STATES.find((state) => exists(this.#p('done', `${state}-${id}.json`)));
  }

  /**
   * A worker is alive while its process is (same host), or its heartbeat is fresh (another host). A
   * dead one is 'ended' when it noted every end of data it wrote (registered with writingNotes) and
   * its process is gone from this machine, which has run since it started (same machineLife: its
   * writing notes are all there), else 'lost'.
   */
  async #liveness(worker: string): Promise<Liveness> {
    let file: WorkerFile;
    let mtime: number;
    try {
      const path = this.#p('workers', `${worker}.json`);
      [file, mtime] = await Promise.all([readFile(path, 'utf8').then((t) => JSON.parse(t) as WorkerFile), stat(path).then((s) => s.mtimeMs)]);
    } catch {
      // No worker file: registration crashed, or the worker is between making its dir and publishing its file.
      const info = await stat(this.#p('active', worker)).catch(() => undefined);
      return info && Date.now() - info.mtimeMs < 10_000 ? 'alive' : 'lost';
    }
    if (file.host === os.hostname()) {
      if (pidAlive(file.pid)) {
        const start = procStart(file.pid);
        if (!(start && file.procStart && start !== file.procStart)) return 'alive';
      }
      return file.notes === true && this.#life !== undefined && file.life === this.#life && file.procStart !== undefined ? 'ended' : 'lost';
    }
    return Date.now() - mtime < this.#leaseMs ? 'alive' : 'lost';
  }

  #assertOpen(): void {
    if (this.#closed) throw new QueueError('ERR_QUEUE_CLOSED', 'the queue store is closed');
  }
}

/** The message id in a spool file's name (queue/, active/, hold/ or done/). */
function idOfPath(path: string): string {
  const name = basename(path);
  const match = QUEUE_NAME.exec(name) ?? DONE_NAME.exec(name);
  return checkId(match ? match[match.length - 1]! : name.replace(/\.json$/, ''));
}

/**
 * The record of message `id` in a record file's text: the file itself when it
 * holds one record, else the line that is that message's (outcomes recorded
 * together share one file, linked under each message's name).
 */
function recordIn(text: string, id: string, path: string): StoredMessage {
  if (!text.includes('\n')) {
    // A file of one record is its message's, except a name that a power loss brought back of a spare
    // written over since (see #spares): that record is another message's and must not be taken for this one's.
    const record = JSON.parse(text) as StoredMessage;
    if (record.id === id) return record;
  }
  const key = `"id":${JSON.stringify(id)}`;
  for (let at = text.indexOf(key); at >= 0; at = text.indexOf(key, at + key.length)) {
    const start = text.lastIndexOf('\n', at) + 1;
    const end = text.indexOf('\n', at);
    const record = JSON.parse(text.slice(start, end < 0 ? text.length : end)) as StoredMessage;
    if (record.id === id) return record;
  }
  throw new QueueError('ERR_QUEUE_STORE', `${path} holds no record of message ${id}`, { messageId: id });
}

function claimLost(path: string): QueueError {
  return new QueueError('ERR_QUEUE_CLAIM_LOST', `the claim ${path} is gone: this worker was taken for dead and its message recovered; its outcome is not recorded`);
}

function queueName(message: StoredMessage): string {
  const due = String(Math.max(0, Math.floor(message.nextAttemptAt))).padStart(13, '0');
  const priority = String(Math.max(-9, Math.min(9, message.priority)) + 10).padStart(2, '0');
  return `${due}-${priority}-${message.attempts === 0 ? 'q' : 'd'}-${message.id}.json`;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process's start time in clock ticks since boot (Linux), so a reused pid is not taken for the old process. */
function procStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

