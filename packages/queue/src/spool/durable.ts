// The spool's only ways to make something durable: write a whole file to
// tmp/ and fsync it; then rename it into place and fsync the directory.
// Directory fsyncs are shared (group commit): every rename made before a
// sync starts is covered by it, so N concurrent enqueues cost one fsync of
// each directory, not N.

import fs, { constants } from 'node:fs';
import { promisify } from 'node:util';

// The callback fs functions, promisified: a message costs a dozen file operations, and these take
// about half the CPU of fs/promises' (whose FileHandle objects are made, tracked and closed for
// every open; its readFile reads in chunks); measured with node's own timers on this machine.
const openFd = promisify(fs.open);
const closeFd = promisify(fs.close);
const fsyncFd = promisify(fs.fsync);
const writeFd = promisify(fs.write) as (fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null) => Promise<{ bytesWritten: number }>;
const readFileCallback = promisify(fs.readFile);
export const rename = promisify(fs.rename);
const link = promisify(fs.link);
const unlink = promisify(fs.unlink);
const statPath = promisify(fs.stat);
export const readdir = promisify(fs.readdir) as (path: string) => Promise<string[]>;

const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;

/** A whole file's bytes. */
export function readBytes(path: string): Promise<Buffer> {
  return readFileCallback(path);
}

/** A whole file as UTF-8 text. */
export function readText(path: string): Promise<string> {
  return readFileCallback(path, 'utf8');
}

/** Whether `path` exists (stat succeeds). */
export async function exists(path: string): Promise<boolean> {
  try {
    await statPath(path);
    return true;
  } catch {
    return false;
  }
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
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** rename(), false when the source is gone (someone else moved it first). */
export async function moveIfPresent(from: string, to: string): Promise<boolean> {
  try {
    await rename(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** link(): creates `to` only if it does not exist (atomic); false when it does. */
export async function linkIfAbsent(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/**
 * Gives `from`'s file the name `to` as well (a hard link: the same durable
 * bytes, nothing to fsync but `to`'s directory), replacing what `to` named,
 * like rename() would: via `scratch` (a free name in from's directory) when
 * `to` exists.
 */
export async function linkReplacing(from: string, to: string, scratch: string): Promise<void> {
  if (await linkIfAbsent(from, to)) return;
  await link(from, scratch);
  await rename(scratch, to);
}

export async function unlinkIfPresent(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fd = await openFd(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fsyncFd(fd);
  } finally {
    await closeFd(fd);
  }
}

/** Group commit for directory fsyncs. */
export class DirSyncer {
  #state = new Map<string, { running: Promise<void> | undefined; next: Promise<void> | undefined }>();
  /** For tests and benchmarks: how many fsyncs ran. */
  syncs = 0;

  /** Resolves once every rename made in `dir` before this call is durable. */
  sync(dir: string): Promise<void> {
    let state = this.#state.get(dir);
    if (!state) {
      state = { running: undefined, next: undefined };
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

  async #run(dir: string, state: { running: Promise<void> | undefined }): Promise<void> {
    try {
      this.syncs++;
      await fsyncDir(dir);
    } finally {
      state.running = undefined;
    }
  }
}
