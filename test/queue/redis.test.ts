// The Redis store (BullMQ): the shared conformance suite against a real
// redis-server started here, then what only Redis has (one global rate
// limit, per-destination limits, a Redis restart with AOF on).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { MailQueue, type Claim, type StoredMessage } from 'smtplib-queue';
import { RedisStore } from 'smtplib-queue-redis';
import { storeConformance } from './conformance.js';
import { redisAvailable, startRedis, type RedisHandle } from './redis-server.js';
import { FAST, startServer, taggedMessage } from './helpers.js';

const missing = redisAvailable();
if (missing && process.env.CI === 'true') throw new Error(`CI: the Redis store suite cannot run: ${missing}`);
if (missing) console.warn(`SKIPPED test/queue/redis.test.ts: ${missing}`);

let redis: RedisHandle;
const LOCK_MS = 1500;

async function makeStore(options: Partial<ConstructorParameters<typeof RedisStore>[0]> = {}): Promise<{ store: RedisStore; spec: string; cleanup(): Promise<void> }> {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const store = new RedisStore({ url: redis.url, prefix, lockDurationMs: LOCK_MS, stalledIntervalMs: 300, ...options });
  await store.open();
  return { store, spec: `redis:${redis.url}#${prefix}#${LOCK_MS}`, cleanup: async () => undefined };
}

/** A store with `n` messages queued and all of them claimed by one worker. */
async function claimedStore(n: number): Promise<{ store: RedisStore; w: string; claims: Claim[] }> {
  const { store } = await makeStore();
  const queue = new MailQueue(store);
  for (let i = 0; i < n; i++) await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message });
  const w = await store.registerWorker();
  const claims = await store.claim(w, n);
  expect(claims).toHaveLength(n);
  return { store, w, claims };
}

