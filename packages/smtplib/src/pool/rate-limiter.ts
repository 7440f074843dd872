// A token bucket shared by a whole SMTPPool: at most `messages` sends per
// `intervalMs`, whatever the number of connections. The bucket starts full
// (a burst of `messages` is allowed) and refills continuously at
// messages/intervalMs, so over any window of length intervalMs at most
// 2 × messages can start, and over a long run the rate converges to
// messages/intervalMs.
//
// The pool uses tryTake()/msUntilToken() from its synchronous dispatcher;
// acquire() is the awaitable form for other callers.

import { SMTPAbortError } from '../errors.js';

/** Refill arithmetic is in floating point: a hair below a whole token counts as one. */
const WHOLE = 1 - 1e-9;

export interface RateLimit {
  /** Messages allowed per interval (also the burst size). */
  messages: number;
  /** The interval in milliseconds. */
  intervalMs: number;
}

export class RateLimiter {
  readonly capacity: number;
  readonly intervalMs: number;
  readonly #now: () => number;
  #tokens: number;
  #updated: number;
  #waiters: { resolve(): void; reject(error: Error): void; timer?: NodeJS.Timeout | undefined; cleanup(): void }[] = [];
  /** How many times a caller found the bucket empty and had to wait. */
  waits = 0;

  constructor(limit: RateLimit, now: () => number = () => performance.now()) {
    if (!(Number.isFinite(limit.messages) && limit.messages > 0)) throw new RangeError(`rateLimit.messages must be > 0, got ${limit.messages}`);
    if (!(Number.isFinite(limit.intervalMs) && limit.intervalMs > 0)) throw new RangeError(`rateLimit.intervalMs must be > 0, got ${limit.intervalMs}`);
    this.capacity = limit.messages;
    this.intervalMs = limit.intervalMs;
    this.#now = now;
    this.#tokens = limit.messages;
    this.#updated = now();
  }

  /** Tokens available now (fractional). */
  get tokens(): number {
    this.#refill();
    return this.#tokens;
  }

  /** Takes a token if one is available. */
  tryTake(): boolean {
    this.#refill();
    if (this.#waiters.length > 0 || this.#tokens < WHOLE) return false;
    this.#tokens = Math.max(0, this.#tokens - 1);
    return true;
  }

  /** Milliseconds until a whole token is available (0 if one is). */
  msUntilToken(): number {
    this.#refill();
    return this.#msUntil();
  }

  /** Waits for a token, in FIFO order. Rejects with SMTPAbortError if `signal` fires first. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(new SMTPAbortError('aborted while waiting for the rate limit', { cause: signal.reason, deliveryStatus: 'not-delivered' }));
    if (this.#waiters.length === 0 && this.tryTake()) return Promise.resolve();
    this.waits++;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const index = this.#waiters.indexOf(waiter);
        if (index >= 0) this.#waiters.splice(index, 1);
        waiter.cleanup();
        reject(new SMTPAbortError('aborted while waiting for the rate limit', { cause: signal!.reason, deliveryStatus: 'not-delivered' }));
        this.#schedule();
      };
      const waiter = {
        resolve,
        reject,
        timer: undefined as NodeJS.Timeout | undefined,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
      if (this.#waiters.length === 1) this.#schedule();
    });
  }

  /** Rejects every waiting acquire(). */
  cancel(error: Error): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) {
      clearTimeout(waiter.timer);
      waiter.cleanup();
      waiter.reject(error);
    }
  }

  #schedule(): void {
    const head = this.#waiters[0];
    if (!head || head.timer) return;
    head.timer = setTimeout(() => {
      head.timer = undefined;
      this.#refill();
      while (this.#waiters.length > 0 && this.#tokens >= WHOLE) {
        this.#tokens = Math.max(0, this.#tokens - 1);
        const waiter = this.#waiters.shift()!;
        waiter.cleanup();
        waiter.resolve();
      }
      this.#schedule();
    }, Math.max(1, this.#msUntil()));
  }

  #msUntil(): number {
    if (this.#tokens >= WHOLE) return 0;
    return Math.ceil(((1 - this.#tokens) * this.intervalMs) / this.capacity);
  }

  #refill(): void {
    const now = this.#now();
    const elapsed = now - this.#updated;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.capacity, this.#tokens + (elapsed * this.capacity) / this.intervalMs);
      this.#updated = now;
    }
  }
}
