// Options of SMTP, SMTP_SSL and LMTP, and how their defaults are derived.

import type { LookupFunction } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { ReplyLimits } from '../protocol/reply-parser.js';
import type { DebugOutput } from '../session/debug-log.js';
import type { ConnectHook } from '../wire/connect.js';
import type { DkimOption, DkimSigner } from '../dkim/index.js';
import { SMTPInvalidArgumentError } from '../errors.js';
import { assertKnownKeys } from '../known-keys.js';
import { assertModernTls } from '../wire/tls-options.js';

export const SMTP_PORT = 25;
export const SMTP_SSL_PORT = 465;
export const LMTP_PORT = 2003;
export const SUBMISSION_PORT = 587;

/**
 * How TLS is used on a plaintext port.
 * - `required`: STARTTLS must succeed before anything else (fails closed).
 * - `opportunistic`: STARTTLS when offered, plaintext otherwise. Open to
 *   stripping by anyone on the path: use only where that is acceptable.
 * - `none`: never STARTTLS on our own (starttls() can still be called).
 */
export type TlsPolicy = 'required' | 'opportunistic' | 'none';

/** Per-phase deadlines in milliseconds: positive numbers, or Infinity for none. */
export interface Timeouts {
  /** TCP (and Unix socket) connect, including DNS. */
  connect: number;
  /** A TLS handshake. */
  tls: number;
  /** The 220 greeting. RFC 5321 §4.5.3.2.1 suggests 5 minutes. */
  greeting: number;
  /** Any command's reply (EHLO, MAIL, RCPT, DATA, AUTH, ...). RFC: 5 minutes. */
  command: number;
  /** Waiting for the server to read each block of message data. RFC: 3 minutes. */
  dataWrite: number;
  /** The reply after the end of data. RFC 5321 §4.5.3.2.6: 10 minutes. */
  dataEnd: number;
  /** QUIT's reply; short, since the outcome no longer matters much. */
  quit: number;
}

export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = Object.freeze({
  connect: 30_000,
  tls: 30_000,
  greeting: 60_000,
  command: 300_000,
  dataWrite: 180_000,
  dataEnd: 600_000,
  quit: 5_000,
});

export interface SMTPOptions {
  /** Server host name or address; for LMTP a path starting with "/" is a Unix socket. "host:port" is split. */
  host?: string;
  port?: number;
  /** Name sent in EHLO/HELO/LHLO. Default: this host's FQDN, else an address literal. */
  localHostname?: string;
  /** One timeout in milliseconds (not seconds) for connecting and for each reply; overrides `timeouts`. Positive, or Infinity. */
  timeout?: number;
  /** Deadlines per phase (defaults: DEFAULT_TIMEOUTS). */
  timeouts?: Partial<Timeouts>;
  /** Local address (and optionally port) to connect from. */
  sourceAddress?: string | { address: string; port?: number };
  /** Node TLS options (ca, cert, key, pfx, servername, minVersion, session, ...). Verification is on by default. */
  tls?: ConnectionOptions;
  /** See TlsPolicy. Default: `none` to loopback and Unix sockets, implicit TLS on 465, else `required`. */
  tlsPolicy?: TlsPolicy;
  /** Trust the server by SHA-256 certificate fingerprint(s) instead of a CA (hex, colons optional). */
  fingerprint?: string | readonly string[];
  /** 0 off, 1 every line sent and received, 2 the same with timestamps. */
  debugLevel?: number;
  /** Receives each debug line. Default: stderr. */
  debugOutput?: DebugOutput;
  /** DNS lookup, as in net.connect; TLS still checks the name given as `host`. */
  lookup?: LookupFunction;
  /** 4 or 6 to force an address family. */
  family?: number;
  /** Happy Eyeballs (RFC 8305) through Node's net.connect. Default true. */
  autoSelectFamily?: boolean;
  /** Open the stream yourself (proxies, tunnels). Receives the target; returns a connected Duplex. */
  connect?: ConnectHook;
  /**
   * Allow cleartext SASL mechanisms (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER) on an
   * unencrypted connection to a non-loopback peer. Off by default.
   */
  allowCleartextAuth?: boolean;
  /** Use PIPELINING when offered (RFC 2920). Default true. */
  pipelining?: boolean;
  /** Use CHUNKING/BDAT when offered (RFC 3030). Default true. */
  chunking?: boolean;
  /**
   * BDAT chunk size in bytes. Unset: a body read from a stream goes in chunks
   * of 1 MiB (what is held in memory at once), and a body in memory in one
   * chunk of its exact size (`BDAT <size> LAST`, as MailKit and Exchange send
   * it); a message up to 1 MiB rides with its envelope. Set: every body goes
   * in chunks of this size, and a message up to it rides with its envelope.
   */
  chunkSize?: number;
  /** Bounds on replies. */
  replyLimits?: Partial<ReplyLimits>;
  /** Lines of message data longer than 998 octets (RFC 5321 §4.5.3.1.6): 'allow' (default) or 'reject'. */
  longLines?: 'allow' | 'reject';
  /** DKIM-sign every message sent on this connection (one signature or several); see docs "DKIM". */
  dkim?: DkimOption | DkimSigner;
  /** Allow `tls.minVersion`/`maxVersion`/`secureProtocol` below TLS 1.2 (RFC 8996). Off: such options are an error. */
  allowLegacyTls?: boolean;
}

