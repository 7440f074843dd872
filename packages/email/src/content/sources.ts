// Where an attachment's bytes come from. In-memory bytes, a file read while
// the message is written (never held whole), a stream or a function that
// opens one. A Readable can be written once; a path or a function can be
// written any number of times (what DKIM signing, which reads twice, needs).

import { createReadStream, readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { ContentUnavailableError } from '../errors.js';

export type StreamFactory = () => Readable | AsyncIterable<Uint8Array>;

/** What addAttachment / setContent accept as binary content besides bytes. */
export type BinarySourceInput =
  | Uint8Array
  | { path: string }
  | URL
  | Readable
  | { stream: StreamFactory };

export type BinarySource =
  | { kind: 'bytes'; bytes: Buffer }
  | { kind: 'file'; path: string; start?: number; end?: number }
  | { kind: 'stream'; stream: AsyncIterable<Uint8Array>; used: boolean }
  | { kind: 'factory'; open: StreamFactory };

export function isBinarySourceInput(value: unknown): value is BinarySourceInput {
  if (value instanceof Uint8Array || value instanceof URL || value instanceof Readable) return true;
  if (typeof value !== 'object' || value === null) return false;
  return typeof (value as { path?: unknown }).path === 'string' || typeof (value as { stream?: unknown }).stream === 'function';
}

export function toBinarySource(input: BinarySourceInput): BinarySource {
  if (input instanceof Uint8Array) return { kind: 'bytes', bytes: Buffer.from(input.buffer, input.byteOffset, input.byteLength) };
  if (input instanceof URL) return { kind: 'file', path: input.pathname };
  if (input instanceof Readable) return { kind: 'stream', stream: input, used: false };
  if ('path' in input) return { kind: 'file', path: input.path };
  return { kind: 'factory', open: input.stream };
}

/** The chunks of a source, read on demand. */
export async function* readSource(source: BinarySource): AsyncIterable<Uint8Array> {
  switch (source.kind) {
    case 'bytes':
      yield source.bytes;
      return;
    case 'file':
      yield* createReadStream(source.path, {
        highWaterMark: 64 * 1024,
        ...(source.start === undefined ? {} : { start: source.start }),
        ...(source.end === undefined ? {} : { end: source.end - 1 }),
      }) as AsyncIterable<Buffer>;
      return;
    case 'stream':
      if (source.used) throw new ContentUnavailableError('this attachment came from a Readable, which was already read; pass { stream: () => createReadStream(...) } or { path } to write a message more than once');
      source.used = true;
      yield* source.stream;
      return;
    case 'factory':
      yield* source.open();
  }
}

/**
 * The chunks of a source for a consumer that is done with each chunk before
 * it asks for the next (the base64 writer, which copies what it keeps). A
 * file is read in pieces of `chunkSize` bytes into two Buffers used in turn
 * for the whole file: while the consumer encodes one, the next read fills
 * the other (it starts where the last one ended, so a short read leaves no
 * gap). A file of any size costs two allocations and no fresh memory per
 * read. Other sources are read as by readSource.
 */
export async function* readSourceReusing(source: BinarySource, chunkSize: number): AsyncIterable<Uint8Array> {
  if (source.kind !== 'file') {
    yield* readSource(source);
    return;
  }
  const file = await open(source.path, 'r');
  const buffers = [Buffer.allocUnsafe(chunkSize), Buffer.allocUnsafe(chunkSize)] as const;
  const end = source.end ?? Number.POSITIVE_INFINITY;
  const readAt = (buffer: Buffer, position: number): { position: number; done: Promise<number> } => {
    const done = file.read(buffer, 0, Math.min(chunkSize, end - position), position).then((r) => r.bytesRead);
    // Handled here so that a read failing while the consumer holds the last chunk is not an unhandled rejection; it is thrown below.
    done.catch(() => {});
    return { position, done };
  };
  let which = 0;
  let next: { position: number; done: Promise<number> } | undefined = readAt(buffers[0], source.start ?? 0);
  try {
    while (next) {
      const bytesRead = await next.done;
      if (bytesRead === 0) return;
      const chunk = buffers[which]!.subarray(0, bytesRead);
      const position: number = next.position + bytesRead;
      which ^= 1;
      next = position < end ? readAt(buffers[which]!, position) : undefined;
      yield chunk;
    }
  } finally {
    // A read still in flight writes into our Buffer and uses the descriptor: let it finish first.
    if (next) await next.done.catch(() => {});
    await file.close();
  }
}

/** The bytes of a source in memory, when that can be done without consuming it. */
export function sourceBytesSync(source: BinarySource): Buffer {
  if (source.kind === 'bytes') return source.bytes;
  if (source.kind === 'file') {
    const all = readFileSync(source.path);
    return all.subarray(source.start ?? 0, source.end ?? all.length);
  }
  throw new ContentUnavailableError('this part\'s content is a stream; read it with contentStream() or asBytes()');
}

/** The size of a source when known without reading it. */
export function sourceSize(source: BinarySource): number | undefined {
  if (source.kind === 'bytes') return source.bytes.length;
  if (source.kind === 'file') {
    if (source.end !== undefined) return source.end - (source.start ?? 0);
    try { return statSync(source.path).size - (source.start ?? 0); } catch { return undefined; }
  }
  return undefined;
}
