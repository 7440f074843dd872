// A file a parsed message keeps reading from: the caller's own file
// (parseMessage({ path })) or a spill file that holds a large streamed input.
//
// Lifecycle of a spill file: it is created (mode 0600) in the temporary
// directory, opened, and unlinked at once, so it has no name from then on
// and nothing is left behind if the process dies. Its space is returned when
// the descriptor is closed: by dispose() (or `await using`) on the parsed
// message, when the message, its parts and every stream taken from them have
// been garbage-collected, or when the process exits. Where an open file
// cannot be unlinked (Windows), it is unlinked at dispose() or process exit.

import { close, closeSync, fstatSync, open, openSync, read, readSync, unlinkSync, write } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ContentUnavailableError } from '../errors.js';

const openAsync = promisify(open);
const readAsync = promisify(read);
const writeAsync = promisify(write);

/** Granularity of the record of where 8-bit bytes are (one bit per block). */
const BLOCK = 64 * 1024;

const undeleted = new Set<string>();
let exitHook = false;

/** Closes descriptors of files nobody can read any more. */
const registry = new FinalizationRegistry<{ fd: number; path?: string }>((held) => {
  close(held.fd, () => {});
  if (held.path) forget(held.path);
});

function forget(path: string): void {
  try { unlinkSync(path); } catch { /* already gone */ }
  undeleted.delete(path);
}

export class ParseFile {
  readonly size: number;
  readonly #fd: number;
  /** Set while the file still has a name we must delete. */
  #path: string | undefined;
  #closed = false;
  #readers = 0;
  /** One bit per BLOCK: the block holds a byte >= 0x80. Built while spilling, or on first need. */
  #highBits: Uint8Array | undefined;
  readonly #token = {};

