// The spool's listings of queue/ (packages/queue/src/spool/listing.ts and SpoolStore's claims): the
// bounded selection gives exactly what a full sort of every due name gave; a name this process queues
// is merged into its listings in claim order; with more names than a listing holds, claims still
// follow priority order to the last message.
import { utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SpoolStore } from 'smtplib-queue';
import { CONTROL_SUFFIX, DueSelection, LISTED_MAX, QUEUE_NAME, listingOrder, mergeAt } from '../../packages/queue/src/spool/listing.js';
import { countScans, taggedMessage } from './helpers.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 200);
const NOW = 1_800_000_000_000;

/** A queue/ name as the spool writes it: due time, priority + 10, q or d, an id of 21 base-36 digits. */
const queueNameArb = fc
  .record({
    due: fc.oneof(fc.integer({ min: NOW - 5000, max: NOW + 5000 }), fc.constantFrom(NOW, NOW + 1, NOW - 1)),
    priority: fc.integer({ min: -9, max: 9 }),
    attempted: fc.boolean(),
    id: fc.string({ unit: fc.constantFrom(...'0123456789abcdefghijklmnopqrstuvwxyz'), minLength: 21, maxLength: 21 }),
  })
  .map(({ due, priority, attempted, id }) => `${String(due).padStart(13, '0')}-${String(priority + 10).padStart(2, '0')}-${attempted ? 'd' : 'q'}-${id}.json`);

/**
 * The claim key listings sorted by before they were bounded (claim order as plain string order:
 * 99 - priority, due time, id), kept here as the definition the bounded selection must match.
 */
function claimKey(name: string): string {
  const inverse = 99 - ((name.charCodeAt(14) - 48) * 10 + name.charCodeAt(15) - 48);
  return `${inverse < 10 ? '0' : ''}${inverse}${name.slice(0, 13)}${name.slice(19, -5)} ${name}`;
}

/** What a listing held before it was bounded: every due name's claim key, all sorted, the first `limit` kept. */
function fullSort(names: readonly string[], now: number, limit: number): string[] {
  const dueBefore = String(now + 1).padStart(13, '0');
  const keys = names.filter((n) => n < dueBefore && QUEUE_NAME.test(n)).map(claimKey);
  keys.sort();
  return keys.slice(0, limit).map((k) => k.slice(k.indexOf(' ') + 1));
}

const workersArb = fc.integer({ min: 1, max: 5 }).chain((n) =>
  fc.record({ workers: fc.constant(Array.from({ length: n }, (_, i) => `host-${i}-w.json`).concat(`host-9-c${CONTROL_SUFFIX}.json`)), rank: fc.integer({ min: 0, max: n - 1 }) }),
);

describe('spool listing (bounded selection of queue/)', () => {
  it('keeps exactly the first `limit` due names of the full sort, and stripes them as before, whatever the names (priorities, due times past and future, ids) and 1 to 5 workers', () => {
    fc.assert(
      fc.property(fc.array(queueNameArb, { maxLength: 400 }), fc.integer({ min: 1, max: 64 }), workersArb, fc.array(fc.constantFrom('junk', '.tmp', 'x.json')), (names, limit, { workers, rank }, junk) => {
        const selection = new DueSelection(limit, NOW);
        for (const name of [...junk, ...names]) selection.add(name);
        const kept = selection.names();
        expect(kept).toEqual(fullSort(names, NOW, limit));
        expect(selection.due).toBe(fullSort(names, NOW, Infinity).length);
        const worker = workers[rank]!.slice(0, -5);
        expect(listingOrder(kept, workers, worker)).toEqual(listingOrder(fullSort(names, NOW, limit), workers, worker));
      }),
      { numRuns: RUNS },
    );
  });

  it('at LISTED_MAX, with more names due than that (several cuts of the buffer), gives the full sort\'s first LISTED_MAX', () => {
    fc.assert(
      fc.property(fc.array(queueNameArb, { minLength: 3 * LISTED_MAX, maxLength: 5 * LISTED_MAX }), (names) => {
        const selection = new DueSelection(LISTED_MAX, NOW);
        for (const name of names) selection.add(name);
        expect(selection.names()).toEqual(fullSort(names, NOW, LISTED_MAX));
      }),
      { numRuns: 10 },
    );
  });

  it('a name merged into a one-worker listing lands where a new full sort puts it; with stripes, never out of priority order', () => {
    fc.assert(
      fc.property(fc.array(queueNameArb, { maxLength: 200 }), queueNameArb, fc.nat(), workersArb, (names, added, skip, { workers, rank }) => {
        const sorted = fullSort(names, NOW, Infinity);
        const from = sorted.length === 0 ? 0 : skip % sorted.length;
        const one = [...sorted];
        one.splice(mergeAt(one, from, added), 0, added);
        const expected = fullSort([...sorted.slice(from), added], NOW + 10_000, Infinity);
        expect(one.slice(from)).toEqual(expected);
        const striped = listingOrder(sorted, workers, workers[rank]!.slice(0, -5));
        striped.splice(mergeAt(striped, from, added), 0, added);
        const priorities = striped.slice(from).map((n) => Number(n.slice(14, 16)));
        expect(priorities).toEqual([...priorities].sort((a, b) => b - a));
      }),
      { numRuns: RUNS },
    );
  });
});

