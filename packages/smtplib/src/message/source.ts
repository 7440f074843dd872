// The accepted shapes of a message body, reduced to two: bytes in memory, or
// an async sequence of byte chunks read on demand (with back-pressure: the
// next chunk is pulled only after the previous one was written).

import { createReadStream, ReadStream, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { SMTPInvalidArgumentError } from '../errors.js';

/** What sendmail() and data() accept as a message. */
export type MessageInput = string | Uint8Array | Readable | AsyncIterable<Uint8Array | string> | MessageFile | SerializableMessage;

/** A message in a file, read while it is sent (and read twice when it is DKIM-signed). */
export interface MessageFile {
  path: string;
  /**
   * The offset of the message's first byte: the bytes from `start` to the end
   * of the file are sent (a file holding a record before the message, such
   * as a queue's spool file). Default 0.
   */
  start?: number;
  /**
   * Whether those bytes hold one over 127, when whoever wrote the file knows
   * (it saw every byte). A file is not scanned ahead of MAIL, so without this
   * nothing is declared; with `true` BODY=8BITMIME is declared as for bytes in
   * memory (when the server offers 8BITMIME).
   */
  eightBit?: boolean;
}

/**
 * A message that serializes itself, such as smtplib-email's EmailMessage or a
 * Blob. Each stream() call must produce the same bytes: DKIM signing reads it
 * twice instead of holding it.
 */
export interface SerializableMessage {
  stream(): AsyncIterable<Uint8Array | string>;
  /** What the written bytes need from the server (smtplib-email's EmailMessage says); sendMessage declares it. */
  smtpRequirements?(): SmtpRequirements;
}

/** SMTPUTF8 for raw UTF-8 header fields (RFC 6531), BODY=8BITMIME for 8-bit content (RFC 6152). */
export interface SmtpRequirements {
  smtputf8: boolean;
  eightBitMime: boolean;
}

export type MessageSource =
  /**
   * Bytes in memory. Whether a byte is over 127 (BODY=8BITMIME) is not kept
   * here: the transaction's encoder finds it in the same scan as the size and
   * the line ends.
   */
  | { kind: 'bytes'; bytes: Buffer; fromString: boolean }
  | {
      kind: 'stream';
      chunks: AsyncIterable<Buffer>;
      /** Re-readable sources: a fresh reading of the same bytes (chunks is the first). */
      reopen?: () => AsyncIterable<Buffer>;
      /** Declared by a SerializableMessage: what its bytes need (a stream cannot be scanned ahead). */
      requirements?: SmtpRequirements;
      /** The length in bytes when it is known before reading (a whole file), for SIZE= (RFC 1870). */
      size?: number;
      /** Known before reading (MessageFile.eightBit): a byte over 127, decided like bytes in memory. */
      eightBit?: boolean;
    };

export function toMessageSource(message: MessageInput): MessageSource {
  if (typeof message === 'string') {
    return { kind: 'bytes', bytes: Buffer.from(message, 'utf8'), fromString: true };
  }
  if (message instanceof Uint8Array) {
    const bytes = message instanceof Buffer ? message : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
    return { kind: 'bytes', bytes, fromString: false };
  }
  if (message && typeof (message as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    const size = message instanceof ReadStream ? readStreamSize(message) : undefined;
    return { kind: 'stream', chunks: asBuffers(message as AsyncIterable<Uint8Array | string>), ...(size !== undefined ? { size } : {}) };
  }
  if (message && typeof (message as MessageFile).path === 'string') {
    const { path, start = 0, eightBit } = message as MessageFile;
    if (!Number.isSafeInteger(start) || start < 0) throw new SMTPInvalidArgumentError(`{ path, start }: start must be a byte offset (an integer >= 0), not ${String(start)}`);
    // Lazy: the file is opened only when the body is pulled.
    const read = async function* (): AsyncIterable<Buffer> {
      yield* asBuffers(createReadStream(path, { start, highWaterMark: 64 * 1024 }));
    };
    const whole = fileSize(path);
    if (whole !== undefined && start > whole) throw new SMTPInvalidArgumentError(`{ path, start }: start ${start} is past the end of ${path} (${whole} bytes)`);
    const size = whole === undefined ? undefined : whole - start;
    return { kind: 'stream', chunks: read(), reopen: read, ...(size !== undefined ? { size } : {}), ...(eightBit ? { eightBit } : {}) };
  }
  if (message && typeof (message as SerializableMessage).stream === 'function') {
    const serializable = message as SerializableMessage;
    // Lazy: stream() is called only when the body is pulled.
    const read = async function* (): AsyncIterable<Buffer> {
      yield* asBuffers(serializable.stream());
    };
    const requirements = serializable.smtpRequirements?.();
    return { kind: 'stream', chunks: read(), reopen: read, ...(requirements ? { requirements } : {}) };
  }
  throw new SMTPInvalidArgumentError('the message must be a string, a Uint8Array, a Readable, an AsyncIterable of bytes, { path } of a file, or an object with stream()');
}

/** The size of a regular file, or undefined. */
function fileSize(path: string): number | undefined {
  try {
    const stat = statSync(path);
    return stat.isFile() ? stat.size : undefined;
  } catch {
    return undefined;
  }
}

/** The size of an fs.ReadStream over a whole file not read yet (no start/end), else undefined. */
function readStreamSize(stream: ReadStream): number | undefined {
  const range = stream as ReadStream & { start?: number; end?: number };
  if (typeof stream.path !== 'string' || stream.bytesRead !== 0 || range.start !== undefined) return undefined;
  if (range.end !== undefined && range.end !== Infinity) return undefined;
  return fileSize(stream.path);
}

async function* asBuffers(source: AsyncIterable<Uint8Array | string>): AsyncIterable<Buffer> {
  for await (const chunk of source) {
    if (typeof chunk === 'string') yield Buffer.from(chunk, 'utf8');
    else if (chunk instanceof Buffer) yield chunk;
    else if (chunk instanceof Uint8Array) yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    else throw new SMTPInvalidArgumentError('message stream chunks must be bytes or strings');
  }
}

/** Reads a whole source into memory (used only where the caller's API requires it). */
export async function readAll(source: MessageSource, limit = Infinity): Promise<Buffer> {
  if (source.kind === 'bytes') return source.bytes;
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of source.chunks) {
    size += chunk.length;
    if (size > limit) throw new SMTPInvalidArgumentError(`message is larger than ${limit} bytes`);
    parts.push(chunk);
  }
  return Buffer.concat(parts, size);
}
