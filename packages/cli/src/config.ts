// Accounts for `smtplib sendmail` (and `send --account`), read from msmtp's
// configuration format, so a copied ~/.msmtprc works as it is:
//
//   defaults
//   tls on
//   account work
//   host smtp.example.com
//   port 587
//   from alice@example.com          (or a pattern: *@example.com; %U %H %C %M substituted)
//   auth on
//   user alice
//   passwordeval "pass show mail/work"
//   account default : work
//
// File: $SMTPLIB_CONFIG, else $XDG_CONFIG_HOME/smtplib/config (or
// ~/.config/smtplib/config), else ~/.msmtprc. Every msmtp setting that maps
// onto a feature is honoured; any other one is reported once on stderr and
// ignored. Logging settings never stop mail: a log file that cannot be
// written is a warning.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir, hostname, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import type { NotifyType } from 'smtplib';
import { CliError, EX } from './exit-codes.js';
import { setOAuthKey, type OAuthSettings } from './oauth-account.js';
import type { HeaderPolicy } from './raw-message.js';

export type TlsMode = 'required' | 'opportunistic' | 'none' | 'implicit';

export interface Account extends HeaderPolicy {
  name: string;
  host?: string | undefined;
  port?: number | undefined;
  /** undefined: no `tls` line, so the library's default (msmtp would send in plaintext). */
  tls?: TlsMode | undefined;
  user?: string | undefined;
  /** msmtp `auth METHOD`: the SASL mechanism to use. */
  mechanism?: string | undefined;
  password?: string | undefined;
  passwordeval?: string | undefined;
  passwordFile?: string | undefined;
  from?: string | undefined;
  /** msmtp from_full_name: display name for an added From. */
  fullName?: string | undefined;
  /** msmtp allow_from_override (default on): whether -f may replace `from`. */
  allowFromOverride?: boolean | undefined;
  /** PEM file of CAs to trust (msmtp: tls_trust_file). */
  ca?: string | undefined;
  /** SHA-256 fingerprints to trust instead of a CA (msmtp: tls_fingerprint). */
  fingerprints?: string[] | undefined;
  /** Certificate verification off (msmtp: tls_certcheck off). */
  insecure?: boolean | undefined;
  /** Lowest TLS version (tls_min_proto). */
  minTls?: 'TLSv1.2' | 'TLSv1.3' | undefined;
  /** Client certificate and key files (msmtp: tls_cert_file, tls_key_file). */
  clientCert?: string | undefined;
  clientKey?: string | undefined;
  /** Local address to connect from (msmtp: source_ip). */
  sourceAddress?: string | undefined;
  timeout?: number | undefined;
  localHostname?: string | undefined;
  lmtp?: boolean | undefined;
  /** Spool directory: `send`/`sendmail` queue instead of sending (smtplib-queue; not an msmtp setting). */
  queueDir?: string | undefined;
  /** queue_retention: how long `queue run`/`flush` keep finished messages, and `queue purge`'s default age (ms; Infinity: for ever). */
  queueRetentionMs?: number | undefined;
  /** dkim_key, dkim_selector, dkim_domain: sign what this account sends. */
  dkim?: { keyFile?: string; selector?: string; domain?: string } | undefined;
  /** `auth oauth` and the oauth_* settings (see oauth-account.ts). */
  oauth?: Partial<OAuthSettings> | undefined;
  /** msmtp dsn_notify / dsn_return. */
  dsnNotify?: NotifyType[] | undefined;
  dsnReturn?: 'FULL' | 'HDRS' | undefined;
  /** msmtp aliases: file mapping local recipients to addresses. */
  aliases?: string | undefined;
  /** msmtp logfile ("-": standard output). */
  logfile?: string | undefined;
  /** file:line where the account starts, for messages. */
  where: string;
}

export interface Config {
  file: string;
  accounts: Map<string, Account>;
  defaultName?: string | undefined;
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SMTPLIB_CONFIG) return resolve(env.SMTPLIB_CONFIG);
  const home = env.HOME || homedir();
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(home, '.config');
  const ours = join(base, 'smtplib', 'config');
  const msmtprc = join(home, '.msmtprc');
  return !existsSync(ours) && existsSync(msmtprc) ? msmtprc : ours;
}

