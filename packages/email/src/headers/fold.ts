// Folding (RFC 5322 §2.2.3): a header field is written as lines of at most
// `maxLineLength` characters where it can be, breaking only before white
// space, so unfolding (removing the inserted line ends) gives the value back
// exactly. No line may exceed 998 octets; a value that cannot be broken that
// small is refused (the callers encode long words first).

import { LineTooLongError } from '../errors.js';
import type { Policy } from '../policy.js';

const HARD_LIMIT = 998;

/** Splits a value into pieces that each start with white space (except the first). */
export function splitAtWhitespace(value: string): string[] {
  const pieces = value.match(/^[^ \t]*|[ \t]+[^ \t]*/g) ?? [value];
  // A piece of white space alone (trailing blanks) would make a line of only
  // white space when folded before it; keep it with the piece before.
  const out: string[] = [];
  for (const piece of pieces) {
    if (out.length > 0 && /^[ \t]*$/.test(piece)) out[out.length - 1] += piece;
    else if (piece !== '' || out.length === 0) out.push(piece);
  }
  return out;
}

/** Writes `Name: value` folded; `value` pieces as from splitAtWhitespace. */
export function foldField(name: string, value: string, policy: Policy): string {
  const pieces = splitAtWhitespace(value);
  const lines: string[] = [];
  let line = `${name}:`;
  let first = true;
  for (const piece of pieces) {
    const text = first ? (piece === '' ? '' : ' ' + piece) : piece;
    first = false;
    if (text === '') continue;
    if (line.length + text.length > policy.maxLineLength && /^[ \t]/.test(text) && line.trim() !== `${name}:`) {
      lines.push(line);
      line = text;
    } else {
      line += text;
    }
  }
  lines.push(line);
  for (const l of lines) {
    if (Buffer.byteLength(l, 'utf8') > HARD_LIMIT) throw new LineTooLongError(`the ${name} header`);
  }
  return lines.join(policy.linesep) + policy.linesep;
}

/** Unfolds a raw header value: line ends before white space are removed (RFC 5322 §2.2.3). */
export function unfold(raw: string): string {
  return raw.replace(/\r?\n(?=[ \t])/g, '').replace(/\r?\n$/, '');
}
