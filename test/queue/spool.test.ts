// The spool store: the shared conformance suite, then what only a directory has
// (its layout on disk, fsync batching, a restart that finds half-finished work).
import { mkdtemp, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MailQueue, SpoolStore } from 'smtplib-queue';
import { storeConformance } from './conformance.js';
import { taggedMessage } from './helpers.js';

async function spool(): Promise<{ store: SpoolStore; dir: string; spec: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'smtplib-spool-'));
  const store = new SpoolStore(dir);
  await store.open();
  return { store, dir, spec: `spool:${dir}`, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

storeConformance('spool directory', spool);

/**
 * A spool holding a message that was deferred once (its record then a file of one record, returned
 * with that queue/ name) and delivered since: the record is stale, what a power loss could bring back
 * under another message's name once that file's inode was reused.
 */
async function staleRecord(): Promise<{ store: SpoolStore; dir: string; cleanup(): Promise<void>; id: string; worker: string; name: string; record: string }> {
  const { store, dir, cleanup } = await spool();
  const { readFile } = await import('node:fs/promises');
  const { id } = await store.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message });
  const worker = await store.registerWorker();
  const [claimed] = await store.claim(worker, 1);
  await store.finish(worker, { ...claimed!.message, attempts: 1, nextAttemptAt: Date.now() - 1 });
  const [name] = await readdir(join(dir, 'queue'));
  const record = await readFile(join(dir, 'queue', name!), 'utf8');
  expect(record).not.toContain('\n'); // a file of one record
  const [again] = await store.claim(worker, 1);
  await store.finish(worker, { ...again!.message, attempts: 2, recipients: again!.message.recipients.map((r) => ({ ...r, state: 'delivered' as const })) });
  return { store, dir, cleanup, id, worker, name: name!, record };
}

