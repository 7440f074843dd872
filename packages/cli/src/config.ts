// Accounts for `smtplib sendmail` (and `send --account`), in a simple
// msmtp-like format:
//
//   # comments and empty lines are ignored
//   defaults
//   tls required
//
//   account work
//   host smtp.example.com
//   port 587
//   from alice@example.com          (or a pattern: *@example.com)
//   user alice
//   passwordeval "pass show mail/work"     (or: password-file ~/.work-pass)
//
//   account default : work
//
// `account NAME : OTHER` starts an account that copies OTHER's settings.
// File: $SMTPLIB_CONFIG, else $XDG_CONFIG_HOME/smtplib/config, else
// ~/.config/smtplib/config.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { CliError, EX } from './exit-codes.js';
import { OAUTH_KEYS, setOAuthKey, type OAuthSettings } from './oauth-account.js';

export type TlsMode = 'required' | 'opportunistic' | 'none' | 'implicit';

export interface Account {
  name: string;
  host?: string | undefined;
  port?: number | undefined;
  tls?: TlsMode | undefined;
  user?: string | undefined;
  password?: string | undefined;
  passwordeval?: string | undefined;
  passwordFile?: string | undefined;
  from?: string | undefined;
  /** PEM file of CAs to trust (msmtp: tls_trust_file). */
  ca?: string | undefined;
  timeout?: number | undefined;
  localHostname?: string | undefined;
  lmtp?: boolean | undefined;
  /** Spool directory: `send`/`sendmail` queue instead of sending (smtplib-queue). */
  queueDir?: string | undefined;
  /** dkim_key, dkim_selector, dkim_domain: sign what this account sends. */
  dkim?: { keyFile?: string; selector?: string; domain?: string } | undefined;
  /** `auth oauth` and the oauth_* settings (see oauth-account.ts). */
  oauth?: Partial<OAuthSettings> | undefined;
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
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(env.HOME || homedir(), '.config');
  return join(base, 'smtplib', 'config');
}

