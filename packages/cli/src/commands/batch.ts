// `smtplib send --batch FILE`: many messages from JSON lines, through
// smtplib's SMTPPool when the library has it (else one connection, reopened
// when it breaks), with a progress bar on a terminal, a per-recipient report
// and a summary line.
import { readFileSync } from 'node:fs';
import { chooseAccount, loadConfig } from '../config.js';
import { dkimOption, makeDebugOutput, openSession, type Session } from '../connection.js';
import { entriesOf, formatReply, mailOptionsOf, type DsnOptions, type ReplyLike } from '../deliver.js';
import { describeError } from '../errors.js';
import { CliError, EX } from '../exit-codes.js';
import { loadSmtplib } from '../lib.js';
import { composeMessage, parseAddressArg, prepareRawMessage } from '../message.js';
import { dsnFrom, readStdin, resolveServer, type SendCliOptions } from './send.js';

export interface BatchItem {
  line: number;
  from: string;
  recipients: string[];
  data: Buffer;
}

interface ItemOutcome {
  item: BatchItem;
  accepted: string[];
  refused: [string, ReplyLike][];
  /** Set when the whole message failed. */
  error?: { message: string; exitCode: number } | undefined;
}

function list(v: unknown, what: string, line: number): string[] {
  if (v === undefined || v === null) return [];
  const arr = Array.isArray(v) ? v : [v];
  return arr.flatMap((x) => {
    if (typeof x !== 'string') throw new CliError(`line ${line}: "${what}" should be a string or a list of strings`, EX.DATAERR);
    return parseAddressArg(x, `line ${line}: ${what}`);
  });
}

/** Parses and builds every message first, so a bad line stops the batch before anything is sent. */
export async function parseBatch(text: string): Promise<BatchItem[]> {
  const items: BatchItem[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const src = lines[i]!.trim();
    if (!src || src.startsWith('#') || src.startsWith('//')) continue;
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(src) as Record<string, unknown>;
    } catch (err) {
      throw new CliError(`line ${lineNo}: not JSON: ${(err as Error).message}`, EX.DATAERR);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new CliError(`line ${lineNo}: expected a JSON object`, EX.DATAERR);
    if (typeof obj.from !== 'string') throw new CliError(`line ${lineNo}: "from" is missing`, EX.DATAERR);
    const from = parseAddressArg(obj.from, `line ${lineNo}: from`)[0]!;
    const to = list(obj.to, 'to', lineNo);
    const cc = list(obj.cc, 'cc', lineNo);
    const bcc = list(obj.bcc, 'bcc', lineNo);
    let data: Buffer;
    let recipients = [...to, ...cc, ...bcc];
    if (obj.raw !== undefined) {
      if (typeof obj.raw !== 'string') throw new CliError(`line ${lineNo}: "raw" should be the message as a string`, EX.DATAERR);
      const prepared = prepareRawMessage(Buffer.from(obj.raw, 'utf8'), { addMissing: false });
      if (recipients.length === 0) recipients = prepared.headerRecipients;
      data = prepared.data;
    } else {
      const headers = obj.headers;
      const headerLines: string[] = Array.isArray(headers)
        ? headers.map(String)
        : headers && typeof headers === 'object'
          ? Object.entries(headers as Record<string, unknown>).map(([k, v]) => `${k}: ${String(v)}`)
          : [];
      const attachments = obj.attachments === undefined ? [] : Array.isArray(obj.attachments) ? obj.attachments.map(String) : [String(obj.attachments)];
      data = await composeMessage({
        from: obj.from,
        to: typeof obj.to === 'string' || Array.isArray(obj.to) ? ([] as string[]).concat(obj.to as string | string[]) : undefined,
        cc: typeof obj.cc === 'string' || Array.isArray(obj.cc) ? ([] as string[]).concat(obj.cc as string | string[]) : undefined,
        bcc,
        subject: typeof obj.subject === 'string' ? obj.subject : undefined,
        text: typeof obj.text === 'string' ? obj.text : undefined,
        html: typeof obj.html === 'string' ? obj.html : undefined,
        attachments,
        headers: headerLines,
      });
    }
    if (recipients.length === 0) throw new CliError(`line ${lineNo}: no recipients ("to", "cc" or "bcc")`, EX.DATAERR);
    items.push({ line: lineNo, from, recipients, data });
  }
  return items;
}

