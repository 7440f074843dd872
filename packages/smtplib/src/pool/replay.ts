// Which messages the pool can send more than once, and how each attempt gets
// a fresh reading. The rule of what can be read again is the core's
// (toMessageSource: bytes and strings, `{ path }` of a file, an object whose
// stream() returns a fresh stream each call); a function returning a
// MessageInput is called once per attempt. A Readable or an async iterable
// given directly can be read only once: such a send is never retried, and
// when a retry would have been needed it fails 'not-delivered' saying so.

import type { MessageInput } from '../message/source.js';
import { toMessageSource } from '../message/source.js';
import { SMTPException, SMTPInvalidArgumentError } from '../errors.js';

export type PoolMessage = MessageInput | (() => MessageInput);

export interface Replay {
  /** Each attempt can read the same bytes again. */
  readonly replayable: boolean;
  /** The message for one attempt (a fresh reading when replayable). */
  take(): MessageInput;
}

/** Checks the message's shape now (before anything is queued) and says how to read it per attempt. */
export function replayOf(message: PoolMessage): Replay {
  if (typeof message === 'function') return { replayable: true, take: message };
  const source = toMessageSource(message);
  if (source.kind === 'bytes' || source.reopen) return { replayable: true, take: () => message };
  let taken = false;
  return {
    replayable: false,
    take() {
      if (taken) throw new SMTPInvalidArgumentError(`${ONE_SHOT}; it cannot be sent twice. ${ADVICE}`, { deliveryStatus: 'not-delivered' });
      taken = true;
      return message;
    },
  };
}

const ONE_SHOT = 'the message was given as a one-shot stream (a Readable or an async iterable), which can be read only once';
const ADVICE = 'To let the pool retry it, pass { path } of a file, a function that returns a fresh stream, or an object whose stream() returns a fresh stream on each call';

/**
 * The error of a send that would have been retried had its message been
 * replayable: same class and fields, the reason and the remedy added to the
 * message and as `hint`. Nothing of it was delivered unless the error
 * already says 'unknown' (retryUnknown asked for a resend that cannot be made).
 */
export function notReplayable(error: unknown): unknown {
  if (!(error instanceof SMTPException)) return error;
  const copy = Object.create(Object.getPrototypeOf(error)) as SMTPException;
  for (const key of Reflect.ownKeys(error)) Object.defineProperty(copy, key, Object.getOwnPropertyDescriptor(error, key)!);
  Object.defineProperty(copy, 'message', {
    value: `${error.message}; not retried: ${ONE_SHOT}`,
    enumerable: false,
    writable: true,
    configurable: true,
  });
  copy.hint = `${ADVICE}.`;
  copy.deliveryStatus ??= 'not-delivered';
  return copy;
}
