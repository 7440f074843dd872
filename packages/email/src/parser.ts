// parseMessage: bytes in, an EmailMessage tree out, following Python's
// email.feedparser on damaged input: what does not fit is recorded as a
// defect on the part and parsing goes on; nothing is thrown. Parts are views
// of the input (no copies); bodies are decoded only when asked for.
//
// Memory: bytes, strings and streams up to `spillThreshold` (8 MiB) are parsed
// in memory. A larger stream is written to a nameless temporary file (see
// content/parse-file.ts for when its space is freed) and a large { path } is
// read where it is: only the header fields and the tree are held; bodies stay
// ranges of the file, read when asked for (getContent({ stream: true }),
// stream(), asBytes()).

import { readFile, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { type Defect, defect } from './defects.js';
import { EmailError } from './errors.js';
import { type Body, EmailMessage } from './message.js';
import { decodeValue, type HeaderField } from './headers/fields.js';
import { unfold } from './headers/fold.js';
import { parseParams } from './headers/params.js';
import { type Policy, policy as policies } from './policy.js';
import { ParseFile, type Region } from './content/parse-file.js';
import { FileInput, MemoryInput, type ParseInput } from './content/parse-input.js';

export interface ParseOptions {
  policy?: Policy;
  /** Multipart nesting deeper than this is kept as an opaque body (default 40). */
  maxDepth?: number;
  /** Header blocks larger than this end early with a defect (default 1 MiB). */
  maxHeaderBytes?: number;
  /** Header blocks with more fields than this end early with a defect (default 10,000). */
  maxHeaderFields?: number;
  /** Multiparts with more parts than this in all keep the rest as the last part's body, with a defect (default 10,000). */
  maxParts?: number;
  /** Streams and files larger than this are refused with ParseLimitError (default 4 GiB). */
  maxBytes?: number;
  /** Streams and files larger than this are not held in memory: a stream goes to a temporary file, a file is read where it is (default 8 MiB). */
  spillThreshold?: number;
  /** Where a large stream's temporary file is made (default os.tmpdir()). */
  tempDir?: string;
}

/** A parse input was larger than ParseOptions.maxBytes. */
export class ParseLimitError extends EmailError {
  override readonly code = 'ERR_EMAIL_PARSE_LIMIT';
}

/** A defect under a policy with raiseOnDefect. */
export class MessageDefectError extends EmailError {
  override readonly code = 'ERR_EMAIL_DEFECT';
  readonly defect: Defect;
  constructor(d: Defect) {
    super(`${d.kind}: ${d.message}`);
    this.defect = d;
  }
}

/** A message in a file, read where it is when large (it must not change while the message is in use). */
export interface MessagePath {
  path: string;
}

const MiB = 1024 * 1024;

/**
 * Parses a message from bytes or a string (sync), or from a stream or
 * { path } (a Promise). A parse that used a file (a large stream or file)
 * holds it open until dispose() / `await using` on the message, or until the
 * message is garbage-collected.
 */
export function parseMessage(input: string | Uint8Array, options?: ParseOptions): EmailMessage;
export function parseMessage(input: Readable | AsyncIterable<Uint8Array | string> | MessagePath, options?: ParseOptions): Promise<EmailMessage>;
export function parseMessage(input: string | Uint8Array | Readable | AsyncIterable<Uint8Array | string> | MessagePath, options: ParseOptions = {}): EmailMessage | Promise<EmailMessage> {
  if (typeof input === 'string') return parseBytes(Buffer.from(input, 'utf8'), options);
  if (input instanceof Uint8Array) return parseBytes(Buffer.from(input.buffer, input.byteOffset, input.byteLength), options);
  if (typeof (input as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') return parseStream(input as AsyncIterable<Uint8Array | string>, options);
  if (typeof (input as MessagePath).path === 'string') return parsePath((input as MessagePath).path, options);
  throw new TypeError('parseMessage: input must be a string, bytes, a stream (AsyncIterable of bytes) or { path }');
}

function limits(options: ParseOptions): { maxBytes: number; threshold: number; tooLarge: () => ParseLimitError } {
  const maxBytes = options.maxBytes ?? 4 * 1024 * MiB;
  return {
    maxBytes,
    threshold: Math.min(maxBytes, options.spillThreshold ?? 8 * MiB),
    tooLarge: () => new ParseLimitError(`the message is larger than ${maxBytes} bytes; raise ParseOptions.maxBytes to parse it`),
  };
}

async function parseStream(input: AsyncIterable<Uint8Array | string>, options: ParseOptions): Promise<EmailMessage> {
  const { maxBytes, threshold, tooLarge } = limits(options);
  const iterator = input[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for (;;) {
      const next = await iterator.next();
      if (next.done) return parseBytes(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), options);
      const chunk = next.value;
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      size += buffer.length;
      if (size > maxBytes) throw tooLarge();
      chunks.push(buffer);
      if (size > threshold) return parseFile(await ParseFile.spill(chunks, iterator, { dir: options.tempDir, limit: maxBytes, onLimit: tooLarge }), options);
    }
  } catch (error) {
    await iterator.return?.();
    throw error;
  }
}

async function parsePath(path: string, options: ParseOptions): Promise<EmailMessage> {
  const { maxBytes, threshold, tooLarge } = limits(options);
  const { size } = await stat(path);
  if (size > maxBytes) throw tooLarge();
  if (size <= threshold) return parseBytes(await readFile(path), options);
  return parseFile(ParseFile.openExisting(path), options);
}

interface Context {
  src: ParseInput;
  policy: Policy;
  maxDepth: number;
  maxHeaderBytes: number;
  maxHeaderFields: number;
  maxParts: number;
  parts: number;
}

function context(src: ParseInput, options: ParseOptions): Context {
  return {
    src,
    policy: options.policy ?? policies.default,
    maxDepth: options.maxDepth ?? 40,
    maxHeaderBytes: options.maxHeaderBytes ?? MiB,
    maxHeaderFields: options.maxHeaderFields ?? 10_000,
    maxParts: options.maxParts ?? 10_000,
    parts: 0,
  };
}

function parseBytes(buf: Buffer, options: ParseOptions): EmailMessage {
  return parsePart(context(new MemoryInput(buf), options), 0, buf.length, 0, null);
}

function parseFile(file: ParseFile, options: ParseOptions): EmailMessage {
  try {
    return parsePart(context(new FileInput(file), options), 0, file.size, 0, null, file);
  } catch (error) {
    file.dispose(); // raiseOnDefect
    throw error;
  }
}

const LF = 0x0a;
const LF_BYTES = Buffer.from([LF]);

/** End of the line starting at `pos` (index just past its LF, or `end`). */
function lineEnd(src: ParseInput, pos: number, end: number): number {
  const lf = src.indexOf(LF_BYTES, pos, end);
  return lf === -1 ? end : lf + 1;
}

// Python's headerRE: a field name (possibly empty) and a colon, or a continuation.
const FIELD_START = /^[\x21-\x39\x3b-\x7e]*:/;

function parsePart(ctx: Context, start: number, end: number, depth: number, parentType: string | null, file?: ParseFile): EmailMessage {
  const { src } = ctx;
  ctx.parts++;
  const defects: Defect[] = [];
  const note = (d: Defect): void => {
    if (ctx.policy.raiseOnDefect) throw new MessageDefectError(d);
    defects.push(d);
  };
  const headers: HeaderField[] = [];
  let pos = start;
  let bodyStart = end;
  let current: { name: string; start: number } | undefined;
  const finishField = (fieldEnd: number): void => {
    if (!current) return;
    const raw = src.bytes(current.start, fieldEnd);
    const text = raw.toString('utf8');
    const colon = text.indexOf(':');
    // Problems inside a value (unknown charset in an encoded word) stay with the
    // value, as Python keeps them on the header object rather than msg.defects.
    const { value } = decodeValue(current.name, unfold(text.slice(colon + 1)));
    headers.push({ name: current.name, value, raw });
    current = undefined;
  };
  let first = true;
  for (;;) {
    if (pos >= end) { bodyStart = end; break; }
    const next = lineEnd(src, pos, end);
    if (pos - start > ctx.maxHeaderBytes || headers.length >= ctx.maxHeaderFields) {
      finishField(pos);
      note(defect('HeaderTooLargeDefect', `the header block is larger than ${ctx.maxHeaderBytes} bytes or ${ctx.maxHeaderFields} fields; the rest is read as body`));
      bodyStart = pos;
      break;
    }
    const first2 = src.at(pos);
    if (first2 === LF || (first2 === 0x0d && (src.at(pos + 1) === LF || pos + 1 === end))) {
      finishField(pos);
      bodyStart = next;
      break;
    }
    if (first2 === 0x20 || first2 === 0x09) {
      if (current === undefined) {
        note(defect(first ? 'FirstHeaderLineIsContinuationDefect' : 'InvalidHeaderDefect', 'a continuation line with no field before it was dropped'));
      }
      pos = next;
      first = false;
      continue;
    }
    const line = src.bytes(pos, Math.min(next, pos + 1000)).toString('latin1');
    if (line.startsWith('From ') && !FIELD_START.test(line)) {
      if (!first) note(defect('MisplacedEnvelopeHeaderDefect', 'a "From " envelope line inside the header was skipped'));
      finishField(pos);
      pos = next;
      first = false;
      continue;
    }
    const match = FIELD_START.exec(line);
    if (!match) {
      finishField(pos);
      note(defect('MissingHeaderBodySeparatorDefect', 'a line that is not a header field ends the header; it starts the body'));
      bodyStart = pos;
      break;
    }
    finishField(pos);
    current = { name: line.slice(0, match[0].length - 1).trimEnd(), start: pos };
    pos = next;
    first = false;
  }
  if (current) finishField(Math.min(pos, end));

  const raw = src.region(start, end);
  const probe = EmailMessage.fromParsed({ policy: ctx.policy, headers, body: { kind: 'empty' }, raw, defects: [] });
  const contentTypeHeader = headers.find((f) => f.name.toLowerCase() === 'content-type')?.value;
  const type = contentTypeHeader === undefined
    ? (parentType === 'multipart/digest' ? 'message/rfc822' : 'text/plain')
    : probe.getContentType();
  let body: Body = { kind: 'raw', data: src.region(bodyStart, end) };
  const cte = (headers.find((f) => f.name.toLowerCase() === 'content-transfer-encoding')?.value ?? '7bit').trim().toLowerCase();

  if (type.startsWith('multipart/')) {
    const boundary = contentTypeHeader === undefined ? undefined : parseParams(contentTypeHeader).params.get('boundary');
    if (!['7bit', '8bit', 'binary'].includes(cte)) note(defect('InvalidMultipartContentTransferEncodingDefect', `a multipart with Content-Transfer-Encoding ${cte}`));
    if (!boundary) {
      note(defect('NoBoundaryInMultipartDefect', 'a multipart without a boundary parameter is kept as one body'));
      note(defect('MultipartInvariantViolationDefect', 'a multipart content type with a body that is not parts'));
    } else if (depth >= ctx.maxDepth) {
      note(defect('NestingTooDeepDefect', `multiparts nested deeper than ${ctx.maxDepth} are kept as one body`));
    } else {
      const parsed = parseMultipart(ctx, boundary, bodyStart, end, depth, type, note);
      if (parsed) body = parsed;
      else note(defect('MultipartInvariantViolationDefect', 'a multipart content type with a body that is not parts'));
    }
  } else if (type.startsWith('message/') && type !== 'message/delivery-status' && ['7bit', '8bit', 'binary'].includes(cte)) {
    if (depth >= ctx.maxDepth) note(defect('NestingTooDeepDefect', `messages nested deeper than ${ctx.maxDepth} are kept as one body`));
    else body = { kind: 'message', message: parsePart(ctx, bodyStart, end, depth + 1, type) };
  }
  return EmailMessage.fromParsed({ policy: ctx.policy, headers, body, raw, defects, ...(file ? { file } : {}) });
}

/** The length of the line end just before `pos` (CRLF 2, LF 1, none 0). */
function eolBefore(src: ParseInput, pos: number, floor: number): number {
  if (pos - 1 >= floor && src.at(pos - 1) === LF) return pos - 2 >= floor && src.at(pos - 2) === 0x0d ? 2 : 1;
  return 0;
}

interface Delimiter {
  /** Start of the `--boundary` text. */
  at: number;
  /** Just past `--boundary` (and `--` for the close delimiter). */
  after: number;
  /** Just past the delimiter line's end. */
  next: number;
  close: boolean;
}

/** The next delimiter line of `boundary` at or after `from`: at a line start, followed only by white space. */
function findDelimiter(src: ParseInput, marker: Buffer, from: number, floor: number, end: number): Delimiter | undefined {
  let pos = from;
  for (;;) {
    const at = src.indexOf(marker, pos, end);
    if (at === -1) return undefined;
    pos = at + 1;
    if (at !== floor && src.at(at - 1) !== LF) continue;
    let after = at + marker.length;
    const close = src.at(after) === 0x2d && src.at(after + 1) === 0x2d && after + 2 <= end;
    if (close) after += 2;
    let i = after;
    while (i < end && (src.at(i) === 0x20 || src.at(i) === 0x09)) i++;
    if (i < end && src.at(i) !== 0x0d && src.at(i) !== LF) continue;
    if (src.at(i) === 0x0d && i + 1 < end && src.at(i + 1) !== LF) continue;
    return { at, after, next: lineEnd(src, i, end), close };
  }
}

function parseMultipart(
  ctx: Context,
  boundary: string,
  bodyStart: number,
  end: number,
  depth: number,
  type: string,
  note: (d: Defect) => void,
): Body | undefined {
  const { src } = ctx;
  const marker = Buffer.from(`--${boundary}`, 'latin1');
  const firstDelimiter = findDelimiter(src, marker, bodyStart, bodyStart, end);
  if (!firstDelimiter) {
    note(defect('StartBoundaryNotFoundDefect', `the boundary ${JSON.stringify(boundary)} never appears; the body is kept whole`));
    return undefined;
  }
  const preamble = firstDelimiter.at === bodyStart ? null : src.region(bodyStart, firstDelimiter.at - eolBefore(src, firstDelimiter.at, bodyStart));
  const parts: EmailMessage[] = [];
  let delimiter = firstDelimiter;
  let epilogue: Region | null = null;
  let closed = false;
  while (!delimiter.close) {
    const partStart = delimiter.next;
    let next = findDelimiter(src, marker, partStart, partStart, end);
    if (next && ctx.parts >= ctx.maxParts) {
      note(defect('TooManyPartsDefect', `the message has more than ${ctx.maxParts} parts; the rest is kept as the body of the last one`));
      next = undefined;
    }
    const partEnd = next ? next.at - eolBefore(src, next.at, partStart) : end;
    parts.push(parsePart(ctx, partStart, Math.max(partStart, partEnd), depth + 1, type));
    if (!next) break;
    delimiter = next;
  }
  if (delimiter.close) {
    closed = true;
    epilogue = src.region(delimiter.after, end);
  }
  if (!closed) note(defect('CloseBoundaryNotFoundDefect', `the closing boundary "--${boundary}--" is missing`));
  if (parts.length === 0 && firstDelimiter.close) note(defect('MultipartInvariantViolationDefect', 'a multipart with no parts'));
  return { kind: 'multipart', parts, preamble, epilogue };
}
