// Transfer decoding as a stream, for bodies too large to hold: base64 and
// quoted-printable undone chunk by chunk with the rules of the whole-buffer
// decoders (transfer-encoding.ts), holding at most a partial line between
// chunks. Defects found on the way are reported when the stream ends.

import type { DefectKind } from '../defects.js';
import { decodeQuotedPrintable } from './transfer-encoding.js';

export interface StreamDefect {
  kind: DefectKind;
  message: string;
}

const EMPTY = Buffer.alloc(0);

/** Base64 alphabet membership, '=' excluded. */
const ALPHABET = new Uint8Array(256);
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') ALPHABET[ch.charCodeAt(0)] = 1;

/** Tolerant base64 decoding of chunks: characters outside the alphabet are skipped, as decodeBase64 does. */
export async function* decodeBase64Chunks(chunks: AsyncIterable<Buffer>, report: (d: StreamDefect) => void): AsyncGenerator<Buffer> {
  let carry = EMPTY;
  let invalid = false;
  let padding = 0;
  let paddingInside = false;
  for await (const chunk of chunks) {
    // Keep only alphabet bytes, in place in a fresh buffer (with the carry in front).
    const clean = Buffer.allocUnsafe(carry.length + chunk.length);
    carry.copy(clean, 0);
    let n = carry.length;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (ALPHABET[b]) {
        if (padding > 0) { paddingInside = true; padding = 0; }
        clean[n++] = b;
      } else if (b === 0x3d) padding++;
      else if (b !== 0x0d && b !== 0x0a && b !== 0x20 && b !== 0x09) invalid = true;
    }
    const whole = n - (n % 4);
    carry = Buffer.from(clean.subarray(whole, n));
    if (whole > 0) yield Buffer.from(clean.toString('latin1', 0, whole), 'base64');
  }
  if (invalid) report({ kind: 'InvalidBase64CharactersDefect', message: 'characters outside the base64 alphabet were skipped' });
  if (paddingInside) report({ kind: 'InvalidBase64PaddingDefect', message: 'padding in the middle of base64 data' });
  if (carry.length === 1) report({ kind: 'InvalidBase64LengthDefect', message: 'base64 data ends with a lone character, which was dropped' });
  else if (carry.length > 0) {
    if (padding === 0) report({ kind: 'InvalidBase64PaddingDefect', message: 'base64 data is missing its padding' });
    yield Buffer.from(carry.toString('latin1'), 'base64');
  }
}

const isSpace = (b: number | undefined): boolean => b === 0x20 || b === 0x09;

/**
 * Quoted-printable decoding of chunks. Whole lines are decoded as they come;
 * a line longer than a chunk is cut where no escape, soft break or trailing
 * white space can straddle the cut.
 */
export async function* decodeQuotedPrintableChunks(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let carry = EMPTY;
  for await (const chunk of chunks) {
    const data = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    let cut = data.lastIndexOf(0x0a) + 1;
    if (cut === 0 && data.length > 64 * 1024) {
      cut = data.length - 3;
      while (cut > 0 && (isSpace(data[cut - 1]) || data[cut - 1] === 0x3d || data[cut - 2] === 0x3d)) cut--;
    }
    carry = Buffer.from(data.subarray(cut));
    if (cut > 0) yield decodeQuotedPrintable(data.subarray(0, cut));
  }
  if (carry.length > 0) yield decodeQuotedPrintable(carry);
}
