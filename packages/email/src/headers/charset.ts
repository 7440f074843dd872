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

export function decodeCharset(bytes: Uint8Array, charset: string): Decoded {
  const decoder = decoderFor(charset);
  if (decoder) return { text: decoder.decode(bytes), unknownCharset: false };
  return { text: new TextDecoder('utf-8').decode(bytes), unknownCharset: true };
}

/** True when every character is 7-bit ASCII. */
export function isAscii(text: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(text);
}
