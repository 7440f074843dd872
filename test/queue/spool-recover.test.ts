// Recovery of a dead worker's claim directory (SpoolStore #settleWorkerDir): what it leaves, and
// how many passes over queue/ it makes for it (one per page of the directory, not one per name).
import fs from 'node:fs';
import { link, mkdir, mkdtemp, readdir, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SpoolStore } from 'smtplib-queue';
import { countScans, taggedMessage } from './helpers.js';

const DEAD = 'deadhost-999999-0000';

async function spool(): Promise<{ store: SpoolStore; dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'smtplib-spool-'));
  const store = new SpoolStore(dir);
  await store.open();
  return { store, dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

function enqueueMany(store: SpoolStore, count: number): Promise<string[]> {
  return Promise.all(Array.from({ length: count }, async () => (await store.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message })).id));
}

/**
 * Makes what `worker` of `store` holds a dead worker's: its claim directory renamed to DEAD's, with
 * DEAD's worker file (this host, a pid that is not running), as a worker killed at that moment leaves it.
 */
async function killWorker(store: SpoolStore, dir: string, worker: string): Promise<void> {
  await rename(join(dir, 'active', worker), join(dir, 'active', DEAD));
  await writeFile(join(dir, 'workers', `${DEAD}.json`), JSON.stringify({ host: hostname(), pid: 999999, startedAt: 0 }));
  await store.unregisterWorker(worker); // its directory is gone: nothing of it is settled here
}

