// A spooled message's body for its attempt. data/<id> is the record written at
// enqueue (one line of JSON), a newline, then the message bytes. A body up to
// BODY_IN_MEMORY_MAX is read into memory with the record - for a small message
// one read of the file's first block holds both - and given to the pool as a
// Buffer. A larger one is never read here: the pool gets `{ path, start }` and
// reads the file while it sends, again for each retry, so what a worker holds
// per message is bounded whatever the message's size (a 2 GB message, past a
// Buffer's limit, is delivered like any other).
//
// A file is not scanned ahead of MAIL, so whether its bytes need BODY=8BITMIME
// is what enqueue saw when it wrote them (the record's `eightBit`, set for a
// body past BODY_IN_MEMORY_MAX); a body in memory is scanned by the core itself.

import fs from 'node:fs';
import { isAscii } from 'node:buffer';
import type { MessageBody } from '../store.js';
import type { StoredMessage } from '../types.js';

/**
 * The largest body given to the pool in memory: a worker then holds at most
 * its concurrency times this (40 x 256 KiB = 10 MiB) in bodies. The same bound
 * as the spool's synchronous reads (durable.ts SYNC_MAX): such a body costs a
 * few sync reads, where a file source costs the pool an open and reads on the
 * threadpool per attempt. The bench's 1 KB messages are far below it.
 */
export const BODY_IN_MEMORY_MAX = 256 * 1024;

/** What an attempt sends: the bytes in memory, or the part of data/<id> after the record line. */
export type SpooledBody = MessageBody;

/** Where the first block of data/<id> is read (sync calls only: never shared across an await). */
const scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * data/<id>'s record and its body for an attempt. Reads at most the record
 * line and BODY_IN_MEMORY_MAX bytes. Throws ENOENT when the file is gone.
 */
export async function readDataFile(path: string): Promise<{ record: StoredMessage; body: SpooledBody }> {
  const fd = fs.openSync(path, 'r');
  let line: Buffer;
  let record: StoredMessage;
  try {
    const first = fs.readSync(fd, scratch, 0, scratch.length, 0);
    const end = scratch.subarray(0, first).indexOf(0x0a);
    if (first < scratch.length && end >= 0) {
      // The whole file is in the block (a short read of a regular file is its end): a small message.
      record = parse(scratch.subarray(0, end));
      return { record, body: Buffer.from(scratch.subarray(end + 1, first)) };
    }
    line = end >= 0 ? Buffer.from(scratch.subarray(0, end)) : recordLine(fd, first);
    record = parse(line);
    const start = line.length + 1;
    if (record.size <= BODY_IN_MEMORY_MAX) {
      const body = Buffer.allocUnsafe(record.size);
      let done = 0;
      for (let n; done < body.length && (n = fs.readSync(fd, body, done, body.length - done, start + done)) > 0; ) done += n;
      return { record, body: done === body.length ? body : body.subarray(0, done) };
    }
  } finally {
    fs.closeSync(fd);
  }
  const start = line.length + 1;
  // A record written before enqueue recorded it (an older spool): learn it from the file, in bounded memory.
  const eightBit = record.eightBit ?? (await fileHasEightBit(path, start));
  return { record, body: { path, start, eightBit } };
}

/**
 * data/<id>'s record alone, for a reader that does not send it (get, list, stats): its first line,
 * the body not read past the first block. Throws ENOENT when the file is gone.
 */
export function readRecordLine(path: string): StoredMessage {
  const fd = fs.openSync(path, 'r');
  try {
    const first = fs.readSync(fd, scratch, 0, scratch.length, 0);
    const end = scratch.subarray(0, first).indexOf(0x0a);
    return parse(end >= 0 ? scratch.subarray(0, end) : recordLine(fd, first));
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether `bytes` hold a byte over 127 (the rule the core applies to a body in memory). */
export function hasEightBit(bytes: Uint8Array): boolean {
  return !isAscii(bytes);
}

/**
 * Passes `chunks` through, noting in `seen.eightBit` whether any byte is over
 * 127 (enqueueStream writes every byte once: it learns it on the way).
 */
export async function* noteEightBit(chunks: AsyncIterable<Uint8Array>, seen: { eightBit: boolean }): AsyncIterable<Uint8Array> {
  for await (const chunk of chunks) {
    if (!seen.eightBit && hasEightBit(chunk)) seen.eightBit = true;
    yield chunk;
  }
}

async function fileHasEightBit(path: string, start: number): Promise<boolean> {
  for await (const chunk of fs.createReadStream(path, { start, highWaterMark: 64 * 1024 })) if (hasEightBit(chunk as Buffer)) return true;
  return false;
}

/** A record line longer than the first block (many recipients, large metadata): read on until its newline. */
function recordLine(fd: number, first: number): Buffer {
  const blocks = [Buffer.from(scratch.subarray(0, first))];
  for (let position = first; ; ) {
    const block = Buffer.allocUnsafe(64 * 1024);
    const read = fs.readSync(fd, block, 0, block.length, position);
    const end = block.subarray(0, read).indexOf(0x0a);
    if (end >= 0 || read === 0) {
      blocks.push(block.subarray(0, end >= 0 ? end : read));
      return Buffer.concat(blocks);
    }
    blocks.push(block.subarray(0, read));
    position += read;
  }
}

function parse(line: Buffer): StoredMessage {
  return JSON.parse(line.toString('utf8')) as StoredMessage;
}
