// Checks what enqueue() is given before anything is written: a message that
// could never be sent is refused at once, not after five days of retries.

import { QueueError } from './errors.js';
import type { EnqueueInput, EnqueueOptions } from './types.js';

const FORBIDDEN = /[\r\n\0]/;

export interface ValidEnqueue {
  from: string;
  to: string[];
  body: Buffer;
  priority: number;
  notBefore: number;
  metadata: Record<string, unknown>;
}

export function validateEnqueue(input: EnqueueInput, options: EnqueueOptions): ValidEnqueue {
  const envelope = validateEnvelope(input, options);
  const message = input.message;
  if (typeof message !== 'string' && !(message instanceof Uint8Array)) throw new QueueError('ERR_QUEUE_INVALID', '`message` must be a string or bytes (the whole RFC 5322 message)');
  const body = typeof message === 'string' ? Buffer.from(message, 'utf8') : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  if (body.length === 0) throw emptyMessage();
  return { ...envelope, body };
}

/** The message was empty (a streamed message is only known to be once its stream has ended). */
export function emptyMessage(): QueueError {
  return new QueueError('ERR_QUEUE_INVALID', 'the message is empty');
}

/** Everything enqueue() is given but the message itself (a streamed message is checked as it is stored). */
export function validateEnvelope(input: Omit<EnqueueInput, 'message'>, options: EnqueueOptions): Omit<ValidEnqueue, 'body'> {
  const invalid = (text: string): QueueError => new QueueError('ERR_QUEUE_INVALID', text);
  if (typeof input?.from !== 'string') throw invalid('enqueue needs `from`, the envelope sender (a string; "" for the null sender)');
  const to = typeof input.to === 'string' ? [input.to] : Array.isArray(input.to) ? [...input.to] : [];
  if (to.length === 0) throw invalid('enqueue needs at least one recipient in `to`');
  for (const address of [input.from, ...to]) {
    if (typeof address !== 'string') throw invalid('every address must be a string');
    if (FORBIDDEN.test(address)) throw invalid(`the address ${JSON.stringify(address)} contains CR, LF or NUL; it was not queued`);
  }
  for (const address of to) if (address.trim() === '') throw invalid('an empty recipient address was given');
  if (new Set(to.map((a) => a.toLowerCase())).size !== to.length) throw invalid('a recipient is listed twice; each gets the message once');
  const priority = options.priority ?? 0;
  if (!Number.isInteger(priority) || priority < -9 || priority > 9) throw invalid(`priority must be an integer from -9 to 9, got ${priority}`);
  const notBeforeRaw = options.notBefore instanceof Date ? options.notBefore.getTime() : options.notBefore ?? 0;
  if (!Number.isFinite(notBeforeRaw)) throw invalid('notBefore must be a Date or a time in ms since the epoch');
  if (options.idempotencyKey !== undefined && (typeof options.idempotencyKey !== 'string' || options.idempotencyKey.length === 0)) {
    throw invalid('idempotencyKey must be a non-empty string');
  }
  const metadata = options.metadata ?? {};
  try {
    JSON.stringify(metadata);
  } catch (error) {
    throw new QueueError('ERR_QUEUE_INVALID', 'metadata must be JSON-serialisable', { cause: error });
  }
  return { from: input.from, to, priority, notBefore: notBeforeRaw, metadata };
}
