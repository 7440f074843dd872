// How long finished messages are kept, and the one rule of which ones a purge
// may remove. A queue keeps the record of a finished (delivered, bounced,
// unknown) message so that get(), wait() and `queue show` can answer about it;
// kept for ever, those records fill the disk (spool) or Redis's memory. Every
// store's purge() removes exactly what isPurgeable() says (RedisStore checks
// the same rule again in Lua, atomically with the removal).

import { restingState } from './record.js';
import type { StoredMessage } from './types.js';

export type FinishedState = 'delivered' | 'bounced' | 'unknown';
export const FINISHED_STATES: readonly FinishedState[] = ['delivered', 'bounced', 'unknown'];

export interface PurgeOptions {
  /**
   * Remove messages that finished before this time (ms since the epoch): one time for every
   * finished state, or one per state (a state left out is kept).
   */
  finishedBefore: number | Partial<Record<FinishedState, number>>;
  /** Stops the purge between two pages (a stopping worker): it resolves with what it removed so far. */
  signal?: AbortSignal;
}

/** How long a running worker keeps finished messages before it purges them (ms). */
export interface RetentionOptions {
  /** Delivered messages. Default 7 days. Infinity keeps them for ever. */
  deliveredMs?: number;
  /** Bounced and unknown messages (an operator may want to look at them, or retry them). Default 7 days. Infinity keeps them. */
  failedMs?: number;
  /** How often, at most, a purge runs for the whole queue (one worker of all those sharing the store runs it). Default 60 000 ms. */
  intervalMs?: number;
}

export const DEFAULT_RETENTION_MS = 7 * 24 * 3_600_000;
export const DEFAULT_RETENTION_INTERVAL_MS = 60_000;

export interface ResolvedRetention {
  deliveredMs: number;
  failedMs: number;
  intervalMs: number;
}

/** The retention in force: the defaults, or none at all (`false`: finished messages are kept for ever). */
export function resolveRetention(options: RetentionOptions | false | undefined): ResolvedRetention | undefined {
  if (options === false) return undefined;
  const resolved = {
    deliveredMs: options?.deliveredMs ?? DEFAULT_RETENTION_MS,
    failedMs: options?.failedMs ?? DEFAULT_RETENTION_MS,
    intervalMs: options?.intervalMs ?? DEFAULT_RETENTION_INTERVAL_MS,
  };
  for (const [name, value] of Object.entries(resolved)) {
    if (!(value >= 0)) throw new RangeError(`retention.${name} must be a number of ms >= 0 (Infinity keeps for ever), got ${value}`);
  }
  return resolved.deliveredMs === Infinity && resolved.failedMs === Infinity ? undefined : resolved;
}

/** purge()'s options for a retention at `now`: cutoffs per state (a state kept for ever is left out). */
export function retentionCutoffs(retention: ResolvedRetention, now: number): PurgeOptions {
  const finishedBefore: Partial<Record<FinishedState, number>> = {};
  if (retention.deliveredMs !== Infinity) finishedBefore.delivered = now - retention.deliveredMs;
  if (retention.failedMs !== Infinity) finishedBefore.bounced = finishedBefore.unknown = now - retention.failedMs;
  return { finishedBefore };
}

/** The cutoff for each finished state (undefined: that state is kept). */
export function purgeCutoffs(options: PurgeOptions): Record<FinishedState, number | undefined> {
  const by = options.finishedBefore;
  const cutoffs = typeof by === 'number' ? { delivered: by, bounced: by, unknown: by } : { delivered: by.delivered, bounced: by.bounced, unknown: by.unknown };
  for (const state of FINISHED_STATES) {
    const value = cutoffs[state];
    if (value !== undefined && !Number.isFinite(value)) throw new RangeError(`purge: finishedBefore${typeof by === 'number' ? '' : `.${state}`} must be a time in ms since the epoch, got ${value}`);
  }
  return cutoffs;
}

/** The latest cutoff: a message created at or after it cannot have finished before any cutoff. */
export function latestCutoff(cutoffs: Record<FinishedState, number | undefined>): number | undefined {
  let latest: number | undefined;
  for (const state of FINISHED_STATES) {
    const value = cutoffs[state];
    if (value !== undefined && (latest === undefined || value > latest)) latest = value;
  }
  return latest;
}

/**
 * Whether a purge removes this message: finished (delivered, bounced or unknown; never queued,
 * deferred, held or claimed) before its state's cutoff. A held message is never finished (hold()
 * refuses finished ones), but the test is here so that no store relies on that.
 */
export function isPurgeable(message: StoredMessage, cutoffs: Record<FinishedState, number | undefined>): boolean {
  if (message.held || message.finishedAt === undefined) return false;
  const state = restingState(message);
  if (state !== 'delivered' && state !== 'bounced' && state !== 'unknown') return false;
  const cutoff = cutoffs[state];
  return cutoff !== undefined && message.finishedAt < cutoff;
}
