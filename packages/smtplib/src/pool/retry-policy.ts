// Which failures SMTPPool retries, and how long it waits before it does.
// Pure functions: no I/O, no clock, randomness injected.
//
// The rule is "retry only when the server certainly did not accept the
// message":
//   - connection failures before the end of data was written (the error's
//     deliveryStatus is 'not-delivered', or the failure happened before the
//     transaction started),
//   - 421 (the server is closing: SMTPServerDisconnected),
//   - any other transient 4xx reply (451, 452, 450, 454, ...),
// and never:
//   - a permanent 5xx reply,
//   - deliveryStatus 'unknown' (the end of data was written, no reply was
//     read: the message may have been delivered) unless retryUnknown is set,
//   - the caller's own abort, bad arguments, a missing extension, a TLS
//     verification failure.

import {
  SMTPAbortError,
  SMTPAuthenticationError,
  SMTPConnectError,
  SMTPException,
  SMTPInvalidArgumentError,
  SMTPNotSupportedError,
  SMTPProtocolError,
  SMTPRecipientsRefused,
  SMTPResponseException,
  SMTPServerDisconnected,
  SMTPTimeoutError,
  SMTPTLSError,
} from '../errors.js';
import type { Reply } from '../protocol/reply.js';

export interface RetryOptions {
  /** Attempts per message, the first included. Default 3. */
  attempts?: number;
  /** Backoff base (the cap of the first retry's delay). Default 1000 ms. */
  minDelayMs?: number;
  /** Cap of any delay. Default 60 000 ms. */
  maxDelayMs?: number;
  /** Also retry failures whose deliveryStatus is 'unknown' (risking duplicates). Default false. */
  retryUnknown?: boolean;
}

/**
 * What a failure to open a connection says about the destination (not about
 * any message, so it never counts as a message's attempt):
 * - `dead`: trying again will not help (the name does not resolve, the port
 *   speaks the other TLS mode, TLS verification or authentication failed, the
 *   greeting refused the session with 5xx). Every waiting send fails at once.
 * - `retry`: may pass (refused, reset, timed out, 421 at the greeting). After
 *   `connectAttempts` such failures in a row, with no connection open, every
 *   waiting send fails with the last one.
 */
export type ConnectVerdict = 'dead' | 'retry';

export function classifyConnectFailure(error: unknown): ConnectVerdict {
  // A transient reply (421 greeting, 454 to STARTTLS, 4xx to AUTH) may pass next time.
  const smtpCode = (error as { smtpCode?: unknown })?.smtpCode;
  if (error instanceof SMTPException && typeof smtpCode === 'number' && smtpCode >= 400 && smtpCode < 500) return 'retry';
  if (isGreetingTimeout(error) || inChain(error, (e) => e instanceof SMTPProtocolError)) return 'dead';
  const code = errnoCode(error);
  // The connection reset or cut in the middle (of the TLS handshake too:
  // Node's "socket disconnected before secure TLS connection was
  // established" is ECONNRESET) says nothing about the certificate.
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED' || code === 'ETIMEDOUT') return 'retry';
  // Likewise the connection lost or timed out during STARTTLS, which the TLS
  // policy reports as an SMTPTLSError ("TLS is required but the server closed
  // the connection") with that failure as its cause.
  if (inChain(error, (e) => e instanceof SMTPServerDisconnected || e instanceof SMTPTimeoutError)) return 'retry';
  if (code === 'ENOTFOUND' || code === 'ENOENT' || code === 'EACCES') return 'dead';
  return classify(error, { retryUnknown: false }).retry ? 'retry' : 'dead';
}

/**
 * No greeting within the deadline: a server that says nothing is almost
 * always an implicit-TLS port (465) spoken to in plain text; waiting for it
 * again costs the whole greeting timeout each time.
 */
function isGreetingTimeout(error: unknown): boolean {
  return inChain(error, (e) => e instanceof SMTPTimeoutError && e.phase === 'greeting');
}

function inChain(error: unknown, test: (e: Error) => boolean): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (test(e)) return true;
  }
  return false;
}

/** The first `code` like ECONNREFUSED along the cause chain. */
function errnoCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  }
  return undefined;
}

export interface ResolvedRetryOptions {
  attempts: number;
  minDelayMs: number;
  maxDelayMs: number;
  retryUnknown: boolean;
}

export function resolveRetryOptions(options: RetryOptions = {}): ResolvedRetryOptions {
  const attempts = options.attempts ?? 3;
  if (!Number.isInteger(attempts) || attempts < 1) throw new RangeError(`retry.attempts must be an integer >= 1, got ${attempts}`);
  const minDelayMs = options.minDelayMs ?? 1000;
  const maxDelayMs = options.maxDelayMs ?? 60_000;
  if (!(minDelayMs >= 0) || !(maxDelayMs >= minDelayMs)) {
    throw new RangeError(`retry delays must satisfy 0 <= minDelayMs <= maxDelayMs (got ${minDelayMs}, ${maxDelayMs})`);
  }
  return { attempts, minDelayMs, maxDelayMs, retryUnknown: options.retryUnknown ?? false };
}

