// When a deferred message is tried again, and when the queue gives up.
// Defaults are Postfix's: minimal_backoff_time 300 s, doubling up to
// maximal_backoff_time 4000 s, bounce after maximal_queue_lifetime 5 days.

import type { StatusKind } from 'smtplib';

export interface RetrySchedule {
  /** The first retry's delay. Default 300 000 ms (Postfix minimal_backoff_time). */
  minBackoffMs?: number;
  /** No retry waits longer than this. Default 4 000 000 ms (Postfix maximal_backoff_time). */
  maxBackoffMs?: number;
  /** A message still failing this long after it was queued is bounced. Default 5 days (Postfix maximal_queue_lifetime). */
  maxAgeMs?: number;
  /** After a greylisting reply, wait this long (servers refuse retries that come too early). Default minBackoffMs. */
  greylistDelayMs?: number;
  /** After a rate-limit reply, the normal delay is multiplied by this. Default 2. */
  rateLimitFactor?: number;
}

export type ResolvedSchedule = Required<RetrySchedule>;

export const DEFAULT_SCHEDULE: ResolvedSchedule = Object.freeze({
  minBackoffMs: 300_000,
  maxBackoffMs: 4_000_000,
  maxAgeMs: 5 * 24 * 3600_000,
  greylistDelayMs: 300_000,
  rateLimitFactor: 2,
});

export function resolveSchedule(schedule: RetrySchedule = {}): ResolvedSchedule {
  const minBackoffMs = schedule.minBackoffMs ?? DEFAULT_SCHEDULE.minBackoffMs;
  const resolved: ResolvedSchedule = {
    minBackoffMs,
    maxBackoffMs: schedule.maxBackoffMs ?? Math.max(minBackoffMs, DEFAULT_SCHEDULE.maxBackoffMs),
    maxAgeMs: schedule.maxAgeMs ?? DEFAULT_SCHEDULE.maxAgeMs,
    greylistDelayMs: schedule.greylistDelayMs ?? minBackoffMs,
    rateLimitFactor: schedule.rateLimitFactor ?? DEFAULT_SCHEDULE.rateLimitFactor,
  };
  for (const [name, value] of Object.entries(resolved)) {
    if (!(value >= 0) || !Number.isFinite(value)) throw new RangeError(`schedule.${name} must be a finite number >= 0, got ${value}`);
  }
  if (resolved.maxBackoffMs < resolved.minBackoffMs) throw new RangeError('schedule.maxBackoffMs must be >= minBackoffMs');
  return resolved;
}

/** The delay before attempt `attempts + 1`, after `attempts` failed ones (attempts >= 1). */
export function retryDelay(attempts: number, kind: StatusKind, schedule: ResolvedSchedule): number {
  if (kind === 'greylisting') return schedule.greylistDelayMs;
  const exponent = Math.max(0, Math.min(attempts - 1, 40));
  const base = Math.min(schedule.maxBackoffMs, schedule.minBackoffMs * 2 ** exponent);
  return kind === 'rate-limit' ? Math.min(schedule.maxBackoffMs, base * schedule.rateLimitFactor) : base;
}
