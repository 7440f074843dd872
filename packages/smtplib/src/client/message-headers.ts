// What sendMessage() needs from an RFC 5322 message: the header fields that
// give the envelope (Sender/From, To/Cc/Bcc, or the newest Resent-* block),
// and the message again without its Bcc and Resent-Bcc fields. Only the header
// block is read into memory (bounded); the body streams through untouched.

import { SMTPInvalidArgumentError } from '../errors.js';
import { getaddresses } from '../protocol/address.js';
import type { MessageSource } from './message-source.js';

/** Header blocks larger than this are refused rather than buffered. */
export const MAX_HEADER_BLOCK = 1024 * 1024;

export interface HeaderField {
  /** Name as written. */
  name: string;
  /** Unfolded value, trimmed. */
  value: string;
  /** Byte range of the whole field (with continuation lines and line end). */
  start: number;
  end: number;
}

export interface Envelope {
  from: string;
  to: string[];
}

/** Offset just past the blank line that ends the header block, or -1. */
export function findHeaderEnd(bytes: Buffer): number {
  let pos = 0;
  while (pos < bytes.length) {
    const lf = bytes.indexOf(0x0a, pos);
    if (lf === -1) return -1;
    const lineLength = lf - pos - (lf > pos && bytes[lf - 1] === 0x0d ? 1 : 0);
    if (lineLength === 0) return lf + 1;
    pos = lf + 1;
  }
  return -1;
}

/** Parses the header block (bytes up to and including the blank line). */
export function parseHeaderFields(block: Buffer): HeaderField[] {
  const fields: HeaderField[] = [];
  // Work on byte offsets: split on LF in the buffer, decode lines individually.
  let pos = 0;
  let current: HeaderField | undefined;
  while (pos < block.length) {
    let lf = block.indexOf(0x0a, pos);
    if (lf === -1) lf = block.length - 1;
    const line = block.subarray(pos, lf + 1).toString('utf8').replace(/\r?\n$/, '');
    if (line === '') break;
    if ((line[0] === ' ' || line[0] === '\t') && current) {
      current.value += ` ${line.trim()}`;
      current.end = lf + 1;
    } else {
      const colon = line.indexOf(':');
      current = colon > 0
        ? { name: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim(), start: pos, end: lf + 1 }
        : undefined;
      if (current) fields.push(current);
    }
    pos = lf + 1;
  }
  return fields;
}

/** smtplib.send_message's envelope rules, with the newest Resent-* block taking precedence. */
export function envelopeFromHeaders(fields: readonly HeaderField[]): Envelope {
  const lower = (f: HeaderField) => f.name.toLowerCase();
  // The newest Resent-* block is the first contiguous run of Resent- fields (RFC 5322 §3.6.6: blocks are prepended).
  const firstResent = fields.findIndex((f) => lower(f).startsWith('resent-'));
  let scope: readonly HeaderField[] = fields;
  let prefix = '';
  if (firstResent !== -1) {
    let endResent = firstResent;
    while (endResent < fields.length && lower(fields[endResent]!).startsWith('resent-')) endResent++;
    scope = fields.slice(firstResent, endResent);
    prefix = 'resent-';
  }
  const get = (name: string) => scope.filter((f) => lower(f) === prefix + name).map((f) => f.value);
  const senderField = get('sender')[0] ?? get('from')[0];
  const from = senderField === undefined ? '' : (getaddresses(senderField)[0]?.address ?? '');
  const to = getaddresses([...get('to'), ...get('bcc'), ...get('cc')])
    .map((a) => a.address)
    .filter((a) => a !== '');
  return { from, to };
}

/** The header block without Bcc and Resent-Bcc fields. */
export function removeBcc(block: Buffer, fields: readonly HeaderField[]): Buffer {
  const drop = fields.filter((f) => /^(resent-)?bcc$/i.test(f.name));
  if (drop.length === 0) return block;
  const parts: Buffer[] = [];
  let pos = 0;
  for (const field of drop) {
    parts.push(block.subarray(pos, field.start));
    pos = field.end;
  }
  parts.push(block.subarray(pos));
  return Buffer.concat(parts);
}

export interface SplitMessage {
  fields: HeaderField[];
  /** The message with Bcc removed, as a source ready to send. */
  source: MessageSource;
}

/** Reads the header block of a source, and returns the fields and the rewritten source. */
export async function splitMessage(source: MessageSource): Promise<SplitMessage> {
  if (source.kind === 'bytes') {
    const end = findHeaderEnd(source.bytes);
    const headerLength = end === -1 ? source.bytes.length : end;
    const block = source.bytes.subarray(0, headerLength);
    const fields = parseHeaderFields(block);
    const rewritten = removeBcc(block, fields);
    const bytes = rewritten === block ? source.bytes : Buffer.concat([rewritten, source.bytes.subarray(headerLength)]);
    return { fields, source: { ...source, bytes } };
  }
  const iterator = source.chunks[Symbol.asyncIterator]();
  let head: Buffer = Buffer.alloc(0);
  let end = -1;
  let done = false;
  while (end === -1) {
    const next = await iterator.next();
    if (next.done) { done = true; break; }
    head = head.length ? Buffer.concat([head, next.value]) : next.value;
    end = findHeaderEnd(head);
    if (end === -1 && head.length > MAX_HEADER_BLOCK) {
      throw new SMTPInvalidArgumentError(`the message header block is larger than ${MAX_HEADER_BLOCK} bytes`);
    }
  }
  const headerLength = end === -1 ? head.length : end;
  const block = head.subarray(0, headerLength);
  const fields = parseHeaderFields(block);
  const first = Buffer.concat([removeBcc(block, fields), head.subarray(headerLength)]);
  async function* rest(): AsyncIterable<Buffer> {
    yield first;
    if (done) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return { fields, source: { kind: 'stream', chunks: rest() } };
}