export function resolveTimeouts(options: SMTPOptions): Timeouts {
  const merged = { ...DEFAULT_TIMEOUTS, ...(options.timeouts ?? {}) };
  if (options.timeout !== undefined) {
    const t = options.timeout;
    return { ...merged, connect: t, tls: t, greeting: t, command: t, dataWrite: t, dataEnd: t, quit: Math.min(t, merged.quit) };
  }
  return merged;
}

/** Every key SMTPOptions knows; anything else is a typo or a misplaced option. */
export const SMTP_OPTION_KEYS: readonly string[] = Object.freeze([
  'host', 'port', 'localHostname', 'timeout', 'timeouts', 'sourceAddress', 'tls', 'tlsPolicy', 'fingerprint',
  'debugLevel', 'debugOutput', 'lookup', 'family', 'autoSelectFamily', 'connect', 'allowCleartextAuth',
  'pipelining', 'chunking', 'chunkSize', 'replyLimits', 'longLines', 'dkim', 'allowLegacyTls',
]);

/** Below this a timeout was almost certainly meant in seconds (smtplib's unit). */
export const SECONDS_SUSPECT_BELOW = 100;
let warnedSeconds = false;

/**
 * Checks the constructor's options before anything else happens: unknown
 * keys, wrong types and values that would silently change behaviour (a
 * timeout of 0 used to switch every deadline off) are SMTPInvalidArgumentError.
 */
export function validateOptions(options: SMTPOptions): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new SMTPInvalidArgumentError(`SMTP options must be an object such as { host, port }, got ${options === null ? 'null' : typeof options}`);
  }
  assertKnownKeys(options as Record<string, unknown>, SMTP_OPTION_KEYS, 'SMTP option');
  const o = options;
  if (o.host !== undefined && typeof o.host !== 'string') throw new SMTPInvalidArgumentError(`host must be a string, got ${typeof o.host}`);
  if (o.port !== undefined && (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535)) {
    throw new SMTPInvalidArgumentError(`port must be an integer from 1 to 65535, got ${String(o.port)}`);
  }
  if (o.timeout !== undefined) checkTimeout(o.timeout, 'timeout');
  if (o.timeouts !== undefined) {
    if (typeof o.timeouts !== 'object' || o.timeouts === null) throw new SMTPInvalidArgumentError('timeouts must be an object of per-phase milliseconds');
    assertKnownKeys(o.timeouts as Record<string, unknown>, Object.keys(DEFAULT_TIMEOUTS), 'timeouts phase');
    for (const [phase, value] of Object.entries(o.timeouts)) if (value !== undefined) checkTimeout(value, `timeouts.${phase}`);
  }
  if (o.tlsPolicy !== undefined && !['required', 'opportunistic', 'none'].includes(o.tlsPolicy)) {
    throw new SMTPInvalidArgumentError(`tlsPolicy must be 'required', 'opportunistic' or 'none', got ${JSON.stringify(o.tlsPolicy)}`);
  }
  if (o.longLines !== undefined && o.longLines !== 'allow' && o.longLines !== 'reject') {
    throw new SMTPInvalidArgumentError(`longLines must be 'allow' or 'reject', got ${JSON.stringify(o.longLines)}`);
  }
  if (o.chunkSize !== undefined && (!Number.isSafeInteger(o.chunkSize) || o.chunkSize < 1)) {
    throw new SMTPInvalidArgumentError(`chunkSize must be a positive integer number of bytes, got ${String(o.chunkSize)}`);
  }
  if (o.family !== undefined && o.family !== 0 && o.family !== 4 && o.family !== 6) {
    throw new SMTPInvalidArgumentError(`family must be 4, 6 or 0, got ${String(o.family)}`);
  }
  if (o.connect !== undefined && typeof o.connect !== 'function') throw new SMTPInvalidArgumentError('connect must be a function (target) => Duplex');
  if (o.lookup !== undefined && typeof o.lookup !== 'function') throw new SMTPInvalidArgumentError('lookup must be a function, as in net.connect');
  if (o.debugOutput !== undefined && typeof o.debugOutput !== 'function') throw new SMTPInvalidArgumentError('debugOutput must be a function (line) => void');
  if (o.tls !== undefined && (typeof o.tls !== 'object' || o.tls === null)) throw new SMTPInvalidArgumentError('tls must be an object of Node TLS options');
  if (o.tls) assertModernTls(o.tls, Boolean(o.allowLegacyTls));
  if (o.fingerprint !== undefined) {
    const pins = typeof o.fingerprint === 'string' ? [o.fingerprint] : Array.isArray(o.fingerprint) ? o.fingerprint : undefined;
    if (!pins || pins.length === 0 || !pins.every((p) => typeof p === 'string' && /^[0-9a-f]{64}$/i.test(p.replace(/:/g, '')))) {
      throw new SMTPInvalidArgumentError('fingerprint must be a SHA-256 certificate fingerprint (64 hex digits, colons optional) or a non-empty list of them');
    }
  }
  if (o.replyLimits !== undefined) {
    if (typeof o.replyLimits !== 'object' || o.replyLimits === null) throw new SMTPInvalidArgumentError('replyLimits must be an object');
    assertKnownKeys(o.replyLimits as Record<string, unknown>, ['maxLineLength', 'maxReplyLength', 'maxReplyLines'], 'replyLimits key');
    for (const [key, value] of Object.entries(o.replyLimits)) {
      if (value !== undefined && (!Number.isSafeInteger(value) || (value as number) < 1)) {
        throw new SMTPInvalidArgumentError(`replyLimits.${key} must be a positive integer, got ${String(value)}`);
      }
    }
  }
}