describe.skipIf(Boolean(missing))('Redis store (BullMQ)', () => {
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  storeConformance('redis (BullMQ)', () => makeStore());

  it('a message left with no BullMQ job gets one from the next scan, which one worker of the queue makes a minute', async () => {
    const { store, spec } = await makeStore();
    const queue = new MailQueue(store);
    const { id } = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message });
    const { Queue } = await import('bullmq');
    const bull = new Queue(store.prefix, { connection: { host: '127.0.0.1', port: Number(new URL(redis.url).port) } });
    // An enqueue that stopped between its two steps: the message is written, its job is not.
    const orphan = async (): Promise<void> => {
      await (await bull.getJob(id))!.remove();
      expect(await bull.getJob(id)).toBeUndefined();
    };
    await orphan();
    const { Redis } = await import('ioredis');
    const raw = new Redis(redis.url);
    const openOther = async (): Promise<RedisStore> => {
      const other = new RedisStore({ url: redis.url, prefix: spec.split('#')[1]!, lockDurationMs: LOCK_MS });
      await other.open(); // open() runs recover()
      return other;
    };
    // The scan this minute was made (by the first store's open): another process's open skips it.
    const skipped = await openOther();
    expect(await bull.getJob(id)).toBeUndefined();
    // A minute later (the key gone), the next open scans and gives the message its job.
    await raw.del(`${store.prefix}:orphan-scan`);
    const scanned = await openOther();
    expect((await bull.getJob(id))?.id).toBe(id);
    expect(await raw.pttl(`${store.prefix}:orphan-scan`)).toBeGreaterThan(50_000);
    for (const s of [skipped, scanned, store]) await s.close();
    await bull.close();
    await raw.quit();
  });

  it('outcomes asked for in one turn cost one round trip, and one that fails in Redis fails alone', async () => {
    const { store, w, claims } = await claimedStore(4);
    // One record made unreadable by hand: the outcome script's part for it raises a Lua error.
    const { Redis } = await import('ioredis');
    const raw = new Redis(redis.url);
    const broken = claims[0]!.message.id;
    await raw.hset(`${store.prefix}:msg:${broken}`, 'json', 'not json');
    const before = store.outcomeRoundTrips;
    const delivered = (m: StoredMessage): StoredMessage => ({ ...m, attempts: m.attempts + 1, recipients: m.recipients.map((r) => ({ ...r, state: 'delivered' as const })) });
    const results = await Promise.allSettled(claims.map((c) => store.finish(w, delivered(c.message))));
    expect(store.outcomeRoundTrips - before).toBe(1);
    expect(results[0]).toMatchObject({ status: 'rejected', reason: { code: 'ERR_QUEUE_STORE' } });
    expect(results.slice(1).map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    for (const c of claims.slice(1)) expect((await store.get(c.message.id))!.state).toBe('delivered');
    await raw.quit();
    await store.close();
  });

  it('marks asked for in one turn cost one round trip, and only a worker holding the lock gets one', async () => {
    const { store, w, claims } = await claimedStore(5);
    const before = store.markRoundTrips;
    await Promise.all(claims.map((c) => store.markCommitting(w, c.message.id, c.message.attempts + 1)));
    expect(store.markRoundTrips - before).toBe(1);
    // A lock that expired while Redis was away (here: removed) means another worker may be sending it.
    const { Redis } = await import('ioredis');
    const raw = new Redis(redis.url);
    const lost = claims[0]!.message.id;
    await raw.del(`bull:${store.prefix}:${lost}:lock`);
    await expect(store.markCommitting(w, lost, 2)).rejects.toMatchObject({ code: 'ERR_QUEUE_CLAIM_LOST' });
    // Another worker took it and recorded attempt 1 (here: by hand): this worker's record must not overwrite it.
    await raw.set(`bull:${store.prefix}:${lost}:lock`, 'someone-else');
    await raw.hset(`${store.prefix}:msg:${lost}`, 'json', JSON.stringify({ ...claims[0]!.message, attempts: 1, unknownReason: 'theirs' }));
    await expect(store.finish(w, { ...claims[0]!.message, attempts: 1 })).rejects.toMatchObject({ code: 'ERR_QUEUE_CLAIM_LOST' });
    expect((await store.get(lost))!.unknownReason).toBe('theirs');
    await raw.quit();
    await store.close();
  });

  /** Claims for worker `w` until it gets one (a job whose lock was lost comes back through BullMQ's stalled check). */
  async function claimOnce(store: RedisStore, w: string): Promise<Claim> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const [claim] = await store.claim(w, 1);
      if (claim) return claim;
      if (Date.now() > deadline) throw new Error('the stalled job never came back');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The worker holding message `id` is cut off: its lock expires (here: is removed), as when its event loop stalls or Redis is away. */
  async function cutOff(store: RedisStore, id: string): Promise<void> {
    const { Redis } = await import('ioredis');
    const raw = new Redis(redis.url);
    await raw.del(`bull:${store.prefix}:${id}:lock`);
    await raw.quit();
  }

  const withState = (m: StoredMessage, state: 'delivered' | 'deferred'): StoredMessage => ({ ...m, attempts: m.attempts + 1, nextAttemptAt: Date.now(), recipients: m.recipients.map((r) => ({ ...r, state })) });

  it('a worker leaving gives back what it holds only while the lock is still its own: a message taken over and delivered meanwhile stays out of the due index', async () => {
    const { store } = await makeStore();
    const queue = new MailQueue(store);
    const { id } = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message });
    const w = await store.registerWorker();
    const claim = await claimOnce(store, w);
    expect(claim.message.id).toBe(id);
    const { Redis } = await import('ioredis');
    const raw = new Redis(redis.url);
    // Cut off, then taken over and delivered by another worker (here: by hand).
    await raw.set(`bull:${store.prefix}:${id}:lock`, 'someone-else');
    await raw.hset(`${store.prefix}:msg:${id}`, 'json', JSON.stringify(withState(claim.message, 'delivered')), 'worker', 'the-other-worker');
    await raw.zrem(`${store.prefix}:active`, id);
    await store.unregisterWorker(w);
    expect(await raw.zscore(`${store.prefix}:due`, id)).toBeNull();
    expect(await raw.hget(`${store.prefix}:msg:${id}`, 'worker')).toBe('the-other-worker');
    expect((await store.get(id))!.state).toBe('delivered');
    await raw.quit();
    await store.close();
  });

  it('a worker cut off after its mark: the next claimer finds the mark, the late reply is recorded, and the claimer does not overwrite it', async () => {
    const { store } = await makeStore();
    const queue = new MailQueue(store);
    const { id } = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message });
    const w1 = await store.registerWorker();
    const w2 = await store.registerWorker();
    const first = await claimOnce(store, w1);
    await store.markCommitting(w1, id, 1);
    await cutOff(store, id);
    const second = await claimOnce(store, w2);
    expect(second.message.id).toBe(id);
    expect(second.interrupted).toBe(true);
    // w1's reply arrives: it sent the message and it was accepted. Its mark is still there, so it records that.
    await store.finish(w1, withState(first.message, 'delivered'));
    expect((await store.get(id))!.state).toBe('delivered');
    // w2 settles the interrupted attempt (unknown): attempt 1 is recorded already, by the worker that made it.
    const verdict = RedisStore.settleInterrupted(second.message, false);
    await expect(store.finish(w2, verdict)).rejects.toMatchObject({ code: 'ERR_QUEUE_CLAIM_LOST' });
    const after = (await store.get(id))!;
    expect(after.state).toBe('delivered');
    expect(after.attempts).toBe(1);
    await store.close();
  });

  it('a completion brings the next job back locked to the worker; its claim puts a token of its own on the lock; unregistering gives back what was not claimed', async () => {
    const { store } = await makeStore();
    const queue = new MailQueue(store);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message })).id);
    const { Redis } = await import('ioredis');
    const raw = new Redis(redis.url);
    const lock = (id: string): Promise<string | null> => raw.get(`bull:${store.prefix}:${id}:lock`);
    const w = await store.registerWorker();
    const first = await claimOnce(store, w);
    const token = await lock(first.message.id);
    expect(token).toBeTruthy();
    await store.markCommitting(w, first.message.id, 1);
    await store.finish(w, withState(first.message, 'delivered'));
    // The next job came back with the completion, under the finished claim's token, before any claim.
    const fetched = [];
    for (const id of ids) if (id !== first.message.id && (await lock(id)) === token) fetched.push(id);
    expect(fetched).toHaveLength(1);
    const second = await claimOnce(store, w);
    expect(second.message.id).toBe(fetched[0]);
    const own = await lock(second.message.id);
    expect(own).toBeTruthy();
    expect(own).not.toBe(token);
    // A mark names this claim: a stale holder of the old token cannot mark or record it.
    await store.markCommitting(w, second.message.id, 1);
    expect(await raw.smembers(`${store.prefix}:marks:${second.message.id}`)).toEqual([own]);
    await store.finish(w, withState(second.message, 'delivered'));
    // The third came back with that completion; unregistering gives it back, due at once, to any worker.
    const third = ids.find((id) => id !== first.message.id && id !== second.message.id)!;
    expect(await lock(third)).toBe(own);
    await store.unregisterWorker(w);
    expect(await lock(third)).toBeNull();
    const w2 = await store.registerWorker();
    const again = await claimOnce(store, w2);
    expect(again.message.id).toBe(third);
    expect(again.interrupted).toBe(false);
    await raw.quit();
    await store.close();
  });

  it('a late record from a worker that never marked (it sent nothing) is dropped: the attempt number under the next worker\'s mark does not move', async () => {
    const { store } = await makeStore();
    const queue = new MailQueue(store);
    const { id } = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message });
    const [w1, w2, w3] = [await store.registerWorker(), await store.registerWorker(), await store.registerWorker()];
    // w1 claims; its mark never got through (Redis was away), so it sent nothing; meanwhile its lock expired.
    const first = await claimOnce(store, w1);
    await cutOff(store, id);
    // w2 claims, marks attempt 1 and writes the end of data.
    const second = await claimOnce(store, w2);
    expect(second.interrupted).toBe(false);
    await store.markCommitting(w2, id, second.message.attempts + 1);
    // w1 now records "deferred, nothing was sent" for its attempt 1.
    await expect(store.finish(w1, withState(first.message, 'deferred'))).rejects.toMatchObject({ code: 'ERR_QUEUE_CLAIM_LOST' });
    expect((await store.get(id))!.attempts).toBe(0);
    // w2 dies before the reply (SIGKILL): the next claimer must find w2's mark and not send again.
    await cutOff(store, id);
    const third = await claimOnce(store, w3);
    expect(third.message.id).toBe(id);
    expect(third.interrupted).toBe(true);
    await store.close();
  });

  it('a purge leaves a claimed message whose record reads finished (a late outcome of a worker cut off): only the claim decides', async () => {
    const { store, claims } = await claimedStore(1);
    const id = claims[0]!.message.id;
    const { Redis } = await import('ioredis');
    const raw = new Redis(redis.url);
    const old = Date.now() - 10 * 86_400_000;
    const finished: StoredMessage = { ...claims[0]!.message, attempts: 1, finishedAt: old, recipients: claims[0]!.message.recipients.map((r) => ({ ...r, state: 'delivered' as const, attempts: 1, finishedAt: old })) };
    await raw.hset(`${store.prefix}:msg:${id}`, 'json', JSON.stringify(finished));
    expect(await raw.zscore(`${store.prefix}:active`, id)).not.toBeNull();
    expect(await store.purge({ finishedBefore: Date.now() })).toBe(0);
    expect(await raw.exists(`${store.prefix}:msg:${id}`)).toBe(1);
    await raw.quit();
    await store.close();
  });

  it('one rate limit holds across workers of different stores (processes share nothing but Redis)', async () => {
    const server = await startServer();
    const rate = { max: 10, durationMs: 500 };
    const a = await makeStore({ rateLimit: rate });
    const prefix = a.store.prefix;
    const b = new RedisStore({ url: redis.url, prefix, lockDurationMs: LOCK_MS, rateLimit: rate });
    await b.open();
    const queue = new MailQueue(a.store);
    for (let i = 0; i < 40; i++) await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message });
    const times: number[] = [];
    for (const store of [a.store, b]) store.on('transition', (e) => { if (e.to === 'active') times.push(Date.now()); });
    const smtp = { host: '127.0.0.1', port: server.port, tlsPolicy: 'none' as const };
    const workers = [new MailQueue(a.store).worker({ smtp, schedule: FAST, pollIntervalMs: 20 }), new MailQueue(b).worker({ smtp, schedule: FAST, pollIntervalMs: 20 })];
    let done = 0;
    for (const w of workers) w.on('attempt', () => done++);
    const started = Date.now();
    await Promise.all(workers.map((w) => w.start()));
    while (done < 40 && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 50));
    await Promise.all(workers.map((w) => w.stop()));
    expect(done).toBe(40);
    expect(times.length).toBe(40);
    // BullMQ's limiter is a fixed window: 40 claims at 10 per 500 ms need at least 3 more windows,
    // and no 500 ms span (which meets at most two windows) holds more than 20.
    times.sort((x, y) => x - y);
    expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual(1400);
    let worst = 0;
    for (let i = 0; i < times.length; i++) {
      let j = i;
      while (j < times.length && times[j]! - times[i]! < 500) j++;
      worst = Math.max(worst, j - i);
    }
    expect(worst).toBeLessThanOrEqual(20);
    // The limit is kept in windows a tenth as long (1 claim per 50 ms here), so claims are spread
    // over the period instead of 10 at its start: no 100 ms span holds the whole window's 10.
    let burst = 0;
    for (let i = 0; i < times.length; i++) {
      let j = i;
      while (j < times.length && times[j]! - times[i]! < 100) j++;
      burst = Math.max(burst, j - i);
    }
    expect(burst).toBeLessThanOrEqual(6);
    // Without the limit the same 40 go in a few hundred ms (the limit is what slows them).
    expect(server.stats.messages).toBe(40);
    await b.close();
    await a.store.close();
    await server.close();
  });

  it('per-destination limits: at most N claims at once for a domain, across workers', async () => {
    const { store } = await makeStore({ destinationLimits: { 'slow.test': 2 } });
    const queue = new MailQueue(store);
    for (let i = 0; i < 6; i++) await queue.enqueue({ from: 'a@example.test', to: `u${i}@slow.test`, message: taggedMessage().message });
    for (let i = 0; i < 3; i++) await queue.enqueue({ from: 'a@example.test', to: `u${i}@fast.test`, message: taggedMessage().message });
    const w1 = await store.registerWorker();
    const w2 = await store.registerWorker();
    const c1 = await store.claim(w1, 5);
    const c2 = await store.claim(w2, 5);
    const domains = [...c1, ...c2].map((c) => c.message.recipients[0]!.address.split('@')[1]);
    expect(domains.filter((d) => d === 'slow.test').length).toBe(2);
    expect(domains.filter((d) => d === 'fast.test').length).toBe(3);
    await store.close();
  });

  it('a Redis restart (SIGKILL, AOF with fsync always) loses no enqueued message', async () => {
    const { store } = await makeStore();
    const queue = new MailQueue(store);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message })).id);
    await redis.restart('SIGKILL');
    const reopened = new RedisStore({ url: redis.url, prefix: store.prefix, lockDurationMs: LOCK_MS });
    await reopened.open();
    const listed = (await reopened.list()).map((m) => m.id);
    expect(listed.sort()).toEqual([...ids].sort());
    await reopened.close();
    await store.close().catch(() => undefined);
  });
});
