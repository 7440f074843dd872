// The public types of SMTPPool: options, results, stats and events.

import type { SMTPOptions } from '../client/options.js';
import type { RefusedRecipients } from '../protocol/refused-recipients.js';
import type { SendOptions } from '../client/smtp.js';
import type { Reply } from '../protocol/reply.js';
import type { DisconnectReason, PoolAuth } from './pool-connection.js';
import type { RateLimit } from './rate-limiter.js';
import type { RetryOptions } from './retry-policy.js';

export interface SMTPPoolOptions extends SMTPOptions {
  /** Log in on every connection. */
  auth?: PoolAuth;
  /** TLS from the first byte (SMTP_SSL) whatever the port. Port 465 gets it anyway. */
  implicitTls?: boolean;
  /** Connections open at once. Default 5. */
  maxConnections?: number;
  /**
   * Messages per connection before it is retired (QUIT, replaced by a fresh
   * one). Default: unlimited (reuse is bounded by maxConnectionAge). Each
   * connection draws its own limit from 80-100 % of this value.
   */
  maxMessagesPerConnection?: number;
  /** Sends in flight (pipelined) on one connection. Default 10. */
  maxInFlightPerConnection?: number;
  /** Close a connection idle this long (ms). Default 30 000. */
  idleTimeout?: number;
  /**
   * Retire a connection this old (ms), after its current sends, as Postfix's
   * smtp_connection_reuse_time_limit. Default 300 000 (5 minutes). Each
   * connection draws its own limit from 80-100 % of this value.
   */
  maxConnectionAge?: number;
  /** The former name of maxConnectionAge. */
  connectionTTL?: number;
  /** Sends per interval across the whole pool. Default: unlimited. */
  rateLimit?: RateLimit;
  /** Retries; see RetryOptions. */
  retry?: RetryOptions;
  /** Sends waiting for a connection beyond which sendmail() rejects with ERR_SMTP_POOL_FULL. Default: unlimited. */
  maxQueued?: number;
  /** A connection idle longer than this (ms) is checked with NOOP before reuse. Default 10 000. */
  noopAfterIdleMs?: number;
  /**
   * Failed connection rounds in a row after which every waiting send fails
   * with the last connection error (refused, reset, connect timeout, 421
   * greeting), when no connection is open. Default 3. A destination that
   * cannot work (the name does not resolve, no greeting because the port
   * expects implicit TLS, TLS verification or authentication failed, a 5xx
   * greeting) fails every waiting send at the first failure. A failed
   * connection never counts as an attempt of any message.
   */
  connectAttempts?: number;
  /** Resume TLS sessions across the pool's connections (each ticket used once). Default true. */
  tlsSessionResumption?: boolean;
}

/** The call options of SMTP.sendmail()/deliver(): `{ signal, mailOptions, rcptOptions }`. */
export interface PoolSendOptions extends SendOptions {}

export interface PoolSendMessageOptions extends PoolSendOptions {
  /** Envelope sender; default: the message's Sender/From (or Resent-*). */
  from?: string;
  /** Envelope recipients; default: To, Cc and Bcc (or Resent-*). */
  to?: string | readonly string[];
}

export interface PoolTimings {
  /** From sendmail() to the start of the first attempt. */
  queuedMs: number;
  /** From the start of the first attempt to the outcome (retries and their backoff included). */
  sendMs: number;
  /** From sendmail() to the outcome. */
  totalMs: number;
}

export interface PoolSendResult {
  /** Recipients that accepted the message, over all attempts. */
  accepted: string[];
  /** Recipients finally refused (permanent refusals, and transient ones that ran out of attempts). */
  refused: RefusedRecipients;
  /** The end-of-data reply of the last successful attempt. */
  reply: Reply;
  /** Attempts made (1 when nothing was retried). */
  attempts: number;
  timings: PoolTimings;
  /**
   * Recipients whose delivery is uncertain: a later attempt for them lost
   * the connection after the end of data. Empty in the common case.
   */
  unknown: string[];
}

/** What a rejected send's error carries in addition to its own fields. */
export interface PoolErrorFields {
  /** Times the message was tried on a connection (0: it never got one). */
  attempts: number;
  /** Set when the send failed because no connection could be opened: the failed connection rounds. */
  connectAttempts?: number;
}

export interface PoolStats {
  connections: { open: number; idle: number; busy: number; opening: number };
  /** Sends waiting for a connection (backoff waits included). */
  queued: number;
  /** Sends on the wire. */
  inFlight: number;
  /** Sends resolved. */
  sent: number;
  /** Sends rejected. */
  failed: number;
  /** Attempts that were retries. */
  retried: number;
  /** Sends that had to wait for the rate limit (each counted once). */
  rateLimitWaits: number;
  /** Connections opened since the pool was created. */
  connectionsOpened: number;
  /** Of those, how many resumed a TLS session. */
  tlsResumed: number;
  /** Connection attempts that failed. */
  connectFailures: number;
}

export interface PoolConnectEvent {
  id: number;
  connectMs: number;
  secure: boolean;
  tlsResumed: boolean;
}


export interface PoolDisconnectEvent {
  id: number;
  messages: number;
  reason: DisconnectReason;
}

export type PoolMessageEvent =
  | { status: 'sent'; result: PoolSendResult }
  | { status: 'failed'; error: unknown; attempts: number; timings: PoolTimings };

export interface SMTPPoolEvents {
  connect: [PoolConnectEvent];
  disconnect: [PoolDisconnectEvent];
  idle: [];
  error: [Error];
  message: [PoolMessageEvent];
}

