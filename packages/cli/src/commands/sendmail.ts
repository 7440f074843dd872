// `smtplib sendmail` / `smtplib-sendmail`: the interface programs expect of
// /usr/sbin/sendmail. Reads a message on stdin and hands it to the SMTP
// server of an account from the config file (msmtp-like), chosen by
// --account, by the envelope sender, or as the default.
import { appendFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { accountPassword, chooseAccount, configPath, expandAliases, isFromPattern, loadConfig, warnOnce, type Account, type TlsMode } from '../config.js';
import { defaultPort, dkimSettings, parseServerArg, parseTlsMode, type ServerSpec } from '../connection.js';
import { deliverOne, exitCodeFor, formatOutcomes, mailOptionsOf, parseNotify, rcptOptionsOf, type DsnOptions, type RecipientOutcome } from '../deliver.js';
import { enqueueFromCli, queueDirFrom } from './queue.js';
import { describeError } from '../errors.js';
import { CliError, EX } from '../exit-codes.js';
import { oauthFor } from '../oauth-account.js';
import { parseAddressArg } from '../message.js';
import { headerEnvelope, prepareRawMessage } from '../raw-message.js';
import { promptPassword } from '../prompt.js';

export const SENDMAIL_HELP = `Usage: smtplib sendmail [options] [recipient ...]
       smtplib-sendmail [options] [recipient ...]

Reads a message on standard input and sends it through the SMTP server of an
account in ${'$'}SMTPLIB_CONFIG, ${'$'}XDG_CONFIG_HOME/smtplib/config, ~/.config/smtplib/config
or ~/.msmtprc (msmtp's format: a copied ~/.msmtprc works), the way programs call
/usr/sbin/sendmail. Bcc: header fields are never sent; From:, Date: and
Message-ID: are added when missing (msmtp's set_*_header settings apply).

Options:
  -t                 take recipients from the To:, Cc: and Bcc: fields too
  -f, -r ADDRESS     envelope sender (default: the account's from, else the From: field)
  -F "Full Name"     name for the From: field when it has to be added
  -i, -oi            a line with a single "." does not end the message
  -v                 print the SMTP transcript (twice: with timings)
  -N LIST            DSN: never, or a comma list of success,failure,delay
  -R full|hdrs       DSN: what a bounce returns
  -V ENVID           DSN: envelope identifier
  -C FILE            use this config file
  --account NAME, -a NAME
                     use this account (default: the one whose "from" matches the
                     envelope sender, else "account default : NAME")
  --server HOST[:PORT], --tls MODE
                     send without a config file (MODE: required, opportunistic,
                     none, implicit)
  --queue-dir DIR    accept the message into this queue (smtplib-queue spool) and
                     exit 0 once it is on disk; \`smtplib queue run\` delivers it
                     (also ${'$'}SMTPLIB_QUEUE_DIR, or "queue_dir DIR" in the account)
  -h, --help         this text
  Accepted and ignored: -bm -odi -odb -oem -oep -om -oQ... -em -ee -B TYPE -X FILE -G -U

Config file example (msmtp's format):
  defaults
  tls on
  account work
  host smtp.example.com
  port 587
  from alice@example.com
  auth on
  user alice
  passwordeval "pass show mail/work"

  account default : work

Without a "tls" line the library's default applies (TLS required, except to
loopback and Unix sockets), where msmtp would send in plaintext. Settings that
do not map onto a feature (syslog, tls_crl_file, proxy_host, ...) are reported
once on stderr and ignored; a log file that cannot be written never stops mail.

Exit codes: 0 sent, 64 usage, 65 message refused, 66 no input, 69 refused
permanently / unavailable, 75 temporary failure (try again later), 76 protocol,
77 authentication failed, 78 configuration, 79 partial delivery (some
recipients got the message: stderr says who; do not resend to all).
`;

export interface SendmailArgs {
  recipients: string[];
  readHeaders: boolean;
  from?: string | undefined;
  fullName?: string | undefined;
  ignoreDots: boolean;
  verbose: number;
  account?: string | undefined;
  configFile?: string | undefined;
  server?: string | undefined;
  tls?: string | undefined;
  queueDir?: string | undefined;
  dsn: DsnOptions;
  help: boolean;
}

export function parseSendmailArgs(argv: string[]): SendmailArgs {
  const a: SendmailArgs = { recipients: [], readHeaders: false, ignoreDots: false, verbose: 0, dsn: {}, help: false };
  const value = (i: number, flag: string, inline: string): [string, number] => {
    if (inline) return [inline, i];
    const v = argv[i + 1];
    if (v === undefined) throw new CliError(`${flag} needs a value`, EX.USAGE);
    return [v, i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      a.recipients.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      a.recipients.push(arg);
      continue;
    }
    if (arg.startsWith('--')) {
      const [name, eqValue] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, ''];
      switch (name) {
        case '--help':
          a.help = true;
          continue;
        case '--account':
        case '--server':
        case '--tls':
        case '--from':
        case '--queue-dir':
        case '--config': {
          const [v, j] = value(i, name, eqValue);
          i = j;
          if (name === '--account') a.account = v;
          else if (name === '--server') a.server = v;
          else if (name === '--tls') a.tls = v;
          else if (name === '--from') a.from = v;
          else if (name === '--queue-dir') a.queueDir = v;
          else a.configFile = v;
          continue;
        }
        case '--read-recipients':
          a.readHeaders = true;
          continue;
        case '--verbose':
          a.verbose++;
          continue;
        default:
          throw new CliError(`unknown option ${name}`, EX.USAGE, 'see smtplib sendmail --help');
      }
    }
    const flag = arg.slice(0, 2);
    const rest = arg.slice(2);
    switch (flag) {
      case '-h':
        a.help = true;
        break;
      case '-t':
        if (rest) throw new CliError(`unknown option ${arg}`, EX.USAGE);
        a.readHeaders = true;
        break;
      case '-i':
        a.ignoreDots = true;
        break;
      case '-v':
        a.verbose += 1 + (rest.match(/v/g)?.length ?? 0);
        break;
      case '-f':
      case '-r': {
        const [v, j] = value(i, flag, rest);
        i = j;
        a.from = v;
        break;
      }
      case '-F': {
        const [v, j] = value(i, flag, rest);
        i = j;
        a.fullName = v;
        break;
      }
      case '-a': {
        const [v, j] = value(i, flag, rest);
        i = j;
        a.account = v;
        break;
      }
      case '-C': {
        const [v, j] = value(i, flag, rest);
        i = j;
        a.configFile = v;
        break;
      }
      case '-N': {
        const [v, j] = value(i, flag, rest);
        i = j;
        a.dsn.notify = parseNotify(v);
        break;
      }
      case '-R': {
        const [v, j] = value(i, flag, rest);
        i = j;
        const r = v.toUpperCase();
        if (r !== 'FULL' && r !== 'HDRS') throw new CliError(`-R ${v}: should be full or hdrs`, EX.USAGE);
        a.dsn.ret = r;
        break;
      }
      case '-V': {
        const [v, j] = value(i, flag, rest);
        i = j;
        a.dsn.envid = v;
        break;
      }
      case '-o':
        // -oi is -i; -oem, -odi, -oQ/dir and the like concern a local queue: accepted, ignored.
        if (rest === 'i') a.ignoreDots = true;
        else if (rest === '') i++; // "-o option" form
        break;
      case '-b':
        if (rest !== 'm') {
          throw new CliError(`-b${rest} is not supported: only sending a message (-bm, the default) is`, EX.USAGE);
        }
        break;
      case '-B':
      case '-X':
        if (!rest) i++;
        break;
      case '-e':
      case '-G':
      case '-U':
        break;
      default:
        throw new CliError(`unknown option ${arg}`, EX.USAGE, 'see smtplib sendmail --help');
    }
  }
  return a;
}

