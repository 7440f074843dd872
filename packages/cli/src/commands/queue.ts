// `smtplib queue list|show|flush|hold|release|retry|delete|purge|run`: the durable
// outbound queue (smtplib-queue) from the command line, and the helpers that
// let `send` and `sendmail` accept a message into the spool instead of
// sending it (`--queue-dir DIR`, env SMTPLIB_QUEUE_DIR, account key queue_dir).
//
// A queue runner (`queue run`, `queue flush`) delivers through one relay:
// --server/--account as for `send`, else the config file's default account.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { chooseAccount, loadConfig, parseDuration, type Account } from '../config.js';
import { dkimOption, type ServerSpec } from '../connection.js';
import { formatReply } from '../deliver.js';
import { CliError, EX } from '../exit-codes.js';
import { resolveServer, type SendCliOptions } from './send.js';

type QueueModule = typeof import('smtplib-queue');
type MailQueue = import('smtplib-queue').MailQueue;
type QueueMessage = import('smtplib-queue').QueueMessage;
type QueueState = import('smtplib-queue').QueueState;

async function loadQueue(): Promise<QueueModule> {
  return import('smtplib-queue');
}

export interface QueueCliOptions {
  queueDir?: string;
  json?: boolean;
}

/** The queue directory: --queue-dir, else $SMTPLIB_QUEUE_DIR, else the account's queue_dir. Undefined: queueing is off. */
export function queueDirFrom(option: string | undefined, account?: Pick<Account, 'queueDir'> | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return option || env.SMTPLIB_QUEUE_DIR || account?.queueDir || undefined;
}

async function openQueue(dir: string | undefined): Promise<MailQueue> {
  if (!dir) {
    throw new CliError('no queue directory', EX.USAGE, 'give --queue-dir DIR, set SMTPLIB_QUEUE_DIR, or put "queue_dir DIR" in the account of the config file');
  }
  const { MailQueue } = await loadQueue();
  return MailQueue.open({ dir });
}

/**
 * `send` / `sendmail` with queueing on: the message goes into the spool and
 * this resolves once it is durable (fsync'd), as Postfix's sendmail does.
 */
export async function enqueueFromCli(input: {
  dir: string;
  from: string;
  to: string[];
  data: Buffer;
  mailOptions?: unknown;
  rcptOptions?: unknown;
  metadata?: Record<string, unknown>;
}): Promise<string> {
  const queue = await openQueue(input.dir);
  try {
    const { id } = await queue.enqueue(
      {
        from: input.from,
        to: input.to,
        message: input.data,
        ...(input.mailOptions !== undefined ? { mailOptions: input.mailOptions } : {}),
        ...(input.rcptOptions !== undefined ? { rcptOptions: input.rcptOptions } : {}),
      },
      { metadata: input.metadata ?? {} },
    );
    return id;
  } finally {
    await queue.close();
  }
}

// --- output --------------------------------------------------------------------

const out = (text: string): void => {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
};

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

function when(at: number | undefined): string {
  if (!at) return '-';
  const d = at - Date.now();
  return d <= 0 ? 'now' : `in ${age(d)}`;
}

/** The JSON shape of `queue list --json` items: at least id, state, recipients. */
function toJson(message: QueueMessage): Record<string, unknown> {
  return {
    id: message.id,
    state: message.state,
    from: message.from,
    recipients: message.recipients.map((r) => ({ address: r.address, state: r.state, attempts: r.attempts, ...(r.lastReply ? { lastReply: r.lastReply } : {}), ...(r.lastAdvice ? { advice: r.lastAdvice } : {}) })),
    attempts: message.attempts,
    size: message.size,
    priority: message.priority,
    createdAt: new Date(message.createdAt).toISOString(),
    nextAttemptAt: message.finishedAt ? null : new Date(message.nextAttemptAt).toISOString(),
    ...(message.finishedAt ? { finishedAt: new Date(message.finishedAt).toISOString() } : {}),
    ...(message.lastError ? { lastError: message.lastError } : {}),
    ...(message.unknownReason ? { unknownReason: message.unknownReason } : {}),
    ...(message.worker ? { worker: message.worker } : {}),
    metadata: message.metadata,
  };
}

