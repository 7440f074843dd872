// `smtplib send --batch FILE`: many messages from JSON lines, through the
// library's SMTPPool (LMTP: one LMTP connection, since the pool speaks SMTP),
// with a progress bar on a terminal, one line per recipient saying what
// happened to it (delivered, refused, not-delivered, unknown) with the
// server's reply, and a summary; `--json` prints the same as JSON lines.
import { readFileSync } from 'node:fs';
import { SMTPPool } from 'smtplib';
import { chooseAccount, loadConfig } from '../config.js';
import { openSession, poolOptions, type ServerSpec, type Session } from '../connection.js';
import {
  exitCodeFor,
  formatReply,
  mailOptionsOf,
  outcomeJson,
  outcomesOf,
  outcomesOfError,
  rcptOptionsOf,
  type DsnOptions,
  type RecipientOutcome,
} from '../deliver.js';
import { describeError } from '../errors.js';
import { CliError, EX } from '../exit-codes.js';
import { composeMessage, parseAddressArg } from '../message.js';
import { headerEnvelope, prepareRawMessage } from '../raw-message.js';
import { dsnFrom, readStdin, resolveServer, type SendCliOptions } from './send.js';

export interface BatchItem {
  line: number;
  from: string;
  recipients: string[];
  data: Buffer;
}

interface ItemReport {
  item: BatchItem;
  outcomes: RecipientOutcome[];
}

function list(v: unknown, what: string, line: number): string[] {
  if (v === undefined || v === null) return [];
  const arr = Array.isArray(v) ? v : [v];
  return arr.flatMap((x) => {
    if (typeof x !== 'string') throw new CliError(`line ${line}: "${what}" should be a string or a list of strings`, EX.DATAERR);
    return parseAddressArg(x, `line ${line}: ${what}`);
  });
}

/** An attachment: a path, or { path, filename?, contentType? }. */
export interface BatchAttachment {
  path: string;
  filename?: string | undefined;
  contentType?: string | undefined;
}

function attachmentsOf(v: unknown, line: number): BatchAttachment[] {
  if (v === undefined || v === null) return [];
  const arr = Array.isArray(v) ? v : [v];
  return arr.map((a, i) => {
    const where = `line ${line}: attachments[${i}]`;
    if (typeof a === 'string') return { path: a };
    if (!a || typeof a !== 'object' || Array.isArray(a)) throw new CliError(`${where} should be a path or { "path", "filename", "contentType" }`, EX.DATAERR);
    const { path, filename, contentType, ...rest } = a as Record<string, unknown>;
    const unknownKeys = Object.keys(rest);
    if (unknownKeys.length) throw new CliError(`${where}: unknown key(s) ${unknownKeys.map((k) => `"${k}"`).join(', ')} (known: path, filename, contentType)`, EX.DATAERR);
    if (typeof path !== 'string' || !path) throw new CliError(`${where}: "path" is missing`, EX.DATAERR);
    if (filename !== undefined && typeof filename !== 'string') throw new CliError(`${where}: "filename" should be a string`, EX.DATAERR);
    if (contentType !== undefined && (typeof contentType !== 'string' || !/^[\w.+-]+\/[\w.+-]+$/.test(contentType))) {
      throw new CliError(`${where}: "contentType" should look like "application/pdf"`, EX.DATAERR);
    }
    return { path, filename, contentType };
  });
}

