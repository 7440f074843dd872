// The part of smtplib's public API the CLI uses, loaded on first use.
//
// The CLI is built in the same workspace as the library; loading it lazily
// keeps `smtplib serve` independent of it and keeps this package building
// while the library's API is still settling. The interfaces below are the
// documented API (names fixed); they are checked structurally at run time by
// the tests that drive the built commands against a real server.
import type { ConnectionOptions } from 'node:tls';
import type { Readable } from 'node:stream';
import type { Socket } from 'node:net';
import { CliError, EX } from './exit-codes.js';

export interface ConnectOptions {
  host: string;
  port: number;
  localHostname?: string;
  timeout?: number;
  tls?: ConnectionOptions;
  tlsPolicy?: 'required' | 'opportunistic' | 'none';
  debugLevel?: 0 | 1 | 2;
  debugOutput?: (line: string) => void;
  allowCleartextAuth?: boolean;
}

export interface Reply {
  code: number;
  message: string;
  enhancedStatus?: string;
}

export type RcptOptions = string[] | { notify?: ('SUCCESS' | 'FAILURE' | 'DELAY' | 'NEVER')[]; orcpt?: string };
export type MailOptions = string[] | { notify?: unknown; ret?: 'FULL' | 'HDRS'; envid?: string; smtputf8?: boolean; requireTls?: boolean };

export interface SMTPClient {
  ehlo(name?: string): Promise<unknown>;
  readonly esmtpFeatures: Map<string, string>;
  readonly ehloResp: unknown;
  hasExtn(name: string): boolean;
  starttls(options?: ConnectionOptions): Promise<unknown>;
  readonly socket: Socket | undefined | null;
  readonly isSecure: boolean;
  login(user: string, password: string, options?: { mechanism?: string }): Promise<unknown>;
  sendmail(
    from: string,
    to: string | string[],
    msg: string | Uint8Array | Readable | AsyncIterable<Uint8Array>,
    mailOptions?: MailOptions,
    rcptOptions?: RcptOptions,
  ): Promise<Record<string, Reply> | Map<string, Reply>>;
  quit(): Promise<unknown>;
  close(): void;
  setDebugLevel?(level: 0 | 1 | 2): void;
}

export interface SMTPClass {
  connect(options: ConnectOptions): Promise<SMTPClient>;
}

export interface PoolResult {
  accepted: string[];
  refused: Record<string, Reply> | Map<string, Reply>;
  reply?: unknown;
}

export interface SMTPPoolInstance {
  sendmail(from: string, to: string | string[], msg: string | Uint8Array, options?: { mailOptions?: MailOptions; rcptOptions?: RcptOptions }): Promise<PoolResult>;
  close(): Promise<void> | void;
}

export interface SMTPPoolClass {
  new (options: Record<string, unknown>): SMTPPoolInstance;
}

export interface SmtpLib {
  SMTP: SMTPClass;
  SMTP_SSL: SMTPClass;
  LMTP: SMTPClass;
  SMTPPool?: SMTPPoolClass;
}

let loaded: SmtpLib | undefined;

/** Loads smtplib, with a clear message when it has not been built. */
export async function loadSmtplib(): Promise<SmtpLib> {
  if (loaded) return loaded;
  let mod: Record<string, unknown>;
  try {
    // A computed specifier: resolved by Node at run time, not by tsc at build time.
    const specifier: string = 'smtplib';
    mod = (await import(specifier)) as Record<string, unknown>;
  } catch (err) {
    throw new CliError(`cannot load the smtplib library: ${(err as Error).message}`, EX.SOFTWARE, 'build it with `npm run build -w smtplib`');
  }
  for (const name of ['SMTP', 'SMTP_SSL', 'LMTP'] as const) {
    if (typeof mod[name] !== 'function' || typeof (mod[name] as unknown as SMTPClass).connect !== 'function') {
      throw new CliError(`the smtplib library has no ${name}.connect()`, EX.SOFTWARE, 'rebuild it with `npm run build -w smtplib`');
    }
  }
  loaded = {
    SMTP: mod.SMTP as unknown as SMTPClass,
    SMTP_SSL: mod.SMTP_SSL as unknown as SMTPClass,
    LMTP: mod.LMTP as unknown as SMTPClass,
    ...(typeof mod.SMTPPool === 'function' ? { SMTPPool: mod.SMTPPool as unknown as SMTPPoolClass } : {}),
  };
  return loaded;
}
