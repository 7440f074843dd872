// The optional arguments of SMTPPool.sendmail(): SMTP.sendmail()'s shape
// (`mailOptions, rcptOptions, { signal }`, a `{ signal }` wherever written;
// see client/call-options.ts), or SMTP.deliver()'s one options object
// `{ signal, mailOptions, rcptOptions, beforeCommit, beforeCommitSync, dkim }`. Checked before anything is queued.

import { checkCallOptions, sendmailArguments, type CallOptions } from '../client/call-options.js';
import { assertKnownKeys } from '../known-keys.js';
import type { SendOptions } from '../client/smtp.js';
import { toMailOptions, toRcptOptions, type MailOptions, type RcptOptions } from '../protocol/params.js';

const SEND_OPTION_KEYS: readonly string[] = Object.freeze(['signal', 'mailOptions', 'rcptOptions', 'beforeCommit', 'beforeCommitSync', 'dkim']);

type Mail = MailOptions | readonly string[];
type Rcpt = RcptOptions | readonly string[];

/** SMTP.deliver()'s options object: it names `mailOptions`, `rcptOptions`, `beforeCommit`, `beforeCommitSync` or `dkim` (a `{ signal }` alone is call options). */
function isSendOptions(value: unknown): value is SendOptions {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  return Object.hasOwn(value, 'mailOptions') || Object.hasOwn(value, 'rcptOptions') || Object.hasOwn(value, 'beforeCommit') || Object.hasOwn(value, 'beforeCommitSync') || Object.hasOwn(value, 'dkim');
}

export function poolSendArguments(
  mailOptions: Mail | SendOptions | CallOptions | undefined,
  rcptOptions: Rcpt | CallOptions | undefined,
  options: CallOptions | undefined,
): SendOptions {
  let send: SendOptions;
  if (rcptOptions === undefined && options === undefined && isSendOptions(mailOptions)) {
    assertKnownKeys(mailOptions as Record<string, unknown>, SEND_OPTION_KEYS, 'SMTPPool.sendmail options');
    // Copied field by field, without the signal (a queue worker passes an options object with every
    // message: a rest pattern and two spreads here cost it more than the rest of this function).
    const { mailOptions: mail, rcptOptions: rcpt, beforeCommit, beforeCommitSync, dkim, signal } = mailOptions;
    send = {};
    if (mail !== undefined) send.mailOptions = mail;
    if (rcpt !== undefined) send.rcptOptions = rcpt;
    if (beforeCommit !== undefined) send.beforeCommit = beforeCommit;
    if (beforeCommitSync !== undefined) send.beforeCommitSync = beforeCommitSync;
    if (dkim !== undefined) send.dkim = dkim;
    if (signal !== undefined) send.signal = checkCallOptions({ signal }, 'SMTPPool.sendmail').signal;
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
