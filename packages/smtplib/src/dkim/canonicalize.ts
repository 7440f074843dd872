// DKIM canonicalization (RFC 6376 §3.4), on bytes.
//
// Headers are small and handled whole. Bodies stream: each canonicalizer
// takes chunks of any size and split anywhere, and holds back only what the
// next chunk may still change (a run of trailing empty lines as a count, a
// pending whitespace run as a flag, a CR whose LF may follow), so a body of
// any size hashes in constant memory.

import { createHash, type Hash } from 'node:crypto';

export type Canonicalization = 'simple' | 'relaxed';

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const TAB = 0x09;
const CRLF = Buffer.from('\r\n');
const CR_ONLY = Buffer.from('\r');
const DOUBLE_SPACE = Buffer.from('  ');
const SPACE_CR = Buffer.from(' \r');
/** Held-back empty lines are hashed from this block, not one CRLF at a time. */
const CRLF_BLOCK = Buffer.alloc(64 * 1024, '\r\n');

/**
 * One header field (name, colon, value, continuation lines, final CRLF) in
 * canonical form, ending in CRLF. Bytes are kept as they are (8-bit and UTF-8
 * headers under SMTPUTF8 included): the work happens on a latin1 view.
 */
export function canonicalHeader(field: Buffer, canonicalization: Canonicalization): Buffer {
  if (canonicalization === 'simple') return field;
  const text = field.toString('latin1');
  const colon = text.indexOf(':');
  // Names are ASCII (RFC 5322 ftext); only A-Z are lowered, never latin1 letters.
  const name = text.slice(0, colon).replace(/[ \t]+$/, '').replace(/[A-Z]/g, (c) => c.toLowerCase());
  const value = text
    .slice(colon + 1)
    .replace(/\r\n/g, '')
    .replace(/[ \t]+/g, ' ')
    .replace(/^ /, '')
    .replace(/ $/, '');
  return Buffer.from(`${name}:${value}\r\n`, 'latin1');
}

/** A body hash that can be fed chunk by chunk. */
export interface BodyHasher {
  update(chunk: Buffer): void;
  /** The base64 digest, for the bh= tag. */
  digest(): string;
}

export function createBodyHasher(canonicalization: Canonicalization): BodyHasher {
  return canonicalization === 'simple' ? new SimpleBody() : new RelaxedBody();
}

/**
 * Hashes canonical body bytes, holding back the CRLFs at the end of what it
 * was given: they are trailing empty lines unless more content follows.
 */
class TrailingLines {
  readonly #hash: Hash = createHash('sha256');
  #pendingCrlf = 0;
  /** Anything other than a held-back CRLF was hashed. */
  hasContent = false;

  update(buf: Buffer): void {
    let k = buf.length;
    while (k >= 2 && buf[k - 1] === LF && buf[k - 2] === CR) k -= 2;
    if (k === 0) {
      this.#pendingCrlf += buf.length / 2;
      return;
    }
    this.#flush();
    this.#hash.update(buf.subarray(0, k));
    this.#pendingCrlf = (buf.length - k) / 2;
    this.hasContent = true;
  }

  /** Ends the body: the last line's CRLF (if `lineEnd`) replaces every held-back one. */
  digest(lineEnd: boolean): string {
    if (lineEnd) this.#hash.update(CRLF);
    return this.#hash.digest('base64');
  }

  #flush(): void {
    let bytes = this.#pendingCrlf * 2;
    this.#pendingCrlf = 0;
    while (bytes > 0) {
      const n = Math.min(bytes, CRLF_BLOCK.length);
      this.#hash.update(CRLF_BLOCK.subarray(0, n));
      bytes -= n;
    }
  }
}

/**
 * "simple" (§3.4.3): the body as it is, without empty lines at its end; an
 * empty body, or one whose last line has no CRLF, gets one CRLF.
 */
class SimpleBody implements BodyHasher {
  readonly #lines = new TrailingLines();
  #carryCR = false;

  update(chunk: Buffer): void {
    if (chunk.length === 0) return;
    let buf = chunk;
    if (this.#carryCR) {
      buf = Buffer.concat([CR_ONLY, chunk]);
      this.#carryCR = false;
    }
    // A CR at the end may be the first half of a CRLF: decide with the next chunk.
    if (buf[buf.length - 1] === CR) {
      this.#carryCR = true;
      buf = buf.subarray(0, buf.length - 1);
    }
    if (buf.length) this.#lines.update(buf);
  }

  digest(): string {
    if (this.#carryCR) this.#lines.update(CR_ONLY);
    // Whatever the body was (empty, empty lines, content with or without a
    // final CRLF), the canonical form ends in exactly one CRLF.
    return this.#lines.digest(true);
  }
}

/**
 * "relaxed" (§3.4.4): whitespace runs become one space, whitespace at line
 * ends goes, empty lines at the end go; a non-empty body ends in CRLF and an
 * empty one stays empty.
 */
class RelaxedBody implements BodyHasher {
  readonly #lines = new TrailingLines();
  #wsp = false;
  #carryCR = false;

  update(chunk: Buffer): void {
    const len = chunk.length;
    if (len === 0) return;
    if (this.#unchanged(chunk)) {
      this.#lines.update(chunk);
      return;
    }
    const out = Buffer.allocUnsafe(len + 2);
    let o = 0;
    let i = 0;
    if (this.#carryCR) {
      this.#carryCR = false;
      if (chunk[0] === LF) {
        this.#wsp = false;
        out[o++] = CR;
        out[o++] = LF;
        i = 1;
      } else {
        if (this.#wsp) out[o++] = SP;
        this.#wsp = false;
        out[o++] = CR;
      }
    }
    let wsp = this.#wsp;
    for (; i < len; i++) {
      const b = chunk[i]!;
      if (b === SP || b === TAB) {
        wsp = true;
        continue;
      }
      if (b === CR) {
        if (i + 1 === len) {
          this.#carryCR = true;
          break;
        }
        if (chunk[i + 1] === LF) {
          // Whitespace before a line end is dropped.
          wsp = false;
          out[o++] = CR;
          out[o++] = LF;
          i++;
          continue;
        }
      }
      if (wsp) {
        out[o++] = SP;
        wsp = false;
      }
      out[o++] = b;
    }
    this.#wsp = wsp;
    if (o) this.#lines.update(out.subarray(0, o));
  }

  /**
   * Ordinary text needs no change: no tab, no run of spaces, no space before
   * a line end, nothing held from the last chunk and nothing to hold for the
   * next. Three native searches then spare the byte loop.
   */
  #unchanged(chunk: Buffer): boolean {
    const last = chunk[chunk.length - 1];
    return !this.#wsp && !this.#carryCR && last !== SP && last !== TAB && last !== CR &&
      chunk.indexOf(TAB) === -1 && chunk.indexOf(DOUBLE_SPACE) === -1 && chunk.indexOf(SPACE_CR) === -1;
  }

  digest(): string {
    if (this.#carryCR) {
      this.#lines.update(this.#wsp ? Buffer.from(' \r') : CR_ONLY);
      this.#carryCR = false;
    }
    // Trailing whitespace of an unterminated last line is dropped with #wsp.
    return this.#lines.digest(this.#lines.hasContent);
  }
}
