// A user's program, installed from the packed tarballs (test/packaging):
// the same file is compiled as CommonJS by TypeScript 5 (module commonjs,
// moduleResolution node10, no esModuleInterop) and by TypeScript 7 (nodenext,
// once in a "type": "commonjs" folder and once in a "type": "module" one),
// then run. It uses only the public names and subpaths, sends real mail to the
// server the test started (SMTP_PORT) and prints one JSON line per step; the
// test checks what the server received.
import { SMTP, SMTPPool, SMTPRecipientsRefused, type RefusedRecipients } from 'smtplib';
import { EmailMessage, parseMessage } from 'smtplib-email';
import { MailQueue } from 'smtplib-queue';
import { RedisStore } from 'smtplib-queue-redis';
import { startCapture } from 'smtplib-capture';
import { Inbox } from 'smtplib-capture/testing';
import { SmtplibInstrumentation } from 'smtplib-otel';
import { startDebugServer } from 'smtplib-cli/serve';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const variant = process.env.CONSUMER_VARIANT ?? 'unnamed';
const port = Number(process.env.SMTP_PORT);
const host = '127.0.0.1';

function report(step: string, detail: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ variant, step, ...detail })}\n`);
}

function raw(subject: string): string {
  return `From: app@example.com\r\nTo: ann@example.org\r\nSubject: ${subject}\r\n\r\nHello from ${variant}.\r\n`;
}

function check(refused: RefusedRecipients, step: string): void {
  if (refused.size !== 0) throw new Error(`${step}: refused ${JSON.stringify(refused)}`);
}

async function main(): Promise<void> {
  // Under CommonJS, which build of the dual smtplib package require() picked.
  const commonjs = typeof require === 'function';
  report('loaded', { moduleSystem: commonjs ? 'commonjs' : 'esm', smtplibEntry: commonjs ? require.resolve('smtplib') : null });
  const instrumentation = new SmtplibInstrumentation().enable();

  // SMTP: sendmail with raw bytes, then sendMessage with an EmailMessage.
  const smtp = await SMTP.connect({ host, port });
  check(await smtp.sendmail('app@example.com', ['ann@example.org'], raw(`${variant}: SMTP.sendmail`)), 'sendmail');
  const msg = new EmailMessage();
  msg.set('From', 'App <app@example.com>');
  msg.set('To', 'Ann <ann@example.org>');
  msg.set('Subject', `${variant}: SMTP.sendMessage`);
  msg.setContent('Composed with smtplib-email.\n');
  check(await smtp.sendMessage(msg), 'sendMessage');
  await smtp.quit();
  report('smtp');

  // SMTPPool.
  const pool = new SMTPPool({ host, port, maxConnections: 2 });
  const pooled = await pool.sendmail('app@example.com', 'ann@example.org', raw(`${variant}: SMTPPool.sendmail`));
  await pool.close();
  if (pooled.accepted.join() !== 'ann@example.org') throw new Error(`pool: accepted ${pooled.accepted.join()}`);
  report('pool');

  // MailQueue on a spool directory, delivered by its worker.
  const dir = await mkdtemp(join(tmpdir(), 'smtplib-consumer-queue-'));
  try {
    const queue = await MailQueue.open({ dir });
    const { id } = await queue.enqueue({ from: 'app@example.com', to: ['ann@example.org'], message: raw(`${variant}: MailQueue`) });
    const worker = queue.worker({ smtp: { host, port } });
    await worker.start();
    const done = await queue.wait(id, { timeoutMs: 30_000 });
    await worker.stop();
    await queue.close();
    if (done.state !== 'delivered') throw new Error(`queue: ${id} is ${done.state}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  report('queue');

  // The capture server, through its test helper: send to it, read it back, parse it.
  const inbox = await Inbox.start();
  try {
    const to = await SMTP.connect(inbox.smtp);
    await to.sendmail('app@example.com', 'ann@example.org', raw(`${variant}: capture`));
    await to.quit();
    const arrived = await inbox.waitFor({ subject: `${variant}: capture` });
    const parsed = parseMessage(await inbox.raw(arrived.id));
    if (parsed.get('subject') !== `${variant}: capture`) throw new Error(`capture: parsed subject ${parsed.get('subject')}`);
  } finally {
    await inbox.close();
  }
  report('capture');

  // The CLI's debugging server as a library, and a refusal as a typed error.
  const debug = await startDebugServer({ port: 0, refuseRcpt: { 'nobody@example.org': { code: 550, message: 'No such user' } } });
  try {
    const to = await SMTP.connect({ host: debug.host, port: debug.port });
    const error = await to.sendmail('app@example.com', 'nobody@example.org', raw('refused')).catch((e: unknown) => e);
    await to.quit();
    if (!(error instanceof SMTPRecipientsRefused)) throw new Error(`debug server: expected SMTPRecipientsRefused, got ${String(error)}`);
  } finally {
    await debug.close();
  }
  report('cli-serve');

  // Loaded and constructible without a Redis server (RedisStore connects in open()).
  if (typeof RedisStore !== 'function' || typeof startCapture !== 'function') throw new Error('exports missing');
  instrumentation.disable();
  report('done');
}

main().catch((error: unknown) => {
  report('failed', { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exitCode = 1;
});