  private constructor(fd: number, size: number, path: string | undefined, highBits: Uint8Array | undefined) {
    this.#fd = fd;
    this.size = size;
    this.#path = path;
    this.#highBits = highBits;
    registry.register(this, { fd, ...(path ? { path } : {}) }, this.#token);
  }

  /** The caller's file, read where it is (it must not change while the message is in use). */
  static openExisting(path: string): ParseFile {
    const fd = openSync(path, 'r');
    try {
      return new ParseFile(fd, fstatSync(fd).size, undefined, undefined);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /**
   * Writes a stream's chunks to a nameless temporary file, refusing more than
   * `limit` bytes. `first` (what was read before the decision to spill) is
   * emptied as it is written, so those bytes are not held during the rest.
   */
  static async spill(first: Buffer[], rest: AsyncIterator<Uint8Array | string>, options: { dir?: string | undefined; limit: number; onLimit: () => Error }): Promise<ParseFile> {
    const path = join(options.dir ?? tmpdir(), `smtplib-email-${randomUUID()}.eml`);
    const fd = await openAsync(path, 'wx+', 0o600);
    let named: string | undefined;
    try { unlinkSync(path); } catch { named = path; rememberUndeleted(path); }
    const bits: number[] = [];
    let size = 0;
    const append = async (chunk: Buffer): Promise<void> => {
      if (size + chunk.length > options.limit) throw options.onLimit();
      markHighBits(bits, chunk, size);
      let done = 0;
      while (done < chunk.length) done += (await writeAsync(fd, chunk, done, chunk.length - done, size + done)).bytesWritten;
      size += chunk.length;
    };
    try {
      while (first.length > 0) await append(first.shift()!);
      for (;;) {
        const next = await rest.next();
        if (next.done) break;
        await append(toBuffer(next.value));
      }
    } catch (error) {
      closeSync(fd);
      if (named) forget(named);
      throw error;
    }
    const highBits = new Uint8Array(Math.ceil(size / BLOCK / 8) + 1);
    for (const block of bits) highBits[block >> 3]! |= 1 << (block & 7);
    return new ParseFile(fd, size, named, highBits);
  }

  get disposed(): boolean {
    return this.#closed;
  }

  /** Closes the file (and so frees a spill file's space) once no read is in progress. */
  dispose(): void {
    if (this.#closed) return;
    this.#closed = true;
    registry.unregister(this.#token);
    if (this.#readers === 0) this.#release();
  }

  #release(): void {
    // Synchronously, so the descriptor is gone when dispose() returns.
    closeSync(this.#fd);
    if (this.#path) forget(this.#path);
    this.#path = undefined;
  }

  #check(): void {
    if (this.#closed) throw new ContentUnavailableError('the parsed message was disposed; its large bodies are no longer readable (read them before dispose())');
  }

  /** Reads bytes [start, end) synchronously (parsing, and small bodies). */
  readSync(start: number, end: number, into?: Buffer): Buffer {
    this.#check();
    const out = into ?? Buffer.allocUnsafe(end - start);
    let done = 0;
    while (done < end - start) {
      const n = readSync(this.#fd, out, done, end - start - done, start + done);
      if (n === 0) break;
      done += n;
    }
    return done === out.length ? out : out.subarray(0, done);
  }

  /** Bytes [start, end) in chunks of about 64 KiB, read as they are consumed. */
  async *chunks(start: number, end: number): AsyncGenerator<Buffer> {
    this.#check();
    this.#readers++;
    try {
      let pos = start;
      while (pos < end) {
        this.#check();
        const buffer = Buffer.allocUnsafe(Math.min(BLOCK, end - pos));
        const { bytesRead } = await readAsync(this.#fd, buffer, 0, buffer.length, pos);
        if (bytesRead === 0) return;
        pos += bytesRead;
        yield bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
      }
    } finally {
      this.#readers--;
      if (this.#closed && this.#readers === 0) this.#release();
    }
  }

  /** True if a byte in [start, end) has the high bit set. */
  hasHighBit(start: number, end: number): boolean {
    if (this.#highBits === undefined) {
      const bits: number[] = [];
      const buffer = Buffer.allocUnsafe(BLOCK * 16);
      for (let pos = 0; pos < this.size; pos += buffer.length) markHighBits(bits, this.readSync(pos, Math.min(this.size, pos + buffer.length), buffer), pos);
      this.#highBits = new Uint8Array(Math.ceil(this.size / BLOCK / 8) + 1);
      for (const block of bits) this.#highBits[block >> 3]! |= 1 << (block & 7);
    }
    for (let block = Math.floor(start / BLOCK); block * BLOCK < end; block++) {
      if (!(this.#highBits[block >> 3]! & (1 << (block & 7)))) continue;
      const from = Math.max(start, block * BLOCK);
      const to = Math.min(end, (block + 1) * BLOCK);
      if (from === block * BLOCK && to === (block + 1) * BLOCK) return true;
      if (hasHighBit(this.readSync(from, to))) return true;
    }
    return false;
  }
}

function rememberUndeleted(path: string): void {
  undeleted.add(path);
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => { for (const p of undeleted) forget(p); });
}

function toBuffer(chunk: Uint8Array | string): Buffer {
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

function markHighBits(bits: number[], chunk: Buffer, offset: number): void {
  for (let from = 0; from < chunk.length;) {
    const block = Math.floor((offset + from) / BLOCK);
    const to = Math.min(chunk.length, (block + 1) * BLOCK - offset);
    if (bits[bits.length - 1] !== block && hasHighBit(chunk.subarray(from, to))) bits.push(block);
    from = to;
  }
}

/** True if any byte has the high bit set (8 bytes at a time). */
export function hasHighBit(bytes: Uint8Array): boolean {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const whole = bytes.byteLength & ~7;
  for (let i = 0; i < whole; i += 8) if ((view.getUint32(i) | view.getUint32(i + 4)) & 0x80808080) return true;
  for (let i = whole; i < bytes.byteLength; i++) if (bytes[i]! & 0x80) return true;
  return false;
}

/** A byte range of a ParseFile: a parsed body too large to hold. */
export class FileRegion {
  constructor(readonly file: ParseFile, readonly start: number, readonly end: number) {}

  get length(): number {
    return this.end - this.start;
  }

  /** The bytes, read into memory now. */
  read(): Buffer {
    return this.file.readSync(this.start, this.end);
  }

  chunks(): AsyncGenerator<Buffer> {
    return this.file.chunks(this.start, this.end);
  }
}

/** Parsed bytes: in memory, or a range of a file. */
export type Region = Buffer | FileRegion;

export function regionBytes(region: Region): Buffer {
  return Buffer.isBuffer(region) ? region : region.read();
}

export function regionHasHighBit(region: Region): boolean {
  return Buffer.isBuffer(region) ? hasHighBit(region) : region.file.hasHighBit(region.start, region.end);
}

export async function* regionChunks(region: Region): AsyncGenerator<Buffer> {
  if (Buffer.isBuffer(region)) yield region;
  else yield* region.chunks();
}
