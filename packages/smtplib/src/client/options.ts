// Options of SMTP, SMTP_SSL and LMTP, and how their defaults are derived.

import type { LookupFunction } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { ReplyLimits } from '../protocol/reply-parser.js';
import type { DebugOutput } from '../session/debug-log.js';
import type { ConnectHook } from '../wire/connect.js';

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

/** Per-phase deadlines in milliseconds (0 or Infinity: none). */
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
  /** One timeout in milliseconds for connecting and for each reply; overrides `timeouts`. */
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
  /** BDAT chunk size in bytes. Default 1 MiB. */
  chunkSize?: number;
  /** Bounds on replies. */
  replyLimits?: Partial<ReplyLimits>;
  /** Lines of message data longer than 998 octets (RFC 5321 §4.5.3.1.6): 'allow' (default) or 'reject'. */
  longLines?: 'allow' | 'reject';
}

export function resolveTimeouts(options: SMTPOptions): Timeouts {
  const merged = { ...DEFAULT_TIMEOUTS, ...(options.timeouts ?? {}) };
  if (options.timeout !== undefined) {
    const t = options.timeout;
    return { ...merged, connect: t, tls: t, greeting: t, command: t, dataWrite: t, dataEnd: t, quit: Math.min(t, merged.quit) };
  }
  return merged;
}

/** smtplib's "host:port" convention: a trailing ":digits" is the port. */
export function splitHostPort(host: string, port: number | undefined): { host: string; port: number | undefined } {
  if (port === undefined && !host.startsWith('/')) {
    const bracketed = /^\[(.+)\]:(\d+)$/.exec(host);
    if (bracketed) return { host: bracketed[1]!, port: Number(bracketed[2]) };
    const colon = host.lastIndexOf(':');
    if (colon > 0 && host.indexOf(':') === colon && /^\d+$/.test(host.slice(colon + 1))) {
      return { host: host.slice(0, colon), port: Number(host.slice(colon + 1)) };
    }
  }
  return { host, port };
}
