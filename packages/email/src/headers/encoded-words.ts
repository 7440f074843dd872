// RFC 2047 encoded words: decoding them out of header text, and encoding
// runs of non-ASCII text into words of at most 75 characters, each holding
// whole characters, in Q or B, whichever is shorter (as Python does).

import { decodeCharset } from './charset.js';

const ENCODED_WORD = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;
const MAX_WORD = 75;

export interface DecodeResult {
  text: string;
  /** Problems met (unknown charset, bad base64); the text is still usable. */
  problems: string[];
}

/** Decodes every encoded word in `text`; whitespace between adjacent encoded words is dropped (RFC 2047 §6.2). */
export function decodeEncodedWords(text: string): DecodeResult {
  const problems: string[] = [];
  if (!text.includes('=?')) return { text, problems };
  let out = '';
  let last = 0;
  let lastWasWord = false;
  // Bytes of consecutive words in one charset are joined before decoding, so
  // a character split across two words (a common sender bug) still decodes.
  let pendingCharset = '';
  let pending: Buffer[] = [];
  const flush = (): void => {
    if (pending.length === 0) return;
    const decoded = decodeCharset(Buffer.concat(pending), pendingCharset);
    if (decoded.unknownCharset) problems.push(`unknown charset ${JSON.stringify(pendingCharset)}`);
    out += decoded.text;
    pending = [];
  };
  for (const match of text.matchAll(ENCODED_WORD)) {
    const between = text.slice(last, match.index);
    const adjacent = lastWasWord && /^[ \t\r\n]*$/.test(between);
    if (!adjacent) {
      flush();
      out += between;
    }
    const charset = match[1]!.replace(/\*.*$/, '');
    if (pending.length > 0 && charset.toLowerCase() !== pendingCharset.toLowerCase()) flush();
    pendingCharset = charset;
    const encoding = match[2]!.toLowerCase();
    const payload = match[3]!;
    if (encoding === 'b') {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(payload) || payload.replace(/=+$/, '').length % 4 === 1) {
        problems.push('invalid base64 in an encoded word');
      }
      pending.push(Buffer.from(payload, 'base64'));
    } else {
      pending.push(decodeQ(payload));
    }
    last = match.index + match[0].length;
    lastWasWord = true;
  }
  flush();
  out += text.slice(last);
  return { text: out, problems };
}

function decodeQ(payload: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < payload.length; i++) {
    const ch = payload[i]!;
    if (ch === '_') bytes.push(0x20);
    else if (ch === '=' && /^[0-9A-Fa-f]{2}$/.test(payload.slice(i + 1, i + 3))) {
      bytes.push(parseInt(payload.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(ch.charCodeAt(0) & 0xff);
  }
  return Buffer.from(bytes);
}

// Characters that stand for themselves in Q inside a phrase (RFC 2047 §5(3)).
const Q_LITERAL = /[A-Za-z0-9!*+\-/]/;

function qLength(bytes: Buffer): number {
  let n = 0;
  for (const b of bytes) n += b === 0x20 || Q_LITERAL.test(String.fromCharCode(b)) && b < 0x80 ? 1 : 3;
  return n;
}

function encodeQ(bytes: Buffer): string {
  let out = '';
  for (const b of bytes) {
    if (b === 0x20) out += '_';
    else if (b < 0x80 && Q_LITERAL.test(String.fromCharCode(b))) out += String.fromCharCode(b);
    else out += '=' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/**
 * Encodes `text` as one or more encoded words (utf-8), each at most 75
 * characters, never splitting a character. Returns the words; the caller
 * separates them with folding white space.
 */
export function encodeWords(text: string, maxWord = MAX_WORD): string[] {
  const whole = Buffer.from(text, 'utf8');
  const useB = Math.ceil(whole.length / 3) * 4 < qLength(whole);
  const prefix = useB ? '=?utf-8?b?' : '=?utf-8?q?';
  const room = maxWord - prefix.length - 2;
  const words: string[] = [];
  let chunk = '';
  const encodedLength = (s: string): number => {
    const b = Buffer.from(s, 'utf8');
    return useB ? Math.ceil(b.length / 3) * 4 : qLength(b);
  };
  for (const ch of text) {
    if (chunk !== '' && encodedLength(chunk + ch) > room) {
      words.push(prefix + encodePayload(chunk, useB) + '?=');
      chunk = '';
    }
    chunk += ch;
  }
  if (chunk !== '' || words.length === 0) words.push(prefix + encodePayload(chunk, useB) + '?=');
  return words;
}

function encodePayload(text: string, useB: boolean): string {
  const bytes = Buffer.from(text, 'utf8');
  return useB ? bytes.toString('base64') : encodeQ(bytes);
}
