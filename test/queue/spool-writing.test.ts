// A worker killed with SIGKILL leaves its marked attempts: those whose end of data it had begun to
// write are `unknown` (maybe delivered), and those still waiting in its pool - marked, never begun -
// go back to the queue, because the spool's writing notes (packages/queue/src/spool/writing.ts) say
// which is which. The notes are trusted only when the dead worker ran on this machine since its
// boot; otherwise every marked attempt stays `unknown`.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import fs, { readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SpoolStore } from 'smtplib-queue';
import { taggedMessage } from './helpers.js';

/** An SMTP server (no CHUNKING: DATA and its final dot) that never answers a final dot; counts the dots it got. */
function stallingServer(): Promise<{ port: number; dots(): number; close(): Promise<void> }> {
  let dots = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let inData = false;
    let pending = '';
    socket.write('220 stall.test ESMTP\r\n');
    socket.on('data', (chunk) => {
      pending += chunk.toString('latin1');
      for (let end = pending.indexOf('\r\n'); end >= 0; end = pending.indexOf('\r\n')) {
        const line = pending.slice(0, end);
        pending = pending.slice(end + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            dots++; // and no reply: the client waits for it until it is killed
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') socket.write('250-stall.test\r\n250 PIPELINING\r\n');
        else if (verb === 'DATA') {
          inData = true;
          socket.write('354 go on\r\n');
        } else if (verb === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('250 2.0.0 ok\r\n');
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: (server.address() as net.AddressInfo).port,
    dots: () => dots,
    close: () => new Promise<void>((done) => {
      for (const s of sockets) s.destroy();
      server.close(() => done());
    }),
  })));
}

const CHILD = fileURLToPath(new URL('./writing-child.mjs', import.meta.url));

/** Runs a worker process (concurrency 10, 2 connections) until the server has `dots` final dots, then SIGKILLs it. */
async function killAfterDots(dir: string, server: { port: number; dots(): number }, dots: number): Promise<void> {
  const child: ChildProcess = spawn(process.execPath, [CHILD, dir, String(server.port), '10', '2'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  const deadline = Date.now() + 20_000;
  while (server.dots() < dots) {
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the worker wrote ${server.dots()} final dots, expected ${dots}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  // Every other claimed message is marked by now (one batch, before the pool took any) and waits in the pool.
  await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
}

async function marksIn(dir: string): Promise<string[]> {
  return (await readdir(join(dir, 'commit'))).sort();
}

describe('spool: writing notes tell a killed worker\'s unsent marked attempts from its maybe-delivered ones', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  async function setUp(): Promise<{ dir: string; ids: string[]; server: Awaited<ReturnType<typeof stallingServer>> }> {
    const dir = await mkdtemp(join(tmpdir(), 'smtplib-spool-writing-'));
    const server = await stallingServer();
    cleanups.push(async () => {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    });
    const store = new SpoolStore(dir);
    await store.open();
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await store.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message })).id);
    await store.close();
    return { dir, ids, server };
  }

  it('same machine, process gone: the 2 begun are unknown, the 8 never begun go back to the queue unchanged', async () => {
    const { dir, ids, server } = await setUp();
    await killAfterDots(dir, server, 2);
    expect(await marksIn(dir)).toHaveLength(10); // every claimed attempt was marked
    const store = new SpoolStore(dir);
    await store.open(); // recovers the dead worker
    try {
      const states = await Promise.all(ids.map(async (id) => (await store.get(id))!));
      const unknown = states.filter((m) => m.state === 'unknown');
      const queued = states.filter((m) => m.state === 'queued');
      expect(unknown).toHaveLength(2);
      expect(queued).toHaveLength(8);
      for (const m of queued) expect(m.attempts).toBe(0);
      // Only the unknown ones keep a mark (of a finished message: swept); none of the given back do.
      const marks = await marksIn(dir);
      for (const m of queued) expect(marks.filter((n) => n.startsWith(`${m.id}@`))).toEqual([]);
      // The dead worker's claim directory, with its notes file, is gone.
      expect((await readdir(join(dir, 'active'))).filter((w) => !w.endsWith('-ctl'))).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('another boot (or pid namespace): the notes are not trusted, every marked attempt stays unknown', async () => {
    const { dir, ids, server } = await setUp();
    await killAfterDots(dir, server, 2);
    // What a reboot changes: the dead worker's recorded machine life is not the recoverer's.
    const [file] = (await readdir(join(dir, 'workers'))).filter((n) => n.endsWith('.json'));
    const path = join(dir, 'workers', file!);
    const record = JSON.parse(await readFile(path, 'utf8')) as { life?: string };
    expect(record.life).toMatch(/\S+ pid:\[\d+\]/);
    await writeFile(path, JSON.stringify({ ...record, life: `another-boot ${record.life!.split(' ')[1]}` }));
    const store = new SpoolStore(dir);
    await store.open();
    try {
      const states = await Promise.all(ids.map(async (id) => (await store.get(id))!.state));
      expect(states.filter((s) => s === 'unknown')).toHaveLength(10);
    } finally {
      await store.close();
    }
  });
});

/** This machine's boot id and this process's pid namespace: what SpoolStore records as a worker's `life`. */
function thisLife(): string {
  return `${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()} ${readlinkSync('/proc/self/ns/pid')}`;
}

describe('spool: which dead workers\' writing notes are trusted', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  /** A fresh spool, closed and removed after the test. */
  async function openSpool(): Promise<{ dir: string; store: SpoolStore }> {
    const dir = await mkdtemp(join(tmpdir(), 'smtplib-spool-trust-'));
    const store = new SpoolStore(dir);
    await store.open();
    cleanups.push(async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    });
    return { dir, store };
  }

  const enqueueOne = async (store: SpoolStore): Promise<string> => (await store.enqueue({ from: 'a@example.test', to: 'b@example.test', message: taggedMessage().message })).id;

  /**
   * Makes `worker`'s claim directory and worker file those of `dead`, a process gone from this
   * machine (`file`: the rest of its worker file; by default a noting worker of this boot), as a
   * SIGKILL at that moment leaves them; the live registration goes (nothing of it is settled here).
   */
  async function kill(store: SpoolStore, dir: string, worker: string, dead: string, file: Record<string, unknown> = { life: thisLife(), notes: true }): Promise<void> {
    await rename(join(dir, 'active', worker), join(dir, 'active', dead));
    await writeFile(join(dir, 'workers', `${dead}.json`), JSON.stringify({ host: hostname(), pid: 999_999, procStart: '1', startedAt: 0, ...file }));
    await store.unregisterWorker(worker);
  }

  /** One message claimed and marked by a new worker (registered with `writingNotes` unless told not to). */
  async function claimedAndMarked(store: SpoolStore, writingNotes = true): Promise<{ id: string; worker: string }> {
    const id = await enqueueOne(store);
    const worker = await store.registerWorker(writingNotes ? { writingNotes: true } : {});
    expect(await store.claim(worker, 1)).toHaveLength(1);
    await store.markCommitting(worker, id, 1);
    return { id, worker };
  }

  /** statSync throws EIO once, for the first path `match` accepts; counts it. */
  function eioOnce(match: (path: string) => boolean): { readonly failed: number } {
    const statSync = fs.statSync;
    const seen = { failed: 0 };
    vi.spyOn(fs, 'statSync').mockImplementation(((path: fs.PathLike, options?: fs.StatSyncOptions) => {
      if (seen.failed === 0 && match(String(path))) {
        seen.failed++;
        throw Object.assign(new Error(`EIO: i/o error, stat '${String(path)}'`), { code: 'EIO' });
      }
      return statSync(path, options);
    }) as typeof fs.statSync);
    return seen;
  }

  /**
   * A message claimed and marked (its end of data never begun: no note) by a worker then killed as
   * `dead` (`file`: the rest of its worker file; `notesFile`: whether its empty writing file is still
   * there). Returns the message's state after a recovery.
   */
  async function stateAfterRecovery(dead: string, file: Record<string, unknown>, notesFile: boolean): Promise<string> {
    const { dir, store } = await openSpool();
    const { id, worker } = await claimedAndMarked(store);
    if (!notesFile) await unlink(join(dir, 'active', worker, 'writing'));
    await kill(store, dir, worker, dead, file);
    await store.recover();
    return (await store.get(id))!.state;
  }

  it('a worker that promised notes (QueueWorker), its file there with no note of the attempt: given back', async () => {
    expect(await stateAfterRecovery('deadhost-999999-00000001', { life: thisLife(), notes: true }, true)).toBe('queued');
  });

  it('a worker that never promised notes (a caller of markCommitting alone, a store\'s control worker holding claims it took from a dead one): unknown', async () => {
    expect(await stateAfterRecovery('deadhost-999999-00000002', { life: thisLife() }, true)).toBe('unknown');
    expect(await stateAfterRecovery('deadhost-999999-00000003-ctl', { life: thisLife() }, false)).toBe('unknown');
  });

  it('its writing file gone (removed by a recovery killed halfway): unknown', async () => {
    expect(await stateAfterRecovery('deadhost-999999-00000004', { life: thisLife(), notes: true }, false)).toBe('unknown');
  });

  it('another boot or pid namespace, or no record of either: unknown', async () => {
    expect(await stateAfterRecovery('deadhost-999999-00000005', { life: `another-boot ${readlinkSync('/proc/self/ns/pid')}`, notes: true }, true)).toBe('unknown');
    expect(await stateAfterRecovery('deadhost-999999-00000006', { notes: true }, true)).toBe('unknown');
  });

  it('a slot is written over only once its attempt\'s outcome is durable: after an outcome, the next note takes its slot; before one (a failed stat: EIO), it does not', async () => {
    const { dir, store } = await openSpool();
    const [a, b, c, d] = [await enqueueOne(store), await enqueueOne(store), await enqueueOne(store), await enqueueOne(store)];
    const worker = await store.registerWorker({ writingNotes: true });
    const claims = await store.claim(worker, 4);
    expect(claims).toHaveLength(4);
    const byId = new Map(claims.map((claim) => [claim.message.id, claim.message]));
    for (const id of [a, b, c, d]) await store.markCommitting(worker, id, 1);
    const notes = async (): Promise<string[]> => (await readFile(join(dir, 'active', worker, 'writing'), 'latin1')).split('\n').map((l) => l.trim()).filter(Boolean).sort();
    const delivered = (id: string) => ({ ...byId.get(id)!, attempts: 1, recipients: byId.get(id)!.recipients.map((r) => ({ ...r, state: 'delivered' as const, attempts: 1 })) });
    // A: noted, delivered, its outcome durable: its slot is B's next.
    store.markWriting(worker, a, 1);
    await store.finish(worker, delivered(a));
    store.markWriting(worker, b, 1);
    expect(await notes()).toEqual([`${b}@1`]);
    // C: noted; its outcome fails (one EIO on its claim's stat): not durable, so D's note takes a new slot.
    store.markWriting(worker, c, 1);
    const eio = eioOnce((path) => path === join(dir, 'active', worker, `${c}.json`));
    await expect(store.finish(worker, delivered(c))).rejects.toMatchObject({ code: 'EIO' });
    vi.restoreAllMocks();
    expect(eio.failed).toBe(1);
    store.markWriting(worker, d, 1);
    expect(await notes()).toEqual([`${b}@1`, `${c}@1`, `${d}@1`].sort());
    // Killed now: B, C and D began their end of data (unknown); A is delivered.
    await kill(store, dir, worker, 'deadhost-999999-00000007');
    await store.recover();
    expect((await store.get(a))!.state).toBe('delivered');
    for (const id of [b, c, d]) expect((await store.get(id))!.state).toBe('unknown');
  });

  it('recovery whose look for an attempt\'s mark fails (EIO) settles nothing of that page: the next recovery finds the mark (unknown), never a message given back without it', async () => {
    const { dir, store } = await openSpool();
    const { id, worker } = await claimedAndMarked(store, false);
    await kill(store, dir, worker, 'deadhost-999999-00000008', {});
    const eio = eioOnce((path) => path === join(dir, 'commit', `${id}@1`));
    await expect(store.recover()).rejects.toMatchObject({ code: 'EIO' });
    vi.restoreAllMocks();
    expect(eio.failed).toBe(1);
    expect((await store.get(id))!.state).toBe('active'); // back in the dead worker's directory
    await store.recover();
    expect((await store.get(id))!.state).toBe('unknown');
  });

  it('recovery that meets an EIO while it takes a dead worker\'s names gives back what it had taken: nothing stranded in its own directory', async () => {
    const { dir, store } = await openSpool();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await enqueueOne(store));
    const worker = await store.registerWorker({ writingNotes: true });
    expect(await store.claim(worker, 5)).toHaveLength(5);
    for (const id of ids) await store.markCommitting(worker, id, 1); // none noted: never begun
    await kill(store, dir, worker, 'deadhost-999999-00000009');
    const names = (await readdir(join(dir, 'active', 'deadhost-999999-00000009'))).filter((n) => n.endsWith('.json')).sort();
    const eio = eioOnce((path) => /-ctl\//.test(path) && path.endsWith(`/${names[2]}`));
    await expect(store.recover()).rejects.toMatchObject({ code: 'EIO' });
    vi.restoreAllMocks();
    expect(eio.failed).toBe(1);
    await store.recover();
    for (const id of ids) expect((await store.get(id))!.state).toBe('queued');
  });

  it('an operator retry that meets an EIO leaves the message where it was: retried by the next call', async () => {
    const { dir, store } = await openSpool();
    const { id, worker } = await claimedAndMarked(store, false);
    await kill(store, dir, worker, 'deadhost-999999-00000010', {});
    await store.recover();
    expect((await store.get(id))!.state).toBe('unknown');
    const eio = eioOnce((path) => path.endsWith(`/data/${id}`));
    await expect(store.retry(id)).rejects.toMatchObject({ code: 'EIO' });
    vi.restoreAllMocks();
    expect(eio.failed).toBe(1);
    expect((await store.get(id))!.state).toBe('unknown');
    expect(await store.retry(id)).toBe(true);
    expect((await store.get(id))!.state).toBe('deferred'); // pending again (attempted before: deferred, due now)
  });

  it('a claim whose check of its directory fails otherwise than "missing" (EIO) throws that error: no rejoin, the notes of attempts under way kept', async () => {
    const { dir, store } = await openSpool();
    const { id, worker } = await claimedAndMarked(store);
    store.markWriting(worker, id, 1); // its end of data is being written
    const claimDir = join(dir, 'active', worker);
    const eio = eioOnce((path) => path === claimDir);
    await expect(store.claim(worker, 1)).rejects.toMatchObject({ code: 'EIO' });
    vi.restoreAllMocks();
    expect(eio.failed).toBe(1);
    expect((await readFile(join(claimDir, 'writing'), 'latin1')).trim()).toBe(`${id}@1`);
    expect((await readdir(claimDir)).sort()).toEqual([`${id}.json`, 'writing']);
  });

  it('markWriting is refused for a worker not registered with writingNotes (its notes would not be trusted)', async () => {
    const { store } = await openSpool();
    const { id, worker } = await claimedAndMarked(store, false);
    expect(() => store.markWriting(worker, id, 1)).toThrow(expect.objectContaining({ code: 'ERR_QUEUE_INVALID' }));
  });
});
