// The options every network call takes last ({ signal }), and how they are
// told apart from the optional arguments before them. smtplib users write
// `sendmail(from, to, msg, { signal })` and mean the call, not MAIL options:
// an object made only of call-option keys is taken as call options wherever
// an optional argument may stand, and MAIL/RCPT option objects are checked
// for unknown keys, so a misplaced option is an error instead of a no-op.
// SMTP.sendmail() and SMTPPool.sendmail() share this shape.

import { SMTPInvalidArgumentError } from '../errors.js';
import { assertKnownKeys } from '../known-keys.js';

/** Options accepted by every network call, as its last argument. */
export interface CallOptions {
  /** Cancels the call: before anything is written it leaves the connection usable; later it destroys it (a reply is owed). */
  signal?: AbortSignal | undefined;
}

/** The trailing options of `sendmail(from, to, msg, mailOptions?, rcptOptions?, options?)` (SMTP and SMTPPool). */
export type SendmailCallOptions = CallOptions;

/** The keys a call-options object may have. */
export const CALL_OPTION_KEYS: readonly string[] = Object.freeze(['signal']);

/** True for a plain object whose keys are all call-option keys (and at least one). */
export function isCallOptions(value: unknown): value is CallOptions {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length > 0 && keys.every((key) => CALL_OPTION_KEYS.includes(key));
}

/** Checks a call-options object: known keys only, and `signal` an AbortSignal. */
export function checkCallOptions(value: unknown, where: string): CallOptions {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new SMTPInvalidArgumentError(`${where}: the call options must be an object such as { signal }`);
  }
  assertKnownKeys(value as Record<string, unknown>, CALL_OPTION_KEYS, `${where} call options`);
  const signal = (value as CallOptions).signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new SMTPInvalidArgumentError(`${where}: signal must be an AbortSignal`);
  }
  return value as CallOptions;
}

/**
 * sendmail()'s optional tail as the caller wrote it, sorted out: a `{ signal }`
 * in the mailOptions or rcptOptions position is the call options.
 */
export function sendmailArguments<M, R>(
  mailOptions: M | CallOptions | undefined,
  rcptOptions: R | CallOptions | undefined,
  options: CallOptions | undefined,
  where = 'sendmail',
): { mailOptions: M | undefined; rcptOptions: R | undefined; call: CallOptions } {
  if (options === undefined && rcptOptions === undefined && isCallOptions(mailOptions)) {
    return { mailOptions: undefined, rcptOptions: undefined, call: checkCallOptions(mailOptions, where) };
  }
  if (options === undefined && isCallOptions(rcptOptions)) {
    return { mailOptions: mailOptions as M | undefined, rcptOptions: undefined, call: checkCallOptions(rcptOptions, where) };
  }
  return { mailOptions: mailOptions as M | undefined, rcptOptions: rcptOptions as R | undefined, call: checkCallOptions(options, where) };
}
