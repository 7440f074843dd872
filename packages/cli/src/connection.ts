// Opening an authenticated, (optionally) encrypted session with smtplib,
// shared by `send`, `sendmail` and the batch mode.
import { readFileSync } from 'node:fs';
import { loadSmtplib, type SMTPClient } from './lib.js';
import type { TlsMode } from './config.js';
import { CliError, EX } from './exit-codes.js';

export interface ServerSpec {
  host: string;
  port?: number | undefined;
  tls: TlsMode;
  user?: string | undefined;
  /** OAuth 2 instead of a password: returns the token provider (accounts with `auth oauth`). */
  oauth?: (() => Promise<unknown>) | undefined;
  /** Called only when the password is actually needed. */
  password?: (() => Promise<string>) | undefined;
  /** PEM file with CA certificates to trust besides the system ones. */
  caFile?: string | undefined;
  /** Seconds. */
  timeout?: number | undefined;
  localHostname?: string | undefined;
  lmtp?: boolean | undefined;
  /** 0 none, 1 transcript, 2 transcript with timings. */
  debug: 0 | 1 | 2;
  allowCleartextAuth?: boolean | undefined;
  /** DKIM-sign what is sent (--dkim-key/--dkim-selector/--dkim-domain, or account dkim_* keys). */
  dkim?: DkimSettings | undefined;
}

/** A DKIM signature as the CLI takes it: a key file, a selector, a domain. */
export interface DkimSettings {
  keyFile: string;
  selector: string;
  domain: string;
}

/** The library's `dkim` option for a spec (the key read from its file), or nothing. */
export function dkimOption(spec: Pick<ServerSpec, 'dkim'>): { dkim?: { domain: string; selector: string; privateKey: Buffer } } {
  if (!spec.dkim) return {};
  let privateKey: Buffer;
  try {
    privateKey = readFileSync(spec.dkim.keyFile);
  } catch (err) {
    throw new CliError(`--dkim-key: cannot read ${spec.dkim.keyFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EX.NOINPUT);
  }
  return { dkim: { domain: spec.dkim.domain, selector: spec.dkim.selector, privateKey } };
}

/** --dkim-key, --dkim-selector and --dkim-domain (or the account's dkim_* keys) go together. */
export function dkimSettings(given: { keyFile?: string | undefined; selector?: string | undefined; domain?: string | undefined }): DkimSettings | undefined {
  const { keyFile, selector, domain } = given;
  if (keyFile === undefined && selector === undefined && domain === undefined) return undefined;
  if (!keyFile || !selector || !domain) {
    throw new CliError('DKIM needs a key, a selector and a domain', EX.USAGE, 'give all of --dkim-key FILE, --dkim-selector NAME and --dkim-domain DOMAIN (account keys dkim_key, dkim_selector, dkim_domain)');
  }
  return { keyFile, selector, domain };
}

export function defaultPort(spec: Pick<ServerSpec, 'tls' | 'lmtp' | 'user'>): number {
  if (spec.tls === 'implicit') return 465;
  if (spec.lmtp) return 24;
  return spec.user ? 587 : 25;
}

/** "host", "host:port", "[::1]:port", "::1". */
export function parseServerArg(value: string): { host: string; port?: number | undefined } {
  let host = value.trim();
  let port: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  if (bracket) {
    host = bracket[1]!;
    port = bracket[2];
  } else if ((host.match(/:/g) ?? []).length === 1) {
    [host, port] = host.split(':') as [string, string];
  }
  if (!host) throw new CliError(`"${value}" has no host name`, EX.USAGE);
  if (port !== undefined) {
    const n = Number(port);
    if (!/^\d+$/.test(port) || n <= 0 || n > 65535) throw new CliError(`"${value}": "${port}" is not a port number`, EX.USAGE);
    return { host, port: n };
  }
  return { host };
}

export function parseTlsMode(value: string): TlsMode {
  const v = value.toLowerCase();
  if (v === 'required' || v === 'opportunistic' || v === 'none' || v === 'implicit') return v;
  throw new CliError(`--tls: "${value}" should be required, opportunistic, none or implicit`, EX.USAGE);
}

/** Writes the protocol transcript to stderr, with anything that looks like a secret masked. */
export function makeDebugOutput(secrets: () => string[]): (line: string) => void {
  return (line: string) => {
    let out = line;
    for (const s of secrets()) {
      if (s.length >= 3) out = out.split(s).join('********');
    }
    process.stderr.write(out.endsWith('\n') ? out : out + '\n');
  };
}

function secretForms(user: string | undefined, password: string | undefined): string[] {
  if (!password) return [];
  const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
  const forms = [password, b64(password)];
  if (user) forms.push(b64(`\0${user}\0${password}`), b64(`${user}\0${user}\0${password}`));
  return forms;
}

export type Session = SMTPClient;

/** Connects, says EHLO, upgrades with STARTTLS per the TLS mode, and logs in. */
export async function openSession(spec: ServerSpec): Promise<Session> {
  const port = spec.port ?? defaultPort(spec);
  let ca: string | undefined;
  if (spec.caFile) {
    try {
      ca = readFileSync(spec.caFile, 'utf8');
    } catch (err) {
      throw new CliError(`--ca: cannot read ${spec.caFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EX.NOINPUT);
    }
  }
  let password: string | undefined;
  const debugOutput = makeDebugOutput(() => secretForms(spec.user, password));
  const tlsOptions = { servername: spec.host, ...(ca ? { ca } : {}) };
  const common = {
    host: spec.host,
    port,
    ...(spec.localHostname ? { localHostname: spec.localHostname } : {}),
    ...(spec.timeout ? { timeout: spec.timeout * 1000 } : {}),
    tls: tlsOptions,
    debugLevel: spec.debug,
    debugOutput,
    ...(spec.allowCleartextAuth ? { allowCleartextAuth: true } : {}),
    ...dkimOption(spec),
  };
  const { SMTP, SMTP_SSL, LMTP } = await loadSmtplib();
  let smtp: SMTPClient;
  if (spec.tls === 'implicit') {
    smtp = await SMTP_SSL.connect({ ...common });
  } else if (spec.lmtp) {
    smtp = await LMTP.connect({ ...common, tlsPolicy: spec.tls });
  } else {
    smtp = await SMTP.connect({ ...common, tlsPolicy: spec.tls });
  }
  try {
    // connect() has already said EHLO and upgraded with STARTTLS as the policy demands.
    if (!smtp.ehloResp) await smtp.ehlo();
    if (spec.tls === 'required' && !smtp.isSecure) {
      throw new CliError(`${spec.host}:${port} did not switch to TLS`, EX.PROTOCOL, 'use --tls implicit for an SMTPS port');
    }
    if (spec.user && spec.oauth) {
      // login(user, { provider }): XOAUTH2 or OAUTHBEARER, one retry with a fresh token.
      const login = smtp.login as unknown as (user: string, options: { provider: unknown }) => Promise<unknown>;
      await login.call(smtp, spec.user, { provider: await spec.oauth() });
    } else if (spec.user) {
      password = spec.password ? await spec.password() : undefined;
      if (password === undefined) throw new CliError(`a password is needed for ${spec.user}`, EX.CONFIG);
      await smtp.login(spec.user, password);
    }
    return smtp;
  } catch (err) {
    smtp.close();
    throw err;
  }
}
