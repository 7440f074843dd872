// Base64 in lines of 76 characters (RFC 2045 §6.8), written straight into
// Buffers: no string of a whole body, no string per line. Each run of whole
// lines is encoded by Node in one call into the end of its output Buffer and
// the lines are then moved forward into place with the line ends between
// them (a move never overwrites text not yet moved: see encodeLinesInto).
// Output comes in chunks of at most CHUNK_LINES lines (just under 128 KiB
// with CRLF), so a consumer that honours backpressure holds about one chunk.

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
/** Input bytes per output chunk (a whole number of lines), and what file attachments are read in. */
export const CHUNK_BYTES = LINE_BYTES * CHUNK_LINES;

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
export function base64LinesBuffer(bytes: Uint8Array, linesep: string): Buffer {
  const src = asBuffer(bytes);
  const sep = Buffer.from(linesep, 'latin1');
  const out = Buffer.allocUnsafe(base64LinesLength(src.length, sep.length));
  const whole = src.length - (src.length % LINE_BYTES);
  const at = encodeLinesInto(src, 0, whole, sep, out, 0);
  if (whole < src.length) encodeTailInto(src, whole, src.length, sep, out, at);
  return out;
}

/**
 * Streaming base64: write() takes chunks of any size and gives back whole
 * lines, in Buffers of at most CHUNK_LINES lines; end() gives the last
 * partial line. Between chunks it holds at most 56 bytes, copied, so the
 * caller may reuse or change a chunk as soon as write()'s output is read.
 */
export class Base64LineWriter {
  readonly #sep: Buffer;
  readonly #rest = Buffer.allocUnsafe(LINE_BYTES);
  #restLength = 0;

  constructor(linesep: string) {
    this.#sep = Buffer.from(linesep, 'latin1');
  }

  /** The encoded whole lines this chunk completes, lazily: each Buffer is made when it is asked for, from `chunk` as it is then. */
  *write(chunk: Uint8Array): Generator<Buffer> {
    const src = asBuffer(chunk);
    const step = LINE_CHARS + this.#sep.length;
    let offset = 0;
    let restLine = false;
    if (this.#restLength > 0) {
      offset = Math.min(LINE_BYTES - this.#restLength, src.length);
      src.copy(this.#rest, this.#restLength, 0, offset);
      this.#restLength += offset;
      if (this.#restLength < LINE_BYTES) return;
      restLine = true;
    }
    let lines = Math.floor((src.length - offset) / LINE_BYTES);
    while (restLine || lines > 0) {
      const take = Math.min(lines, CHUNK_LINES - (restLine ? 1 : 0));
      const out = Buffer.allocUnsafe((take + (restLine ? 1 : 0)) * step);
      let at = 0;
      if (restLine) {
        at = encodeLinesInto(this.#rest, 0, LINE_BYTES, this.#sep, out, 0);
        this.#restLength = 0;
        restLine = false;
      }
      encodeLinesInto(src, offset, offset + take * LINE_BYTES, this.#sep, out, at);
      offset += take * LINE_BYTES;
      lines -= take;
      yield out;
    }
    this.#restLength = src.copy(this.#rest, 0, offset);
  }

  /** The last partial line, if the input did not end on a whole line. */
  end(): Buffer | undefined {
    if (this.#restLength === 0) return undefined;
    const out = Buffer.allocUnsafe(base64LinesLength(this.#restLength, this.#sep.length));
    encodeTailInto(this.#rest, 0, this.#restLength, this.#sep, out, 0);
    this.#restLength = 0;
    return out;
  }
}