/** Every name under which message `id` rests: queue/, active/<worker>/, hold/, done/. */
async function copiesOf(dir: string, id: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of await readdir(join(dir, 'queue'))) if (name.endsWith(`-${id}.json`)) found.push(`queue/${name}`);
  for (const worker of await readdir(join(dir, 'active'))) {
    for (const name of await readdir(join(dir, 'active', worker))) if (name === `${id}.json`) found.push(`active/${worker}/${name}`);
  }
  for (const name of await readdir(join(dir, 'hold'))) if (name === `${id}.json`) found.push(`hold/${name}`);
  for (const name of await readdir(join(dir, 'done'))) if (name.endsWith(`-${id}.json`)) found.push(`done/${name}`);
  return found;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('spool recovery of a dead worker', () => {
  it("settles its real claims and removes its leftover copies (a message that rests elsewhere too): each message then rests once, where it should", async () => {
    const { store, dir, cleanup } = await spool();
    const victim = await store.registerWorker();
    // F: attempted once and deferred (its claimed copy is then a record file, not an empty entry).
    const [f] = await enqueueMany(store, 1);
    const [first] = await store.claim(victim, 1);
    await store.finish(victim, { ...first!.message, attempts: 1, nextAttemptAt: Date.now() - 1 });
    const [inQueue, inHold, inDone, claimedByLive, e, g] = await enqueueMany(store, 6);
    const claims = await store.claim(victim, 7);
    expect(claims.map((c) => c.message.id).sort()).toEqual([f, inQueue, inHold, inDone, claimedByLive, e, g].sort());
    const record = (id: string) => claims.find((c) => c.message.id === id)!.message;
    // G: its attempt reached "about to write the end of data".
    await store.markCommitting(victim, g!, 1);
    const live = await store.registerWorker();
    // The leftovers: the worker died in place(), after the new copy was written and before the claimed
    // one was removed. The new copy then rests in queue/, hold/, done/, or was claimed since by a live worker.
    const queuedName = `${String(Date.now()).padStart(13, '0')}-10-q-${inQueue}.json`;
    await writeFile(join(dir, 'queue', queuedName), '');
    await writeFile(join(dir, 'hold', `${inHold}.json`), JSON.stringify({ ...record(inHold!), held: true }));
    const now = Date.now();
    const delivered = { ...record(inDone!), attempts: 1, finishedAt: now, recipients: record(inDone!).recipients.map((r) => ({ ...r, state: 'delivered' as const, attempts: 1, finishedAt: now })) };
    await writeFile(join(dir, 'done', `delivered-${inDone}.json`), JSON.stringify(delivered));
    await link(join(dir, 'active', victim, `${claimedByLive}.json`), join(dir, 'active', live, `${claimedByLive}.json`));
    await killWorker(store, dir, victim);
    const others = await enqueueMany(store, 20); // queued beside them, untouched

    expect(await store.recover()).toBe(3); // e, f and g; the four leftovers are removed, not counted

    expect(await readdir(join(dir, 'active'))).not.toContain(DEAD);
    expect(await readdir(join(dir, 'workers'))).not.toContain(`${DEAD}.json`);
    const state = async (id: string) => (await store.get(id))?.state;
    expect(await copiesOf(dir, inQueue!)).toEqual([`queue/${queuedName}`]);
    expect(await state(inQueue!)).toBe('queued');
    expect(await copiesOf(dir, inHold!)).toEqual([`hold/${inHold}.json`]);
    expect(await state(inHold!)).toBe('held');
    expect(await copiesOf(dir, inDone!)).toEqual([`done/delivered-${inDone}.json`]);
    expect(await state(inDone!)).toBe('delivered');
    expect(await copiesOf(dir, claimedByLive!)).toEqual([`active/${live}/${claimedByLive}.json`]);
    expect(await store.get(claimedByLive!)).toMatchObject({ state: 'active', worker: live });
    // The real claims: given back (as they were), or settled by the mark.
    expect(await copiesOf(dir, e!)).toHaveLength(1);
    expect(await store.get(e!)).toMatchObject({ state: 'queued', attempts: 0 });
    expect(await copiesOf(dir, f!)).toHaveLength(1);
    expect(await store.get(f!)).toMatchObject({ state: 'deferred', attempts: 1 });
    expect(await copiesOf(dir, g!)).toEqual([`done/unknown-${g}.json`]);
    expect(await store.get(g!)).toMatchObject({ state: 'unknown', attempts: 1 });
    for (const id of others) expect(await copiesOf(dir, id)).toHaveLength(1);
    expect((await store.list()).length).toBe(7 + 20);
    await store.unregisterWorker(live);
    await store.close();
    await cleanup();
  });

  it('one pass over queue/ for 100 claims (not one per claim), each claim given back once', async () => {
    const { store, dir, cleanup } = await spool();
    const claimed = await enqueueMany(store, 100);
    const victim = await store.registerWorker();
    expect(await store.claim(victim, 100)).toHaveLength(100);
    await killWorker(store, dir, victim);
    const others = await enqueueMany(store, 50);
    // A leftover among them (its new copy in queue/): found by the same pass.
    await writeFile(join(dir, 'queue', `${String(Date.now()).padStart(13, '0')}-10-q-${claimed[0]}.json`), '');
    const scans = countScans(join(dir, 'queue'));
    expect(await store.recover()).toBe(99);
    expect(scans.count).toBe(1);
    vi.restoreAllMocks();
    expect(await readdir(join(dir, 'active'))).not.toContain(DEAD);
    for (const id of claimed) expect(await copiesOf(dir, id)).toHaveLength(1);
    expect((await readdir(join(dir, 'queue'))).length).toBe(150);
    for (const id of others) expect(await copiesOf(dir, id)).toHaveLength(1);
    await store.close();
    await cleanup();
  });

  it('a directory larger than a page is settled a page at a time: one pass over queue/ per 1,024 names, every name settled once', async () => {
    const { store, dir, cleanup } = await spool();
    const real = await enqueueMany(store, 3);
    const victim = await store.registerWorker();
    expect(await store.claim(victim, 3)).toHaveLength(3);
    await killWorker(store, dir, victim);
    // 1,100 leftovers beside the 3 real claims: names whose (empty) new copies rest in queue/.
    const due = String(Date.now() - 1000).padStart(13, '0');
    for (let i = 0; i < 1100; i++) {
      const id = `zz${String(i).padStart(8, '0')}`;
      await writeFile(join(dir, 'active', DEAD, `${id}.json`), '');
      await writeFile(join(dir, 'queue', `${due}-10-q-${id}.json`), '');
    }
    const scans = countScans(join(dir, 'queue'));
    expect(await store.recover()).toBe(3);
    expect(scans.count).toBe(2);
    vi.restoreAllMocks();
    expect(await readdir(join(dir, 'active'))).not.toContain(DEAD);
    expect((await readdir(join(dir, 'queue'))).length).toBe(1103);
    for (const id of real) expect(await store.get(id)).toMatchObject({ state: 'queued' });
    expect(await readFile(join(dir, 'queue', `${due}-10-q-zz00000000.json`), 'utf8')).toBe('');
    await store.close();
    await cleanup();
  });

  it("removes the body of a delivered message that a worker killed while it finished that message's outcome left behind (its mark still beside it), and touches no pending message's body or mark", async () => {
    const { store, dir, cleanup } = await spool();
    const victim = await store.registerWorker();
    const [done, pending] = await enqueueMany(store, 2);
    const claims = await store.claim(victim, 2);
    const claimOf = (id: string) => claims.find((c) => c.message.id === id)!.message;
    await Promise.all([store.markCommitting(victim, done!, 1), store.markCommitting(victim, pending!, 1)]);
    // What the worker leaves when it is killed in its outcome batch after the outcome is durable and
    // the claim gone, before the body and the mark are removed: the delivery recorded, data/<id> and
    // commit/<id>@1 still there. (Made by recording the delivery, then putting the two files back.)
    const body = await readFile(join(dir, 'data', done!));
    const now = Date.now();
    await store.finish(victim, { ...claimOf(done!), attempts: 1, finishedAt: now, recipients: claimOf(done!).recipients.map((r) => ({ ...r, state: 'delivered' as const, attempts: 1, finishedAt: now })) });
    await writeFile(join(dir, 'data', done!), body);
    await writeFile(join(dir, 'commit', `${done}@1`), '');
    await killWorker(store, dir, victim);

    expect(await store.recover()).toBe(1); // the pending one, interrupted by its mark: settled unknown

    expect(await store.get(done!)).toMatchObject({ state: 'delivered' });
    expect(await readdir(join(dir, 'data'))).not.toContain(done);
    expect(await readdir(join(dir, 'commit'))).not.toContain(`${done}@1`);
    // The interrupted one is settled unknown: its body kept (an operator may resend it), its mark
    // removed with its recorded attempt as before.
    expect(await store.get(pending!)).toMatchObject({ state: 'unknown', attempts: 1 });
    expect(await readdir(join(dir, 'data'))).toContain(pending);
    // A pending message's mark (an attempt under way in a live worker) and body are left alone.
    const live = await store.registerWorker();
    const [third] = await enqueueMany(store, 1);
    await store.claim(live, 1);
    await store.markCommitting(live, third!, 1);
    const dying = await store.registerWorker();
    await killWorker(store, dir, dying); // a dead worker, so the next recover() sweeps again
    await store.recover();
    expect(await readdir(join(dir, 'commit'))).toContain(`${third}@1`);
    expect(await readdir(join(dir, 'data'))).toContain(third);
    await store.unregisterWorker(live);
    await store.close();
    await cleanup();
  });

  it("a leftover's new copy that a live worker defers back into queue/ while recovery works is still found: the message is not put in queue/ twice", async () => {
    const { store, dir, cleanup } = await spool();
    const other = new SpoolStore(dir); // a live worker's process on the same spool
    await other.open();
    const ids = await enqueueMany(store, 40);
    const victim = await store.registerWorker();
    const claims = await store.claim(victim, 40);
    await killWorker(store, dir, victim);
    // X: its name is the dead directory's last, so recovery decides on it after settling the others.
    const order = await readdir(join(dir, 'active', DEAD));
    const x = order[order.length - 1]!.slice(0, -5);
    const claimed = claims.find((c) => c.message.id === x)!.message;
    // The dead worker had recorded X's first attempt (deferred, its new copy in queue/) and died before
    // removing its claimed copy; a live worker has claimed that new copy since.
    const live = await other.registerWorker();
    const attempt1 = { ...claimed, attempts: 1, nextAttemptAt: Date.now() - 1, recipients: claimed.recipients.map((r) => ({ ...r, state: 'deferred' as const, attempts: 1 })) };
    await writeFile(join(dir, 'active', live, `${x}.json`), JSON.stringify(attempt1));
    // Once recovery has looked (its first transition: it is settling the first name), the live worker
    // records attempt 2 as deferred, due at once: X's copy moves from its claim directory into queue/.
    let deferred: Promise<void> | undefined;
    store.once('transition', () => {
      deferred = other.finish(live, { ...attempt1, attempts: 2, recipients: attempt1.recipients.map((r) => ({ ...r, attempts: 2 })) });
    });

    expect(await store.recover()).toBe(39);
    await deferred;

    expect(await copiesOf(dir, x)).toHaveLength(1);
    expect(await store.get(x)).toMatchObject({ state: 'deferred', attempts: 2 });
    const claimer = await store.registerWorker();
    const again = await store.claim(claimer, 100);
    expect(again.filter((c) => c.message.id === x)).toHaveLength(1);
    expect(new Set(again.map((c) => c.message.id))).toEqual(new Set(ids));
    await store.unregisterWorker(claimer);
    await other.unregisterWorker(live);
    await other.close();
    await store.close();
    await cleanup();
  });

  it('a worker taken for dead while it lives (a stale heartbeat from another host) loses no claim it makes while it is recovered', async () => {
    const { store: alive, dir, cleanup } = await spool();
    await enqueueMany(alive, 40);
    const w = await alive.registerWorker();
    const claims = await alive.claim(w, 40);
    const order = await readdir(join(dir, 'active', w));
    const x = order[order.length - 1]!.slice(0, -5);
    const due = claims.find((c) => c.message.id === x)!.message.nextAttemptAt;
    // Its worker file as another host's, its heartbeat two minutes old: another store takes it for dead.
    const file = join(dir, 'workers', `${w}.json`);
    await writeFile(file, JSON.stringify({ host: 'otherhost', pid: 1, startedAt: 0 }));
    const stale = new Date(Date.now() - 120_000);
    await utimes(file, stale, stale);
    const recoverer = new SpoolStore(dir, { leaseMs: 60_000 });
    // While the recoverer reads queue/, the live worker gives X back (as unclaim() does); once the
    // recoverer settles its first name, the live worker claims again.
    const original = fs.opendirSync;
    let armed = true;
    vi.spyOn(fs, 'opendirSync').mockImplementation(((path: fs.PathLike, options?: fs.OpenDirOptions) => {
      if (armed && String(path) === join(dir, 'queue')) {
        armed = false;
        try {
          fs.renameSync(join(dir, 'active', w, `${x}.json`), join(dir, 'queue', `${String(due).padStart(13, '0')}-10-q-${x}.json`));
        } catch {
          // taken already: the recoverer moved it first
        }
      }
      return original(path, options);
    }) as typeof fs.opendirSync);
    let reclaim: Promise<unknown> | undefined;
    recoverer.once('transition', () => {
      reclaim = alive.claim(w, 100).catch((error: unknown) => error); // its first claim after being recovered fails once (ERR_QUEUE_CLAIM_LOST)
    });
    await recoverer.open(); // recovers w
    await reclaim;
    vi.restoreAllMocks();

    expect(await copiesOf(dir, x)).toHaveLength(1);
    expect(await recoverer.get(x)).toBeDefined();
    await recoverer.close();
    await alive.close().catch(() => undefined);
    await cleanup();
  });

  it("a delivered message's body that could not be removed keeps its end-of-data mark (the mark is how recovery finds it), and the next recovery removes both", async () => {
    const { store, dir, cleanup } = await spool();
    const w = await store.registerWorker();
    const [id] = await enqueueMany(store, 1);
    const [claim] = await store.claim(w, 1);
    await store.markCommitting(w, id!, 1);
    // data/<id> made a directory: unlink() fails (EISDIR), as a body the file system will not remove.
    await rm(join(dir, 'data', id!));
    await mkdir(join(dir, 'data', id!));
    const now = Date.now();
    await store.finish(w, { ...claim!.message, attempts: 1, finishedAt: now, recipients: claim!.message.recipients.map((r) => ({ ...r, state: 'delivered' as const, attempts: 1, finishedAt: now })) });
    expect(await store.get(id!)).toMatchObject({ state: 'delivered' });
    expect(await readdir(join(dir, 'commit'))).toContain(`${id}@1`);
    // Removable again; a recovery (after a dead worker, as when the worker is killed) sweeps commit/.
    await rm(join(dir, 'data', id!), { recursive: true });
    await writeFile(join(dir, 'data', id!), 'left behind');
    const dying = await store.registerWorker();
    await killWorker(store, dir, dying);
    await store.recover();
    expect(await readdir(join(dir, 'data'))).not.toContain(id);
    expect(await readdir(join(dir, 'commit'))).not.toContain(`${id}@1`);
    await store.unregisterWorker(w);
    await store.close();
    await cleanup();
  });

  it('the sweep removes the marks of a message that is gone (no record, no body), and keeps those of a pending one', async () => {
    const { store, dir, cleanup } = await spool();
    const [pending] = await enqueueMany(store, 1);
    await writeFile(join(dir, 'commit', `${pending}@1`), ''); // an interrupted attempt's mark: read by the next claim
    await writeFile(join(dir, 'commit', 'zz00000000gone@3'), ''); // a purged message's mark, left
    const dying = await store.registerWorker();
    await killWorker(store, dir, dying);
    await store.recover();
    expect((await readdir(join(dir, 'commit'))).sort()).toEqual([`${pending}@1`]);
    await store.close();
    await cleanup();
  });
});