/** Why a failure is or is not retried (stable strings, used in stats and tests). */
export type RetryVerdict =
  | { retry: true; reason: 'connection-lost' | 'server-closing' | 'transient-reply' | 'timeout' | 'unknown-allowed' }
  | { retry: false; reason: 'permanent-reply' | 'delivery-unknown' | 'aborted' | 'invalid' | 'tls' | 'not-smtp' | 'not-retryable' };

export interface ClassifyContext {
  retryUnknown: boolean;
  /** The caller's own signal fired (an SMTPAbortError from another send's abort is a connection loss). */
  callerAborted?: boolean;
}

/**
 * Decides whether a whole-message failure may be retried. For
 * SMTPRecipientsRefused (every recipient refused) see partitionRefusals:
 * this returns retry when at least one refusal is transient.
 */
export function classify(error: unknown, context: ClassifyContext): RetryVerdict {
  if (!(error instanceof SMTPException)) return { retry: false, reason: 'not-smtp' };
  if (error instanceof SMTPAbortError && context.callerAborted) return { retry: false, reason: 'aborted' };
  if (error.deliveryStatus === 'unknown') {
    return context.retryUnknown ? { retry: true, reason: 'unknown-allowed' } : { retry: false, reason: 'delivery-unknown' };
  }
  if (error instanceof SMTPInvalidArgumentError || error instanceof SMTPNotSupportedError) return { retry: false, reason: 'invalid' };
  if (error instanceof SMTPTLSError) return { retry: false, reason: 'tls' };
  if (error instanceof SMTPRecipientsRefused) {
    const replies = [...error.recipients.values()];
    return replies.some(isTransientReply) ? { retry: true, reason: 'transient-reply' } : { retry: false, reason: 'permanent-reply' };
  }
  if (error instanceof SMTPServerDisconnected) {
    return /\b421\b/.test(error.message) ? { retry: true, reason: 'server-closing' } : { retry: true, reason: 'connection-lost' };
  }
  if (error instanceof SMTPTimeoutError) return { retry: true, reason: 'timeout' };
  if (error instanceof SMTPProtocolError) return { retry: true, reason: 'connection-lost' };
  // An abort that is not the caller's: another send on the same connection
  // aborted and took the connection down with it.
  if (error instanceof SMTPAbortError) return { retry: true, reason: 'connection-lost' };
  if (error instanceof SMTPResponseException) {
    if (error.smtpCode === 421) return { retry: true, reason: 'server-closing' };
    if (error.isTransient) return { retry: true, reason: 'transient-reply' };
    if (error.smtpCode === -1) {
      // No reply: a connect failure (refused, reset, no greeting), not a
      // verdict on the message. Authentication without a code is a local
      // decision (no usable mechanism) and will not change.
      if (error instanceof SMTPAuthenticationError) return { retry: false, reason: 'not-retryable' };
      if (error instanceof SMTPConnectError) return { retry: true, reason: 'connection-lost' };
      return { retry: false, reason: 'not-retryable' };
    }
    return { retry: false, reason: 'permanent-reply' };
  }
  return { retry: false, reason: 'not-retryable' };
}

/** 4xx: the same request may succeed later. */
export function isTransientReply(reply: Reply): boolean {
  return reply.code >= 400 && reply.code < 500;
}

/** Splits per-recipient refusals into those worth another attempt (4xx) and final ones (5xx). */
export function partitionRefusals(refused: Iterable<[string, Reply]>): { transient: Map<string, Reply>; permanent: Map<string, Reply> } {
  const transient = new Map<string, Reply>();
  const permanent = new Map<string, Reply>();
  for (const [address, reply] of refused) (isTransientReply(reply) ? transient : permanent).set(address, reply);
  return { transient, permanent };
}

/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential
 * Backoff And Jitter"): a uniformly random delay in
 * [0, min(maxDelayMs, minDelayMs * 2^(retry - 1))]. `retry` counts from 1.
 * A floor of minDelayMs/10 keeps a retry from landing on the same instant.
 */
export function backoffDelay(retry: number, options: Pick<ResolvedRetryOptions, 'minDelayMs' | 'maxDelayMs'>, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.min(retry - 1, 30));
  const cap = Math.min(options.maxDelayMs, options.minDelayMs * 2 ** exponent);
  const floor = Math.min(cap, options.minDelayMs / 10);
  return Math.round(floor + random() * (cap - floor));
}