/** msmtp's argument syntax: one word, or double quotes with \" and \\. */
function unquote(v: string): string {
  const t = v.trim();
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) return t.slice(1, -1).replace(/\\(["\\])/g, '$1');
  return t;
}

function expandHome(p: string): string {
  return p === '~' ? homedir() : p.startsWith('~/') ? join(homedir(), p.slice(2)) : p;
}

const warned = new Set<string>();
/** One line on stderr per distinct warning, for the whole run. */
export function warnOnce(text: string): void {
  if (warned.has(text)) return;
  warned.add(text);
  process.stderr.write(`smtplib: warning: ${text}\n`);
}

/** msmtp settings this program reads but does not act on, and why that is harmless (or not). */
const IGNORED: Record<string, string> = {
  syslog: 'syslog logging is not supported (use logfile); mail is sent anyway',
  logfile_time_format: 'the log file uses ISO 8601 times',
  tls_crl_file: 'certificate revocation lists are not checked',
  tls_priorities: 'TLS priorities are Node\'s defaults (TLS 1.2 or later)',
  tls_min_dh_prime_bits: 'Node chooses the DH parameters',
  tls_host_override: 'the certificate is checked against the host name',
  proxy_host: 'SOCKS proxies are not supported: the connection goes directly to the host',
  proxy_port: 'SOCKS proxies are not supported: the connection goes directly to the host',
  ntlmdomain: 'NTLM is not supported',
  tls_force_sslv3: 'SSLv3 is never used',
};

const onOff = (value: string, where: string, key: string): boolean => {
  if (/^(on|)$/i.test(value)) return true;
  if (/^off$/i.test(value)) return false;
  throw new CliError(`${where}: ${key} should be on or off, not "${value}"`, EX.CONFIG);
};

/** A fingerprint as hex without colons; only SHA-256 can be checked. */
function parseFingerprint(value: string, where: string): string {
  const hex = value.replace(/:/g, '');
  if (/^[0-9a-f]{64}$/i.test(hex)) return hex.toUpperCase();
  if (/^[0-9a-f]{40}$|^[0-9a-f]{32}$/i.test(hex)) {
    throw new CliError(`${where}: tls_fingerprint is SHA-1 or MD5; only a SHA-256 fingerprint can be checked`, EX.CONFIG, 'get it with `smtplib probe HOST:PORT` (the sha256 line)');
  }
  throw new CliError(`${where}: tls_fingerprint "${value}" is not a SHA-256 fingerprint (01:23:...)`, EX.CONFIG);
}

/** msmtp's %U %H %C %M in `from` and `domain`. %F (the From header) is left for the caller. */
function substitute(value: string, env: NodeJS.ProcessEnv): string {
  return value.replace(/%([UHCM])/g, (_, p: string) => {
    if (p === 'U') return env.USER || env.LOGNAME || userInfo().username;
    if (p === 'H' || p === 'C') return env.HOSTNAME || hostname();
    try {
      return readFileSync('/etc/mailname', 'utf8').trim();
    } catch {
      return hostname();
    }
  });
}

/** `eval CMD`: the first line of CMD's output replaces the line (msmtp). */
function evalLine(cmd: string, where: string): string {
  try {
    return execFileSync('/bin/sh', ['-c', cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).split(/\r?\n/)[0] ?? '';
  } catch (err) {
    throw new CliError(`${where}: eval command failed: ${(err as Error).message.split('\n')[0]}`, EX.CONFIG);
  }
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const accounts = new Map<string, Account>();
  const defaults: Partial<Account> = {};
  let current: Partial<Account> | undefined;
  let defaultName: string | undefined;
  // msmtp: `tls on` + `tls_starttls off` means implicit TLS, in either order.
  const tlsOn = new WeakMap<object, boolean>();
  const starttlsOff = new WeakSet<object>();
  const settle = (acc: Partial<Account>): void => {
    const on = tlsOn.get(acc);
    if (on === undefined) return;
    acc.tls = !on ? 'none' : starttlsOff.has(acc) ? 'implicit' : 'required';
  };
  text.split(/\r?\n/).forEach((rawLine, idx) => {
    const where = `${file}:${idx + 1}`;
    let line = rawLine.trim();
    if (!line || line.startsWith('#')) return;
    let m = /^(\S+)\s*(.*)$/.exec(line)!;
    if (m[1]!.toLowerCase() === 'eval') {
      line = evalLine(unquote(m[2] ?? ''), where).trim();
      if (!line || line.startsWith('#')) return;
      m = /^(\S+)\s*(.*)$/.exec(line)!;
    }
    const key = m[1]!.toLowerCase();
    const value = unquote(m[2] ?? '');
    if (key === 'defaults') {
      current = defaults;
      return;
    }
    if (key === 'account') {
      const am = /^([^\s:]+)\s*(?::\s*(.+))?$/.exec(value);
      if (!am) throw new CliError(`${where}: "account" needs a name`, EX.CONFIG);
      const name = am[1]!;
      const parents = (am[2] ?? '').split(/[\s,]+/).filter(Boolean);
      if (name === 'default' && parents.length === 1 && !accounts.has('default')) defaultName = parents[0];
      const acc: Partial<Account> = { ...defaults, name, where };
      if (tlsOn.has(defaults)) tlsOn.set(acc, tlsOn.get(defaults)!);
      if (starttlsOff.has(defaults)) starttlsOff.add(acc);
      for (const p of parents) {
        const parent = accounts.get(p);
        if (!parent) throw new CliError(`${where}: account "${p}" is not defined (yet)`, EX.CONFIG);
        Object.assign(acc, { ...parent, name, where });
      }
      accounts.set(name, acc as Account);
      current = acc;
      return;
    }
    if (!current) throw new CliError(`${where}: "${key}" outside an account; start with "account NAME" or "defaults"`, EX.CONFIG);
    const acc = current;
    switch (key) {
      case 'host':
        acc.host = value;
        break;
      case 'socket':
        if (value) acc.host = expandHome(value);
        break;
      case 'port': {
        const n = Number(value);
        if (!Number.isInteger(n) || n <= 0 || n > 65535) throw new CliError(`${where}: port "${value}" is not a port number`, EX.CONFIG);
        acc.port = n;
        break;
      }
      case 'tls':
        if (/^(required|opportunistic|none|implicit)$/i.test(value)) acc.tls = value.toLowerCase() as TlsMode;
        else tlsOn.set(acc, onOff(value, where, key));
        settle(acc);
        break;
      case 'tls_starttls':
        if (onOff(value, where, key)) starttlsOff.delete(acc);
        else starttlsOff.add(acc);
        settle(acc);
        break;
      case 'tls_trust_file':
      case 'ca':
        acc.ca = value && value !== 'system' ? expandHome(value) : undefined;
        break;
      case 'tls_fingerprint':
        acc.fingerprints = value ? [parseFingerprint(value, where)] : undefined;
        break;
      case 'tls_certcheck':
        acc.insecure = !onOff(value, where, key);
        break;
      case 'tls_min_proto': {
        const v = /^(?:tlsv?)?(1\.[23])$/i.exec(value.replace(/_/g, '.'));
        if (!v) throw new CliError(`${where}: tls_min_proto should be TLSv1.2 or TLSv1.3 (older versions are never used)`, EX.CONFIG);
        acc.minTls = `TLSv${v[1]}` as 'TLSv1.2' | 'TLSv1.3';
        break;
      }
      case 'tls_cert_file':
        acc.clientCert = value ? expandHome(value) : undefined;
        break;
      case 'tls_key_file':
        acc.clientKey = value ? expandHome(value) : undefined;
        break;
      case 'source_ip':
        acc.sourceAddress = value || undefined;
        break;
      case 'auth':
        // `auth on` picks a mechanism, `auth off` drops authentication, `auth plain` (etc.) names one.
        if (/^off$/i.test(value)) {
          acc.user = undefined;
          acc.mechanism = undefined;
        } else if (/^oauth$/i.test(value)) {
          // `auth oauth`: XOAUTH2 / OAUTHBEARER with a token from `smtplib auth login`.
          acc.oauth = { ...acc.oauth };
        } else if (value && !/^on$/i.test(value)) acc.mechanism = value.toUpperCase();
        break;
      case 'user':
        acc.user = value || undefined;
        break;
      case 'password':
        acc.password = value || undefined;
        break;
      case 'passwordeval':
        acc.passwordeval = value || undefined;
        break;
      case 'password-file':
      case 'password_file':
        acc.passwordFile = expandHome(value);
        break;
      case 'from':
        acc.from = value ? substitute(value, env) : undefined;
        break;
      case 'from_full_name':
        acc.fullName = value || undefined;
        break;
      case 'allow_from_override':
        acc.allowFromOverride = onOff(value, where, key);
        break;
      case 'auto_from':
        // Obsolete in msmtp: `from %U@domain` does the same; maildomain supplies the domain.
        if (onOff(value, where, key)) acc.from = substitute('%U', env);
        break;
      case 'maildomain':
        if (acc.from && !acc.from.includes('@') && value) acc.from = `${acc.from}@${value}`;
        break;
      case 'timeout': {
        if (/^off$/i.test(value)) {
          acc.timeout = undefined;
          break;
        }
        const n = Number(value);
        if (!(n > 0)) throw new CliError(`${where}: timeout "${value}" should be seconds or off`, EX.CONFIG);
        acc.timeout = n;
        break;
      }
      case 'domain':
      case 'localhostname':
        acc.localHostname = substitute(value, env);
        break;
      case 'queue_dir':
        acc.queueDir = expandHome(value);
        break;
      case 'queue_retention': {
        const ms = parseDuration(value);
        if (ms === undefined) throw new CliError(`${where}: queue_retention "${value}" should be a duration (30d, 12h, 90m, 3600s; a bare number is seconds) or forever`, EX.CONFIG);
        acc.queueRetentionMs = ms;
        break;
      }
      case 'dkim_key':
        current.dkim = { ...current.dkim, keyFile: expandHome(value) };
        break;
      case 'dkim_selector':
        current.dkim = { ...current.dkim, selector: value };
        break;
      case 'dkim_domain':
        current.dkim = { ...current.dkim, domain: value };
        break;
      case 'protocol':
        if (!/^(smtp|lmtp)$/i.test(value)) throw new CliError(`${where}: protocol should be smtp or lmtp`, EX.CONFIG);
        acc.lmtp = /^lmtp$/i.test(value);
        break;
      case 'dsn_notify':
        if (/^off$/i.test(value)) acc.dsnNotify = undefined;
        else {
          const list = value.split(',').map((v) => v.trim().toUpperCase());
          if (!list.every((v) => ['SUCCESS', 'FAILURE', 'DELAY', 'NEVER'].includes(v)) || (list.includes('NEVER') && list.length > 1)) {
            throw new CliError(`${where}: dsn_notify should be off, never, or a comma list of success, failure, delay`, EX.CONFIG);
          }
          acc.dsnNotify = list as NotifyType[];
        }
        break;
      case 'dsn_return':
        if (/^off$/i.test(value)) acc.dsnReturn = undefined;
        else if (/^(headers|hdrs)$/i.test(value)) acc.dsnReturn = 'HDRS';
        else if (/^full$/i.test(value)) acc.dsnReturn = 'FULL';
        else throw new CliError(`${where}: dsn_return should be off, headers or full`, EX.CONFIG);
        break;
      case 'set_from_header':
        if (!/^(auto|on|off)$/i.test(value)) throw new CliError(`${where}: set_from_header should be auto, on or off`, EX.CONFIG);
        acc.fromHeader = value.toLowerCase() as 'auto' | 'on' | 'off';
        break;
      case 'add_missing_from_header':
        acc.fromHeader = onOff(value, where, key) ? 'auto' : 'off';
        break;
      case 'set_date_header':
      case 'add_missing_date_header':
        acc.dateHeader = /^(auto|on)$/i.test(value) ? 'auto' : 'off';
        break;
      case 'set_msgid_header':
        acc.messageIdHeader = /^(auto|on)$/i.test(value) ? 'auto' : 'off';
        break;
      case 'set_to_header':
        if (/^on$/i.test(value)) warnOnce(`${where}: set_to_header on is not supported (To/Cc are kept); undisclosed_recipients is`);
        acc.undisclosedRecipients = /^undisclosed_recipients$/i.test(value);
        break;
      case 'undisclosed_recipients':
        acc.undisclosedRecipients = onOff(value, where, key);
        break;
      case 'remove_bcc_headers':
        acc.removeBcc = onOff(value, where, key);
        break;
      case 'keepbcc':
        acc.removeBcc = !onOff(value, where, key);
        break;
      case 'aliases':
        acc.aliases = value ? expandHome(value) : undefined;
        break;
      case 'logfile':
        acc.logfile = value ? (value === '-' ? '-' : expandHome(value)) : undefined;
        break;
      default:
        if (key.startsWith('oauth_')) {
          acc.oauth = setOAuthKey(acc.oauth, key, value, where);
          break;
        }
        warnOnce(IGNORED[key] ? `${where}: ${key} is ignored: ${IGNORED[key]}` : `${where}: unknown setting "${key}" is ignored`);
    }
  });
  if (defaultName && !accounts.has(defaultName)) {
    throw new CliError(`${file}: the default account "${defaultName}" is not defined`, EX.CONFIG);
  }
  return { file, accounts, defaultName: defaultName ?? (accounts.has('default') ? 'default' : undefined) };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config | undefined {
  const file = configPath(env);
  if (!existsSync(file)) {
    if (env.SMTPLIB_CONFIG) throw new CliError(`SMTPLIB_CONFIG names ${file}, which does not exist`, EX.CONFIG);
    return undefined;
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, EX.CONFIG);
  }
  return parseConfig(text, file, env);
}

/** msmtp's `from` patterns: *, ? and [...] as in shell file names. */
function globToRegExp(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end === -1) out += '\\[';
      else {
        out += `[${pattern.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else out += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`, 'i');
}

export function isFromPattern(from: string): boolean {
  return /[*?[]/.test(from);
}

/** Whether an account's `from` (address or pattern) matches an envelope sender. */
export function fromMatches(account: Account, sender: string): boolean {
  if (!account.from) return false;
  const bare = account.from.replace(/^.*<([^>]*)>.*$/, '$1').trim();
  return globToRegExp(bare).test(sender.trim());
}

/**
 * Picks the account: by name, else the first whose `from` matches the
 * envelope sender (msmtp's --read-envelope-from), else the default.
 */
export function chooseAccount(config: Config, opts: { name?: string | undefined; sender?: string | undefined }): Account | undefined {
  if (opts.name) {
    const acc = config.accounts.get(opts.name);
    if (!acc) {
      const names = [...config.accounts.keys()].join(', ') || 'none';
      throw new CliError(`no account "${opts.name}" in ${config.file} (accounts: ${names})`, EX.CONFIG);
    }
    return acc;
  }
  if (opts.sender) {
    const all = [...config.accounts.values()];
    const exact = all.find((a) => a.from && !isFromPattern(a.from) && fromMatches(a, opts.sender!));
    if (exact) return exact;
    const pattern = all.find((a) => fromMatches(a, opts.sender!));
    if (pattern) return pattern;
  }
  if (config.defaultName) return config.accounts.get(config.defaultName);
  return undefined;
}

/** The account's password from passwordeval / password-file / password, if any. */
export function accountPassword(account: Account): string | undefined {
  if (account.passwordeval) {
    try {
      const out = execFileSync('/bin/sh', ['-c', account.passwordeval], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      return out.split(/\r?\n/)[0] ?? '';
    } catch (err) {
      throw new CliError(`account "${account.name}": passwordeval command failed: ${(err as Error).message.split('\n')[0]}`, EX.CONFIG);
    }
  }
  if (account.passwordFile) return readPasswordFile(account.passwordFile, `account "${account.name}": password-file`);
  return account.password;
}

export function readPasswordFile(file: string, what: string): string {
  try {
    return readFileSync(expandHome(file), 'utf8').split(/\r?\n/)[0] ?? '';
  } catch (err) {
    throw new CliError(`${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EX.CONFIG);
  }
}

/**
 * msmtp `aliases`: local recipients (no "@") replaced by the addresses the
 * file maps them to ("name: a@x, b@y"); "default" catches the others.
 */
export function expandAliases(recipients: string[], file: string | undefined): string[] {
  if (!file) return recipients;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`aliases: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EX.CONFIG);
  }
  const map = new Map<string, string[]>();
  for (const line of text.split(/\r?\n/)) {
    const clean = line.replace(/#.*$/, '').trim();
    const colon = clean.indexOf(':');
    if (colon <= 0) continue;
    map.set(clean.slice(0, colon).trim().toLowerCase(), clean.slice(colon + 1).split(',').map((a) => a.trim()).filter(Boolean));
  }
  return recipients.flatMap((r) => (r.includes('@') ? [r] : (map.get(r.toLowerCase()) ?? map.get('default') ?? [r])));
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * A duration in ms: a number and a unit (ms, s, m, h, d, w; none is seconds, as every other
 * seconds option of the CLI), or `forever` (Infinity). Undefined when `text` is neither.
 */
export function parseDuration(text: string): number | undefined {
  const value = text.trim().toLowerCase();
  if (value === 'forever') return Infinity;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?$/.exec(value);
  return match ? Number(match[1]) * DURATION_UNITS[match[2] ?? 's']! : undefined;
}