afterEach(() => {
  vi.restoreAllMocks();
});

async function spool(): Promise<{ store: SpoolStore; dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'smtplib-spool-listing-'));
  const store = new SpoolStore(dir);
  await store.open();
  return { store, dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

const enqueue = (store: SpoolStore, priority = 0) => store.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { priority });

describe('spool claims with listings', () => {
  it('a message this process enqueues or defers (due) is merged into its listing in claim order: claimed at once, without a new listing', async () => {
    const { store, dir, cleanup } = await spool();
    const other = new SpoolStore(dir); // another process's store on the same spool
    await other.open();
    try {
      const first = await enqueue(store);
      const second = await enqueue(store);
      const worker = await store.registerWorker();
      const [claimed] = await store.claim(worker, 1); // lists queue/: [first, second]
      expect(claimed!.message.id).toBe(first.id);
      // Queued by another process after the listing: seen by the next listing, not by this one.
      const theirs = await enqueue(other, 9);
      // Queued by this process: merged (a higher priority first), and a deferral that is due at once.
      const urgent = await enqueue(store, 5);
      await store.finish(worker, { ...claimed!.message, attempts: 1, nextAttemptAt: Date.now() - 1 });
      const next = await store.claim(worker, 3);
      expect(next.map((c) => c.message.id)).toEqual([urgent.id, second.id, first.id]);
      await new Promise((r) => setTimeout(r, 300)); // LISTING_MS: the listing is made again
      const last = await store.claim(worker, 3);
      expect(last.map((c) => c.message.id)).toEqual([theirs.id]);
      await store.unregisterWorker(worker);
    } finally {
      await other.close();
      await store.close();
      await cleanup();
    }
  });

  it('a listing that found nothing due is kept only until a name it saw, or one this process queued since, is due; nextDueAt answers from it', async () => {
    const { store, dir, cleanup } = await spool();
    const other = new SpoolStore(dir);
    await other.open();
    try {
      // Names due in 2100 (never claimed here) make a listing cost enough to be kept for a while (LISTING_SHARE x its cost).
      for (let i = 0; i < 30_000; i++) writeFileSync(join(dir, 'queue', `4102444800000-10-q-${String(i).padStart(21, '0')}.json`), '');
      const send = { from: 'a@example.test', to: 'b@example.test' };
      const later = await store.enqueue({ ...send, message: taggedMessage().message }, { notBefore: Date.now() + 1500 });
      const worker = await store.registerWorker();
      expect(await store.claim(worker, 5)).toEqual([]); // nothing due: the listing rests
      const laterAt = (await store.get(later.id))!.nextAttemptAt;
      const sooner = await store.enqueue({ ...send, message: taggedMessage().message }, { notBefore: Date.now() + 300 });
      const soonerAt = (await store.get(sooner.id))!.nextAttemptAt;
      expect(await store.nextDueAt()).toBe(soonerAt); // queued by this process: known at once
      await new Promise((r) => setTimeout(r, soonerAt - Date.now() + 5));
      expect((await store.claim(worker, 5)).map((c) => c.message.id)).toEqual([sooner.id]); // not a resting listing's "nothing"
      // Another process's message, due now: seen once the listing has rested its while.
      const theirs = await other.enqueue({ ...send, message: taggedMessage().message });
      let got: string[] = [];
      for (let tries = 0; tries < 100 && got.length === 0; tries++) {
        got = (await store.claim(worker, 5)).map((c) => c.message.id);
        if (got.length === 0) await new Promise((r) => setTimeout(r, 50));
      }
      expect(got).toEqual([theirs.id]);
      await new Promise((r) => setTimeout(r, Math.max(0, laterAt - Date.now() + 5)));
      expect((await store.claim(worker, 5)).map((c) => c.message.id)).toEqual([later.id]);
      expect(await store.nextDueAt()).toBe(4102444800000);
      await store.unregisterWorker(worker);
    } finally {
      await other.close();
      await store.close();
      await cleanup();
    }
  }, 60_000);

  it('an idle listing rests while queue/ is unchanged (no pass over it at every poll), and a message another process queues changes it: seen at the next claim', async () => {
    const { store, dir, cleanup } = await spool();
    const other = new SpoolStore(dir);
    await other.open();
    const queueDir = join(dir, 'queue');
    try {
      // Names due in 2100; queue/ last changed 10 s ago (a recent mtime is not trusted: its granularity).
      for (let i = 0; i < 5_000; i++) writeFileSync(join(queueDir, `4102444800000-10-q-${String(i).padStart(21, '0')}.json`), '');
      const past = (Date.now() - 10_000) / 1000;
      utimesSync(queueDir, past, past);
      const worker = await store.registerWorker();
      expect(await store.claim(worker, 5)).toEqual([]); // the listing: nothing due
      const scans = countScans(queueDir);
      // Polls for 1.5 s, far past LISTING_SHARE times the listing's cost and the time it serves (250 ms).
      for (const end = Date.now() + 1500; Date.now() < end; ) {
        expect(await store.claim(worker, 5)).toEqual([]);
        expect(await store.nextDueAt()).toBe(4102444800000);
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(scans.count).toBe(0);
      const theirs = await other.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message });
      expect((await store.claim(worker, 5)).map((c) => c.message.id)).toEqual([theirs.id]);
      expect(scans.count).toBe(1);
      await store.unregisterWorker(worker);
    } finally {
      await other.close();
      await store.close();
      await cleanup();
    }
  }, 30_000);

  it('a resting listing is made again after the clock steps back (its age then says nothing)', async () => {
    const { store, dir, cleanup } = await spool();
    const other = new SpoolStore(dir);
    await other.open();
    try {
      for (let i = 0; i < 5_000; i++) writeFileSync(join(dir, 'queue', `4102444800000-10-q-${String(i).padStart(21, '0')}.json`), '');
      const worker = await store.registerWorker();
      expect(await store.claim(worker, 5)).toEqual([]); // the listing: nothing due
      const realNow = Date.now;
      const step = realNow() - 120_000;
      const since = performance.now();
      vi.spyOn(Date, 'now').mockImplementation(() => step + Math.floor(performance.now() - since));
      const theirs = await other.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message });
      expect((await store.claim(worker, 5)).map((c) => c.message.id)).toEqual([theirs.id]);
      vi.restoreAllMocks();
      await store.unregisterWorker(worker);
    } finally {
      vi.restoreAllMocks();
      await other.close();
      await store.close();
      await cleanup();
    }
  }, 30_000);

  it('with more names queued than a listing holds, every message is claimed once, in priority order, also as more are queued meanwhile', async () => {
    const { store, cleanup } = await spool();
    try {
      const count = 2 * LISTED_MAX + 600; // more than a listing's buffer (2 x LISTED_MAX) holds: cut at least once
      const priorityOf = new Map<string, number>();
      let next = 0;
      await Promise.all(Array.from({ length: 64 }, async () => {
        while (next < count) {
          const priority = [0, 0, 0, 1, -1, 3][next++ % 6]!;
          priorityOf.set((await enqueue(store, priority)).id, priority);
        }
      }));
      const worker = await store.registerWorker();
      const got: string[] = [];
      let added = 0;
      let urgent: string | undefined;
      let last: string | undefined; // the last claimed in order (not a merged urgent one)
      for (;;) {
        const claims = await store.claim(worker, 40);
        if (claims.length === 0) break;
        const ids = claims.map((c) => c.message.id);
        if (urgent !== undefined) {
          expect(ids.shift()).toBe(urgent); // merged: taken before every lower priority
          got.push(urgent);
          urgent = undefined;
        }
        const priorities = ids.map((id) => priorityOf.get(id)!);
        expect(priorities).toEqual([...priorities].sort((a, b) => b - a)); // a batch in order
        if (last !== undefined && priorities.length > 0) expect(priorities[0]).toBeLessThanOrEqual(priorityOf.get(last)!); // and after the last
        got.push(...ids);
        last = ids.length > 0 ? ids[ids.length - 1] : last;
        if (added < 3 && got.length > 1000 * (added + 1)) {
          // Queued by this process while lower priorities are being claimed: merged into the listing.
          urgent = (await enqueue(store, 3)).id;
          priorityOf.set(urgent, 3);
          added++;
        }
      }
      expect(got.length).toBe(count + added);
      expect(new Set(got).size).toBe(got.length);
      await store.unregisterWorker(worker);
    } finally {
      await store.close();
      await cleanup();
    }
  }, 120_000);
});
