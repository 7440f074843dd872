// The crash soak's messages: CRLF line ends throughout (what the client sends,
// so the server's digest of what it received can be compared with the digest of
// what was enqueued) and lines that start with '.' (one of them a lone '.'), so
// every delivery goes through dot-stuffing and the server's unstuffing.
import { createHash } from 'node:crypto';
import { prng } from '../../soak/fault-server.js';

const ALPHABET = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
const LINE = 76; // octets of text per body line, before its CRLF

/** The message tagged `tag`: headers, then a body of about `bodyBytes` octets (a short one when omitted). */
export function soakMessage(tag, bodyBytes) {
  const head = Buffer.from(`From: soak@example.test\r\nTo: x@example.test\r\nSubject: ${tag}\r\nX-Soak-Id: ${tag}\r\n\r\nsoak message ${tag}\r\n.a line that starts with a dot\r\n.\r\n..\r\n`, 'latin1');
  if (!bodyBytes) return head;
  return Buffer.concat([head, filler(tag, bodyBytes)]);
}

/** `bytes` octets (rounded up to whole lines) of text seeded by the tag; every 16th line starts with '.', some are a lone '.'. */
function filler(tag, bytes) {
  const random = prng([...tag].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0, 0x811c9dc5));
  const lines = Math.ceil(bytes / (LINE + 2));
  const out = Buffer.allocUnsafe(lines * (LINE + 2));
  let at = 0;
  for (let line = 0; line < lines; line++) {
    if (line % 256 === 255) {
      // A line that is only '.': the end of data if the client did not stuff it.
      out[at++] = 0x2e;
      out[at++] = 0x0d;
      out[at++] = 0x0a;
      continue;
    }
    const end = at + LINE;
    if (line % 16 === 15) out[at++] = 0x2e;
    while (at < end) {
      let word = (random() * 4294967296) >>> 0;
      for (let k = 0; k < 5 && at < end; k++, word >>>= 6) out[at++] = ALPHABET[word & 63];
    }
    out[at++] = 0x0d;
    out[at++] = 0x0a;
  }
  return out.subarray(0, at);
}

/** The digest the server reports for a delivery of these octets. */
export function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}
