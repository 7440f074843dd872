// `smtplib send`: send one message (or a batch) through an SMTP server.
import { readFileSync } from 'node:fs';
import { accountPassword, chooseAccount, loadConfig, readPasswordFile, type Account, type TlsMode } from '../config.js';
import { defaultPort, describeTarget, dkimSettings, parseServerArg, parseTlsMode, type ServerSpec } from '../connection.js';
import { deliverOne, exitCodeFor, formatOutcomes, mailOptionsOf, outcomeJson, parseNotify, type DsnOptions } from '../deliver.js';
import { CliError, EX } from '../exit-codes.js';
import { oauthFor } from '../oauth-account.js';
import { composeMessage, parseAddressArg, parseInlineArg } from '../message.js';
import { headerEnvelope, prepareRawMessage } from '../raw-message.js';
import { promptMessage, promptPassword } from '../prompt.js';

export interface SendCliOptions {
  server?: string;
  tls?: string;
  ca?: string;
  fingerprint?: string[];
  timeout?: string;
  helo?: string;
  lmtp?: boolean;
  account?: string;
  user?: string;
  passwordEnv?: string;
  passwordFile?: string;
  insecureAuth?: boolean;
  from?: string;
  to: string[];
  cc: string[];
  bcc: string[];
  message?: string;
  subject?: string;
  body?: string;
  attach: string[];
  html?: string;
  inline?: string[];
  header: string[];
  notify?: string;
  ret?: string;
  envid?: string;
  requireTls?: boolean;
  smtputf8?: boolean;
  debug?: boolean;
  verbose?: boolean;
  quiet?: boolean;
  json?: boolean;
  batch?: string;
  concurrency?: string;
  attempts?: string;
  queueDir?: string;
  dkimKey?: string;
  dkimSelector?: string;
  dkimDomain?: string;
}

export async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function readInputFile(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(`${what}: cannot read ${file}${code === 'ENOENT' ? ': no such file' : code ? `: ${code}` : ''}`, EX.NOINPUT);
  }
}

/** Server settings from the command line, falling back to an account from the config file. */
export function resolveServer(o: SendCliOptions, account: Account | undefined): ServerSpec {
  const server = o.server ? parseServerArg(o.server) : account?.host ? { host: account.host, port: account.port } : undefined;
  if (!server) {
    throw new CliError('no server given', EX.USAGE, 'use --server HOST[:PORT], or --account NAME with an account in the config file');
  }
  // No --tls and no account setting: the library's default for this host and port.
  const tls: TlsMode | undefined = o.tls ? parseTlsMode(o.tls) : account?.tls;
  const user = o.user ?? (o.server ? undefined : account?.user);
  let password: (() => Promise<string>) | undefined;
  if (user) {
    if (o.passwordEnv) {
      const name = o.passwordEnv;
      password = async () => {
        const v = process.env[name];
        if (v === undefined) throw new CliError(`--password-env: the environment variable ${name} is not set`, EX.CONFIG);
        return v;
      };
    } else if (o.passwordFile) {
      const file = o.passwordFile;
      password = async () => readPasswordFile(file, '--password-file');
    } else if (account && !o.user && (account.passwordeval || account.passwordFile || account.password)) {
      password = async () => accountPassword(account) ?? '';
    } else {
      password = () => promptPassword(`Password for ${user}: `);
    }
  }
  const lmtp = Boolean(o.lmtp ?? account?.lmtp);
  const timeout = o.timeout !== undefined ? Number(o.timeout) : account?.timeout;
  if (timeout !== undefined && !(timeout > 0)) throw new CliError(`--timeout: "${o.timeout}" should be a number of seconds`, EX.USAGE);
  return {
    host: server.host,
    port: server.host.startsWith('/') ? undefined : (server.port ?? defaultPort({ tls, lmtp, user })),
    tls,
    user,
    password,
    oauth: oauthFor(o.user || o.server ? undefined : account, o.ca),
    caFile: o.ca ?? account?.ca,
    fingerprints: o.fingerprint?.length ? o.fingerprint : account?.fingerprints,
    insecure: o.server ? undefined : account?.insecure,
    clientCert: o.server ? undefined : account?.clientCert,
    clientKey: o.server ? undefined : account?.clientKey,
    mechanism: user && user === account?.user ? account.mechanism : undefined,
    minTls: o.server ? undefined : account?.minTls,
    sourceAddress: o.server ? undefined : account?.sourceAddress,
    timeout,
    localHostname: o.helo ?? account?.localHostname,
    lmtp,
    debug: o.debug ? 2 : o.verbose ? 1 : 0,
    allowCleartextAuth: Boolean(o.insecureAuth),
    dkim: dkimSettings({ keyFile: o.dkimKey ?? account?.dkim?.keyFile, selector: o.dkimSelector ?? account?.dkim?.selector, domain: o.dkimDomain ?? account?.dkim?.domain }),
  };
}

