// Base64 in lines of 76 characters (RFC 2045 §6.8), written straight into
// Buffers: no string of a whole body, no string per line. Each run of whole
// lines is encoded by Node in one call into the end of its output Buffer and
// the lines are then moved forward into place with the line ends between
// them (a move never overwrites text not yet moved: see encodeLinesInto).
// Output comes in chunks of CHUNK_LINES lines (just under 128 KiB with
// CRLF), so a consumer that honours backpressure holds about one chunk.

/** Input bytes per output line: 57 bytes make 76 characters. */
export const LINE_BYTES = 57;
const LINE_CHARS = 76;
/**
 * Lines per output chunk: 1680 × (76 + 2) = 131,040 bytes with CRLF, just
 * under 128 KiB; a file attachment is read 1680 lines (95,760 bytes) at a
 * time. Chosen by measurement (bench/lib/email-cell.js, 20 MB file, RSS
 * growth of the process over the message, glibc malloc): 840 lines (64 KiB)
 * grew 5.8–7.3 MB, 1260 lines 5.6–5.9 MB, 1680 lines 3.1–4.4 MB, and 2520
 * lines 5.5–6.4 MB (its 191,520-character text goes to V8's large-object
 * space: 5 MB of heap growth). CPU per byte was no worse than at 840.
 */
export const CHUNK_LINES = 1680;
/** Input bytes per output chunk (a whole number of lines; a multiple of PIECE_BYTES). */
export const CHUNK_BYTES = LINE_BYTES * CHUNK_LINES;
/**
 * Lines encoded per call into Node's base64 (13,680 bytes, 18,240
 * characters), so each JS-heap string the writer makes is small. Measured with test/email-stream/big-attachment.test.ts (1 GiB sent,
 * RSS growth): with a whole chunk per call (127,680-character strings) V8 grew
 * its young generation to 32 MB and RSS grew 40-48 MB; with 240 lines it kept
 * 16 MB and RSS grew 29-31 MB (in the runs of that comparison; see paceGc). Throughput of the 20 MB bench cell was the same.
 */
const PIECE_BYTES = LINE_BYTES * 240;
/**
 * A file attachment is read in pieces of 2 chunks (191,520 bytes) into two
 * reused Buffers: no fresh memory per read, and a third of the reads
 * (thread-pool round trips) of 64 KiB reads. Measured with
 * bench/lib/email-cell.js (20 MB file, medians of 4 alternated runs, load
 * 3.5): pieces of 4 chunks (383 KB more held) grew RSS 3.06 MB over the
 * message and external memory 2.23 MB, pieces of 2 chunks 2.11 and 1.49 MB,
 * at 714 vs 702 MB/s wall and 669 vs 630 MB per CPU second. Pieces of 1
 * chunk saved another 0.2-0.4 MB but lost 10-15 % per CPU second.
 */
export const FILE_READ_BYTES = 2 * CHUNK_BYTES;

/** The length of the line-wrapped base64 of `n` bytes, every line (the last partial one too) ended by a `sepLength`-byte separator. */
export function base64LinesLength(n: number, sepLength: number): number {
  const whole = Math.floor(n / LINE_BYTES);
  const rest = n - whole * LINE_BYTES;
  return whole * (LINE_CHARS + sepLength) + (rest > 0 ? Math.ceil(rest / 3) * 4 + sepLength : 0);
}

/**
 * Writes the base64 of src[start, end) — a whole number of lines — into out
 * from `at`, each line followed by `sep`; returns where the writing ended.
 * The text is first written at the end of the region and each line moved
 * forward: line i goes to at + i·(76+s), its text came from
 * at + L·s + 76·i (L lines, s = sep length), so everything moved is in front
 * of every line not yet moved, since (76+s)(i+1) ≤ L·s + 76(i+1) for i < L.
 */
function encodeLinesInto(src: Buffer, start: number, end: number, sep: Buffer, out: Buffer, at: number): number {
  const lines = (end - start) / LINE_BYTES;
  if (lines === 0) return at;
  let from = at + lines * sep.length;
  out.write(src.toString('base64', start, end), from, 'latin1');
  let to = at;
  for (let i = 0; i < lines; i++) {
    out.copyWithin(to, from, from + LINE_CHARS);
    to += LINE_CHARS;
    from += LINE_CHARS;
    for (let k = 0; k < sep.length; k++) out[to++] = sep[k]!;
  }
  return to;
}

