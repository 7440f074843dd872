// Signing a message on its way to the transaction, in bounded memory.
//
// The signature field must precede the message, but it depends on all of
// it, so the message is read twice:
// - bytes in memory are hashed in place, then sent;
// - re-readable sources (a file, a serializable message with a
//   deterministic stream(), a Blob) are read once to hash and once to send;
// - a one-shot stream is hashed while it is read; up to
//   DKIM_SPOOL_THRESHOLD bytes are kept in memory, past it the message is
//   spooled to a temporary file (mode 0600 in a private directory, removed
//   when the send ends) and sent from there.
// Streams are signed when the transaction's turn comes, before its first
// command, so a failure (no From field, an unreadable file) leaves nothing
// sent and the connection usable.

import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPException, SMTPInvalidArgumentError } from '../errors.js';
import type { MessageSource } from '../message/source.js';
import { ENCODE_WINDOW, type EncoderMode } from '../protocol/data-encoder.js';
import type { ResolvedSignature } from './options.js';
import { MessageHasher } from './signature.js';

/** One-shot streams up to this size are signed in memory; larger ones are spooled to a temporary file. */
export const DKIM_SPOOL_THRESHOLD = 1024 * 1024;

type BytesSource = Extract<MessageSource, { kind: 'bytes' }>;
type StreamSource = Extract<MessageSource, { kind: 'stream' }>;

/** A signed stream and what to release when the send is over (a spool file). */
export interface SignedStream {
  source: MessageSource;
  cleanup(): Promise<void>;
}

/** Bytes in memory: hashed in place; the signature fields are put in front. */
export function signBytes(source: BytesSource, signatures: readonly ResolvedSignature[], mode: EncoderMode): BytesSource {
  const hasher = new MessageHasher(signatures, mode);
  const { bytes } = source;
  // Windows, as the transaction's own encoder uses, keep the scan in cache.
  for (let i = 0; i < bytes.length; i += ENCODE_WINDOW) hasher.update(bytes.subarray(i, i + ENCODE_WINDOW));
  return { ...source, bytes: Buffer.concat([hasher.signatures(), bytes]) };
}

/** A stream: read once now to sign (spooling a one-shot stream), sent from a second reading. */
export async function signStream(source: StreamSource, signatures: readonly ResolvedSignature[], mode: EncoderMode): Promise<SignedStream> {
  try {
    const signed = source.reopen ? await twoPasses(source.chunks, source.reopen, signatures, mode) : await spooled(source.chunks, signatures, mode);
    // The signature fields are ASCII: what the message's bytes were known to hold still holds.
    if (source.eightBit && signed.source.kind === 'stream') signed.source.eightBit = true;
    return signed;
  } catch (error) {
    if (error instanceof SMTPException) throw error;
    throw new SMTPInvalidArgumentError(`DKIM: reading the message to sign it failed (${(error as Error).message}); nothing was sent`, {
      cause: error,
      deliveryStatus: 'not-delivered',
    });
  }
}

/** The first reading (which sendMessage() may have begun, to find the envelope) is hashed; a second one is sent. */
async function twoPasses(first: AsyncIterable<Buffer>, reopen: () => AsyncIterable<Buffer>, signatures: readonly ResolvedSignature[], mode: EncoderMode): Promise<SignedStream> {
  const hasher = new MessageHasher(signatures, mode);
  for await (const chunk of first) hasher.update(chunk);
  const header = hasher.signatures();
  async function* send(): AsyncIterable<Buffer> {
    yield header;
    yield* reopen();
  }
  return { source: { kind: 'stream', chunks: send() }, cleanup: async () => {} };
}

/** Hashes a one-shot stream while keeping it: in memory up to the threshold, in a temporary file past it. */
async function spooled(chunks: AsyncIterable<Buffer>, signatures: readonly ResolvedSignature[], mode: EncoderMode): Promise<SignedStream> {
  const hasher = new MessageHasher(signatures, mode);
  const memory: Buffer[] = [];
  let size = 0;
  let dir: string | undefined;
  let file: FileHandle | undefined;
  // Loaded when a message first spills to disk, not when smtplib is imported.
  let fs: typeof import('node:fs/promises') | undefined;
  const cleanup = async (): Promise<void> => {
    const [f, d] = [file, dir];
    file = undefined;
    dir = undefined;
    await f?.close().catch(() => undefined);
    if (d) await fs!.rm(d, { recursive: true, force: true });
  };
  try {
    for await (const chunk of chunks) {
      hasher.update(chunk);
      if (file) {
        await writeAll(file, chunk);
        continue;
      }
      // A copy: the caller's iterator may reuse its buffer for the next chunk.
      memory.push(Buffer.from(chunk));
      size += chunk.length;
      if (size > DKIM_SPOOL_THRESHOLD) {
        fs ??= await import('node:fs/promises');
        dir = await fs.mkdtemp(join(tmpdir(), 'smtplib-dkim-'));
        file = await fs.open(join(dir, 'message'), 'wx+', 0o600);
        for (const held of memory) await writeAll(file, held);
        memory.length = 0;
      }
    }
    const header = hasher.signatures();
    const spool = file;
    async function* send(): AsyncIterable<Buffer> {
      yield header;
      if (!spool) {
        yield* memory;
        return;
      }
      for (let position = 0; ;) {
        // A fresh buffer per chunk: the transaction may still hold the last one.
        const buffer = Buffer.allocUnsafe(ENCODE_WINDOW);
        const { bytesRead } = await spool.read(buffer, 0, buffer.length, position);
        if (bytesRead === 0) return;
        position += bytesRead;
        yield buffer.subarray(0, bytesRead);
      }
    }
    return { source: { kind: 'stream', chunks: send() }, cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

async function writeAll(file: FileHandle, chunk: Buffer): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await file.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}
