// What the parser reads: random access to the input's bytes, whether they
// are one Buffer in memory or a file read through a window of 1 MiB. The
// parser asks for single bytes, searches, small copies (header lines) and
// regions (bodies, kept as views of a Buffer or as ranges of the file).

import { FileRegion, type ParseFile, type Region } from './parse-file.js';

export interface ParseInput {
  readonly length: number;
  /** The byte at `i` (undefined past the end). */
  at(i: number): number | undefined;
  /** The first `needle` lying wholly inside [from, end), or -1. */
  indexOf(needle: Buffer, from: number, end: number): number;
  /** Bytes [start, end) as a Buffer (small ranges: header lines and fields). */
  bytes(start: number, end: number): Buffer;
  /** Bytes [start, end) as kept by a parsed part. */
  region(start: number, end: number): Region;
}

export class MemoryInput implements ParseInput {
  constructor(readonly buf: Buffer) {}
  get length(): number {
    return this.buf.length;
  }
  at(i: number): number | undefined {
    return this.buf[i];
  }
  indexOf(needle: Buffer, from: number, end: number): number {
    const at = this.buf.indexOf(needle, from);
    return at === -1 || at + needle.length > end ? -1 : at;
  }
  bytes(start: number, end: number): Buffer {
    return this.buf.subarray(start, end);
  }
  region(start: number, end: number): Region {
    return this.buf.subarray(start, end);
  }
}

const WINDOW = 1024 * 1024;

export class FileInput implements ParseInput {
  readonly #file: ParseFile;
  readonly #buffer = Buffer.allocUnsafe(WINDOW);
  #window: Buffer = Buffer.alloc(0);
  #start = 0;

  constructor(file: ParseFile) {
    this.#file = file;
  }

  get length(): number {
    return this.#file.size;
  }

  /** Loads the window at `pos` (reads go forward, with a little room behind for looking back). */
  #load(pos: number): void {
    this.#start = pos;
    this.#window = this.#file.readSync(pos, Math.min(this.length, pos + WINDOW), this.#buffer);
  }

  at(i: number): number | undefined {
    if (i < 0 || i >= this.length) return undefined;
    if (i < this.#start || i >= this.#start + this.#window.length) this.#load(Math.max(0, i - 4096));
    return this.#window[i - this.#start];
  }

  indexOf(needle: Buffer, from: number, end: number): number {
    let pos = from;
    const limit = Math.min(end, this.length);
    while (pos + needle.length <= limit) {
      if (pos < this.#start || pos + needle.length > this.#start + this.#window.length) this.#load(pos);
      const windowEnd = Math.min(limit, this.#start + this.#window.length);
      const at = this.#window.subarray(0, windowEnd - this.#start).indexOf(needle, pos - this.#start);
      if (at !== -1) return this.#start + at;
      if (windowEnd >= limit) return -1;
      // Resume where a match could still start (a needle split across windows).
      pos = windowEnd - needle.length + 1;
      this.#load(pos);
    }
    return -1;
  }

  bytes(start: number, end: number): Buffer {
    if (start >= this.#start && end <= this.#start + this.#window.length) {
      return Buffer.from(this.#window.subarray(start - this.#start, end - this.#start));
    }
    return this.#file.readSync(start, end);
  }

  region(start: number, end: number): Region {
    return new FileRegion(this.#file, start, end);
  }
}
