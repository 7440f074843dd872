// The spool's only ways to make something durable: write a whole file to
// tmp/ and fsync it; then rename it into place and fsync the directory.
// Directory fsyncs are shared (group commit): every rename made before a
// sync starts is covered by it, so N concurrent enqueues cost one fsync of
// each directory, not N.

import { open, rename, link, unlink } from 'node:fs/promises';
import { constants, readFile } from 'node:fs';
import { promisify } from 'node:util';

// The callback readFile, promisified: a third of the CPU of fs/promises' readFile for the small files read per message.
const readFileCallback = promisify(readFile);

/** A whole file's bytes. */
export function readBytes(path: string): Promise<Buffer> {
  return readFileCallback(path);
}

/** A whole file as UTF-8 text. */
export function readText(path: string): Promise<string> {
  return readFileCallback(path, 'utf8');
}

/** Writes `data` (pieces in order) to `path` (which must not exist) and fsyncs it. */
export async function writeDurable(path: string, data: string | Uint8Array | readonly Uint8Array[]): Promise<void> {
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    // (Each writeFile on a handle continues where the last one ended.)
    for (const piece of Array.isArray(data) ? data : [data]) await handle.writeFile(piece);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `head`, then `body` chunk by chunk as it arrives (memory: one chunk at a time), then the bytes
 * `patch` gives once the body's length is known (written over `head`, which must have room for them),
 * and fsyncs. `path` must not exist; it is removed if anything fails. Returns the body's length.
 */
export async function writeDurableStream(path: string, head: Uint8Array, body: AsyncIterable<Uint8Array>, patch: (bodyLength: number) => { position: number; bytes: Uint8Array }): Promise<number> {
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  let length = 0;
  try {
    await handle.write(head);
    for await (const chunk of body) {
      length += chunk.byteLength;
      await handle.write(chunk);
    }
    const { position, bytes } = patch(length);
    await handle.write(bytes, 0, bytes.byteLength, position);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlinkIfPresent(path).catch(() => undefined);
    throw error;
  }
  await handle.close();
  return length;
}

/** Creates an empty file; false if it already existed. Durable once its directory is synced. */
export async function createMarker(path: string): Promise<boolean> {
  try {
    const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    await handle.close();
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
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
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
