// The queue's data model, shared by every store: a message, its recipients,
// their states, and the events a queue emits.

/**
 * Where a message (or one of its recipients) is.
 *   queued    waiting for its first attempt (maybe until notBefore)
 *   active    claimed by a worker, an attempt is running
 *   deferred  an attempt failed transiently; waits for nextAttemptAt
 *   delivered accepted by the server (terminal)
 *   bounced   refused permanently, or retried until maxAge (terminal)
 *   unknown   the end of data was written and no reply was read: maybe delivered; never resent unless retryUnknown (terminal)
 *   held      put aside by an operator; not attempted until released
 */
export type QueueState = 'queued' | 'active' | 'deferred' | 'delivered' | 'bounced' | 'unknown' | 'held';

export const QUEUE_STATES: readonly QueueState[] = ['queued', 'active', 'deferred', 'delivered', 'bounced', 'unknown', 'held'];
export const TERMINAL_STATES: readonly QueueState[] = ['delivered', 'bounced', 'unknown'];

export function isTerminal(state: QueueState): boolean {
  return state === 'delivered' || state === 'bounced' || state === 'unknown';
}

/** A reply as stored (JSON): code, text, and the RFC 3463 enhanced status when the server gave one. */
export interface StoredReply {
  code: number;
  message: string;
  enhancedStatus?: string;
}

/** What the store keeps for one recipient. */
export interface StoredRecipient {
  address: string;
  /** queued, deferred, delivered, bounced or unknown ('active' and 'held' come from the message). */
  state: 'queued' | 'deferred' | 'delivered' | 'bounced' | 'unknown';
  /** Attempts that included this recipient. */
  attempts: number;
  lastReply?: StoredReply;
  /** The catalogue's reading of lastReply (or of the failure), for people. */
  lastAdvice?: string;
  /** When this recipient reached its terminal state (ms since the epoch). */
  finishedAt?: number;
}

/** What the store keeps for one message (JSON, schema version 1). */
export interface StoredMessage {
  v: 1;
  id: string;
  from: string;
  recipients: StoredRecipient[];
  /** Completed (recorded) attempts. The attempt in progress, if any, is attempts + 1. */
  attempts: number;
  priority: number;
  metadata: Record<string, unknown>;
  idempotencyKey?: string;
  mailOptions?: unknown;
  rcptOptions?: unknown;
  size: number;
  /**
   * Whether the body has a byte over 127, recorded by the spool at enqueue for a body it gives the pool as
   * a file (past 256 KiB): the core cannot scan a file ahead of MAIL to declare BODY=8BITMIME.
   */
  eightBit?: boolean;
  /** ms since the epoch */
  createdAt: number;
  notBefore: number;
  /** When the next attempt may start (notBefore, or the retry schedule's answer). */
  nextAttemptAt: number;
  firstAttemptAt?: number;
  lastAttemptAt?: number;
  finishedAt?: number;
  /** The last failure that was not a reply (connection lost, timeout), for people. */
  lastError?: string;
  /** Why the message is unknown, when it is (e.g. "worker died after the end of data was written"). */
  unknownReason?: string;
  /** Set while held. */
  held?: boolean;
}

/** A message as the API shows it: the stored record plus its current state. */
export interface QueueMessage extends Omit<StoredMessage, 'recipients'> {
  state: QueueState;
  recipients: (Omit<StoredRecipient, 'state'> & { state: QueueState })[];
  /** The worker holding it, while active. */
  worker?: string;
}

export interface EnqueueInput {
  /** Envelope sender ('' for a null reverse path). */
  from: string;
  /** Envelope recipients. */
  to: string | readonly string[];
  /** The RFC 5322 message, exactly as it is to be sent. */
  message: string | Uint8Array;
  mailOptions?: unknown;
  rcptOptions?: unknown;
}

export interface EnqueueOptions {
  /**
   * A second enqueue with the same key returns the first one's id (and stores nothing), while that
   * message is kept: the key goes with it when it is purged (retention: 7 days after it finished, by default) or deleted.
   */
  idempotencyKey?: string;
  /** Not attempted before this time (Date or ms since the epoch). */
  notBefore?: Date | number;
  /** Higher first among messages that are due. Default 0; integers -9..9. */
  priority?: number;
  /** Stored with the message, shown by list/show (JSON). */
  metadata?: Record<string, unknown>;
}

export interface EnqueueResult {
  id: string;
  /** false when the idempotency key had been used: `id` is the first message's. */
  created: boolean;
}

export interface ListFilter {
  state?: QueueState | readonly QueueState[];
  /** Substring of the sender or of any recipient (case-insensitive). */
  search?: string;
  limit?: number;
}

export interface QueueStats {
  /** Messages per state. */
  messages: Record<QueueState, number>;
  /** Recipients per state. */
  recipients: Record<QueueState, number>;
  /** Messages not in a terminal state. */
  pending: number;
  /** The oldest pending message's age (ms), 0 when none. */
  oldestPendingMs: number;
}

/** Emitted for every state change of a message (and of each recipient that changed with it). */
export interface TransitionEvent {
  id: string;
  from: QueueState | 'new';
  to: QueueState | 'deleted';
  /** Recipients whose own state changed in this transition, with their new state. */
  recipients?: { address: string; state: QueueState }[];
  at: number;
}

export interface QueueEvents {
  transition: [TransitionEvent];
  error: [Error];
}

export function emptyCounts(): Record<QueueState, number> {
  return { queued: 0, active: 0, deferred: 0, delivered: 0, bounced: 0, unknown: 0, held: 0 };
}