/** Writes the base64 of a last partial line (1–56 bytes, padded) and `sep`; returns where the writing ended. */
function encodeTailInto(src: Buffer, start: number, end: number, sep: Buffer, out: Buffer, at: number): number {
  const to = at + out.write(src.toString('base64', start, end), at, 'latin1');
  return to + sep.copy(out, to);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The line-wrapped base64 of a whole buffer, in one Buffer (for bodies held in memory). */
export function base64LinesBuffer(bytes: Uint8Array, linesep: string | Buffer): Buffer {
  const src = asBuffer(bytes);
  const sep = typeof linesep === 'string' ? Buffer.from(linesep, 'latin1') : linesep;
  const out = Buffer.allocUnsafe(base64LinesLength(src.length, sep.length));
  const whole = src.length - (src.length % LINE_BYTES);
  const at = encodeLinesInto(src, 0, whole, sep, out, 0);
  if (whole < src.length) encodeTailInto(src, whole, src.length, sep, out, at);
  return out;
}

/**
 * Streaming base64: write() takes chunks of any size and gives back whole
 * lines in Buffers of exactly CHUNK_LINES lines (131,040 bytes with CRLF);
 * end() gives the rest. Input that does not fill a chunk is staged (copied)
 * into one Buffer of CHUNK_BYTES, so a source of small chunks still makes
 * few, full output chunks, and the caller may reuse or change a chunk as
 * soon as write()'s output has been read.
 *
 * Each output chunk is a fresh Buffer (a consumer of stream() may keep it),
 * released only when V8 collects the Buffer object; the small young strings
 * each chunk makes (see PIECE_BYTES and paceGc) keep young collections in
 * step with the output.
 */
export class Base64LineWriter {
  readonly #sep: Buffer;
  #stage: Buffer | undefined;
  #staged = 0;

  constructor(linesep: string) {
    this.#sep = Buffer.from(linesep, 'latin1');
  }

  /** The full output chunks this chunk completes, lazily: each is made when asked for, from `chunk` as it is then. */
  *write(chunk: Uint8Array): Generator<Buffer> {
    const src = asBuffer(chunk);
    let offset = 0;
    if (this.#staged > 0) {
      const stage = this.#stage!;
      offset = src.copy(stage, this.#staged, 0, CHUNK_BYTES - this.#staged);
      this.#staged += offset;
      if (this.#staged < CHUNK_BYTES) return;
      this.#staged = 0;
      yield this.#chunk(stage, 0);
    }
    while (src.length - offset >= CHUNK_BYTES) {
      const at = offset;
      offset += CHUNK_BYTES;
      yield this.#chunk(src, at);
    }
    if (offset < src.length) {
      this.#stage ??= Buffer.allocUnsafe(CHUNK_BYTES);
      this.#staged = src.copy(this.#stage, 0, offset);
    }
  }

  /** What is staged (less than a chunk: whole lines and a last partial line), if anything. */
  end(): Buffer | undefined {
    if (this.#staged === 0) return undefined;
    const out = base64LinesBuffer(this.#stage!.subarray(0, this.#staged), this.#sep);
    this.#staged = 0;
    return out;
  }

  #chunk(src: Buffer, start: number): Buffer {
    const out = Buffer.allocUnsafe(CHUNK_LINES * (LINE_CHARS + this.#sep.length));
    let at = 0;
    for (let from = start; from < start + CHUNK_BYTES; from += PIECE_BYTES) {
      const pieceStart = at;
      at = encodeLinesInto(src, from, from + PIECE_BYTES, this.#sep, out, at);
      paceGc(out, pieceStart, at);
    }
    return out;
  }
}

/**
 * GC pacing. An output chunk's memory is freed only when V8 collects its
 * Buffer object, and young collections are driven by JS-heap allocation, of
 * which this writer does little (its base64 text, about the size of the
 * output). With that alone, a 1 GiB attachment sent while another 1 GiB test
 * ran (npx vitest run --project email-stream, load 6-10) left 25-45 MB of
 * dead output between collections and grew RSS 61-71 MB (3 of 4 runs over
 * the 64 MB bound). A second young string of each piece's output, dropped at
 * once, doubles the allocation rate V8 sees and so halves the output left
 * between collections: 50-58 MB in 5 such runs (the encoder before this
 * one, whose per-line strings paced it the same way: 36-59 MB in 5). The
 * copy is a memcpy of 18 KB per piece, within the noise of the bench's CPU
 * per byte. Sent alone, RSS grew 28-35 MB in most runs of that comparison
 * with or without it; later, on a quiet machine with the email-stream files
 * run one at a time, 14 runs grew 44.8-55.4 MB, and the clean-root CI runs
 * 49.2-59.5 MB (the bound is 64): the headroom depends on V8's collector. A
 * bound that does not would need output buffers the consumer gives back.
 */
function paceGc(out: Buffer, start: number, end: number): void {
  out.toString('latin1', start, end);
}
