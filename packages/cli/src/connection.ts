// Opening a session with smtplib from command-line settings, shared by
// `send`, `sendmail` and the batch mode. Everything about TLS, ports,
// masking secrets in the transcript and the order of EHLO/STARTTLS/AUTH is
// the library's: this module only turns flags into SMTPOptions.
import { readFileSync } from 'node:fs';
import {
  LMTP,
  LMTP_PORT,
  SMTP,
  SMTP_PORT,
  SMTP_SSL,
  SMTP_SSL_PORT,
  SUBMISSION_PORT,
  type SMTPOptions,
  type SMTPPoolOptions,
} from 'smtplib';
import type { TlsMode } from './config.js';
import { CliError, EX } from './exit-codes.js';
import { parseHostPort } from './host-port.js';

export interface ServerSpec {
  /** Host name, address, or (LMTP) a Unix socket path starting with "/". */
  host: string;
  port?: number | undefined;
  /** undefined: the library's default for this host and port. */
  tls?: TlsMode | undefined;
  user?: string | undefined;
  /** OAuth 2 instead of a password: returns the token provider (accounts with `auth oauth`). */
  oauth?: (() => Promise<unknown>) | undefined;
  /** Called only when the password is actually needed. */
  password?: (() => Promise<string>) | undefined;
  /** PEM file with CA certificates to trust besides the system ones. */
  caFile?: string | undefined;
  /** SHA-256 certificate fingerprints to trust instead of a CA (--fingerprint, msmtp's tls_fingerprint). */
  fingerprints?: string[] | undefined;
  /** Skip certificate verification (msmtp's tls_certcheck off); reported on stderr. */
  insecure?: boolean | undefined;
  /** Client certificate and key files (msmtp's tls_cert_file / tls_key_file). */
  clientCert?: string | undefined;
  clientKey?: string | undefined;
  /** SASL mechanism to use (msmtp's `auth METHOD`); default: the library's choice. */
  mechanism?: string | undefined;
  /** Lowest TLS version accepted (msmtp's tls_min_proto), e.g. 'TLSv1.3'. */
  minTls?: 'TLSv1.2' | 'TLSv1.3' | undefined;
  /** Local address to connect from (msmtp's source_ip). */
  sourceAddress?: string | undefined;
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

export function isUnixSocket(host: string): boolean {
  return host.startsWith('/');
}

/** The port used when none is given: the library's constants, 587 when logging in. */
export function defaultPort(spec: Pick<ServerSpec, 'tls' | 'lmtp' | 'user'>): number {
  if (spec.tls === 'implicit') return SMTP_SSL_PORT;
  if (spec.lmtp) return LMTP_PORT;
  return spec.user ? SUBMISSION_PORT : SMTP_PORT;
}

/** "host", "host:port", "[::1]:port", "::1", or a Unix socket path; the port is checked. */
export function parseServerArg(value: string, flag = '--server'): { host: string; port?: number | undefined } {
  return parseHostPort(value, flag);
}

export function parseTlsMode(value: string): TlsMode {
  const v = value.toLowerCase();
  if (v === 'required' || v === 'opportunistic' || v === 'none' || v === 'implicit') return v;
  throw new CliError(`--tls: "${value}" should be required, opportunistic, none or implicit`, EX.USAGE);
}

/** "host:port" for messages, or the socket path. */
export function describeTarget(spec: Pick<ServerSpec, 'host' | 'port'>): string {
  return isUnixSocket(spec.host) ? spec.host : `${spec.host}:${spec.port}`;
}

function readPem(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EX.NOINPUT);
  }
}

let warnedInsecure = false;

/** The library options for this spec (connection only; no password). */
export function smtpOptions(spec: ServerSpec): SMTPOptions {
  const tls: NonNullable<SMTPOptions['tls']> = {};
  if (spec.caFile) tls.ca = readPem(spec.caFile, '--ca');
  if (spec.clientCert) tls.cert = readPem(spec.clientCert, 'tls_cert_file');
  if (spec.clientKey) tls.key = readPem(spec.clientKey, 'tls_key_file');
  if (spec.minTls) tls.minVersion = spec.minTls;
  if (spec.insecure) {
    tls.rejectUnauthorized = false;
    if (!warnedInsecure) {
      warnedInsecure = true;
      process.stderr.write('smtplib: warning: certificate verification is OFF (tls_certcheck off): anyone on the path can read and change this session\n');
    }
  }
  return {
    host: spec.host,
    ...(isUnixSocket(spec.host) ? {} : { port: spec.port ?? defaultPort(spec) }),
    ...(spec.localHostname ? { localHostname: spec.localHostname } : {}),
    ...(spec.timeout ? { timeout: spec.timeout * 1000 } : {}),
    ...(Object.keys(tls).length ? { tls } : {}),
    ...(spec.tls && spec.tls !== 'implicit' ? { tlsPolicy: spec.tls } : {}),
    ...(spec.fingerprints?.length ? { fingerprint: spec.fingerprints } : {}),
    ...(spec.sourceAddress ? { sourceAddress: spec.sourceAddress } : {}),
    ...(spec.debug ? { debugLevel: spec.debug } : {}),
    ...(spec.allowCleartextAuth ? { allowCleartextAuth: true } : {}),
    ...dkimOption(spec),
  };
}

/** The pool's options for this spec (SMTP only: the pool does not speak LMTP). */
export async function poolOptions(spec: ServerSpec, extra: Partial<SMTPPoolOptions>): Promise<SMTPPoolOptions> {
  const password = spec.user && spec.password ? await spec.password() : undefined;
  return {
    ...smtpOptions(spec),
    ...(spec.tls === 'implicit' ? { implicitTls: true } : {}),
    ...(spec.user ? { auth: { user: spec.user, pass: password ?? '' } } : {}),
    ...extra,
  };
}

export type Session = SMTP;

/** Connects (the library says EHLO and applies the TLS policy) and logs in. */
export async function openSession(spec: ServerSpec): Promise<Session> {
  const options = smtpOptions(spec);
  const smtp = spec.tls === 'implicit' ? await SMTP_SSL.connect(options) : spec.lmtp ? await LMTP.connect(options) : await SMTP.connect(options);
  try {
    if (spec.user && spec.oauth) {
      // login(user, { provider }): XOAUTH2 or OAUTHBEARER, one retry with a fresh token.
      const login = smtp.login as unknown as (user: string, options: { provider: unknown }) => Promise<unknown>;
      await login.call(smtp, spec.user, { provider: await spec.oauth() });
    } else if (spec.user) {
      const password = spec.password ? await spec.password() : undefined;
      if (password === undefined) throw new CliError(`a password is needed for ${spec.user}`, EX.CONFIG);
      await smtp.login(spec.user, password, spec.mechanism ? { mechanism: spec.mechanism } : {});
    }
    return smtp;
  } catch (err) {
    smtp.close();
    throw err;
  }
}
