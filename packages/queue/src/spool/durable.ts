// The spool's only ways to make something durable: write a whole file to
// tmp/ and fsync it; then rename it into place and fsync the directory.
// Directory fsyncs are shared (group commit): every rename made before a
// sync starts is covered by it, so N concurrent enqueues cost one fsync of
// each directory, not N.
//
// Sync and async: what waits for the disk (fsync), creates or writes a file,
// or frees a body's blocks runs on libuv's threadpool; such a call can also
// wait on the filesystem's journal while another process's fsync commits it
// (a synchronous unlink of a body averaged 280 us in profile.mjs at load 6).
// The small calls a worker makes for every message - reading a claim or a
// body up to SYNC_MAX, stat, the claim's rename, link, unlinking a name of an
// empty or small file - are synchronous: each takes a few microseconds, and
// sent to the threadpool the same call costs the main thread alone 8 to 38 us
// in path checks, hand-off and promise (measured in profile.mjs: async open
// 38, unlink 9; sync rename 10, link 9, unlink 5, stat 5, a small read 8).

import fs, { constants } from 'node:fs';
import { promisify } from 'node:util';

const openFd = promisify(fs.open);
const closeFd = promisify(fs.close);
const fsyncFd = promisify(fs.fsync);
const unlink = promisify(fs.unlink);
export const rename = promisify(fs.rename);
const writeFd = promisify(fs.write) as (fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null) => Promise<{ bytesWritten: number }>;
const readFileCallback = promisify(fs.readFile);
export const readdir = promisify(fs.readdir) as (path: string) => Promise<string[]>;

/**
 * Names read from a directory per chunk of scanDir; the event loop runs between chunks (a chunk took
 * about 0.5 ms). Reading 128,000 names (ext4, median of 7, load about 4) cost the process 57 to 63 ms
 * this way, against 95 ms for readdirSync (all names held: 110 MB RSS against 52), 101 ms for
 * readdir (its work on the threadpool, 30 ms of it on the main thread) and 118 ms for an async
 * opendir iterated with for await.
 */
const SCAN_CHUNK = 1024;

/** A file up to this size is read with sync calls; a larger one (a big body) asynchronously. */
const SYNC_MAX = 256 * 1024;

const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;

const errno = (error: unknown): string | undefined => (error as NodeJS.ErrnoException).code;

/** Where small files are read first (one read: a short read of a regular file is its end). */
const scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * A whole file's bytes read with sync calls, or undefined when it is larger than SYNC_MAX (read it with
 * readBytes). A file that fits `scratch` costs open, one read and close (no fstat: a read that returns
 * less than asked for of a regular file has reached its end); the bytes are copied out of it.
 */
export function readSmall(path: string): Buffer | undefined {
  const fd = fs.openSync(path, constants.O_RDONLY);
  try {
    const first = fs.readSync(fd, scratch, 0, scratch.length, 0);
    if (first < scratch.length) return Buffer.from(scratch.subarray(0, first));
    const size = fs.fstatSync(fd).size;
    if (size > SYNC_MAX) return undefined;
    const buffer = Buffer.allocUnsafe(size);
    let done = 0;
    for (let n; done < size && (n = fs.readSync(fd, buffer, done, size - done, done)) > 0; ) done += n;
    return done === size ? buffer : buffer.subarray(0, done);
  } finally {
    fs.closeSync(fd);
  }
}

/** A whole file's bytes. */
export async function readBytes(path: string): Promise<Buffer> {
  return readSmall(path) ?? readFileCallback(path);
}

/** A whole file as UTF-8 text. */
export async function readText(path: string): Promise<string> {
  return (await readBytes(path)).toString('utf8');
}

/** A file's size, or undefined when it does not exist. */
export function sizeOf(path: string): number | undefined {
  return fs.statSync(path, { throwIfNoEntry: false })?.size;
}

/**
 * A directory's mtime (ns) when it last changed more than STAMP_SETTLED_MS ago, else undefined: a
 * stamp to compare with a later one, to tell that no name was added or removed in between. A recent
 * mtime is not one: file systems keep it at a clock tick's or a second's granularity, so a change made
 * just after it was read can leave it the same.
 */
export function settledStamp(path: string): bigint | undefined {
  const mtime = stampNow(path);
  return mtime !== undefined && mtime < BigInt(Date.now() - STAMP_SETTLED_MS) * 1_000_000n ? mtime : undefined;
}

/** The directory's mtime (ns) now, or undefined when it is missing (another failure of its stat is thrown). */
export function stampNow(path: string): bigint | undefined {
  return fs.statSync(path, { bigint: true, throwIfNoEntry: false })?.mtimeNs;
}

const STAMP_SETTLED_MS = 2000;

/**
 * Whether `path` exists: its stat succeeds (true) or says it is missing, ENOENT (false).
 * Any other failure (EIO, ESTALE, EACCES, ENOTDIR) is thrown, never taken for an answer: the spool decides from
 * these whether a claim is still held, a copy rests elsewhere, an attempt was marked - a wrong "no"
 * there gives a message back that may have been delivered.
 */
