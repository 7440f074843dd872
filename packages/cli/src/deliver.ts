// One message, one session: connect, send, quit, and what happened to each
// recipient, in the words of the library's DeliveryResult.
import { isSMTPError, SMTPRecipientsRefused, type DeliveryResult, type MailOptions, type NotifyType, type RcptOptions, type Reply } from 'smtplib';
import { openSession, type ServerSpec } from './connection.js';
import { CliError, EX } from './exit-codes.js';

export interface DsnOptions {
  notify?: NotifyType[] | undefined;
  ret?: 'FULL' | 'HDRS' | undefined;
  envid?: string | undefined;
  requireTls?: boolean | undefined;
  smtputf8?: boolean | undefined;
}

/**
 * - delivered: the server took responsibility (its reply says so);
 * - refused: the server refused this recipient (RCPT, or LMTP after the data);
 * - not-delivered: the whole message failed before the server accepted it;
 * - unknown: the data was sent but no reply came: it may have arrived.
 */
export type RecipientStatus = 'delivered' | 'refused' | 'not-delivered' | 'unknown';

export interface RecipientOutcome {
  recipient: string;
  status: RecipientStatus;
  /** The server's reply for this recipient, when there was one. */
  reply?: Reply | undefined;
  /** Why, when the message failed as a whole. */
  detail?: string | undefined;
}

export function mailOptionsOf(dsn: DsnOptions): MailOptions {
  return {
    ...(dsn.ret ? { ret: dsn.ret } : {}),
    ...(dsn.envid ? { envid: dsn.envid } : {}),
    ...(dsn.requireTls ? { requireTls: true } : {}),
    ...(dsn.smtputf8 ? { smtputf8: true } : {}),
  };
}

export function rcptOptionsOf(dsn: DsnOptions): RcptOptions | undefined {
  return dsn.notify ? { notify: dsn.notify } : undefined;
}

/** Each recipient's outcome from the library's result (LMTP: each recipient's own reply). */
export function outcomesOf(recipients: readonly string[], result: Pick<DeliveryResult, 'refused' | 'reply' | 'recipientReplies'>, unknown: readonly string[] = []): RecipientOutcome[] {
  const unknownSet = new Set(unknown);
  return recipients.map((recipient) => {
    const refused = result.refused.get(recipient);
    if (refused) return { recipient, status: 'refused', reply: refused };
    if (unknownSet.has(recipient)) return { recipient, status: 'unknown', detail: 'the connection was lost after the data was sent; it may have arrived' };
    return { recipient, status: 'delivered', reply: result.recipientReplies?.get(recipient) ?? result.reply };
  });
}

/** Each recipient's outcome when the whole send failed with `error`. */
export function outcomesOfError(recipients: readonly string[], error: unknown, detail: string): RecipientOutcome[] {
  if (error instanceof SMTPRecipientsRefused) {
    return recipients.map((recipient) => {
      const reply = error.recipients.get(recipient);
      return reply ? { recipient, status: 'refused', reply } : { recipient, status: 'not-delivered', detail };
    });
  }
  const status: RecipientStatus = isSMTPError(error) && error.deliveryStatus === 'unknown' ? 'unknown' : 'not-delivered';
  const reply = (error as { reply?: Reply }).reply;
  return recipients.map((recipient) => ({ recipient, status, ...(reply ? { reply } : {}), detail }));
}

export async function deliverOne(spec: ServerSpec, from: string, to: string[], data: Buffer, dsn: DsnOptions = {}): Promise<RecipientOutcome[]> {
  const smtp = await openSession(spec);
  try {
    const rcptOptions = rcptOptionsOf(dsn);
    const result = await smtp.deliver(from, to, data, { mailOptions: mailOptionsOf(dsn), ...(rcptOptions ? { rcptOptions } : {}) });
    try {
      await smtp.quit();
    } catch {
      // The message is accepted; a failing QUIT changes nothing.
      smtp.close();
    }
    return outcomesOf(to, result);
  } catch (err) {
    smtp.close();
    throw err;
  }
}

const isTransient = (o: RecipientOutcome): boolean => (o.reply ? o.reply.code >= 400 && o.reply.code < 500 : o.status !== 'unknown');

/**
 * 0 when everyone got it; EX.PARTIAL when some did and some did not; else
 * 75 when every failure is temporary, 69 otherwise.
 */
export function exitCodeFor(outcomes: readonly RecipientOutcome[]): number {
  const failed = outcomes.filter((o) => o.status !== 'delivered');
  if (failed.length === 0) return EX.OK;
  if (failed.length < outcomes.length) return EX.PARTIAL;
  return failed.every(isTransient) ? EX.TEMPFAIL : EX.UNAVAILABLE;
}

/** "550 5.1.1 No such user", with the enhanced status code once. */
export function formatReply(r: Pick<Reply, 'code' | 'message' | 'enhancedStatus'>): string {
  const text = String(r.message).split(/\r?\n/).join(' / ');
  const status = r.enhancedStatus && !text.startsWith(r.enhancedStatus) ? ` ${r.enhancedStatus}` : '';
  return `${r.code}${status} ${text}`.trim();
}

export function formatOutcomes(outcomes: readonly RecipientOutcome[]): string {
  return outcomes.map((o) => `  ${o.recipient}: ${o.reply ? formatReply(o.reply) : (o.detail ?? o.status)}`).join('\n');
}

/** A JSON-friendly outcome (the reply as { code, enhancedStatus, message }). */
export function outcomeJson(o: RecipientOutcome): Record<string, unknown> {
  return {
    recipient: o.recipient,
    status: o.status,
    reply: o.reply ? { code: o.reply.code, ...(o.reply.enhancedStatus ? { enhancedStatus: o.reply.enhancedStatus } : {}), message: o.reply.message } : null,
    ...(o.detail ? { detail: o.detail } : {}),
  };
}

export function parseNotify(value: string): NotifyType[] {
  const list = value.split(',').map((v) => v.trim().toUpperCase()).filter(Boolean);
  const allowed = ['SUCCESS', 'FAILURE', 'DELAY', 'NEVER'];
  for (const v of list) {
    if (!allowed.includes(v)) throw new CliError(`--notify: "${v}" should be one of success, failure, delay, never`, EX.USAGE);
  }
  if (list.includes('NEVER') && list.length > 1) throw new CliError('--notify: never cannot be combined with other values', EX.USAGE);
  return list as NotifyType[];
}