describe('spool directory layout', () => {
  it('an enqueued message is its body in data/ and its envelope in queue/, named by due time, priority and id', async () => {
    const { store, dir, cleanup } = await spool();
    const queue = new MailQueue(store);
    const { id } = await queue.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { priority: 2 });
    expect(await readdir(join(dir, 'data'))).toEqual([id]);
    const [name] = await readdir(join(dir, 'queue'));
    expect(name).toMatch(new RegExp(`^\\d{13}-12-q-${id}\\.json$`));
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
    await queue.hold(id);
    expect(await readdir(join(dir, 'queue'))).toEqual([]);
    expect(await readdir(join(dir, 'hold'))).toEqual([`${id}.json`]);
    await queue.close();
    await cleanup();
  });

  it('with several workers registered each claims its own stripe first, yet a higher priority and the stripe of a worker that never claims are still taken', async () => {
    const { store, cleanup } = await spool();
    const urgent = new Set<string>();
    for (let i = 0; i < 8; i++) urgent.add((await store.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { priority: 5 })).id);
    for (let i = 0; i < 40; i++) await store.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message });
    const w1 = await store.registerWorker();
    const idle = await store.registerWorker(); // registered, never claims: half the messages are in its stripe
    const got: string[] = [];
    for (;;) {
      const claims = await store.claim(w1, 3);
      if (claims.length === 0) break;
      got.push(...claims.map((c) => c.message.id));
    }
    expect(got.length).toBe(48);
    expect(new Set(got.slice(0, 8))).toEqual(urgent);
    await store.unregisterWorker(w1);
    await store.unregisterWorker(idle);
    await store.close();
    await cleanup();
  });

  it('recovery leaves a worker that is registering alone (its claim directory made, its file not yet published), and registration leaves nothing in tmp/', async () => {
    // Registration makes the claim directory, then renames its file into workers/ whole: a recovery in
    // another process sees a fresh directory without a file (alive for 10 s) or the whole file, never
    // a file still being written (which it took for a dead worker, removing the directory the worker
    // had just made: the worker then claimed nothing).
    const { store, dir, cleanup } = await spool();
    const other = new SpoolStore(dir); // another process's store on the same spool
    await other.open();
    const registering = `host-${process.pid}-00000000`;
    await mkdir(join(dir, 'active', registering));
    await other.recover();
    expect(await readdir(join(dir, 'active'))).toContain(registering);
    const worker = await store.registerWorker();
    await other.recover();
    expect(await readdir(join(dir, 'workers'))).toContain(`${worker}.json`);
    expect(await readdir(join(dir, 'active'))).toContain(worker);
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
    await store.unregisterWorker(worker);
    await other.close();
    await store.close();
    await cleanup();
  });

  it('concurrent enqueues share directory fsyncs (group commit)', async () => {
    const { store, dir, cleanup } = await spool();
    const before = store.dirSyncs;
    await Promise.all(Array.from({ length: 50 }, () => store.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message })));
    const syncs = store.dirSyncs - before;
    expect((await readdir(join(dir, 'queue'))).length).toBe(50);
    // Two directories per enqueue without batching (data/ and queue/): 100.
    expect(syncs).toBeGreaterThan(0);
    expect(syncs).toBeLessThan(50);
    await store.close();
    await cleanup();
  });

  it('a worker whose claim was taken from it (taken for dead) may neither mark nor record', async () => {
    const { store, dir, cleanup } = await spool();
    const { id } = await store.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message });
    const w = await store.registerWorker();
    const [claim] = await store.claim(w, 1);
    await store.markCommitting(w, id, 1);
    expect(await readdir(join(dir, 'commit'))).toEqual([`${id}@1`]);
    const { rename } = await import('node:fs/promises');
    await rename(join(dir, 'active', w, `${id}.json`), join(dir, 'tmp', 'stolen.json'));
    await expect(store.markCommitting(w, id, 2)).rejects.toMatchObject({ code: 'ERR_QUEUE_CLAIM_LOST' });
    await expect(store.finish(w, { ...claim!.message, attempts: 1 })).rejects.toMatchObject({ code: 'ERR_QUEUE_CLAIM_LOST' });
    expect(await readdir(join(dir, 'commit'))).toEqual([`${id}@1`]);
    await store.close();
    await cleanup();
  });

  it('a worker recovered as dead while it lived (its directory and file removed) is told once by ERR_QUEUE_CLAIM_LOST, registers again and claims from its next call', async () => {
    const { store, dir, cleanup } = await spool();
    const w = await store.registerWorker();
    const { id } = await store.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message });
    // What a recovery in another process does to a worker it takes for dead with nothing claimed.
    await rm(join(dir, 'active', w), { recursive: true });
    await rm(join(dir, 'workers', `${w}.json`));
    await expect(store.claim(w, 1)).rejects.toMatchObject({ code: 'ERR_QUEUE_CLAIM_LOST', message: expect.stringContaining('registered again') });
    expect(await readdir(join(dir, 'active'))).toContain(w);
    expect(await readdir(join(dir, 'workers'))).toContain(`${w}.json`);
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
    const claims = await store.claim(w, 1);
    expect(claims.map((c) => c.message.id)).toEqual([id]);
    await expect(store.claim('host-1-00000000', 1)).rejects.toMatchObject({ code: 'ERR_QUEUE_CLAIM_LOST', message: expect.stringContaining('not a worker registered') });
    await store.close();
    await cleanup();
  });

  it('refuses a directory that is not a spool of this version', async () => {
    const dir = await (await import('node:fs/promises')).mkdtemp(join(tmpdir(), 'smtplib-spool-'));
    await writeFile(join(dir, 'spool.json'), '{"format":"something else","version":9}');
    await expect(new SpoolStore(dir).open()).rejects.toMatchObject({ code: 'ERR_QUEUE_LAYOUT' });
    await rm(dir, { recursive: true, force: true });
  });

  it('a version 2 spool is upgraded on open (its files are valid version 3 files); other versions are refused', async () => {
    const dir = await (await import('node:fs/promises')).mkdtemp(join(tmpdir(), 'smtplib-spool-'));
    await writeFile(join(dir, 'spool.json'), '{"format":"smtplib-queue spool","version":2}\n');
    const store = new SpoolStore(dir);
    await store.open();
    const { readFile } = await import('node:fs/promises');
    expect(JSON.parse(await readFile(join(dir, 'spool.json'), 'utf8'))).toEqual({ format: 'smtplib-queue spool', version: 3 });
    await store.close();
    await writeFile(join(dir, 'spool.json'), '{"format":"smtplib-queue spool","version":1}\n');
    await expect(new SpoolStore(dir).open()).rejects.toMatchObject({ code: 'ERR_QUEUE_LAYOUT' });
    await rm(dir, { recursive: true, force: true });
  });

  it('outcomes recorded in one turn share one record file (one fsync), linked under each name; each message reads its own record', async () => {
    const { store, dir, cleanup } = await spool();
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await store.enqueue({ from: 'a@example.test', to: [`r${i}@example.test`], message: taggedMessage().message })).id);
    const worker = await store.registerWorker();
    const claims = await store.claim(worker, 10);
    expect(claims).toHaveLength(10);
    const delivered = claims.map(({ message }, i) => ({
      ...message,
      attempts: 1,
      metadata: { n: i },
      recipients: message.recipients.map((r) => ({ ...r, state: 'delivered' as const })),
    }));
    await Promise.all(delivered.map((m) => store.finish(worker, m)));
    const { stat } = await import('node:fs/promises');
    const names = await readdir(join(dir, 'done'));
    expect(names.sort()).toEqual(ids.map((id) => `delivered-${id}.json`).sort());
    const inodes = new Set(await Promise.all(names.map(async (n) => (await stat(join(dir, 'done', n))).ino)));
    expect(inodes.size).toBe(1);
    for (const m of delivered) {
      const got = await store.get(m.id);
      expect(got).toMatchObject({ id: m.id, state: 'delivered', metadata: m.metadata, recipients: [{ address: m.recipients[0]!.address, state: 'delivered' }] });
    }
    // tmp/ holds no leftovers, only spares: emptied claim entries (never attempted, no bytes), kept
    // to be written as the next record files.
    const spares = await readdir(join(dir, 'tmp'));
    expect(spares.length).toBeGreaterThan(0);
    expect(spares.length).toBeLessThanOrEqual(2);
    for (const name of spares) {
      expect(name).toMatch(/\.spare$/);
      expect((await stat(join(dir, 'tmp', name))).size).toBe(0);
    }
    const spareInodes = await Promise.all(spares.map(async (n) => (await stat(join(dir, 'tmp', n))).ino));
    expect(await readdir(join(dir, 'data'))).toEqual([]);
    expect(await readdir(join(dir, 'active', worker))).toEqual([]);
    // An operator's retry of one of them takes its own record out of the shared file.
    expect(await store.retry(delivered[3]!.id)).toBe(false); // no body left: nothing to resend
    expect((await store.get(delivered[3]!.id))?.metadata).toEqual({ n: 3 });
    expect(await store.delete(delivered[4]!.id)).toBe(true);
    expect((await store.get(delivered[5]!.id))?.metadata).toEqual({ n: 5 });
    // The next batch's record file is a spare: no new file; its records read back whole.
    const more: string[] = [];
    for (let i = 0; i < 3; i++) more.push((await store.enqueue({ from: 'a@example.test', to: [`s${i}@example.test`], message: taggedMessage().message })).id);
    const next = (await store.claim(worker, 3)).map(({ message }, i) => ({ ...message, attempts: 1, metadata: { m: i }, recipients: message.recipients.map((r) => ({ ...r, state: 'delivered' as const })) }));
    expect(next.map((m) => m.id).sort()).toEqual([...more].sort());
    await Promise.all(next.map((m) => store.finish(worker, m)));
    const nextInodes = new Set(await Promise.all(more.map(async (id) => (await stat(join(dir, 'done', `delivered-${id}.json`))).ino)));
    expect(nextInodes.size).toBe(1);
    expect(spareInodes).toContain([...nextInodes][0]);
    for (const m of next) expect(await store.get(m.id)).toMatchObject({ id: m.id, state: 'delivered', metadata: m.metadata, recipients: [{ address: m.recipients[0]!.address, state: 'delivered' }] });
    for (const m of delivered.filter((_, i) => i !== 4)) expect((await store.get(m.id))?.metadata).toEqual(m.metadata); // the first batch's file is untouched
    await store.close();
    expect(await readdir(join(dir, 'tmp'))).toEqual([]); // close() removes the spares
    await cleanup();
  });

  it('only an empty claimed entry becomes a spare: a record file other messages share is never written over', async () => {
    const { store, dir, cleanup } = await spool();
    const { stat } = await import('node:fs/promises');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await store.enqueue({ from: 'a@example.test', to: [`d${i}@example.test`], message: taggedMessage().message })).id);
    const worker = await store.registerWorker();
    // Deferred together, due at once: their three records share one file, linked under three names in queue/.
    const first = (await store.claim(worker, 3)).map(({ message }) => ({ ...message, attempts: 1, nextAttemptAt: Date.now() - 1 }));
    await Promise.all(first.map((m) => store.finish(worker, m)));
    const queued = await readdir(join(dir, 'queue'));
    const shared = new Set(await Promise.all(queued.map(async (n) => (await stat(join(dir, 'queue', n))).ino)));
    expect(shared.size).toBe(1);
    // Claimed again: each claimed copy is a name of the shared file. One is delivered alone.
    const again = await store.claim(worker, 3);
    expect(again).toHaveLength(3);
    const [one, ...rest] = again.map(({ message }, i) => ({ ...message, attempts: 2, metadata: { k: i }, recipients: message.recipients.map((r) => ({ ...r, state: 'delivered' as const })) }));
    await store.finish(worker, one!);
    // Its claimed copy (a name of the shared file) was removed, not kept as a spare.
    for (const n of (await readdir(join(dir, 'tmp'))).filter((n) => n.endsWith('.spare'))) {
      const info = await stat(join(dir, 'tmp', n));
      expect(info.size).toBe(0);
      expect(shared.has(info.ino)).toBe(false);
    }
    // The others still read their own records from the shared file, and record theirs.
    for (const m of rest) expect((await store.get(m.id))?.attempts).toBe(1);
    await Promise.all(rest.map((m) => store.finish(worker, m)));
    for (const m of [one!, ...rest]) expect(await store.get(m.id)).toMatchObject({ id: m.id, state: 'delivered', attempts: 2, metadata: m.metadata });
    await store.close();
    await cleanup();
  });

  it('an outcome still gathering for its batch is recorded before close() gives the claims back (not queued again)', async () => {
    const { store, dir, cleanup } = await spool();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await store.enqueue({ from: 'a@example.test', to: [`g${i}@example.test`], message: taggedMessage().message })).id);
    const worker = await store.registerWorker();
    const claimed = (await store.claim(worker, 3)).map(({ message }) => ({ ...message, attempts: 1, recipients: message.recipients.map((r) => ({ ...r, state: 'delivered' as const })) }));
    // Two recorded in one batch: outcomes "keep coming", so the next one waits to gather (OUTCOME_GATHER_MS).
    await Promise.all(claimed.slice(0, 2).map((m) => store.finish(worker, m)));
    const last = store.finish(worker, claimed[2]!);
    await store.close(); // at once, while that outcome waits
    await last;
    const reopened = new SpoolStore(dir);
    await reopened.open();
    for (const id of ids) expect((await reopened.get(id))?.state).toBe('delivered');
    expect(await readdir(join(dir, 'queue'))).toEqual([]);
    await reopened.close();
    await cleanup();
  });

  it("a claim that meets a queue/ name holding another message's record removes it and still returns the claims won", async () => {
    const { store, dir, cleanup, id, worker, name, record } = await staleRecord();
    // A queue/ name of another id (finished and deleted since) that a power loss brought back, its file
    // written over with that stale record; and a message queued behind it.
    const gone = 'zzzzzzzzzzzzzzzzzzzzzz'.slice(0, id.length);
    await writeFile(join(dir, 'queue', name.replace(id, gone).replace(/^\d{13}/, '0000000000001')), record);
    const { id: next } = await store.enqueue({ from: 'a@example.test', to: 'c@example.test', message: taggedMessage().message });
    const won = await store.claim(worker, 5);
    expect(won.map((c) => c.message.id)).toEqual([next]);
    expect((await readdir(join(dir, 'queue'))).filter((n) => n.includes(gone))).toEqual([]);
    expect(await readdir(join(dir, 'active', worker))).toEqual([`${next}.json`]);
    expect((await store.get(id))?.state).toBe('delivered');
    await store.close();
    await cleanup();
  });

  it('a claim that cannot read a claimed message returns the claims it won before, puts the name back due later, and reports the error at the next claim', async () => {
    const { store, dir, cleanup } = await spool();
    const { id: first } = await store.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message }, { priority: 5 });
    const { id: broken } = await store.enqueue({ from: 'a@example.test', to: 'c@example.test', message: taggedMessage().message });
    const { id: after } = await store.enqueue({ from: 'a@example.test', to: 'd@example.test', message: taggedMessage().message }, { priority: -5 });
    await rm(join(dir, 'data', broken)); // its body and first record gone (removed by hand, a damaged disk)
    const worker = await store.registerWorker();
    const won = await store.claim(worker, 3);
    expect(won.map((c) => c.message.id)).toEqual([first]); // not stranded in active/ by a claim that threw
    expect(await readdir(join(dir, 'active', worker))).toEqual([`${first}.json`]);
    const [back] = (await readdir(join(dir, 'queue'))).filter((n) => n.includes(broken));
    expect(Number(back!.slice(0, 13))).toBeGreaterThan(Date.now() + 30_000); // not at the head of the queue
    await expect(store.claim(worker, 3)).rejects.toMatchObject({ code: 'ENOENT' }); // reported once
    expect((await store.claim(worker, 3)).map((c) => c.message.id)).toEqual([after]);
    await store.close();
    await cleanup();
  });

  it('a purge that fails after taking a message puts it back in done/ (not left active in the control directory)', async () => {
    const { store, dir, cleanup } = await spool();
    const { id } = await store.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message });
    const worker = await store.registerWorker();
    const [claim] = await store.claim(worker, 1);
    const now = Date.now();
    await store.finish(worker, { ...claim!.message, attempts: 1, finishedAt: now, recipients: claim!.message.recipients.map((r) => ({ ...r, state: 'bounced' as const, attempts: 1, finishedAt: now })) });
    await rm(join(dir, 'data', id));
    await mkdir(join(dir, 'data', id)); // its body's unlink now fails (EISDIR)
    await expect(store.purge({ finishedBefore: Date.now() + 1000 })).rejects.toBeTruthy();
    expect((await store.get(id))?.state).toBe('bounced');
    expect(await readdir(join(dir, 'done'))).toEqual([`bounced-${id}.json`]);
    await rm(join(dir, 'data', id), { recursive: true });
    expect(await store.purge({ finishedBefore: Date.now() + 1000 })).toBe(1); // the next purge finds it
    await store.close();
    await cleanup();
  });

  it('run until idle (queue flush) stops a retention purge once the queue is idle, instead of waiting for it', async () => {
    const { dir, cleanup } = await spool();
    const aborted: boolean[] = [];
    // A purge of a very long done/: it ends only when told to stop (between two pages, as the real one does).
    class LongPurge extends SpoolStore {
      override purge(options: Parameters<SpoolStore['purge']>[0]): Promise<number> {
        return new Promise((resolve) => {
          const stop = (): void => resolve(aborted.push(true) && 0);
          if (options.signal?.aborted) stop();
          else options.signal?.addEventListener('abort', stop, { once: true });
        });
      }
    }
    const store = new LongPurge(dir);
    await store.open();
    const queue = new MailQueue(store);
    const run = queue.worker({ smtp: { host: '127.0.0.1', port: 9, tlsPolicy: 'none' }, retention: { intervalMs: 60_000 } }).runUntilIdle();
    const outcome = await Promise.race([run.then(() => 'returned'), new Promise((r) => setTimeout(() => r('still waiting'), 3000))]);
    expect(outcome).toBe('returned');
    expect(aborted).toEqual([true]);
    await queue.close();
    await cleanup();
  });

  it("recovery never takes another message's record for a claimed copy's own (a spare written over, its old name brought back by a power loss)", async () => {
    const { store, dir, cleanup, id, record } = await staleRecord();
    // A dead worker's claimed name of a message finished and deleted since, whose inode became a spare
    // and was written over with that (now stale) record of another message.
    const gone = 'zzzzzzzzzzzzzzzzzzzzzz'.slice(0, id.length);
    await mkdir(join(dir, 'active', 'deadhost-999999-0000'));
    await writeFile(join(dir, 'active', 'deadhost-999999-0000', `${gone}.json`), record);
    await writeFile(join(dir, 'workers', 'deadhost-999999-0000.json'), JSON.stringify({ host: (await import('node:os')).hostname(), pid: 999999, startedAt: 0 }));
    const reopened = new SpoolStore(dir);
    await reopened.open();
    // The message whose record it holds stays delivered, and nothing went back to queue/ (its old record
    // taken for the leftover's own would have been placed there: a resend).
    expect((await reopened.list()).map((m) => [m.id, m.state])).toEqual([[id, 'delivered']]);
    expect(await readdir(join(dir, 'queue'))).toEqual([]);
    expect(await readdir(join(dir, 'active'))).not.toContain('deadhost-999999-0000');
    await store.close();
    await reopened.close();
    await cleanup();
  });

  it("on open, a dead worker's stale copy (left between place() and its unlink) is removed, not queued twice", async () => {
    const { store, dir, cleanup } = await spool();
    const { id } = await store.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message });
    const [name] = await readdir(join(dir, 'queue'));
    // A worker that died right after writing the new copy, before removing its claimed one.
    await mkdir(join(dir, 'active', 'deadhost-999999-0000'));
    const { readFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'active', 'deadhost-999999-0000', `${id}.json`), await readFile(join(dir, 'queue', name!)));
    await writeFile(join(dir, 'workers', 'deadhost-999999-0000.json'), JSON.stringify({ host: (await import('node:os')).hostname(), pid: 999999, startedAt: 0 }));
    const reopened = new SpoolStore(dir);
    await reopened.open();
    expect((await reopened.list()).map((m) => [m.id, m.state])).toEqual([[id, 'queued']]);
    expect(await readdir(join(dir, 'active'))).not.toContain('deadhost-999999-0000');
    await store.close();
    await reopened.close();
    await cleanup();
  });
});
