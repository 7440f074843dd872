import { afterEach, describe, expect, it, vi } from 'vitest';
import { RateLimiter } from '../../packages/smtplib/src/pool/rate-limiter.js';
import { SMTPAbortError } from '../../packages/smtplib/src/errors.js';

describe('RateLimiter (token bucket)', () => {
  afterEach(() => vi.useRealTimers());

  it('allows a burst of `messages`, then refills at messages/intervalMs', () => {
    let now = 0;
    const limiter = new RateLimiter({ messages: 5, intervalMs: 1000 }, () => now);
    for (let i = 0; i < 5; i++) expect(limiter.tryTake()).toBe(true);
    expect(limiter.tryTake()).toBe(false);
    expect(limiter.msUntilToken()).toBe(200);
    now = 199;
    expect(limiter.tryTake()).toBe(false);
    now = 200;
    expect(limiter.tryTake()).toBe(true);
    now = 10_000; // refills up to the capacity, not beyond
    expect(limiter.tokens).toBe(5);
  });

  it('over a long run, never more than messages per interval plus the burst', () => {
    let now = 0;
    const limiter = new RateLimiter({ messages: 10, intervalMs: 100 }, () => now);
    let taken = 0;
    for (now = 0; now <= 1000; now += 1) while (limiter.tryTake()) taken++;
    // 10 at t=0 plus 0.1 per ms for 1000 ms.
    expect(taken).toBe(110);
  });

  it('acquire() waits in FIFO order and counts waits', async () => {
    vi.useFakeTimers();
    const limiter = new RateLimiter({ messages: 2, intervalMs: 100 }, () => Date.now());
    const order: number[] = [];
    const all = [1, 2, 3, 4].map((n) => limiter.acquire().then(() => order.push(n)));
    await Promise.resolve();
    await Promise.resolve();
    expect(order).toEqual([1, 2]);
    expect(limiter.waits).toBe(2);
    await vi.advanceTimersByTimeAsync(50);
    expect(order).toEqual([1, 2, 3]);
    await vi.advanceTimersByTimeAsync(50);
    expect(order).toEqual([1, 2, 3, 4]);
    await Promise.all(all);
  });

  it('acquire() rejects on abort and on cancel', async () => {
    vi.useFakeTimers();
    const limiter = new RateLimiter({ messages: 1, intervalMs: 1000 }, () => Date.now());
    await limiter.acquire();
    const controller = new AbortController();
    const waiting = limiter.acquire(controller.signal);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toBeInstanceOf(SMTPAbortError);
    const other = limiter.acquire();
    limiter.cancel(new Error('closed'));
    await expect(other).rejects.toThrow('closed');
  });

  it('rejects nonsense limits', () => {
    expect(() => new RateLimiter({ messages: 0, intervalMs: 1000 })).toThrow(RangeError);
    expect(() => new RateLimiter({ messages: 1, intervalMs: 0 })).toThrow(RangeError);
  });
});