class Progress {
  private readonly enabled = Boolean(process.stderr.isTTY);
  private last = 0;
  constructor(private readonly total: number) {}
  update(done: number, failed: number, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.last < 100 && done < this.total) return;
    this.last = now;
    const width = 30;
    const filled = this.total ? Math.round((done / this.total) * width) : width;
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    process.stderr.write(`\r[${bar}] ${done}/${this.total} sent${failed ? `, ${failed} failed` : ''} `);
  }
  end(): void {
    if (this.enabled) process.stderr.write('\r\x1b[K');
  }
}

async function runWithLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  });
  await Promise.all(workers);
}

/** Connection errors after which the session cannot be reused. */
function sessionBroken(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return !/^ERR_SMTP_(RECIPIENTS_REFUSED|SENDER_REFUSED|DATA|INVALID_ARGUMENT)$/.test(code);
}

export async function runBatch(o: SendCliOptions): Promise<number> {
  const file = o.batch!;
  let text: string;
  if (file === '-') text = (await readStdin()).toString('utf8');
  else {
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new CliError(`--batch: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EX.NOINPUT);
    }
  }
  const items = await parseBatch(text);
  if (items.length === 0) throw new CliError(`--batch: ${file} has no messages`, EX.NOINPUT);
  const config = loadConfig();
  const account = config && (o.account || !o.server) ? chooseAccount(config, { name: o.account, sender: items[0]!.from }) : undefined;
  const spec = resolveServer(o, account);
  const dsn = dsnFrom(o);
  const concurrency = o.concurrency === undefined ? 4 : Number(o.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new CliError(`--concurrency: "${o.concurrency}" should be a positive whole number`, EX.USAGE);

  const attempts = o.attempts === undefined ? undefined : Number(o.attempts);
  if (attempts !== undefined && (!Number.isInteger(attempts) || attempts < 1)) throw new CliError(`--attempts: "${o.attempts}" should be a positive whole number`, EX.USAGE);
  const lib = await loadSmtplib();
  const started = Date.now();
  const outcomes: ItemOutcome[] = [];
  const progress = new Progress(items.length);
  let failed = 0;
  const record = (outcome: ItemOutcome): void => {
    outcomes.push(outcome);
    if (outcome.error || outcome.accepted.length === 0) failed++;
    progress.update(outcomes.length, failed);
  };
  let mode: string;

  if (lib.SMTPPool && !spec.lmtp) {
    mode = `SMTPPool, up to ${concurrency} connections`;
    const password = spec.user && spec.password ? await spec.password() : undefined;
    let ca: string | undefined;
    if (spec.caFile) ca = readFileSync(spec.caFile, 'utf8');
    const pool = new lib.SMTPPool({
      host: spec.host,
      port: spec.port,
      ...(spec.tls === 'implicit' ? { implicitTls: true } : { tlsPolicy: spec.tls }),
      tls: { servername: spec.host, ...(ca ? { ca } : {}) },
      ...(spec.user ? { auth: { user: spec.user, pass: password } } : {}),
      maxConnections: concurrency,
      ...(o.attempts ? { retry: { attempts } } : {}),
      ...(spec.localHostname ? { localHostname: spec.localHostname } : {}),
      ...(spec.timeout ? { timeout: spec.timeout * 1000 } : {}),
      ...(spec.debug ? { debugLevel: spec.debug, debugOutput: makeDebugOutput(() => (password ? [password] : [])) } : {}),
      ...(spec.allowCleartextAuth ? { allowCleartextAuth: true } : {}),
      ...dkimOption(spec),
    });
    try {
      await runWithLimit(items, concurrency * 2, async (item) => {
        try {
          const r = await pool.sendmail(item.from, item.recipients, item.data, {
            mailOptions: mailOptionsOf(dsn),
            ...(dsn.notify ? { rcptOptions: { notify: dsn.notify } } : {}),
          });
          const refused = entriesOf(r.refused);
          const refusedSet = new Set(refused.map(([a]) => a.toLowerCase()));
          record({ item, accepted: item.recipients.filter((a) => !refusedSet.has(a.toLowerCase())), refused });
        } catch (err) {
          record(failureOutcome(item, err));
        }
      });
    } finally {
      await pool.close();
    }
  } else {
    mode = spec.lmtp ? 'one LMTP connection (SMTPPool speaks SMTP)' : 'one connection (this smtplib build has no SMTPPool)';
    let session: Session | undefined;
    try {
      for (const item of items) {
        try {
          session ??= await openSession(spec);
          const refusedMap = await session.sendmail(item.from, item.recipients, item.data, mailOptionsOf(dsn), dsn.notify ? { notify: dsn.notify } : undefined);
          const refused = entriesOf(refusedMap);
          const refusedSet = new Set(refused.map(([a]) => a.toLowerCase()));
          record({ item, accepted: item.recipients.filter((a) => !refusedSet.has(a.toLowerCase())), refused });
        } catch (err) {
          record(failureOutcome(item, err));
          if (session && sessionBroken(err)) {
            session.close();
            session = undefined;
          }
        }
      }
    } finally {
      if (session) {
        try {
          await session.quit();
        } catch {
          session.close();
        }
      }
    }
  }
  progress.end();

  // Per-recipient report, in input order.
  outcomes.sort((a, b) => a.item.line - b.item.line);
  let acceptedCount = 0;
  let refusedCount = 0;
  let worst = 0;
  for (const out of outcomes) {
    for (const a of out.accepted) {
      acceptedCount++;
      if (!o.quiet) process.stdout.write(`ok      line ${out.item.line}  ${a}\n`);
    }
    for (const [a, r] of out.refused) {
      refusedCount++;
      const temp = r.code >= 400 && r.code < 500;
      worst = Math.max(worst, temp ? 1 : 2);
      process.stdout.write(`${temp ? 'defer ' : 'refused'} line ${out.item.line}  ${a}  ${formatReply(r)}\n`);
    }
    if (out.error) {
      const temp = out.error.exitCode === EX.TEMPFAIL;
      worst = Math.max(worst, temp ? 1 : 2);
      const reported = new Set(out.refused.map(([a]) => a));
      for (const a of out.item.recipients.filter((r) => !reported.has(r))) {
        refusedCount++;
        process.stdout.write(`${temp ? 'defer ' : 'failed '} line ${out.item.line}  ${a}  ${out.error.message.split('\n')[0]}\n`);
      }
    }
  }
  const sent = outcomes.filter((x) => !x.error && x.accepted.length > 0).length;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(
    `Summary: ${items.length} message(s), ${sent} sent, ${items.length - sent} failed; ${acceptedCount} recipient(s) accepted, ${refusedCount} not; ${secs} s via ${mode}\n`,
  );
  return worst === 0 ? EX.OK : worst === 1 ? EX.TEMPFAIL : EX.UNAVAILABLE;
}

function failureOutcome(item: BatchItem, err: unknown): ItemOutcome {
  const code = (err as { code?: string }).code;
  if (code === 'ERR_SMTP_RECIPIENTS_REFUSED') {
    return { item, accepted: [], refused: entriesOf((err as { recipients?: unknown }).recipients) };
  }
  const d = describeError(err);
  return { item, accepted: [], refused: [], error: { message: d.message, exitCode: d.exitCode } };
}