export function exists(path: string): boolean {
  return fs.statSync(path, { throwIfNoEntry: false }) !== undefined;
}

/** Writes all of `bytes` at `position` (null: where the last write ended). */
async function writeAll(fd: number, bytes: Uint8Array, position: number | null): Promise<void> {
  for (let done = 0; done < bytes.byteLength; ) {
    const { bytesWritten } = await writeFd(fd, bytes, done, bytes.byteLength - done, position === null ? null : position + done);
    done += bytesWritten;
  }
}

const bytesOf = (piece: string | Uint8Array): Uint8Array => (typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece);

/** Writes `data` (pieces in order) to `path` (which must not exist) and fsyncs it. */
export async function writeDurable(path: string, data: string | Uint8Array | readonly Uint8Array[]): Promise<void> {
  const fd = await openFd(path, CREATE, 0o600);
  try {
    for (const piece of Array.isArray(data) ? data : [data]) await writeAll(fd, bytesOf(piece), null);
    await fsyncFd(fd);
  } finally {
    await closeFd(fd);
  }
}

/**
 * writeDurable for a small file written whole (a batch of records): created, written and closed with
 * sync calls (a few microseconds each: the bytes only go to the page cache), fsynced on the threadpool.
 * One threadpool round trip instead of four (open, write, fsync, close). With `reuse`, `path` is an
 * existing file of the caller's, empty or not: it is truncated and written over.
 */