/** Runs `fn`, putting "line N: " in front of the message of any CliError it throws. */
async function atLine<T>(line: number, fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof CliError && !err.message.startsWith(`line ${line}:`)) throw new CliError(`line ${line}: ${err.message}`, err.exitCode, err.hint);
    if (!(err instanceof CliError)) throw new CliError(`line ${line}: ${(err as Error).message}`, EX.DATAERR);
    throw err;
  }
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
      const raw = Buffer.from(obj.raw, 'utf8');
      if (recipients.length === 0) recipients = await atLine(lineNo, () => headerEnvelope(raw).to);
      data = prepareRawMessage(raw, { addMissing: false });
    } else {
      const headers = obj.headers;
      const headerLines: string[] = Array.isArray(headers)
        ? headers.map(String)
        : headers && typeof headers === 'object'
          ? Object.entries(headers as Record<string, unknown>).map(([k, v]) => `${k}: ${String(v)}`)
          : [];
      const attachments = attachmentsOf(obj.attachments, lineNo);
      data = await atLine(lineNo, () =>
        composeMessage({
          from: obj.from as string,
          to: typeof obj.to === 'string' || Array.isArray(obj.to) ? ([] as string[]).concat(obj.to as string | string[]) : undefined,
          cc: typeof obj.cc === 'string' || Array.isArray(obj.cc) ? ([] as string[]).concat(obj.cc as string | string[]) : undefined,
          bcc,
          subject: typeof obj.subject === 'string' ? obj.subject : undefined,
          text: typeof obj.text === 'string' ? obj.text : undefined,
          html: typeof obj.html === 'string' ? obj.html : undefined,
          attachments,
          headers: headerLines,
        }),
      );
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

async function sendThroughPool(spec: ServerSpec, items: BatchItem[], dsn: DsnOptions, concurrency: number, attempts: number | undefined, record: (r: ItemReport) => void): Promise<void> {
  const pool = new SMTPPool(await poolOptions(spec, { maxConnections: concurrency, ...(attempts ? { retry: { attempts } } : {}) }));
  const rcptOptions = rcptOptionsOf(dsn);
  try {
    await runWithLimit(items, concurrency * 2, async (item) => {
      try {
        const result = await pool.sendmail(item.from, item.recipients, item.data, { mailOptions: mailOptionsOf(dsn), ...(rcptOptions ? { rcptOptions } : {}) });
        record({ item, outcomes: outcomesOf(item.recipients, result, result.unknown) });
      } catch (err) {
        record({ item, outcomes: outcomesOfError(item.recipients, err, describeError(err).message.split('\n')[0]!) });
      }
    });
  } finally {
    await pool.close();
  }
}

/** LMTP: one connection, one message at a time, each recipient's own reply after the data. */
async function sendOverLmtp(spec: ServerSpec, items: BatchItem[], dsn: DsnOptions, record: (r: ItemReport) => void): Promise<void> {
  let session: Session | undefined;
  const rcptOptions = rcptOptionsOf(dsn);
  try {
    for (const item of items) {
      try {
        session ??= await openSession(spec);
        const result = await session.deliver(item.from, item.recipients, item.data, { mailOptions: mailOptionsOf(dsn), ...(rcptOptions ? { rcptOptions } : {}) });
        record({ item, outcomes: outcomesOf(item.recipients, result) });
      } catch (err) {
        record({ item, outcomes: outcomesOfError(item.recipients, err, describeError(err).message.split('\n')[0]!) });
        // After a refusal the library leaves the connection usable; after anything else, start again.
        const code = (err as { code?: string }).code ?? '';
        if (session && !/^ERR_SMTP_(RECIPIENTS_REFUSED|SENDER_REFUSED|DATA|INVALID_ARGUMENT)$/.test(code)) {
          session.close();
          session = undefined;
        }
      }
    }
  } finally {
    if (session) await session.quit().catch(() => session?.close());
  }
}

const LABEL: Record<RecipientOutcome['status'], string> = {
  delivered: 'delivered',
  refused: 'refused',
  'not-delivered': 'not-delivered',
  unknown: 'unknown',
};

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

  const started = Date.now();
  const reports: ItemReport[] = [];
  const progress = new Progress(items.length);
  let failedMessages = 0;
  const record = (report: ItemReport): void => {
    reports.push(report);
    if (report.outcomes.some((x) => x.status !== 'delivered')) failedMessages++;
    progress.update(reports.length, failedMessages);
  };
  let mode: string;
  if (spec.lmtp) {
    mode = 'one LMTP connection (SMTPPool speaks SMTP)';
    await sendOverLmtp(spec, items, dsn, record);
  } else {
    mode = `SMTPPool, up to ${concurrency} connections`;
    await sendThroughPool(spec, items, dsn, concurrency, attempts, record);
  }
  progress.end();

  // Per-recipient report, in input order.
  reports.sort((a, b) => a.item.line - b.item.line);
  const all = reports.flatMap((r) => r.outcomes);
  const count = (s: RecipientOutcome['status']): number => all.filter((x) => x.status === s).length;
  const code = exitCodeFor(all);
  const sent = reports.filter((r) => r.outcomes.every((x) => x.status === 'delivered')).length;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  for (const r of reports) {
    for (const x of r.outcomes) {
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ line: r.item.line, ...outcomeJson(x) })}\n`);
      } else if (x.status !== 'delivered' || !o.quiet) {
        const why = x.reply ? formatReply(x.reply) : (x.detail ?? '');
        process.stdout.write(`${LABEL[x.status].padEnd(13)} line ${r.item.line}  ${x.recipient}  ${why}`.trimEnd() + '\n');
      }
    }
  }
  const summary = {
    messages: items.length,
    sent,
    failed: items.length - sent,
    delivered: count('delivered'),
    refused: count('refused'),
    notDelivered: count('not-delivered'),
    unknown: count('unknown'),
    seconds: Number(secs),
    via: mode,
    exitCode: code,
  };
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ summary })}\n`);
  } else {
    process.stdout.write(
      `Summary: ${summary.messages} message(s), ${sent} sent in full, ${summary.failed} not; recipients: ${summary.delivered} delivered, ${summary.refused} refused, ${summary.notDelivered} not delivered, ${summary.unknown} unknown; ${secs} s via ${mode}\n`,
    );
    if (code === EX.PARTIAL) process.stdout.write(`Exit ${EX.PARTIAL}: partial delivery; the lines above say who got each message.\n`);
  }
  return code;
}