function unquote(v: string): string {
  const t = v.trim();
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) return t.slice(1, -1).replace(/\\(["\\])/g, '$1');
  return t;
}

function expandHome(p: string): string {
  return p === '~' ? homedir() : p.startsWith('~/') ? join(homedir(), p.slice(2)) : p;
}

const KEYS = new Set([
  'host', 'port', 'tls', 'tls_starttls', 'user', 'password', 'passwordeval', 'password-file', 'password_file',
  'from', 'ca', 'tls_trust_file', 'timeout', 'domain', 'localhostname', 'protocol', 'auth', 'queue_dir',
  'dkim_key', 'dkim_selector', 'dkim_domain',
  ...OAUTH_KEYS,
]);

export function parseConfig(text: string, file: string): Config {
  const accounts = new Map<string, Account>();
  let defaults: Partial<Account> = {};
  let current: Partial<Account> | undefined;
  let inDefaults = false;
  let defaultName: string | undefined;
  // msmtp: `tls on` + `tls_starttls off` means implicit TLS.
  const starttlsOff = new WeakSet<object>();
  const lines = text.split(/\r?\n/);
  lines.forEach((rawLine, idx) => {
    const where = `${file}:${idx + 1}`;
    const line = rawLine.trim();
    if (!line || line.startsWith('#')) return;
    const m = /^(\S+)\s*(.*)$/.exec(line)!;
    const key = m[1]!.toLowerCase();
    const value = unquote(m[2] ?? '');
    if (key === 'defaults') {
      inDefaults = true;
      current = defaults;
      return;
    }
    if (key === 'account') {
      const am = /^([^\s:]+)\s*(?::\s*(.+))?$/.exec(value);
      if (!am) throw new CliError(`${where}: "account" needs a name`, EX.CONFIG);
      const name = am[1]!;
      const parents = (am[2] ?? '').split(/[\s,]+/).filter(Boolean);
      if (name === 'default' && parents.length === 1 && !accounts.has('default')) {
        // `account default : NAME` names the default account.
        defaultName = parents[0];
      }
      const acc: Partial<Account> = { ...defaults, name, where };
      for (const p of parents) {
        const parent = accounts.get(p);
        if (!parent) throw new CliError(`${where}: account "${p}" is not defined (yet)`, EX.CONFIG);
        Object.assign(acc, { ...parent, name, where });
      }
      accounts.set(name, acc as Account);
      current = acc;
      inDefaults = false;
      return;
    }
    if (!current) throw new CliError(`${where}: "${key}" outside an account; start with "account NAME" or "defaults"`, EX.CONFIG);
    if (!KEYS.has(key)) throw new CliError(`${where}: unknown setting "${key}"`, EX.CONFIG);
    switch (key) {
      case 'host':
        current.host = value;
        break;
      case 'port': {
        const n = Number(value);
        if (!Number.isInteger(n) || n <= 0 || n > 65535) throw new CliError(`${where}: port "${value}" is not a port number`, EX.CONFIG);
        current.port = n;
        break;
      }
      case 'tls': {
        const v = value.toLowerCase();
        const mode: TlsMode | undefined =
          v === 'on' ? (starttlsOff.has(current) ? 'implicit' : 'required')
            : v === 'off' ? 'none'
              : (['required', 'opportunistic', 'none', 'implicit'] as const).find((x) => x === v);
        if (!mode) throw new CliError(`${where}: tls "${value}" should be required, opportunistic, none, implicit (or on/off)`, EX.CONFIG);
        current.tls = mode;
        break;
      }
      case 'tls_starttls':
        if (/^off$/i.test(value)) {
          starttlsOff.add(current);
          if (current.tls === 'required') current.tls = 'implicit';
        }
        break;
      case 'user':
        current.user = value;
        break;
      case 'password':
        current.password = value;
        break;
      case 'passwordeval':
        current.passwordeval = value;
        break;
      case 'password-file':
      case 'password_file':
        current.passwordFile = expandHome(value);
        break;
      case 'from':
        current.from = value;
        break;
      case 'ca':
      case 'tls_trust_file':
        current.ca = expandHome(value);
        break;
      case 'timeout': {
        const n = Number(value);
        if (!(n > 0)) throw new CliError(`${where}: timeout "${value}" should be seconds`, EX.CONFIG);
        current.timeout = n;
        break;
      }
      case 'domain':
      case 'localhostname':
        current.localHostname = value;
        break;
      case 'queue_dir':
        current.queueDir = expandHome(value);
        break;
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
        current.lmtp = /^lmtp$/i.test(value);
        break;
      case 'auth':
        // msmtp compatibility: `auth on` is implied by `user`; `auth off` drops it.
        if (/^off$/i.test(value)) current.user = undefined;
        // `auth oauth`: XOAUTH2 / OAUTHBEARER with a token from `smtplib auth login`.
        if (/^oauth$/i.test(value)) current.oauth = { ...current.oauth };
        break;
      default:
        if (key.startsWith('oauth_')) current.oauth = setOAuthKey(current.oauth, key, value, where);
    }
    void inDefaults;
  });
  if (defaultName && !accounts.has(defaultName)) {
    throw new CliError(`${file}: the default account "${defaultName}" is not defined`, EX.CONFIG);
  }
  // `account default : work` also defined an account named default; keep it as an alias.
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
  return parseConfig(text, file);
}

function globToRegExp(pattern: string): RegExp {
  const esc = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${esc}$`, 'i');
}

/** Whether an account's `from` (address or *-pattern) matches an envelope sender. */
export function fromMatches(account: Account, sender: string): boolean {
  if (!account.from) return false;
  const bare = account.from.replace(/^.*<([^>]*)>.*$/, '$1').trim();
  return globToRegExp(bare).test(sender.trim());
}

/**
 * Picks the account: by name, else the first whose `from` matches the
 * envelope sender (as msmtp's --read-envelope-from / auto_from does), else
 * the default.
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
    // Exact addresses win over patterns.
    const all = [...config.accounts.values()];
    const exact = all.find((a) => a.from && !a.from.includes('*') && fromMatches(a, opts.sender!));
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
