// One message, one session: connect, send, quit, and a per-recipient result.
import { CliError, EX } from './exit-codes.js';
import { openSession, type ServerSpec } from './connection.js';

export interface ReplyLike {
  code: number;
  message: string;
  enhancedStatus?: string | undefined;
}

export interface DsnOptions {
  notify?: ('SUCCESS' | 'FAILURE' | 'DELAY' | 'NEVER')[] | undefined;
  ret?: 'FULL' | 'HDRS' | undefined;
  envid?: string | undefined;
  requireTls?: boolean | undefined;
  smtputf8?: boolean | undefined;
}

export interface DeliveryResult {
  accepted: string[];
  refused: [string, ReplyLike][];
}

export function entriesOf(x: unknown): [string, ReplyLike][] {
  if (!x) return [];
  if (x instanceof Map) return [...x.entries()] as [string, ReplyLike][];
  return Object.entries(x as Record<string, ReplyLike>);
}

export function mailOptionsOf(dsn: DsnOptions): { notify?: DsnOptions['notify']; ret?: 'FULL' | 'HDRS'; envid?: string; requireTls?: boolean; smtputf8?: boolean } {
  return {
    ...(dsn.ret ? { ret: dsn.ret } : {}),
    ...(dsn.envid ? { envid: dsn.envid } : {}),
    ...(dsn.requireTls ? { requireTls: true } : {}),
    ...(dsn.smtputf8 ? { smtputf8: true } : {}),
  };
}

export async function deliverOne(
  spec: ServerSpec,
  from: string,
  to: string[],
  data: Buffer,
  dsn: DsnOptions = {},
): Promise<DeliveryResult> {
  const smtp = await openSession(spec);
  try {
    const refusedMap = await smtp.sendmail(
      from,
      to,
      data,
      mailOptionsOf(dsn),
      dsn.notify ? { notify: dsn.notify } : undefined,
    );
    const refused = entriesOf(refusedMap);
    const refusedSet = new Set(refused.map(([a]) => a.toLowerCase()));
    try {
      await smtp.quit();
    } catch {
      // The message is accepted; a failing QUIT changes nothing.
      smtp.close();
    }
    return { accepted: to.filter((a) => !refusedSet.has(a.toLowerCase())), refused };
  } catch (err) {
    smtp.close();
    throw err;
  }
}

/** Exit code for a delivery that partly succeeded (some recipients refused). */
export function exitCodeFor(result: DeliveryResult): number {
  if (result.refused.length === 0) return EX.OK;
  return result.refused.every(([, r]) => r.code >= 400 && r.code < 500) ? EX.TEMPFAIL : EX.UNAVAILABLE;
}

/** "550 5.1.1 No such user", with the enhanced status code once. */
export function formatReply(r: ReplyLike): string {
  const text = String(r.message).split(/\r?\n/).join(' / ');
  const status = r.enhancedStatus && !text.startsWith(r.enhancedStatus) ? ` ${r.enhancedStatus}` : '';
  return `${r.code}${status} ${text}`.trim();
}

export function formatRefused(refused: [string, ReplyLike][]): string {
  return refused.map(([a, r]) => `  ${a}: ${formatReply(r)}`).join('\n');
}

export function parseNotify(value: string): NonNullable<DsnOptions['notify']> {
  const list = value.split(',').map((v) => v.trim().toUpperCase()).filter(Boolean);
  const allowed = ['SUCCESS', 'FAILURE', 'DELAY', 'NEVER'];
  for (const v of list) {
    if (!allowed.includes(v)) throw new CliError(`--notify: "${v}" should be one of success, failure, delay, never`, EX.USAGE);
  }
  if (list.includes('NEVER') && list.length > 1) throw new CliError('--notify: never cannot be combined with other values', EX.USAGE);
  return list as NonNullable<DsnOptions['notify']>;
}
