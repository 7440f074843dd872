// The message-data encoder. Works on whole buffers with native byte search
// (Buffer.indexOf), not per-byte JavaScript loops, and returns zero-copy
// slices of the input wherever the input is already correct; state carries
// across chunks so output never depends on how the input was split.
//
// Duties (RFC 5321 §4.5.2, §2.3.8; SMTP smuggling, SEC Consult 2023):
// - every bare LF and every bare CR becomes CRLF, so the only line end a
//   server can see is CRLF and no lenient server finds a second end of data;
// - in DATA mode, a line that starts with "." gets one more "." (dot-stuffing);
// - `end()` closes the last line and, in DATA mode, adds the ".\r\n" marker.
// BDAT (RFC 3030) wants normalization without stuffing; BINARYMIME wants
// neither, only counting.

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const DOT_BYTE = Buffer.from('.');
const END_MARKER = Buffer.from('.\r\n');
const CRLF_END_MARKER = Buffer.from('\r\n.\r\n');
const EMPTY = Buffer.alloc(0);

export type EncoderMode = 'data' | 'bdat' | 'binary';

export class DataEncoder {
  readonly mode: EncoderMode;
  #atLineStart = true;
  #pendingCR = false;
  #stuffed = 0;
  #outBytes = 0;

  constructor(mode: EncoderMode = 'data') {
    this.mode = mode;
  }

  /**
   * Octets of message content produced so far: CRLF-normalized, without the
   * dot-stuffing and the end marker (the count RFC 1870 SIZE is about).
   */
  get contentBytes(): number {
    return this.#outBytes - this.#stuffed;
  }

  /** Encodes one chunk; the returned slices may alias `chunk`. */
  encode(chunk: Uint8Array): Buffer[] {
    const buf = chunk instanceof Buffer ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const len = buf.length;
    if (len === 0) return [];
    if (this.mode === 'binary') {
      this.#outBytes += len;
      return [buf];
    }
    const stuff = this.mode === 'data';
    const out: Buffer[] = [];
    let segStart = 0;
    let i = 0;
    if (this.#pendingCR) {
      // A CR ended the previous chunk: it is a line end either way.
      this.#pendingCR = false;
      out.push(CRLF);
      if (buf[0] === LF) i = segStart = 1;
      this.#atLineStart = true;
    }
    if (this.#atLineStart && i < len && stuff && buf[i] === DOT) {
      out.push(DOT_BYTE);
      this.#stuffed++;
    }
    let nextCR = buf.indexOf(CR, i);
    let nextLF = buf.indexOf(LF, i);
    // Where the current line began, if it began in this chunk (a chunk that is
    // only the LF of a pending CR leaves the encoder at a line start).
    let lineEnd = this.#atLineStart ? i : -1;
    while (nextCR !== -1 || nextLF !== -1) {
      const p = nextCR === -1 ? nextLF : nextLF === -1 ? nextCR : Math.min(nextCR, nextLF);
      if (p === nextCR) {
        if (p + 1 === len) {
          // Cannot tell CRLF from a bare CR until the next chunk.
          if (p > segStart) out.push(buf.subarray(segStart, p));
          segStart = len;
          this.#pendingCR = true;
          lineEnd = -1;
          break;
        }
        if (buf[p + 1] === LF) {
          lineEnd = p + 2; // already CRLF: stays inside the current slice
          nextLF = buf.indexOf(LF, lineEnd);
        } else {
          if (p > segStart) out.push(buf.subarray(segStart, p));
          out.push(CRLF);
          segStart = lineEnd = p + 1;
        }
        nextCR = buf.indexOf(CR, lineEnd);
      } else {
        if (p > segStart) out.push(buf.subarray(segStart, p));
        out.push(CRLF);
        segStart = lineEnd = p + 1;
        nextLF = buf.indexOf(LF, lineEnd);
      }
      if (lineEnd < len) {
        if (stuff && buf[lineEnd] === DOT) {
          if (lineEnd > segStart) out.push(buf.subarray(segStart, lineEnd));
          out.push(DOT_BYTE);
          this.#stuffed++;
          segStart = lineEnd;
        }
      }
    }
    if (segStart < len) out.push(buf.subarray(segStart, len));
    this.#atLineStart = !this.#pendingCR && lineEnd === len;
    for (const piece of out) this.#outBytes += piece.length;
    return out;
  }

  /**
   * Finishes the message: closes a pending CR, ends the last line with CRLF,
   * and in DATA mode appends the end-of-data marker.
   */
  end(): Buffer {
    if (this.mode === 'binary') return EMPTY;
    // A pending CR, or a last line without its line end, needs a CRLF.
    const needsLineEnd = this.#pendingCR || !this.#atLineStart;
    this.#pendingCR = false;
    this.#atLineStart = true;
    if (needsLineEnd) this.#outBytes += 2;
    if (this.mode === 'data') return needsLineEnd ? CRLF_END_MARKER : END_MARKER;
    return needsLineEnd ? CRLF : EMPTY;
  }
}

/** Encodes a whole in-memory message; returns the slices and the content size. */
export function encodeWhole(message: Uint8Array, mode: EncoderMode): { chunks: Buffer[]; tail: Buffer; contentBytes: number } {
  const encoder = new DataEncoder(mode);
  const chunks = encoder.encode(message);
  const tail = encoder.end();
  return { chunks, tail, contentBytes: encoder.contentBytes };
}

/**
 * smtplib.quotedata: bare LF and CR to CRLF, and leading dots doubled.
 * (It does not append the end marker.)
 */
export function quotedata(data: string): string {
  return data.replace(/\r\n|\n|\r/g, '\r\n').replace(/^\./gm, '..');
}

/**
 * Reverses DATA-mode encoding (RFC 5321 §4.5.2): removes the end marker if
 * present and one leading dot from each line. For tests and debugging servers.
 */
export function decodeData(encoded: Uint8Array): Buffer {
  let text = Buffer.from(encoded).toString('latin1');
  if (text.endsWith('\r\n.\r\n')) text = text.slice(0, -3);
  else if (text === '.\r\n') text = '';
  return Buffer.from(text.replace(/(^|\r\n)\./g, '$1'), 'latin1');
}
