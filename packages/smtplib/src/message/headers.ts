// What sendMessage() needs from an RFC 5322 message: the header fields that
// give the envelope (Sender/From, To/Cc/Bcc, or the one Resent-* block),
// and the message again without its Bcc and Resent-Bcc fields. Only the header
// block is read into memory (bounded); the body streams through untouched.

import { SMTPInvalidArgumentError } from '../errors.js';
import { envelopeAddresses } from '../protocol/address.js';
import type { MessageSource } from './source.js';

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

/** What the caller already knows of the envelope; headers fill in only what is missing. */
export interface EnvelopeOptions {
  from?: string | undefined;
  to?: string | readonly string[] | undefined;
}

/** The envelope a message's headers give, as sendMessage() uses it. */
export interface HeaderEnvelope extends Envelope {
  /** The envelope came from (or would have come from) a Resent-* block. */
  resent: boolean;
}

/**
 * Number of Resent-* blocks (RFC 5322 §3.6.6): each block has each field at
 * most once, so the most repeated Resent-* name counts the blocks. smtplib
 * counts Resent-Date alone; a block without one is still a block here.
 */
export function countResentBlocks(fields: readonly HeaderField[]): number {
  const counts = new Map<string, number>();
  for (const field of fields) {
    const name = field.name.toLowerCase();
    if (name.startsWith('resent-')) counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return Math.max(0, ...counts.values());
}

/**
 * smtplib.send_message's envelope rule, the one implementation of it (the
 * library, the pool and the CLI's `sendmail -t` call this):
 * - with no Resent-* field: Sender (else From) and To, Bcc, Cc;
 * - with one Resent-* block: Resent-Sender (else Resent-From) and
 *   Resent-To, Resent-Bcc, Resent-Cc;
 * - with more than one block: SMTPInvalidArgumentError, unless `from` and
 *   `to` are both given (the headers are then not needed), because which
 *   block is "the" envelope is ambiguous (smtplib raises ValueError).
 * `options.from` / `options.to` win over the headers.
 */
export function envelopeFromHeaders(message: string | Uint8Array | readonly HeaderField[], options: EnvelopeOptions = {}): HeaderEnvelope {
  const fields = Array.isArray(message) ? (message as readonly HeaderField[]) : headerFieldsOf(message as string | Uint8Array);
  const givenTo = options.to === undefined ? undefined : typeof options.to === 'string' ? [options.to] : [...options.to];
  const blocks = countResentBlocks(fields);
  const resent = blocks > 0;
  if (options.from !== undefined && givenTo !== undefined) return { from: options.from, to: givenTo, resent };
  if (blocks > 1) {
    throw new SMTPInvalidArgumentError(
      `the message has ${blocks} Resent-* header blocks, so its envelope is ambiguous; pass the envelope yourself (from and to), as smtplib's send_message requires`,
    );
  }
  const prefix = resent ? 'resent-' : '';
  const get = (name: string) => fields.filter((f) => f.name.toLowerCase() === prefix + name).map((f) => f.value);
  const senderName = get('sender').length ? 'sender' : 'from';
  const senderField = get(senderName)[0];
  const from = options.from ?? (senderField === undefined ? '' : (envelopeAddresses([senderField], `${prefix}${senderName}`)[0] ?? ''));
  const to = givenTo ?? [
    ...envelopeAddresses(get('to'), `${prefix}to`),
    ...envelopeAddresses(get('bcc'), `${prefix}bcc`),
    ...envelopeAddresses(get('cc'), `${prefix}cc`),
  ];
  return { from, to, resent };
}

function headerFieldsOf(message: string | Uint8Array): HeaderField[] {
  const bytes = typeof message === 'string' ? Buffer.from(message, 'utf8') : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  const end = findHeaderEnd(bytes);
  return parseHeaderFields(bytes.subarray(0, end === -1 ? bytes.length : end));
}

/**
 * The message without its Bcc and Resent-Bcc fields (continuation lines
 * included), everything else byte for byte, as sendMessage() sends it. A
 * string gives a string, bytes give a Buffer.
 */
export function removeBccHeaders(message: string): string;
export function removeBccHeaders(message: Uint8Array): Buffer;
export function removeBccHeaders(message: string | Uint8Array): string | Buffer {
  const bytes = typeof message === 'string' ? Buffer.from(message, 'utf8') : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  const end = findHeaderEnd(bytes);
  const headerLength = end === -1 ? bytes.length : end;
  const block = bytes.subarray(0, headerLength);
  const rewritten = removeBcc(block, parseHeaderFields(block));
  if (rewritten === block) return typeof message === 'string' ? message : bytes;
  const out = Buffer.concat([rewritten, bytes.subarray(headerLength)]);
  return typeof message === 'string' ? out.toString('utf8') : out;
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

/** The split of a message held in memory (no I/O, so sendMessage() can queue it at once). */
export function splitBytes(source: Extract<MessageSource, { kind: 'bytes' }>): SplitMessage {
  const end = findHeaderEnd(source.bytes);
  const headerLength = end === -1 ? source.bytes.length : end;
  const block = source.bytes.subarray(0, headerLength);
  const fields = parseHeaderFields(block);
  const rewritten = removeBcc(block, fields);
  const bytes = rewritten === block ? source.bytes : Buffer.concat([rewritten, source.bytes.subarray(headerLength)]);
  return { fields, source: { ...source, bytes } };
}

/**
 * The header fields of a source, reading only its header block; the rest is
 * never pulled, and the reading is closed (files and streams it opened are
 * released). For a re-readable source, whose every reading gives the same bytes.
 */
export async function readHeaderFields(source: MessageSource): Promise<HeaderField[]> {
  if (source.kind === 'bytes') return splitBytes(source).fields;
  let head: Buffer = Buffer.alloc(0);
  for await (const chunk of source.chunks) {
    head = head.length ? Buffer.concat([head, chunk]) : chunk;
    const end = findHeaderEnd(head);
    if (end !== -1) return parseHeaderFields(head.subarray(0, end));
    if (head.length > MAX_HEADER_BLOCK) throw new SMTPInvalidArgumentError(`the message header block is larger than ${MAX_HEADER_BLOCK} bytes`);
  }
  return parseHeaderFields(head);
}

/** Reads the header block of a source, and returns the fields and the rewritten source. */
export async function splitMessage(source: MessageSource): Promise<SplitMessage> {
  if (source.kind === 'bytes') return splitBytes(source);
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
  const reopen = source.reopen;
  // A re-readable source stays re-readable: each reading drops the Bcc fields again.
  const again = reopen ? async function* (): AsyncIterable<Buffer> {
    const split = await splitMessage({ kind: 'stream', chunks: reopen() });
    if (split.source.kind === 'stream') yield* split.source.chunks;
  } : undefined;
  return { fields, source: { kind: 'stream', chunks: rest(), ...(again ? { reopen: again } : {}), ...(source.requirements ? { requirements: source.requirements } : {}), ...(source.eightBit ? { eightBit: true } : {}) } };
}