/**
 * Reads stdin. Unless `ignoreDots`, a line holding a single "." ends the
 * message (and stdin is not read further), as sendmail does.
 */
export async function readMessage(ignoreDots: boolean): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let pending = Buffer.alloc(0);
  for await (const chunk of process.stdin) {
    if (ignoreDots) {
      chunks.push(chunk as Buffer);
      continue;
    }
    pending = Buffer.concat([pending, chunk as Buffer]);
    let start = 0;
    for (;;) {
      const nl = pending.indexOf(0x0a, start);
      if (nl < 0) break;
      const line = pending.subarray(start, nl).toString('latin1').replace(/\r$/, '');
      if (line === '.') {
        chunks.push(pending.subarray(0, start));
        process.stdin.pause();
        return Buffer.concat(chunks);
      }
      start = nl + 1;
    }
    chunks.push(pending.subarray(0, start));
    pending = pending.subarray(start);
  }
  if (!ignoreDots && pending.toString('latin1').replace(/\r$/, '') !== '.') chunks.push(pending);
  return Buffer.concat(chunks);
}

function specFromAccount(account: Account, args: SendmailArgs): ServerSpec {
  if (!account.host) throw new CliError(`account "${account.name}" (${account.where}) has no host`, EX.CONFIG);
  // No --tls and no tls setting: the library's default for this host and port.
  const tls: TlsMode | undefined = args.tls ? parseTlsMode(args.tls) : account.tls;
  return {
    host: account.host,
    port: account.host.startsWith('/') ? undefined : (account.port ?? defaultPort({ tls, lmtp: account.lmtp, user: account.user })),
    tls,
    user: account.user,
    password: account.user
      ? async () => accountPassword(account) ?? (await promptPassword(`Password for ${account.user} at ${account.host}: `))
      : undefined,
    oauth: oauthFor(account),
    caFile: account.ca,
    clientCert: account.clientCert,
    clientKey: account.clientKey,
    mechanism: account.mechanism,
    fingerprints: account.fingerprints,
    insecure: account.insecure,
    minTls: account.minTls,
    sourceAddress: account.sourceAddress,
    timeout: account.timeout,
    localHostname: account.localHostname,
    lmtp: account.lmtp,
    debug: args.verbose >= 2 ? 2 : args.verbose === 1 ? 1 : 0,
    dkim: dkimSettings(account.dkim ?? {}),
  };
}