export function dsnFrom(o: { notify?: string | undefined; ret?: string | undefined; envid?: string | undefined; requireTls?: boolean | undefined; smtputf8?: boolean | undefined }): DsnOptions {
  let ret: DsnOptions['ret'];
  if (o.ret) {
    const r = o.ret.toUpperCase();
    if (r !== 'FULL' && r !== 'HDRS') throw new CliError(`--ret: "${o.ret}" should be full or hdrs`, EX.USAGE);
    ret = r;
  }
  if (o.envid && !/^[!-~]{1,100}$/.test(o.envid)) throw new CliError('--envid: printable ASCII without spaces, at most 100 characters', EX.USAGE);
  return {
    ...(o.notify ? { notify: parseNotify(o.notify) } : {}),
    ...(ret ? { ret } : {}),
    ...(o.envid ? { envid: o.envid } : {}),
    ...(o.requireTls ? { requireTls: true } : {}),
    ...(o.smtputf8 ? { smtputf8: true } : {}),
  };
}

const addrs = (values: string[], what: string): string[] => values.flatMap((v) => parseAddressArg(v, what));

export async function runSend(o: SendCliOptions): Promise<number> {
  if (o.batch) {
    const { runBatch } = await import('./batch.js');
    return runBatch(o);
  }
  const config = loadConfig();
  // The config file is used when no --server is given, or when --account names an account.
  const accountFor = (sender: string | undefined): Account | undefined =>
    config && (o.account || !o.server) ? chooseAccount(config, { name: o.account, sender }) : undefined;
  const to = addrs(o.to, '--to');
  const cc = addrs(o.cc, '--cc');
  const bcc = addrs(o.bcc, '--bcc');
  let from = o.from ? parseAddressArg(o.from, '--from')[0] : undefined;
  const dsn = dsnFrom(o);

  const building = o.subject !== undefined || o.body !== undefined || o.attach.length > 0 || o.header.length > 0 || o.html !== undefined || (o.inline?.length ?? 0) > 0;
  if (building && o.message) throw new CliError('--message takes a whole message; do not combine it with --subject, --body, --attach or --header', EX.USAGE);

  let data: Buffer;
  let recipients: string[];
  if (building) {
    if (to.length + cc.length + bcc.length === 0) throw new CliError('no recipients', EX.USAGE, 'give --to, --cc or --bcc');
    if (!from) {
      const account = accountFor(undefined);
      from = account?.from && !account.from.includes('*') ? parseAddressArg(account.from, 'from')[0] : undefined;
    }
    if (!from) throw new CliError('no sender', EX.USAGE, 'give --from ADDRESS');
    let text: string | Buffer | undefined = o.body;
    if (text === undefined && !process.stdin.isTTY) text = await readStdin();
    data = await composeMessage({
      from: o.from ?? from!,
      to,
      cc,
      bcc,
      subject: o.subject,
      text: text === undefined ? (o.html === undefined ? '' : undefined) : text,
      html: o.html === undefined ? undefined : readInputFile(o.html, '--html').toString('utf8'),
      inline: (o.inline ?? []).map(parseInlineArg),
      attachments: o.attach,
      headers: o.header,
    });
    recipients = [...to, ...cc, ...bcc];
  } else {
    let raw: Buffer;
    let typed = false;
    if (o.message && o.message !== '-') raw = readInputFile(o.message, '--message');
    else if (!o.message && process.stdin.isTTY) {
      // The seed example's dialogue.
      const answers = await promptMessage({ from, to: to.length ? [...to, ...cc, ...bcc] : undefined });
      typed = true;
      from = parseAddressArg(answers.from, 'From')[0];
      const list = answers.to.flatMap((t) => parseAddressArg(t, 'To'));
      if (list.length === 0) throw new CliError('no recipients', EX.USAGE);
      const msg = `From: ${from}\r\nTo: ${list.join(', ')}\r\n\r\n` + answers.body.replace(/\r\n|\r|\n/g, '\r\n');
      process.stdout.write(`Message length is ${msg.length}\n`);
      raw = Buffer.from(msg, 'utf8');
      to.splice(0, to.length, ...list);
      cc.length = 0;
      bcc.length = 0;
    } else raw = await readStdin();
    if (raw.length === 0) throw new CliError('the message is empty', EX.NOINPUT, 'give --message FILE, pipe a message on stdin, or use --subject/--body');
    const envelope = headerEnvelope(raw);
    from ??= envelope.from;
    if (!from) throw new CliError('no sender: give --from, or a From: header in the message', EX.USAGE);
    // As sendmail does: a message without Date or Message-ID gets them (and From, from the envelope).
    // The prompted dialogue sends what was typed, as the seed's example program does.
    recipients = to.length + cc.length + bcc.length > 0 ? [...to, ...cc, ...bcc] : envelope.to;
    if (recipients.length === 0) throw new CliError('no recipients: give --to/--cc/--bcc, or To:/Cc:/Bcc: headers in the message', EX.USAGE);
    data = prepareRawMessage(raw, { addMissing: !typed, envelopeFrom: from });
  }
  recipients = [...new Map(recipients.map((r) => [r.toLowerCase(), r])).values()];

  if (o.account && !config) throw new CliError(`--account ${o.account}: there is no config file`, EX.CONFIG);
  const account = accountFor(from);
  const { queueDirFrom, enqueueFromCli } = await import('./queue.js');
  const queueDir = queueDirFrom(o.queueDir, account);
  if (queueDir) {
    const id = await enqueueFromCli({ dir: queueDir, from, to: recipients, data, mailOptions: mailOptionsOf(dsn), ...(dsn.notify ? { rcptOptions: { notify: dsn.notify } } : {}), metadata: account ? { account: account.name } : {} });
    if (!o.quiet) process.stdout.write(`Message (${data.length} bytes) queued as ${id} in ${queueDir} for ${recipients.length} recipient(s)\n`);
    return EX.OK;
  }
  const spec = resolveServer(o, account);
  const started = Date.now();
  const outcomes = await deliverOne(spec, from, recipients, data, dsn);
  const where = describeTarget(spec);
  const delivered = outcomes.filter((x) => x.status === 'delivered').map((x) => x.recipient);
  const failed = outcomes.filter((x) => x.status !== 'delivered');
  const code = exitCodeFor(outcomes);
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ server: where, bytes: data.length, ms: Date.now() - started, exitCode: code, recipients: outcomes.map(outcomeJson) })}\n`);
    return code;
  }
  if (!o.quiet && delivered.length) {
    process.stdout.write(`Message (${data.length} bytes) accepted by ${where} for ${delivered.length} recipient(s) in ${Date.now() - started} ms: ${delivered.join(', ')}\n`);
  }
  if (failed.length) {
    process.stderr.write(`smtplib: ${failed.length} recipient(s) refused by ${where}:\n${formatOutcomes(failed)}\n`);
    if (delivered.length) process.stderr.write(`smtplib: partial delivery (exit ${EX.PARTIAL}): only ${delivered.join(', ')} got the message\n`);
  }
  return code;
}
