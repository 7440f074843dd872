// The one suite every queue store must pass (spool, Redis): the same tests,
// the same expectations, against a real SMTP server on loopback and real
// worker processes that die with SIGKILL.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_RETENTION_MS, MailQueue, QueueError, type QueueMessage, type QueueStore, type StoredMessage, type TransitionEvent } from 'smtplib-queue';
import { FAST, crashChild, startServer, taggedMessage, type FaultServer } from './helpers.js';
import { bodyBytes } from './body-bytes.js';

export interface MadeStore {
  store: QueueStore;
  /** How a child process opens the same store (test/queue/store-spec.mjs). */
  spec: string;
  cleanup(): Promise<void>;
}

export type StoreFactory = () => Promise<MadeStore>;

export function storeConformance(name: string, factory: StoreFactory): void {
  describe(`queue store conformance: ${name}`, () => {
    let made: MadeStore;
    let queue: MailQueue;
    let server: FaultServer | undefined;

    beforeEach(async () => {
      made = await factory();
      queue = new MailQueue(made.store);
    });
    afterEach(async () => {
      await queue.close();
      await made.cleanup();
      await server?.close();
      server = undefined;
    });

    const smtp = (port: number) => ({ host: '127.0.0.1', port, tlsPolicy: 'none' as const, maxConnections: 2, retry: { minDelayMs: 5, maxDelayMs: 20 } });

    it('enqueue resolves with an id; the message is queued with its envelope, priority and metadata', async () => {
      const { message } = taggedMessage();
      const result = await queue.enqueue({ from: 'a@example.test', to: ['b@example.test', 'c@example.test'], message }, { priority: 3, metadata: { order: 42 } });
      expect(result.created).toBe(true);
      expect(result.id).toMatch(/^[0-9a-z]{8,40}$/);
      const stored = await queue.get(result.id);
      expect(stored).toMatchObject({ id: result.id, state: 'queued', from: 'a@example.test', priority: 3, metadata: { order: 42 }, attempts: 0, size: Buffer.byteLength(message) });
      expect(stored!.recipients.map((r) => [r.address, r.state])).toEqual([['b@example.test', 'queued'], ['c@example.test', 'queued']]);
      expect((await bodyBytes(await made.store.body(result.id))).toString()).toBe(message);
      await expect(queue.enqueue({ from: 'a@example.test', to: ['x@example.test\r\nRCPT TO:<evil@example.test>'], message })).rejects.toMatchObject({ code: 'ERR_QUEUE_INVALID' });
      await expect(queue.enqueue({ from: 'a@example.test', to: [], message })).rejects.toBeInstanceOf(QueueError);
    });

    it('a second enqueue with the same idempotency key returns the first id and stores nothing', async () => {
      const first = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { idempotencyKey: 'order-7' });
      const again = await Promise.all([1, 2, 3].map(() => queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { idempotencyKey: 'order-7' })));
      for (const r of again) expect(r).toEqual({ id: first.id, created: false });
      const other = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { idempotencyKey: 'order-8' });
      expect(other.created).toBe(true);
      expect((await queue.list()).map((m) => m.id).sort()).toEqual([first.id, other.id].sort());
    });

    it('enqueues racing with one new idempotency key: exactly one is created, every call gets its id', async () => {
      const racing = await Promise.all([1, 2, 3, 4, 5].map(() => queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { idempotencyKey: 'order-9' })));
      expect(racing.filter((r) => r.created)).toHaveLength(1);
      const id = racing.find((r) => r.created)!.id;
      for (const r of racing) expect(r.id).toBe(id);
      expect((await queue.list()).map((m) => m.id)).toEqual([id]);
    });

    it('list filters by state and searches addresses; stats counts messages and recipients', async () => {
      const a = await queue.enqueue({ from: 'a@example.test', to: ['alice@one.test', 'bob@two.test'], message: taggedMessage().message });
      const b = await queue.enqueue({ from: 'a@example.test', to: ['carol@two.test'], message: taggedMessage().message });
      await queue.hold(b.id);
      expect((await queue.list({ state: 'queued' })).map((m) => m.id)).toEqual([a.id]);
      expect((await queue.list({ state: 'held' })).map((m) => m.id)).toEqual([b.id]);
      expect((await queue.list({ search: 'CAROL' })).map((m) => m.id)).toEqual([b.id]);
      expect((await queue.list({ search: 'two.test' })).length).toBe(2);
      const stats = await queue.stats();
      expect(stats.messages).toMatchObject({ queued: 1, held: 1, delivered: 0 });
      expect(stats.recipients).toMatchObject({ queued: 2, held: 1 });
      expect(stats.pending).toBe(2);
    });

    it('two workers claiming at once never get the same message', async () => {
      const ids = new Set<string>();
      for (let i = 0; i < 30; i++) ids.add((await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message })).id);
      const w1 = await made.store.registerWorker();
      const w2 = await made.store.registerWorker();
      const got: Record<string, string[]> = { [w1]: [], [w2]: [] };
      await Promise.all([w1, w2].map(async (w) => {
        for (;;) {
          const claims = await made.store.claim(w, 3);
          if (claims.length === 0) return;
          got[w]!.push(...claims.map((c) => c.message.id));
        }
      }));
      const all = [...got[w1]!, ...got[w2]!];
      expect(all.length).toBe(30);
      expect(new Set(all)).toEqual(ids);
      expect((await queue.list({ state: 'active' })).length).toBe(30);
      await made.store.unregisterWorker(w1);
      await made.store.unregisterWorker(w2);
      expect((await queue.list({ state: 'queued' })).length).toBe(30);
    });

    it('claims due messages highest priority first; notBefore holds a message back', async () => {
      const low = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { priority: -2 });
      const high = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { priority: 5 });
      const later = Date.now() + 60_000;
      const future = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { notBefore: later, priority: 9 });
      expect((await queue.get(future.id))!.nextAttemptAt).toBe(later);
      const w = await made.store.registerWorker();
      const claims = await made.store.claim(w, 10);
      expect(claims.map((c) => c.message.id)).toEqual([high.id, low.id]);
      expect(await made.store.nextDueAt()).toBe(later);
      await made.store.unregisterWorker(w);
    });

    it('delete() takes the idempotency key with the message: the same key then queues a new one', async () => {
      const key = `delete-${Math.random()}`;
      const first = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { idempotencyKey: key, notBefore: Date.now() + 3_600_000 });
      expect((await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { idempotencyKey: key })).id).toBe(first.id);
      // Held first: a held message is deleted from hold (spool: hold/, Redis: the held set) like a queued one.
      expect(await queue.hold(first.id)).toBe(true);
      expect(await queue.delete(first.id)).toBe(true);
      const again = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { idempotencyKey: key, notBefore: Date.now() + 3_600_000 });
      expect(again.created).toBe(true);
      expect(again.id).not.toBe(first.id);
      expect((await queue.get(again.id))!.state).toBe('queued');
      // The first is gone (a second delete finds nothing) and the key, which now names the new message, stays.
      await expect(queue.delete(first.id)).rejects.toMatchObject({ code: 'ERR_QUEUE_NOT_FOUND' });
      expect((await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { idempotencyKey: key })).id).toBe(again.id);
      expect(await queue.delete(again.id)).toBe(true);
    });

    it('hold, release, retry and delete; a message in an attempt cannot be held or deleted', async () => {
      const events: TransitionEvent[] = [];
      queue.on('transition', (e) => events.push(e));
      const { id } = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { notBefore: Date.now() + 3_600_000 });
      expect(await queue.hold(id)).toBe(true);
      expect((await queue.get(id))!.state).toBe('held');
      const w = await made.store.registerWorker();
      expect(await made.store.claim(w, 5)).toEqual([]);
      expect(await queue.release(id)).toBe(true);
      const released = await queue.get(id);
      expect(released!.state).toBe('queued');
      expect(released!.nextAttemptAt).toBeLessThanOrEqual(Date.now());
      const [claim] = await made.store.claim(w, 5);
      expect(claim!.message.id).toBe(id);
      await expect(queue.hold(id)).rejects.toMatchObject({ code: 'ERR_QUEUE_ACTIVE' });
      await expect(queue.delete(id)).rejects.toMatchObject({ code: 'ERR_QUEUE_ACTIVE' });
      expect((await queue.get(id))!.state).toBe('active');
      await made.store.unclaim(w, id);
      expect(await queue.delete(id)).toBe(true);
      expect(await queue.get(id)).toBeUndefined();
      await expect(queue.hold(id)).rejects.toMatchObject({ code: 'ERR_QUEUE_NOT_FOUND' });
      expect(events.map((e) => `${e.from}>${e.to}`)).toEqual(['new>queued', 'queued>held', 'held>queued', 'queued>active', 'active>queued', 'queued>deleted']);
      await made.store.unregisterWorker(w);
    });

    it('delivers through SMTPPool: delivered, with the reply and its enhanced status, and an event for every transition', async () => {
      server = await startServer();
      const events: TransitionEvent[] = [];
      queue.on('transition', (e) => events.push(e));
      const { tag, message } = taggedMessage();
      const { id } = await queue.enqueue({ from: 'a@example.test', to: ['b@example.test', 'c@example.test'], message });
      const worker = queue.worker({ smtp: smtp(server.port), schedule: FAST, pollIntervalMs: 20 });
      await worker.start();
      const done = await queue.wait(id, { timeoutMs: 10_000 });
      await worker.stop();
      expect(done.state).toBe('delivered');
      expect(done.attempts).toBe(1);
      expect(done.recipients.map((r) => r.state)).toEqual(['delivered', 'delivered']);
      expect(done.recipients[0]!.lastReply).toEqual({ code: 250, message: `2.0.0 queued as ${tag}`, enhancedStatus: '2.0.0' });
      expect(done.finishedAt).toBeGreaterThanOrEqual(done.createdAt);
      expect(server.deliveries.get(`${tag} b@example.test`)).toBe(1);
      expect(server.deliveries.get(`${tag} c@example.test`)).toBe(1);
      expect(events.filter((e) => e.id === id).map((e) => `${e.from}>${e.to}`)).toEqual(['new>queued', 'queued>active', 'active>delivered']);
      expect(events.at(-1)!.recipients).toEqual([{ address: 'b@example.test', state: 'delivered' }, { address: 'c@example.test', state: 'delivered' }]);
    });

    it('a transiently refused recipient is retried alone; the accepted one never gets a second copy', async () => {
      let refusals = 0;
      server = await startServer({ rcptReply: (rcpt: string) => (rcpt === 'slow@example.test' && refusals++ < 2 ? '450 4.2.0 greylisted, come back later' : undefined) });
      const { tag, message } = taggedMessage();
      const { id } = await queue.enqueue({ from: 'a@example.test', to: ['fast@example.test', 'slow@example.test'], message });
      const worker = queue.worker({ smtp: smtp(server.port), schedule: FAST, pollIntervalMs: 10 });
      await worker.start();
      const done = await queue.wait(id, { timeoutMs: 10_000 });
      await worker.stop();
      expect(done.state).toBe('delivered');
      expect(done.attempts).toBe(3);
      const [fast, slow] = done.recipients;
      expect(fast).toMatchObject({ address: 'fast@example.test', state: 'delivered', attempts: 1 });
      expect(slow).toMatchObject({ address: 'slow@example.test', state: 'delivered', attempts: 3 });
      expect(server.deliveries.get(`${tag} fast@example.test`)).toBe(1);
      expect(server.deliveries.get(`${tag} slow@example.test`)).toBe(1);
    });

    it('a permanent refusal bounces with the catalogue advice; a transient failure past maxAge bounces too', async () => {
      server = await startServer({ rcptReply: (rcpt: string) => (rcpt === 'gone@example.test' ? '550 5.1.1 no such user' : rcpt === 'busy@example.test' ? '451 4.3.0 try later' : undefined) });
      const { id } = await queue.enqueue({ from: 'a@example.test', to: ['gone@example.test'], message: taggedMessage().message });
      const { id: busy } = await queue.enqueue({ from: 'a@example.test', to: ['busy@example.test'], message: taggedMessage().message });
      // maxAge well above the first attempt's start even on a loaded machine (at 300 ms under load
      // 28 the first attempt came after it, so the message bounced after one attempt, not several).
      const worker = queue.worker({ smtp: smtp(server.port), schedule: { ...FAST, maxAgeMs: 1500 }, pollIntervalMs: 10 });
      await worker.start();
      const bounced = await queue.wait(id, { timeoutMs: 10_000 });
      const expired = await queue.wait(busy, { timeoutMs: 10_000 });
      await worker.stop();
      expect(bounced.state).toBe('bounced');
      expect(bounced.attempts).toBe(1);
      expect(bounced.recipients[0]!.lastReply).toEqual({ code: 550, message: '5.1.1 no such user', enhancedStatus: '5.1.1' });
      expect(bounced.recipients[0]!.lastAdvice).toMatch(/Bad destination mailbox address.*remove or correct/);
      expect(expired.state).toBe('bounced');
      expect(expired.attempts).toBeGreaterThan(1);
      expect(expired.recipients[0]!.lastAdvice).toMatch(/^gave up/);
      expect(expired.recipients[0]!.lastReply!.code).toBe(451);
    });

    it('a worker killed after it recorded "about to write the end of data" and began that write leaves the message unknown, never resent', async () => {
      server = await startServer();
      const { tag, message } = taggedMessage();
      const { id } = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message });
      expect(await crashChild(made.spec, 'claim-mark-write')).toBe(id);
      expect((await queue.get(id))!.state).toBe('active');
      const worker = queue.worker({ smtp: smtp(server.port), schedule: FAST, pollIntervalMs: 10, recoverIntervalMs: 10 });
      await worker.start();
      const done = await queue.wait(id, { timeoutMs: 10_000 });
      await worker.stop();
      expect(done.state).toBe('unknown');
      expect(done.unknownReason).toMatch(/may have been delivered/);
      expect(done.recipients[0]!.state).toBe('unknown');
      expect(server.deliveries.get(`${tag} b@example.test`)).toBeUndefined();
      expect(server.stats.messages).toBe(0);
      // An operator who checked may resend it.
      expect(await queue.retry(id)).toBe(true);
      const again = queue.worker({ smtp: smtp(server.port), schedule: FAST, pollIntervalMs: 10 });
      await again.start();
      expect((await queue.wait(id, { timeoutMs: 10_000 })).state).toBe('delivered');
      await again.stop();
      expect(server.deliveries.get(`${tag} b@example.test`)).toBe(1);
    });

    it('a worker killed before the end of data gives its claim back: delivered once by another worker', async () => {
      server = await startServer();
      const { tag, message } = taggedMessage();
      const { id } = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message });
      expect(await crashChild(made.spec, 'claim')).toBe(id);
      const worker = queue.worker({ smtp: smtp(server.port), schedule: FAST, pollIntervalMs: 10, recoverIntervalMs: 10 });
      await worker.start();
      const done = await queue.wait(id, { timeoutMs: 10_000 });
      await worker.stop();
      expect(done.state).toBe('delivered');
      expect(server.deliveries.get(`${tag} b@example.test`)).toBe(1);
    });

    it('a worker killed after the mark, its end of data never begun: a store that notes the writing (spool) gives the message back, delivered once; one that cannot (Redis) leaves it unknown', async () => {
      server = await startServer();
      const { tag, message } = taggedMessage();
      const { id } = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message });
      expect(await crashChild(made.spec, 'claim-mark')).toBe(id);
      const worker = queue.worker({ smtp: smtp(server.port), schedule: FAST, pollIntervalMs: 10, recoverIntervalMs: 10 });
      await worker.start();
      const done = await queue.wait(id, { timeoutMs: 10_000 });
      await worker.stop();
      if (made.store.markWriting) {
        expect(done.state).toBe('delivered');
        expect(done.attempts).toBe(1); // the killed worker's attempt never happened
        expect(server.deliveries.get(`${tag} b@example.test`)).toBe(1);
      } else {
        expect(done.state).toBe('unknown');
        expect(server.stats.messages).toBe(0);
      }
    });

    it('retryUnknown resends what a killed worker may have sent', async () => {
      server = await startServer();
      const { tag, message } = taggedMessage();
      const { id } = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message });
      await crashChild(made.spec, 'claim-mark-write');
      const worker = queue.worker({ smtp: smtp(server.port), schedule: FAST, pollIntervalMs: 10, recoverIntervalMs: 10, retryUnknown: true });
      await worker.start();
      const done = await queue.wait(id, { timeoutMs: 10_000 });
      await worker.stop();
      expect(done.state).toBe('delivered');
      expect(done.attempts).toBe(2);
      expect(server.deliveries.get(`${tag} b@example.test`)).toBe(1);
    });

    it('a connection lost after the final dot makes the message unknown, not resent', async () => {
      server = await startServer({ fault: (ctx) => (ctx.stage === 'end-of-data' ? { drop: 'after-delivery' } : undefined) });
      const { tag, message } = taggedMessage();
      const { id } = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message });
      const worker = queue.worker({ smtp: smtp(server.port), schedule: FAST, pollIntervalMs: 10 });
      await worker.start();
      const done = await queue.wait(id, { timeoutMs: 10_000 });
      await worker.stop();
      expect(done.state).toBe('unknown');
      expect(done.attempts).toBe(1);
      expect(server.deliveries.get(`${tag} b@example.test`)).toBe(1);
    });

    /** A message enqueued (with an idempotency key), claimed and finished in `state` now: what an attempt leaves. */
    const finished = async (state: 'delivered' | 'bounced' | 'unknown', key?: string): Promise<string> => {
      const { id } = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { priority: 9, ...(key ? { idempotencyKey: key } : {}) });
      const w = await made.store.registerWorker();
      const [claim] = await made.store.claim(w, 1);
      expect(claim!.message.id).toBe(id);
      const now = Date.now();
      const record: StoredMessage = { ...claim!.message, attempts: 1, firstAttemptAt: now, lastAttemptAt: now, finishedAt: now, recipients: claim!.message.recipients.map((r) => ({ ...r, state, attempts: 1, finishedAt: now })) };
      await made.store.finish(w, record);
      await made.store.unregisterWorker(w);
      expect((await queue.get(id))!.state).toBe(state);
      return id;
    };
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

    it('purge removes finished messages that finished before the cutoff, with body and idempotency key; later, pending, held and claimed ones stay', async () => {
      const delivered = await finished('delivered', 'key-d');
      const bounced = await finished('bounced', 'key-b');
      const unknown = await finished('unknown');
      expect((await bodyBytes(await made.store.body(bounced))).length).toBeGreaterThan(0); // a bounced message keeps its body until purged
      const { id: active } = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message });
      const w = await made.store.registerWorker();
      expect((await made.store.claim(w, 5)).map((c) => c.message.id)).toEqual([active]);
      const { id: queued } = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message });
      const { id: held } = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message });
      await queue.hold(held);
      await sleep(5);
      const cutoff = Date.now();
      await sleep(5);
      const late = await finished('delivered', 'key-l');
      const events: TransitionEvent[] = [];
      queue.on('transition', (e) => events.push(e));

      expect(await queue.purge({ finishedBefore: cutoff })).toBe(3);
      for (const id of [delivered, bounced, unknown]) expect(await queue.get(id)).toBeUndefined();
      await expect(made.store.body(bounced)).rejects.toMatchObject({ code: 'ERR_QUEUE_NOT_FOUND' });
      await expect(queue.wait(delivered, { timeoutMs: 100 })).rejects.toMatchObject({ code: 'ERR_QUEUE_NOT_FOUND' });
      expect(events.map((e) => `${e.id} ${e.from}>${e.to}`).sort()).toEqual([`${delivered} delivered>deleted`, `${bounced} bounced>deleted`, `${unknown} unknown>deleted`].sort());
      expect(Object.fromEntries((await queue.list()).map((m) => [m.id, m.state]))).toEqual({ [active]: 'active', [queued]: 'queued', [held]: 'held', [late]: 'delivered' });
      expect((await queue.stats()).messages).toMatchObject({ delivered: 1, bounced: 0, unknown: 0, active: 1, queued: 1, held: 1 });
      // The purged message's key is free: it enqueues a new message. The kept one's still answers with its id.
      const again = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { idempotencyKey: 'key-d' });
      expect(again.created).toBe(true);
      expect(again.id).not.toBe(delivered);
      expect(await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { idempotencyKey: 'key-l' })).toEqual({ id: late, created: false });
      // Nothing pending ever goes, whatever the cutoff; the late one goes with a later cutoff.
      expect(await queue.purge({ finishedBefore: Date.now() + 60_000 })).toBe(1);
      expect((await queue.list()).map((m) => m.id).sort()).toEqual([active, queued, held, again.id].sort());
      expect(await queue.purge({ finishedBefore: Date.now() + 60_000 })).toBe(0);
      await made.store.unregisterWorker(w);
    });

    it('purge with a cutoff per state removes only those states; an aborted purge removes nothing more', async () => {
      const delivered = await finished('delivered');
      const bounced = await finished('bounced');
      const unknown = await finished('unknown');
      const later = Date.now() + 60_000;
      // A stopped purge (a worker stopping) ends at its next page: here, before the first.
      expect(await queue.purge({ finishedBefore: later, signal: AbortSignal.abort() })).toBe(0);
      expect(await queue.purge({ finishedBefore: { bounced: later } })).toBe(1);
      expect((await queue.list()).map((m) => m.id).sort()).toEqual([delivered, unknown].sort());
      expect(await queue.purge({ finishedBefore: { delivered: later, unknown: Date.now() - 60_000 } })).toBe(1);
      expect((await queue.list()).map((m) => m.id)).toEqual([unknown]);
      expect(await queue.get(bounced)).toBeUndefined();
      await expect(queue.purge({ finishedBefore: Number.NaN })).rejects.toBeInstanceOf(RangeError);
    });

    it('purges racing each other and a delivering worker remove each finished message once, and never one before it finished', async () => {
      server = await startServer();
      const ids = new Set<string>();
      for (let i = 0; i < 40; i++) ids.add((await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { idempotencyKey: `race-${i}` })).id);
      const finishedIds = new Set<string>();
      const deleted: string[] = [];
      const deletedFrom = new Set<string>();
      queue.on('transition', (e) => {
        if (e.to === 'delivered') finishedIds.add(e.id);
        if (e.to === 'deleted') {
          deleted.push(e.id);
          deletedFrom.add(e.from); // the state the purge found, in the same step as it removed the message
        }
      });
      const worker = queue.worker({ smtp: smtp(server.port), schedule: FAST, pollIntervalMs: 10, concurrency: 4, retention: false });
      await worker.start();
      let purged = 0;
      const purger = async (): Promise<void> => {
        while (deleted.length < ids.size) {
          const n = await made.store.purge({ finishedBefore: Date.now() + 1 });
          purged += n;
          await sleep(2);
        }
      };
      await Promise.race([Promise.all([purger(), purger()]), sleep(20_000)]);
      await worker.stop();
      // (A 'deleted' event can come before the worker's own 'delivered' event for that message: the
      // store recorded the outcome, the purge saw it, and the worker had not yet emitted it.)
      expect([...deletedFrom]).toEqual(['delivered']);
      expect(finishedIds).toEqual(ids);
      expect(purged).toBe(40);
      expect(deleted.length).toBe(40);
      expect(new Set(deleted)).toEqual(ids);
      expect(await queue.list()).toEqual([]);
      expect(server.stats.messages).toBe(40);
      for (const [, times] of server.deliveries) expect(times).toBe(1);
    });

    it('the purge turn goes to one caller per interval across the queue', async () => {
      // The same queue opened a second time, as another process would (test/queue/store-spec.mjs).
      // @ts-expect-error plain JS module without types
      const { openStore } = (await import('./store-spec.mjs')) as { openStore(spec: string): Promise<QueueStore> };
      const other = { store: await openStore(made.spec) };
      try {
        // Two workers of one store asking at once: one turn.
        expect((await Promise.all([made.store.takePurgeTurn(300), made.store.takePurgeTurn(300)])).filter(Boolean)).toHaveLength(1);
        expect(await made.store.takePurgeTurn(300)).toBe(false);
        expect(await other.store.takePurgeTurn(300)).toBe(false);
        await sleep(400);
        const both = await Promise.all([made.store.takePurgeTurn(300), other.store.takePurgeTurn(300)]);
        expect(both.filter(Boolean)).toHaveLength(1);
      } finally {
        await other.store.close();
      }
    });

    it('a running worker purges by its retention: 7 days by default, none with retention false', async () => {
      // Messages that finished 8 days and 6 days ago (the clock set back while they are made: ids and
      // indexes carry their creation time), and one now.
      const DAY = 86_400_000;
      const made8 = Date.now() - 8 * DAY;
      vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true, now: made8 });
      let old: string;
      let recent: string;
      try {
        old = await finished('bounced', 'old-key');
        vi.setSystemTime(made8 + 2 * DAY);
        recent = await finished('delivered');
      } finally {
        vi.useRealTimers();
      }
      const fresh = await finished('delivered');
      expect(DEFAULT_RETENTION_MS).toBe(7 * DAY);
      const keeper = queue.worker({ pollIntervalMs: 10, retention: false });
      await keeper.start();
      await sleep(200);
      await keeper.stop();
      expect((await queue.list()).map((m) => m.id).sort()).toEqual([old, recent, fresh].sort());
      // The default retention, looked at every 20 ms instead of every minute.
      const worker = queue.worker({ pollIntervalMs: 10, retention: { intervalMs: 20 } });
      await worker.start();
      for (let i = 0; i < 200 && (await queue.get(old)); i++) await sleep(20);
      await worker.stop();
      expect((await queue.list()).map((m) => m.id).sort()).toEqual([recent, fresh].sort());
      // Its key went with it (not due for an hour: these workers have no relay).
      expect((await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { idempotencyKey: 'old-key', notBefore: Date.now() + 3_600_000 })).created).toBe(true);
      // A queue's retention is its workers' default: 1 ms keeps nothing finished.
      const strict = new MailQueue(made.store, { retention: { deliveredMs: 1, failedMs: 1, intervalMs: 20 } });
      const w = strict.worker({ pollIntervalMs: 10 });
      await w.start();
      for (let i = 0; i < 200 && (await queue.get(recent)); i++) await sleep(20);
      await w.stop();
      expect((await queue.list({ state: ['delivered', 'bounced', 'unknown'] })).map((m) => m.id)).toEqual([]);
    });

    it('wait() is bounded: it times out while nothing delivers', async () => {
      const { id } = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message });
      const started = Date.now();
      await expect(queue.wait(id, { timeoutMs: 150 })).rejects.toMatchObject({ code: 'ERR_QUEUE_WAIT_TIMEOUT' });
      expect(Date.now() - started).toBeLessThan(2_000);
      await expect(queue.wait('nosuchid00', { timeoutMs: 50 })).rejects.toMatchObject({ code: 'ERR_QUEUE_NOT_FOUND' });
    });

    it('flush attempts deferred and queued messages at once and returns when those attempts ended', async () => {
      let down = true;
      server = await startServer({ fault: (ctx) => (down && ctx.stage === 'greeting' ? { reply: '421 4.3.2 not now' } : undefined) });
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message })).id);
      const slow = { minBackoffMs: 3_600_000 };
      const first = await queue.flush({ smtp: smtp(server.port), schedule: slow });
      expect(first.ids.sort()).toEqual([...ids].sort());
      let messages: QueueMessage[] = await queue.list();
      expect(messages.map((m) => m.state)).toEqual(['deferred', 'deferred', 'deferred']);
      expect(messages[0]!.nextAttemptAt).toBeGreaterThan(Date.now() + 3_000_000);
      down = false;
      const second = await queue.flush({ smtp: smtp(server.port), schedule: slow });
      expect(second.ids.length).toBe(3);
      expect(second.stats.delivered).toBe(3);
      messages = await queue.list();
      expect(messages.map((m) => m.state)).toEqual(['delivered', 'delivered', 'delivered']);
      expect(messages.map((m) => m.attempts)).toEqual([2, 2, 2]);
    });
  });
}