export async function runSendmail(argv: string[], prog = 'sendmail'): Promise<number> {
  try {
    return await sendmail(argv);
  } catch (err) {
    const d = describeError(err);
    process.stderr.write(`${prog}: ${d.message}\n`);
    if (d.hint) process.stderr.write(`${prog}: hint: ${d.hint}\n`);
    return d.exitCode;
  }
}

async function sendmail(argv: string[]): Promise<number> {
  const args = parseSendmailArgs(argv);
  if (args.help) {
    process.stdout.write(SENDMAIL_HELP);
    return EX.OK;
  }
  const env = args.configFile ? { ...process.env, SMTPLIB_CONFIG: args.configFile } : process.env;
  const config = args.server && !args.account ? undefined : loadConfig(env);
  const queueOnly = queueDirFrom(args.queueDir, undefined, env);
  if (!args.server && !config && !queueOnly) {
    throw new CliError(`no config file at ${configPath(env)}`, EX.CONFIG, 'create one with an "account" (see smtplib sendmail --help), or give --server HOST[:PORT]');
  }
  if (!args.readHeaders && args.recipients.length === 0) {
    throw new CliError('no recipients', EX.USAGE, 'give recipients as arguments, or -t to read them from the To:, Cc: and Bcc: fields');
  }
  // A bare local name ("root") is kept for the account's aliases file to expand.
  const argRecipients = args.recipients.flatMap((r) => (/^[A-Za-z0-9._+-]+$/.test(r) ? [r] : parseAddressArg(r, 'recipient')));
  let sender = args.from ? parseAddressArg(args.from, '-f')[0] : undefined;

  const raw = await readMessage(args.ignoreDots);
  if (raw.length === 0) throw new CliError('no message on standard input', EX.NOINPUT);
  // The headers' envelope (the library's rule, Resent-* included), read only when needed.
  let peeked: ReturnType<typeof headerEnvelope> | undefined;
  const peek = (): ReturnType<typeof headerEnvelope> => (peeked ??= headerEnvelope(raw));

  const account = config ? chooseAccount(config, { name: args.account, sender: sender ?? peek().from }) : undefined;
  if (config && !account && !args.server && !queueOnly) {
    throw new CliError(
      `no account for sender ${sender ?? peek().from ?? '(none)'} and no default account in ${config.file}`,
      EX.CONFIG,
      'add "account default : NAME", give --account NAME, or an account whose "from" matches',
    );
  }
  // msmtp: the account's from wins over -f when allow_from_override is off; %F is the From header.
  const accountFrom = account?.from && !isFromPattern(account.from) ? account.from.replace(/%F/g, () => peek().from ?? '') : undefined;
  if (account?.allowFromOverride === false && accountFrom) sender = parseAddressArg(accountFrom, 'from')[0];
  sender ??= accountFrom ? parseAddressArg(accountFrom, 'from')[0] : undefined;
  sender ??= peek().from;
  sender ??= `${userInfo().username}@${hostname()}`;

  const data = prepareRawMessage(raw, {
    addMissing: true,
    envelopeFrom: sender,
    fullName: args.fullName ?? account?.fullName,
    domain: account?.localHostname,
    fromHeader: account?.fromHeader,
    dateHeader: account?.dateHeader,
    messageIdHeader: account?.messageIdHeader,
    undisclosedRecipients: account?.undisclosedRecipients,
    removeBcc: account?.removeBcc,
  });
  const recipients = expandAliases([...argRecipients, ...(args.readHeaders ? peek().to : [])], account?.aliases);
  const unique = [...new Map(recipients.map((r) => [r.toLowerCase(), r])).values()];
  if (unique.length === 0) throw new CliError('no recipients: the To:, Cc: and Bcc: fields are empty', EX.USAGE);
  const dsn: DsnOptions = {
    ...(account?.dsnNotify ? { notify: account.dsnNotify } : {}),
    ...(account?.dsnReturn ? { ret: account.dsnReturn } : {}),
    ...args.dsn,
  };

  const queueDir = queueDirFrom(args.queueDir, account, env);
  if (queueDir) {
    // Like Postfix's sendmail: accepted into the queue, exit 0 once durable; `smtplib queue run` delivers.
    const rcptOptions = rcptOptionsOf(dsn);
    const id = await enqueueFromCli({ dir: queueDir, from: sender, to: unique, data, mailOptions: mailOptionsOf(dsn), ...(rcptOptions ? { rcptOptions } : {}), metadata: account ? { account: account.name } : {} });
    if (args.verbose) process.stderr.write(`sendmail: queued as ${id} in ${queueDir}\n`);
    return EX.OK;
  }

  let spec: ServerSpec;
  if (args.server && !account) {
    const s = parseServerArg(args.server);
    const tls = args.tls ? parseTlsMode(args.tls) : undefined;
    spec = { host: s.host, port: s.host.startsWith('/') ? undefined : (s.port ?? defaultPort({ tls })), tls, debug: args.verbose >= 2 ? 2 : args.verbose === 1 ? 1 : 0 };
  } else {
    spec = specFromAccount(account!, args);
    if (args.server) {
      const s = parseServerArg(args.server);
      spec.host = s.host;
      if (s.port) spec.port = s.port;
    }
  }
  let outcomes: RecipientOutcome[];
  try {
    outcomes = await deliverOne(spec, sender, unique, data, dsn);
  } catch (err) {
    if (account?.logfile) writeLog(account.logfile, spec, sender, unique, data.length, `error=${JSON.stringify(describeError(err).message.split('\n')[0])} exitcode=${describeError(err).exitCode}`);
    throw err;
  }
  const delivered = outcomes.filter((x) => x.status === 'delivered').map((x) => x.recipient);
  const failed = outcomes.filter((x) => x.status !== 'delivered');
  if (failed.length) {
    process.stderr.write(`sendmail: ${failed.length} recipient(s) refused:\n${formatOutcomes(failed)}\n`);
    if (delivered.length) process.stderr.write(`sendmail: partial delivery (exit ${EX.PARTIAL}): only ${delivered.join(', ')} got the message\n`);
  }
  if (args.verbose && delivered.length) process.stderr.write(`sendmail: accepted for ${delivered.join(', ')}\n`);
  const code = exitCodeFor(outcomes);
  const reply = outcomes.find((x) => x.status === 'delivered')?.reply;
  if (account?.logfile) {
    writeLog(account.logfile, spec, sender, unique, data.length, `${reply ? `smtpstatus=${reply.code} ` : ''}delivered=${delivered.length} refused=${failed.length} exitcode=${code}`);
  }
  return code;
}

/** msmtp `logfile`: one line per message; a log that cannot be written never stops mail. */
function writeLog(file: string, spec: ServerSpec, from: string, to: string[], size: number, outcome: string): void {
  const line = `${new Date().toISOString()} host=${spec.host}${spec.port ? ` port=${spec.port}` : ''} tls=${spec.tls ?? 'default'} auth=${spec.user ? 'on' : 'off'}${spec.user ? ` user=${spec.user}` : ''} from=${from} recipients=${to.join(',')} mailsize=${size} ${outcome}\n`;
  if (file === '-') {
    process.stdout.write(line);
    return;
  }
  try {
    appendFileSync(file, line, { mode: 0o600 });
  } catch (err) {
    warnOnce(`logfile ${file} cannot be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the mail is sent anyway`);
  }
}
