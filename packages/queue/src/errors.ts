// Typed errors with stable codes and a sentence a person can act on.

export type QueueErrorCode =
  | 'ERR_QUEUE_NOT_FOUND'
  | 'ERR_QUEUE_ACTIVE'
  | 'ERR_QUEUE_CLAIM_LOST'
  | 'ERR_QUEUE_INVALID'
  | 'ERR_QUEUE_WAIT_TIMEOUT'
  | 'ERR_QUEUE_CLOSED'
  | 'ERR_QUEUE_STORE'
  | 'ERR_QUEUE_LAYOUT';

export class QueueError extends Error {
  readonly code: QueueErrorCode;
  /** The message concerned, when there is one. */
  readonly messageId?: string;

  constructor(code: QueueErrorCode, message: string, options: { cause?: unknown; messageId?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'QueueError';
    this.code = code;
    if (options.messageId !== undefined) this.messageId = options.messageId;
  }
}

const ID = /^[0-9a-z]{8,40}$/;

/** Whether `id` is a message id (checkId's rule, without the error: for names read from a directory). */
export function isId(id: string): boolean {
  return typeof id === 'string' && ID.test(id);
}

/** Message ids become file names and Redis keys: only [0-9a-z]. */
export function checkId(id: string): string {
  if (!isId(id)) {
    throw new QueueError('ERR_QUEUE_INVALID', `not a queue id: ${JSON.stringify(String(id)).slice(0, 60)} (ids are 8 to 40 characters of 0-9 and a-z, as printed by enqueue and \`smtplib queue list\`)`);
  }
  return id;
}
