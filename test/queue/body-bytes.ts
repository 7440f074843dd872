// The bytes of a store's body(): in memory, or read from the file it names
// (the spool gives a body past 256 KiB as `{ path, start }` of data/<id>).
import { readFile } from 'node:fs/promises';
import type { MessageBody } from 'smtplib-queue';

export async function bodyBytes(body: MessageBody): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  return (await readFile(body.path)).subarray(body.start ?? 0);
}