export async function writeSmallDurable(path: string, text: string, reuse = false): Promise<void> {
  const bytes = Buffer.from(text, 'utf8');
  const fd = fs.openSync(path, reuse ? constants.O_WRONLY | constants.O_TRUNC : CREATE, 0o600);
  try {
    for (let done = 0; done < bytes.byteLength; ) done += fs.writeSync(fd, bytes, done, bytes.byteLength - done);
    await fsyncFd(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Sets a file's atime and mtime to `at` (ms), synchronously. */
export function touch(path: string, at: number): void {
  const seconds = at / 1000;
  fs.utimesSync(path, seconds, seconds);
}

/** rename() of a name of a small file, made synchronously. */
export function renameName(from: string, to: string): void {
  fs.renameSync(from, to);
}

/**
 * Writes `head`, then `body` chunk by chunk as it arrives (memory: one chunk at a time), then the bytes
 * `patch` gives once the body's length is known (written over `head`, which must have room for them),
 * and fsyncs. `path` must not exist; it is removed if anything fails. Returns the body's length.
 */
export async function writeDurableStream(path: string, head: Uint8Array, body: AsyncIterable<Uint8Array>, patch: (bodyLength: number) => { position: number; bytes: Uint8Array }): Promise<number> {
  const fd = await openFd(path, CREATE, 0o600);
  let length = 0;
  try {
    await writeAll(fd, head, null);
    for await (const chunk of body) {
      length += chunk.byteLength;
      await writeAll(fd, chunk, null);
    }
    const { position, bytes } = patch(length);
    await writeAll(fd, bytes, position);
    await fsyncFd(fd);
  } catch (error) {
    await closeFd(fd).catch(() => undefined);
    await unlinkIfPresent(path).catch(() => undefined);
    throw error;
  }
  await closeFd(fd);
  return length;
}

/** Creates an empty file; false if it already existed. Durable once its directory is synced. */
export async function createMarker(path: string): Promise<boolean> {
  try {
    await closeFd(await openFd(path, CREATE, 0o600));
    return true;
  } catch (error) {
    if (errno(error) === 'EEXIST') return false;
    throw error;
  }
}

/** rename() made synchronously (a name of a small file), false when the source is gone (someone else moved it first). */
export function moveIfPresent(from: string, to: string): boolean {
  try {
    fs.renameSync(from, to);
    return true;
  } catch (error) {
    if (errno(error) === 'ENOENT') return false;
    throw error;
  }
}

/** link() made synchronously: creates `to` only if it does not exist (atomic); false when it does. */
export function linkIfAbsent(from: string, to: string): boolean {
  try {
    fs.linkSync(from, to);
    return true;
  } catch (error) {
    if (errno(error) === 'EEXIST') return false;
    throw error;
  }
}

/**
 * Gives `from`'s file the name `to` as well (a hard link: the same durable
 * bytes, nothing to fsync but `to`'s directory), replacing what `to` named,
 * like rename() would: via `spare` (a free name in from's directory) when
 * `to` exists.
 */
export function linkReplacing(from: string, to: string, spare: string): void {
  if (linkIfAbsent(from, to)) return;
  fs.linkSync(from, spare);
  fs.renameSync(spare, to);
}

/**
 * link() of `to` as a second name of `from` while `from` is there (made synchronously: a name of a
 * small file): true when `to` names it now (made now, or already there and `from` still is), false
 * when `from` is gone.
 */
export function linkWhilePresent(from: string, to: string): boolean {
  try {
    fs.linkSync(from, to);
    return true;
  } catch (error) {
    if (errno(error) === 'EEXIST') return exists(from); // a stat that fails otherwise than ENOENT throws
    if (errno(error) === 'ENOENT') return false;
    throw error;
  }
}

/**
 * unlink() made synchronously, for a name of an empty or small file (a claim, a mark, a record):
 * false when it is already gone. A message body is removed with unlinkIfPresent, on the threadpool:
 * freeing its blocks can wait on the filesystem's journal.
 */
export function removeName(path: string): boolean {
  try {
    fs.unlinkSync(path);
    return true;
  } catch (error) {
    if (errno(error) === 'ENOENT') return false;
    throw error;
  }
}

export async function unlinkIfPresent(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    if (errno(error) === 'ENOENT') return false;
    throw error;
  }
}

/**
 * Group commit for directory fsyncs. Each directory is opened once and its descriptor kept until
 * close() (or forget()): a sync is then one fsync on the threadpool, not open + fsync + close (each
 * call handed to the threadpool costs the main thread 10 to 25 us; profile.mjs counted 0.23
 * directory syncs per delivered message).
 */
export class DirSyncer {
  #state = new Map<string, { running: Promise<void> | undefined; next: Promise<void> | undefined; fd: Promise<number> | undefined }>();
  /** For tests and benchmarks: how many fsyncs ran. */
  syncs = 0;

  /** Resolves once every rename made in `dir` before this call is durable. */
  sync(dir: string): Promise<void> {
    let state = this.#state.get(dir);
    if (!state) {
      state = { running: undefined, next: undefined, fd: undefined };
      this.#state.set(dir, state);
    }
    if (!state.running) {
      state.running = this.#run(dir, state);
      return state.running;
    }
    // A sync is running but may have started before our rename: join the next one.
    state.next ??= state.running.catch(() => undefined).then(() => {
      state.next = undefined;
      state.running = this.#run(dir, state);
      return state.running;
    });
    return state.next;
  }

  async #run(dir: string, state: { running: Promise<void> | undefined; fd: Promise<number> | undefined }): Promise<void> {
    try {
      this.syncs++;
      state.fd ??= openFd(dir, constants.O_RDONLY | constants.O_DIRECTORY);
      let fd: number;
      try {
        fd = await state.fd;
      } catch (error) {
        state.fd = undefined; // not kept: the next sync opens it again
        throw error;
      }
      await fsyncFd(fd);
    } finally {
      state.running = undefined;
    }
  }

  /** Closes `dir`'s descriptor once its syncs are done (a directory that is about to be removed). */
  async forget(dir: string): Promise<void> {
    const state = this.#state.get(dir);
    if (!state) return;
    this.#state.delete(dir);
    await Promise.allSettled([state.running, state.next]);
    const fd = await state.fd?.catch(() => undefined);
    if (fd !== undefined) await closeFd(fd).catch(() => undefined);
  }

  /** Closes every descriptor (the store is closing). */
  async close(): Promise<void> {
    await Promise.all([...this.#state.keys()].map((dir) => this.forget(dir)));
  }
}

/**
 * Shows every name in directory `path` to `visit` without holding them all (readdir() of a million
 * names is an array of a million strings, about 60 MB): read with opendirSync, SCAN_CHUNK names at a
 * time (one getdents() call each), the event loop let run between chunks so that a long directory
 * never stalls it. Stops early once `visit` returns true. Resolves whether it stopped early, and the
 * CPU ms its chunks took (cpuMsSince; not the waits between them): what a scan costs the process.
 * A name added or removed during the scan may or may not be shown (as with readdir()); every other
 * name is shown once.
 */
export async function scanDir(path: string, visit: (name: string) => boolean | void): Promise<{ stopped: boolean; ms: number }> {
  const dir = fs.opendirSync(path, { bufferSize: SCAN_CHUNK });
  let ms = 0;
  try {
    for (;;) {
      const start = process.cpuUsage();
      for (let n = 0; n < SCAN_CHUNK; n++) {
        const entry = dir.readSync();
        if (entry === null || visit(entry.name) === true) {
          ms += cpuMsSince(start);
          return { stopped: entry !== null, ms };
        }
      }
      ms += cpuMsSince(start);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    dir.closeSync();
  }
}

/**
 * The process's CPU ms (user + system) since `start` (process.cpuUsage()). Not wall time: on a busy
 * machine (4 worker processes on 2 cores) a chunk's wall time was several times its CPU, which made
 * listings look costly and serve longer (SpoolStore's LISTING_SHARE), so workers claimed from older
 * listings and tried more names other workers had taken. The other threads' CPU in the same moment
 * (the threadpool's fsyncs) is counted too; over a chunk of a millisecond or so, little.
 */
export function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}