function printList(messages: QueueMessage[]): void {
  if (messages.length === 0) {
    out('The queue is empty.');
    return;
  }
  const rows = messages.map((m) => [m.id, m.state, age(Date.now() - m.createdAt), String(m.attempts), m.finishedAt ? '-' : when(m.nextAttemptAt), `${m.from || '<>'} → ${m.recipients.map((r) => r.address).join(', ')}`]);
  const head = ['ID', 'STATE', 'AGE', 'TRIES', 'NEXT', 'ENVELOPE'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  out(line(head));
  for (const r of rows) out(line(r));
  const counts = new Map<string, number>();
  for (const m of messages) counts.set(m.state, (counts.get(m.state) ?? 0) + 1);
  out(`-- ${messages.length} message(s): ${[...counts].map(([s, n]) => `${n} ${s}`).join(', ')}`);
}

function printMessage(m: QueueMessage): void {
  out(`Message ${m.id}: ${m.state}${m.worker ? ` (worker ${m.worker})` : ''}`);
  out(`  from        ${m.from || '<>'}`);
  out(`  size        ${m.size} bytes, priority ${m.priority}`);
  out(`  queued      ${new Date(m.createdAt).toISOString()} (${age(Date.now() - m.createdAt)} ago)`);
  out(`  attempts    ${m.attempts}${m.lastAttemptAt ? `, last ${new Date(m.lastAttemptAt).toISOString()}` : ''}`);
  if (!m.finishedAt) out(`  next        ${new Date(m.nextAttemptAt).toISOString()} (${when(m.nextAttemptAt)})`);
  else out(`  finished    ${new Date(m.finishedAt).toISOString()}`);
  if (m.lastError) out(`  last error  ${m.lastError}`);
  if (m.unknownReason) out(`  unknown     ${m.unknownReason}`);
  if (Object.keys(m.metadata).length) out(`  metadata    ${JSON.stringify(m.metadata)}`);
  out('  recipients');
  for (const r of m.recipients) {
    out(`    ${r.address}  ${r.state}, ${r.attempts} attempt(s)${r.lastReply ? `, last reply ${formatReply(r.lastReply)}` : ''}`);
    if (r.lastAdvice) out(`      advice: ${r.lastAdvice}`);
  }
}

// --- delivery options ----------------------------------------------------------

export interface RunnerCliOptions extends QueueCliOptions, Partial<SendCliOptions> {
  concurrency?: string;
  connections?: string;
  retryUnknown?: boolean;
  minBackoff?: string;
  maxBackoff?: string;
  maxAge?: string;
  watch?: boolean;
  olderThan?: string;
}

/** SMTPPool options from the same server options `send` takes. */
export async function poolOptionsFrom(spec: ServerSpec): Promise<Record<string, unknown>> {
  let ca: string | undefined;
  if (spec.caFile) {
    try {
      ca = readFileSync(spec.caFile, 'utf8');
    } catch (err) {
      throw new CliError(`--ca: cannot read ${spec.caFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EX.NOINPUT);
    }
  }
  const password = spec.user && spec.password ? await spec.password() : undefined;
  return {
    host: spec.host,
    port: spec.port,
    ...(spec.tls === 'implicit' ? { implicitTls: true } : { tlsPolicy: spec.tls }),
    tls: { servername: spec.host, ...(ca ? { ca } : {}) },
    ...(spec.localHostname ? { localHostname: spec.localHostname } : {}),
    ...(spec.timeout ? { timeout: spec.timeout * 1000 } : {}),
    ...(spec.user ? { auth: { user: spec.user, pass: password ?? '' } } : {}),
    ...(spec.allowCleartextAuth ? { allowCleartextAuth: true } : {}),
    ...dkimOption(spec),
  };
}

function seconds(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(n >= 0)) throw new CliError(`${name}: "${value}" should be a number of seconds`, EX.USAGE);
  return n * 1000;
}

function count(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`${name}: "${value}" should be a whole number >= 1`, EX.USAGE);
  return n;
}

async function workerOptions(o: RunnerCliOptions, account: Account | undefined): Promise<Record<string, unknown>> {
  const spec = resolveServer({ to: [], cc: [], bcc: [], attach: [], header: [], ...o } as SendCliOptions, account);
  const smtp = await poolOptionsFrom(spec);
  const connections = count(o.connections, '--connections');
  if (connections) smtp.maxConnections = connections;
  const schedule = {
    ...(o.minBackoff !== undefined ? { minBackoffMs: seconds(o.minBackoff, '--min-backoff') } : {}),
    ...(o.maxBackoff !== undefined ? { maxBackoffMs: seconds(o.maxBackoff, '--max-backoff') } : {}),
    ...(o.maxAge !== undefined ? { maxAgeMs: seconds(o.maxAge, '--max-age') } : {}),
  };
  const concurrency = count(o.concurrency, '--concurrency');
  const keep = account?.queueRetentionMs;
  // The account's queue_retention, for delivered and failed messages alike; else the queue's default (7 days).
  const retention = keep === undefined ? {} : { retention: keep === Infinity ? false : { deliveredMs: keep, failedMs: keep } };
  return { smtp, schedule, ...(concurrency ? { concurrency } : {}), ...(o.retryUnknown ? { retryUnknown: true } : {}), ...retention };
}

/** `queue purge`'s age: --older-than, else the account's queue_retention, else the queue's default retention (7 days). */
function purgeAge(o: RunnerCliOptions, account: Account | undefined, defaultMs: number): number {
  if (o.olderThan !== undefined) {
    const ms = parseDuration(o.olderThan);
    if (ms === undefined || ms === Infinity) throw new CliError(`--older-than: "${o.olderThan}" should be a duration: 30d, 12h, 90m, 3600s (a bare number is seconds), 0 for every finished message`, EX.USAGE);
    return ms;
  }
  return account?.queueRetentionMs ?? defaultMs;
}

function accountFor(o: RunnerCliOptions): Account | undefined {
  const config = loadConfig();
  if (o.account && !config) throw new CliError(`--account ${o.account}: there is no config file`, EX.CONFIG);
  return config && (o.account || !o.server) ? chooseAccount(config, { name: o.account }) : undefined;
}

// --- commands ------------------------------------------------------------------

const DONE_TEXT = { hold: 'held', release: 'released', retry: 'retry scheduled', delete: 'deleted' } as const;
const NOT_DONE_TEXT = { hold: 'not held (already finished)', release: 'not released (not held)', retry: 'not retried (delivered, or held)', delete: 'not deleted' } as const;

const STATES: readonly QueueState[] = ['queued', 'active', 'deferred', 'delivered', 'bounced', 'unknown', 'held'];

export async function runQueueCommand(command: string, ids: string[], o: RunnerCliOptions & { state?: string; search?: string; limit?: string }): Promise<number> {
  const needsAccount = command === 'run' || command === 'flush';
  let account: Account | undefined;
  // purge reads the account's queue_retention even with --queue-dir.
  if (needsAccount || command === 'purge' || !o.queueDir) {
    try {
      account = accountFor(o);
    } catch (error) {
      // purge too: its default age may come from the config file, which must then be readable.
      if (needsAccount || command === 'purge') throw error;
    }
  }
  const queue = await openQueue(queueDirFrom(o.queueDir, account));
  try {
    switch (command) {
      case 'list': {
        const states = o.state ? o.state.split(',').map((s) => s.trim()) : undefined;
        for (const s of states ?? []) if (!STATES.includes(s as QueueState)) throw new CliError(`--state: "${s}" should be one of ${STATES.join(', ')}`, EX.USAGE);
        const messages = await queue.list({
          ...(states ? { state: states as QueueState[] } : {}),
          ...(o.search ? { search: o.search } : {}),
          ...(o.limit ? { limit: count(o.limit, '--limit')! } : {}),
        });
        if (o.json) out(JSON.stringify(messages.map(toJson), null, 2));
        else printList(messages);
        return EX.OK;
      }
      case 'show': {
        let missing = 0;
        const found: QueueMessage[] = [];
        for (const id of ids) {
          const message = await queue.get(id);
          if (!message) {
            process.stderr.write(`smtplib: no message ${id} in the queue\n`);
            missing++;
          } else found.push(message);
        }
        if (o.json) out(JSON.stringify(ids.length === 1 ? (found[0] ? toJson(found[0]) : null) : found.map(toJson), null, 2));
        else found.forEach(printMessage);
        return missing ? EX.NOINPUT : EX.OK;
      }
      case 'hold':
      case 'release':
      case 'retry':
      case 'delete': {
        let failed = 0;
        const results: { id: string; done: boolean; error?: string }[] = [];
        for (const id of ids) {
          try {
            const done = await queue[command](id);
            results.push({ id, done });
            if (!o.json) out(`${id}: ${done ? DONE_TEXT[command] : NOT_DONE_TEXT[command]}`);
          } catch (error) {
            failed++;
            results.push({ id, done: false, error: (error as Error).message });
            if (!o.json) process.stderr.write(`smtplib: ${id}: ${(error as Error).message}\n`);
          }
        }
        if (o.json) out(JSON.stringify(results, null, 2));
        return failed ? EX.TEMPFAIL : EX.OK;
      }
      case 'flush': {
        const options = await workerOptions(o, account);
        const started = Date.now();
        const { ids: flushed, stats } = await queue.flush(options as never);
        if (o.json) out(JSON.stringify({ attempted: flushed, ...stats, ms: Date.now() - started }, null, 2));
        else out(`flushed ${flushed.length} message(s) in ${Date.now() - started} ms: ${stats.delivered} delivered, ${stats.deferred} deferred, ${stats.bounced} bounced, ${stats.unknown} unknown`);
        return EX.OK;
      }
      case 'purge': {
        const { DEFAULT_RETENTION_MS } = await loadQueue();
        const ageMs = purgeAge(o, account, DEFAULT_RETENTION_MS);
        if (ageMs === Infinity) {
          // queue_retention forever: nothing is old enough.
          if (o.json) out(JSON.stringify({ purged: 0, olderThanMs: null, finishedBefore: null }, null, 2));
          else out('purged nothing: queue_retention is forever (give --older-than to purge anyway)');
          return EX.OK;
        }
        const finishedBefore = Date.now() - ageMs;
        const started = Date.now();
        const purged = await queue.purge({ finishedBefore });
        if (o.json) out(JSON.stringify({ purged, olderThanMs: ageMs, finishedBefore: new Date(finishedBefore).toISOString(), ms: Date.now() - started }, null, 2));
        else out(`purged ${purged} finished message(s) (delivered, bounced, unknown) that finished before ${new Date(finishedBefore).toISOString()} (older than ${age(ageMs)}) in ${Date.now() - started} ms`);
        return EX.OK;
      }
      case 'run':
        return await runWorker(queue, await workerOptions(o, account), o);
      default:
        throw new CliError(`unknown queue command ${command}`, EX.USAGE);
    }
  } finally {
    await queue.close();
  }
}

/** `queue run`: deliver what is due until the queue is idle, or (--watch) until SIGINT/SIGTERM. */
async function runWorker(queue: MailQueue, options: Record<string, unknown>, o: RunnerCliOptions): Promise<number> {
  const worker = queue.worker(options as never);
  const started = Date.now();
  worker.on('error', (error) => process.stderr.write(`smtplib: queue: ${error.message}\n`));
  const tty = Boolean(process.stderr.isTTY) && !o.json;
  const progress = (): void => {
    const s = worker.stats();
    const line = `attempts ${s.attempts}  delivered ${s.delivered}  deferred ${s.deferred}  bounced ${s.bounced}  unknown ${s.unknown}  in flight ${s.inFlight}  ${age(Date.now() - started)}`;
    if (tty) process.stderr.write(`\r\x1b[2K${line}`);
    else if (o.watch && !o.json) process.stderr.write(`${line}\n`);
  };
  if (o.json) {
    worker.on('attempt', (event) => out(JSON.stringify({ event: 'attempt', id: event.id, attempt: event.attempt, state: restingOf(event.message), ms: event.durationMs })));
  }
  if (!o.watch) {
    const timer = tty ? setInterval(progress, 250) : undefined;
    const stats = await worker.runUntilIdle();
    clearInterval(timer);
    if (tty) process.stderr.write('\n');
    if (o.json) out(JSON.stringify({ event: 'idle', ...stats }));
    else out(`queue run: ${stats.attempts} attempt(s): ${stats.delivered} delivered, ${stats.deferred} deferred, ${stats.bounced} bounced, ${stats.unknown} unknown`);
    return EX.OK;
  }
  await worker.start();
  const timer = setInterval(progress, tty ? 250 : 10_000);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  clearInterval(timer);
  if (tty) process.stderr.write('\n');
  await worker.stop();
  const stats = worker.stats();
  if (o.json) out(JSON.stringify({ event: 'stopped', ...stats }));
  else out(`queue run: stopped after ${stats.attempts} attempt(s): ${stats.delivered} delivered, ${stats.deferred} deferred, ${stats.bounced} bounced, ${stats.unknown} unknown`);
  return EX.OK;
}

function restingOf(message: { recipients: { state: string }[] }): string {
  const states = message.recipients.map((r) => r.state);
  if (states.some((s) => s === 'queued' || s === 'deferred')) return 'deferred';
  if (states.includes('unknown')) return 'unknown';
  return states.includes('delivered') ? 'delivered' : 'bounced';
}

// --- registration ----------------------------------------------------------------

/** Adds `smtplib queue ...` to the program (one line in bin.ts). */
export function registerQueueCommands(program: Command): void {
  const queue = program
    .command('queue')
    .description('The durable outbound queue (a spool directory): list, show, hold, release, retry, delete, purge, flush, run.')
    .addHelpText('after', `
Every subcommand takes --queue-dir DIR (or env SMTPLIB_QUEUE_DIR, or "queue_dir DIR"
in the config file's account). \`send\` and \`sendmail\` with a queue directory accept
the message into the queue and exit 0 once it is on disk; \`queue run\` delivers it.

Examples:
  smtplib sendmail --queue-dir ~/.mailq -t < note.eml
  smtplib queue list --queue-dir ~/.mailq
  smtplib queue run --queue-dir ~/.mailq --account work --watch
  smtplib queue flush --queue-dir ~/.mailq --server relay.example.com:587 -u alice --password-env PASS
  smtplib queue purge --queue-dir ~/.mailq --older-than 1d

Finished messages (delivered, bounced, unknown) are kept for 7 days, then \`queue run\`
removes them (record, body, idempotency key); "queue_retention DURATION|forever" in the
account changes that, and \`queue purge\` removes them now.`);
  const common = (c: Command): Command => c.option('--queue-dir <dir>', 'the spool directory (default: $SMTPLIB_QUEUE_DIR, or the account\'s queue_dir)').option('--json', 'print JSON');
  const server = (c: Command): Command =>
    c
      .option('-s, --server <host[:port]>', 'the relay to deliver through (default: the account\'s)')
      .option('--tls <mode>', 'required, opportunistic, none or implicit')
      .option('--ca <file>', 'trust the CA certificate(s) in this PEM file too')
      .option('--timeout <seconds>', 'give up on a silent server after this long')
      .option('--helo <name>', 'name to give in EHLO')
      .option('--account <name>', 'take server, TLS, user and password from this account of the config file')
      .option('-u, --user <name>', 'log in with AUTH as this user')
      .option('--password-env <var>', 'read the password from this environment variable')
      .option('--password-file <file>', 'read the password from the first line of this file')
      .option('--insecure-auth', 'allow AUTH without TLS (test servers only)')
      .option('--connections <n>', 'connections to the relay (default 5)')
      .option('--concurrency <n>', 'messages in flight at once (default: connections x 10)')
      .option('--retry-unknown', 'resend messages whose delivery is unknown (may deliver twice)')
      .option('--min-backoff <seconds>', 'first retry delay (default 300)')
      .option('--max-backoff <seconds>', 'longest retry delay (default 4000)')
      .option('--max-age <seconds>', 'bounce what still fails after this long (default 432000, 5 days)');
  common(queue.command('list').description('List messages: id, state, age, attempts, next attempt, envelope.'))
    .option('--state <states>', `only these states (comma list of ${STATES.join(', ')})`)
    .option('--search <text>', 'only messages whose sender or a recipient contains TEXT')
    .option('--limit <n>', 'at most N messages (oldest first)')
    .action(async (opts) => {
      process.exitCode = await runQueueCommand('list', [], opts);
    });
  common(queue.command('show').description('Show messages in full: every recipient, its last reply and what to do about it.').argument('<id...>'))
    .action(async (ids: string[], opts) => {
      process.exitCode = await runQueueCommand('show', ids, opts);
    });
  for (const [name, text] of [
    ['hold', 'Put messages aside: not attempted until released.'],
    ['release', 'Release held messages (due now).'],
    ['retry', 'Attempt messages at the next run; unknown and bounced recipients are queued again.'],
    ['delete', 'Remove messages from the queue (not while an attempt runs).'],
  ] as const) {
    common(queue.command(name).description(text).argument('<id...>')).action(async (ids: string[], opts) => {
      process.exitCode = await runQueueCommand(name, ids, opts);
    });
  }
  common(queue.command('purge').description('Remove finished messages (delivered, bounced, unknown) older than the retention: record, body, idempotency key. Never a pending or held one.'))
    .option('--older-than <duration>', 'finished before this long ago: 30d, 12h, 90m, 3600s (a bare number is seconds; 0: every finished message). Default: the account\'s queue_retention, else 7d')
    .option('--account <name>', 'take queue_dir and queue_retention from this account of the config file')
    .action(async (opts) => {
      process.exitCode = await runQueueCommand('purge', [], opts);
    });
  server(common(queue.command('flush').description('Attempt every queued and deferred message now; returns when those attempts have ended.')))
    .action(async (opts) => {
      process.exitCode = await runQueueCommand('flush', [], opts);
    });
  server(common(queue.command('run').description('Deliver what is due until the queue is idle; with --watch, keep running (SIGINT/SIGTERM stop it after the attempts in flight).')))
    .option('--watch', 'keep running as a worker, with a progress line on a terminal')
    .action(async (opts) => {
      process.exitCode = await runQueueCommand('run', [], opts);
    });
}
