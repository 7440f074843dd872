// The optional arguments of SMTPPool.sendmail(): SMTP.sendmail()'s shape
// (`mailOptions, rcptOptions, { signal }`, a `{ signal }` wherever written;
// see client/call-options.ts), or SMTP.deliver()'s one options object
// `{ signal, mailOptions, rcptOptions, beforeCommit }`. Checked before anything is queued.

import { checkCallOptions, sendmailArguments, type CallOptions } from '../client/call-options.js';
import { assertKnownKeys } from '../known-keys.js';
import type { SendOptions } from '../client/smtp.js';
import { toMailOptions, toRcptOptions, type MailOptions, type RcptOptions } from '../protocol/params.js';

const SEND_OPTION_KEYS: readonly string[] = Object.freeze(['signal', 'mailOptions', 'rcptOptions', 'beforeCommit', 'dkim']);

type Mail = MailOptions | readonly string[];
type Rcpt = RcptOptions | readonly string[];

/** SMTP.deliver()'s options object: it names `mailOptions`, `rcptOptions` or `beforeCommit` (a `{ signal }` alone is call options). */
function isSendOptions(value: unknown): value is SendOptions {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  return Object.hasOwn(value, 'mailOptions') || Object.hasOwn(value, 'rcptOptions') || Object.hasOwn(value, 'beforeCommit') || Object.hasOwn(value, 'dkim');
}

export function poolSendArguments(
  mailOptions: Mail | SendOptions | CallOptions | undefined,
  rcptOptions: Rcpt | CallOptions | undefined,
  options: CallOptions | undefined,
): SendOptions {
  let send: SendOptions;
  if (rcptOptions === undefined && options === undefined && isSendOptions(mailOptions)) {
    assertKnownKeys(mailOptions as Record<string, unknown>, SEND_OPTION_KEYS, 'SMTPPool.sendmail options');
    const { signal, ...rest } = mailOptions;
    send = { ...rest, ...checkCallOptions(signal === undefined ? undefined : { signal }, 'SMTPPool.sendmail') };
  } else {
    const args = sendmailArguments<Mail, Rcpt>(mailOptions as Mail | CallOptions | undefined, rcptOptions, options, 'SMTPPool.sendmail');
    send = {
      ...(args.mailOptions ? { mailOptions: args.mailOptions } : {}),
      ...(args.rcptOptions ? { rcptOptions: args.rcptOptions } : {}),
      ...args.call,
    };
  }
  // The client's own checks, now rather than when a connection takes the send.
  toMailOptions(send.mailOptions);
  toRcptOptions(send.rcptOptions);
  return send;
}
