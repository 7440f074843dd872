// Decoding bytes in a named charset. TextDecoder knows the WHATWG encodings
import { TextDecoder } from 'node:util';
// (the ISO-8859 family, windows-125x, KOI8, Shift_JIS, GB18030, Big5, ...);
// names it does not know fall back to UTF-8 with replacement characters and
// report that they did, so the caller can record a defect.

const decoders = new Map<string, TextDecoder | null>();

function decoderFor(charset: string): TextDecoder | null {
  const key = charset.trim().toLowerCase().replace(/\*.*$/, ''); // RFC 2231 language suffix
  let decoder = decoders.get(key);
  if (decoder === undefined) {
    const alias = key === 'us-ascii' || key === 'ascii' ? 'windows-1252' : key === 'utf8' ? 'utf-8' : key;
    try {
      decoder = new TextDecoder(alias, { fatal: false });
    } catch {
      decoder = null;
    }
    if (decoders.size < 64) decoders.set(key, decoder);
  }
  return decoder;
}

export interface Decoded {
  text: string;
  /** The charset was unknown and UTF-8 was used instead. */
  unknownCharset: boolean;
}

// Node's TextDecoder reads windows-1252 (and the labels WHATWG maps to it:
// iso-8859-1, us-ascii, latin1) as ISO-8859-1, so 0x80–0x9F come out as C1
// controls instead of “smart quotes”, € and the like. This table fixes them.
const CP1252_HIGH = '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f'
  + '\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178';
const CP1252_LABELS = new Set(['windows-1252', 'cp1252', 'iso-8859-1', 'iso8859-1', 'latin1', 'latin-1', 'l1', 'us-ascii', 'ascii', 'ansi_x3.4-1968', 'x-cp1252']);

function decodeCp1252(bytes: Uint8Array): string {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  return /[\x80-\x9f]/.test(text) ? text.replace(/[\x80-\x9f]/g, (c) => CP1252_HIGH[c.charCodeAt(0) - 0x80]!) : text;
}

export function decodeCharset(bytes: Uint8Array, charset: string): Decoded {
  if (CP1252_LABELS.has(charset.trim().toLowerCase().replace(/\*.*$/, ''))) return { text: decodeCp1252(bytes), unknownCharset: false };
  const decoder = decoderFor(charset);
  if (decoder) return { text: decoder.decode(bytes), unknownCharset: false };
  return { text: new TextDecoder('utf-8').decode(bytes), unknownCharset: true };
}

/** True when every character is 7-bit ASCII. */
export function isAscii(text: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(text);
}