/** A timeout is a positive number of milliseconds or Infinity; 0 and negatives are refused. */
export function checkTimeout(value: unknown, what: string): void {
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    throw new SMTPInvalidArgumentError(
      `${what} must be a positive number of milliseconds (or Infinity for no deadline), got ${String(value)}`,
    );
  }
  if (value < SECONDS_SUSPECT_BELOW && !warnedSeconds) {
    warnedSeconds = true;
    process.emitWarning(
      `${what} is ${value} ms. smtplib's timeouts are in milliseconds, not seconds as in Python: for ${value} seconds write ${value * 1000}`,
      { code: 'SMTPLIB_TIMEOUT_MILLISECONDS' },
    );
  }
}

/**
 * smtplib's positional constructor `SMTP(host, port, local_hostname, timeout)`
 * as options. Python connects in the constructor; a JavaScript constructor
 * cannot, so this only records them: call connect() (or use SMTP.connect()).
 * The timeout is in milliseconds here.
 */
export function positionalOptions(args: readonly unknown[]): SMTPOptions {
  const [host, port, localHostname, timeout] = args;
  if (args.length > 4) throw new SMTPInvalidArgumentError(`SMTP(host, port, localHostname, timeout) takes at most 4 arguments, got ${args.length}`);
  if (port !== undefined && typeof port !== 'number') {
    throw new SMTPInvalidArgumentError(`SMTP(host, port, ...): port must be a number, got ${typeof port}`);
  }
  if (localHostname !== undefined && localHostname !== null && typeof localHostname !== 'string') {
    throw new SMTPInvalidArgumentError('SMTP(host, port, localHostname, ...): localHostname must be a string');
  }
  return {
    ...(host !== '' ? { host: host as string } : {}),
    ...(port !== undefined && port !== 0 ? { port } : {}),
    ...(typeof localHostname === 'string' ? { localHostname } : {}),
    ...(timeout !== undefined && timeout !== null ? { timeout: timeout as number } : {}),
  };
}

/**
 * smtplib's "host:port" convention: with no port given, a single ":digits"
 * at the end is the port ("[v6]:port" too); an IPv6 literal's colons are not.
 * A non-numeric or out-of-range port is SMTPInvalidArgumentError (smtplib:
 * "nonnumeric port"). A Unix socket path (starting with "/") is never split.
 */
export function splitHostPort(host: string, port?: number): { host: string; port: number | undefined } {
  if (typeof host !== 'string') throw new SMTPInvalidArgumentError(`host must be a string, got ${typeof host}`);
  if (port !== undefined || host.startsWith('/')) return { host, port };
  const bracketed = /^\[(.+)\](?::([^:]*))?$/.exec(host);
  if (bracketed) return { host: bracketed[1]!, port: bracketed[2] === undefined ? undefined : parsePort(bracketed[2], host) };
  const colon = host.lastIndexOf(':');
  if (colon >= 0 && host.indexOf(':') === colon) return { host: host.slice(0, colon), port: parsePort(host.slice(colon + 1), host) };
  return { host, port: undefined };
}

function parsePort(text: string, whole: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new SMTPInvalidArgumentError(`${JSON.stringify(whole)}: ${JSON.stringify(text)} is not a port number (1 to 65535)`);
  }
  return port;
}
