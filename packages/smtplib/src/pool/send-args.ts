// The optional arguments of SMTPPool.sendmail(), in the shapes SMTP.sendmail()
// takes: positional `(mailOptions, rcptOptions, callOptions)` as in Python's
// smtplib, or one call-options object `{ signal, mailOptions, rcptOptions }`,
// wherever a caller writes it (a trailing `{ signal }` included).

import { SMTPInvalidArgumentError } from '../errors.js';
import type { SendOptions } from '../client/smtp.js';
import type { MailOptions, RcptOptions } from '../protocol/params.js';

type Positional = MailOptions | RcptOptions | readonly string[] | SendOptions | undefined;

/** Keys of a call-options object (SendOptions). */
const CALL_KEYS = new Set(['signal', 'mailOptions', 'rcptOptions']);
const MAIL_KEYS = new Set(['size', 'body', 'smtputf8', 'ret', 'envid', 'requireTls', 'extra']);
const RCPT_KEYS = new Set(['notify', 'orcpt', 'extra']);

function isCallOptions(value: object): boolean {
  const keys = Object.keys(value);
  return keys.length > 0 && keys.every((key) => CALL_KEYS.has(key));
}

function checkKeys(value: object, allowed: Set<string>, what: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) {
      throw new SMTPInvalidArgumentError(`unknown ${what} "${key}" (expected one of ${[...allowed].join(', ')}; call options are { ${[...CALL_KEYS].join(', ')} })`);
    }
  }
}

/** Sorts `sendmail(from, to, msg, ...rest)`'s rest into one SendOptions; unknown keys are SMTPInvalidArgumentError. */
export function sendArguments(rest: readonly Positional[]): SendOptions {
  if (rest.length > 3) throw new SMTPInvalidArgumentError(`sendmail() takes at most 6 arguments, got ${rest.length + 3}`);
  const args = [...rest];
  while (args.length > 0 && args[args.length - 1] === undefined) args.pop();
  let call: SendOptions = {};
  const last = args[args.length - 1];
  if (last !== null && typeof last === 'object' && !Array.isArray(last) && (isCallOptions(last) || args.length === 3)) {
    call = last as SendOptions;
    args.pop();
    checkKeys(call, CALL_KEYS, 'call option');
  }
  const [mail, rcpt] = args as [MailOptions | readonly string[] | undefined, RcptOptions | readonly string[] | undefined];
  if (mail !== undefined && mail !== null) {
    if (typeof mail !== 'object') throw new SMTPInvalidArgumentError('mail options must be an object or a list of strings');
    if (!Array.isArray(mail)) checkKeys(mail, MAIL_KEYS, 'mail option');
    if (call.mailOptions) throw new SMTPInvalidArgumentError('mail options were given twice (positionally and as { mailOptions })');
  }
  if (rcpt !== undefined && rcpt !== null) {
    if (typeof rcpt !== 'object') throw new SMTPInvalidArgumentError('recipient options must be an object or a list of strings');
    if (!Array.isArray(rcpt)) checkKeys(rcpt, RCPT_KEYS, 'recipient option');
    if (call.rcptOptions) throw new SMTPInvalidArgumentError('recipient options were given twice (positionally and as { rcptOptions })');
  }
  if (call.mailOptions && !Array.isArray(call.mailOptions)) checkKeys(call.mailOptions, MAIL_KEYS, 'mail option');
  if (call.rcptOptions && !Array.isArray(call.rcptOptions)) checkKeys(call.rcptOptions, RCPT_KEYS, 'recipient option');
  if (call.signal !== undefined && !(call.signal instanceof AbortSignal)) throw new SMTPInvalidArgumentError('signal must be an AbortSignal');
  return {
    ...call,
    ...(mail ? { mailOptions: mail } : {}),
    ...(rcpt ? { rcptOptions: rcpt } : {}),
  };
}
