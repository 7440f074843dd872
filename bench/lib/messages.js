// The messages every client sends, built the same way for all of them (CRLF line ends).
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';

export const FROM = 'bench@bench.local';
export const TO = 'sink@sink.local';

/** A ~1 KB message: headers, a body of plain lines, one line starting with '.'. */
export function smallMessage(size = 1024) {
  const head =
    `From: Bench <${FROM}>\r\nTo: Sink <${TO}>\r\nSubject: bench 1 KB message\r\n` +
    `Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <bench-1k@bench.local>\r\n` +
    `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n`;
  let body = '.a line that starts with a dot\r\n';
  let i = 0;
  while (head.length + body.length < size - 40) {
    body += `line ${String(i++).padStart(3, '0')} the quick brown fox jumps over the lazy dog\r\n`;
  }
  body += 'end\r\n';
  return Buffer.from(head + body, 'latin1');
}

/**
 * A large message (default 20 MB) whose body lines ALL start with '.', including lines that
 * are exactly "." and "..", so dot-stuffing is exercised on every line.
 */
export function largeMessage(bytes = 20 * 1024 * 1024) {
  const head =
    `From: Bench <${FROM}>\r\nTo: Sink <${TO}>\r\nSubject: bench large message\r\n` +
    `Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <bench-large@bench.local>\r\n` +
    `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n`;
  const buf = Buffer.allocUnsafe(bytes);
  let off = buf.write(head, 0, 'latin1');
  const filler = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-abcdefghijk';
  let i = 0;
  while (off < bytes) {
    let line;
    if (i % 1000 === 500) line = '.\r\n';
    else if (i % 1000 === 501) line = '..\r\n';
    else line = `.${String(i).padStart(8, '0')} ${filler}\r\n`;
    i++;
    if (off + line.length > bytes - 2) {
      // pad the last line so the message is exactly `bytes` long and ends with CRLF
      const rest = bytes - off;
      if (rest >= 3) line = '.' + 'x'.repeat(rest - 3) + '\r\n';
      else line = '\r\n'.slice(0, rest);
      off += buf.write(line, off, 'latin1');
      break;
    }
    off += buf.write(line, off, 'latin1');
  }
  return buf.subarray(0, off);
}

/** A large message (default 20 MB) of ordinary text lines: none starts with '.', nothing to stuff. */
export function largeTextMessage(bytes = 20 * 1024 * 1024) {
  const head =
    `From: Bench <${FROM}>\r\nTo: Sink <${TO}>\r\nSubject: bench large text message\r\n` +
    `Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <bench-large-text@bench.local>\r\n` +
    `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n`;
  const buf = Buffer.allocUnsafe(bytes);
  let off = buf.write(head, 0, 'latin1');
  const line = 'The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.\r\n';
  while (off + line.length <= bytes - 2) off += buf.write(line, off, 'latin1');
  off += buf.write('x'.repeat(Math.max(0, bytes - off - 2)) + '\r\n'.slice(0, bytes - off), off, 'latin1');
  return buf.subarray(0, off);
}

/** SMTP dot-stuffing for the raw client (pre-encoded outside the timed section). */
export function dotStuff(buf) {
  const s = buf.toString('latin1');
  const stuffed = (s.startsWith('.') ? '.' : '') + s.replace(/\r\n\./g, '\r\n..');
  return Buffer.from(stuffed, 'latin1');
}

export function hashOf(buf, algo) {
  if (algo === 'sha256') return createHash('sha256').update(buf).digest('hex');
  return (zlib.crc32(buf) >>> 0).toString(16).padStart(8, '0');
}
