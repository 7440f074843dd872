// `smtplib queue ...`, and `send`/`sendmail` with a queue directory: the built
// command against a real spool and a real SMTP server on loopback.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, freePort, run, tempDir } from '../cli/helpers.js';
import { startServer, taggedMessage, type FaultServer } from './helpers.js';

beforeAll(assertBuilt);
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function spool(): string {
  const t = tempDir('smtplib-queue-cli-');
  cleanups.push(t.cleanup);
  return join(t.dir, 'q');
}

async function server(options: Parameters<typeof startServer>[0] = {}): Promise<FaultServer> {
  const s = await startServer(options);
  cleanups.push(() => s.close());
  return s;
}

interface ListItem { id: string; state: string; recipients: { address: string; state: string }[] }
const list = async (dir: string, extra: string[] = []): Promise<ListItem[]> => {
  const r = await run(['queue', 'list', '--queue-dir', dir, '--json', ...extra]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as ListItem[];
};

describe('smtplib sendmail/send --queue-dir, smtplib queue', () => {
  it('sendmail accepts into the spool and exits 0 while the server is down; queue run delivers it later', async () => {
    const dir = spool();
    const { tag, message } = taggedMessage();
    const down = await freePort();
    const r = await run(['sendmail', '--queue-dir', dir, '--server', `127.0.0.1:${down}`, '-t'], { input: message });
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(join(dir, 'queue')).length).toBe(1);
    const items = await list(dir);
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ state: 'queued', recipients: [{ address: 'b@example.test', state: 'queued' }] });
    const s = await server();
    const ran = await run(['queue', 'run', '--queue-dir', dir, '--server', `127.0.0.1:${s.port}`, '--tls', 'none']);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toMatch(/1 delivered/);
    expect(s.deliveries.get(`${tag} b@example.test`)).toBe(1);
    expect((await list(dir))[0]).toMatchObject({ id: items[0]!.id, state: 'delivered' });
  });

  it('SMTPLIB_QUEUE_DIR and the account key queue_dir turn queueing on too', async () => {
    const dir = spool();
    const viaEnv = await run(['sendmail', 'x@example.test'], { input: taggedMessage().message, env: { SMTPLIB_QUEUE_DIR: dir } });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    const t = tempDir();
    cleanups.push(t.cleanup);
    const config = join(t.dir, 'config');
    writeFileSync(config, `account relay\nhost 127.0.0.1\nport 1\ntls none\nfrom a@example.test\nqueue_dir ${dir}\n\naccount default : relay\n`);
    const viaAccount = await run(['sendmail', '-C', config, 'y@example.test'], { input: taggedMessage().message });
    expect(viaAccount.code, viaAccount.stderr).toBe(0);
    const viaSend = await run(['send', '--queue-dir', dir, '--from', 'a@example.test', '--to', 'z@example.test', '--subject', 'hi', '--body', 'text']);
    expect(viaSend.code, viaSend.stderr).toBe(0);
    expect(viaSend.stdout).toMatch(/queued as [0-9a-z]+/);
    const items = await list(dir);
    expect(items.map((i) => i.recipients[0]!.address).sort()).toEqual(['x@example.test', 'y@example.test', 'z@example.test']);
    const queuedByAccount = await run(['queue', 'list', '--json'], { env: { SMTPLIB_CONFIG: config } });
    expect(JSON.parse(queuedByAccount.stdout)).toHaveLength(3);
  });

  it('flush attempts deferred messages at once and returns when they ended; hold, release, delete, show', async () => {
    const dir = spool();
    for (let i = 0; i < 3; i++) expect((await run(['sendmail', '--queue-dir', dir, '-t'], { input: taggedMessage().message })).code).toBe(0);
    let up = false;
    const s = await server({ fault: (ctx) => (!up && ctx.stage === 'greeting' ? { reply: '421 4.3.2 down for maintenance' } : undefined) });
    const relay = ['--server', `127.0.0.1:${s.port}`, '--tls', 'none'];
    const first = await run(['queue', 'flush', '--queue-dir', dir, ...relay]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/flushed 3 message\(s\).*3 deferred/);
    const deferred = await list(dir, ['--state', 'deferred']);
    expect(deferred).toHaveLength(3);
    const [held, gone] = [deferred[0]!.id, deferred[1]!.id];
    expect((await run(['queue', 'hold', held, '--queue-dir', dir])).stdout).toMatch(/held/);
    expect((await run(['queue', 'delete', gone, '--queue-dir', dir])).code).toBe(0);
    const shown = await run(['queue', 'show', held, '--queue-dir', dir]);
    expect(shown.stdout).toMatch(new RegExp(`Message ${held}: held`));
    expect(shown.stdout).toMatch(/down for maintenance|421/);
    up = true;
    const second = await run(['queue', 'flush', '--queue-dir', dir, ...relay, '--json']);
    expect(JSON.parse(second.stdout)).toMatchObject({ delivered: 1 });
    expect((await list(dir)).map((i) => i.state).sort()).toEqual(['delivered', 'held']);
    expect((await run(['queue', 'release', held, '--queue-dir', dir])).code).toBe(0);
    await run(['queue', 'flush', '--queue-dir', dir, ...relay]);
    expect((await list(dir)).map((i) => i.state)).toEqual(['delivered', 'delivered']);
    expect(s.stats.messages).toBe(2);
    const missing = await run(['queue', 'show', 'nosuchid000', '--queue-dir', dir]);
    expect(missing.code).not.toBe(0);
  });

  it('queue purge removes finished messages older than --older-than (default: queue_retention, else 7 days), never a held one', async () => {
    const dir = spool();
    for (let i = 0; i < 3; i++) expect((await run(['sendmail', '--queue-dir', dir, '-t'], { input: taggedMessage().message })).code).toBe(0);
    const [held] = (await list(dir)).map((i) => i.id);
    expect((await run(['queue', 'hold', held!, '--queue-dir', dir])).code).toBe(0);
    const s = await server();
    const t = tempDir();
    cleanups.push(t.cleanup);
    const config = join(t.dir, 'config');
    // queue_retention forever: `queue run` never purges (it does not even take the purge turn).
    writeFileSync(config, `account relay\nhost 127.0.0.1\nport ${s.port}\ntls none\nfrom a@example.test\nqueue_dir ${dir}\nqueue_retention forever\n\naccount default : relay\n`);
    const ran = await run(['queue', 'run'], { env: { SMTPLIB_CONFIG: config } });
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toMatch(/2 delivered/);
    expect(existsSync(join(dir, 'purge-turn'))).toBe(false);
    expect((await run(['queue', 'purge'], { env: { SMTPLIB_CONFIG: config } })).stdout).toMatch(/purged nothing: queue_retention is forever/);
    // The default retention (7 days): nothing that finished just now goes.
    const kept = await run(['queue', 'purge', '--queue-dir', dir, '--json']);
    expect(kept.code, kept.stderr).toBe(0);
    expect(JSON.parse(kept.stdout)).toMatchObject({ purged: 0, olderThanMs: 7 * 86_400_000 });
    expect((await run(['queue', 'purge', '--queue-dir', dir, '--older-than', '1h'])).stdout).toMatch(/^purged 0 finished message\(s\) .* \(older than 60m\)/);
    const bad = await run(['queue', 'purge', '--queue-dir', dir, '--older-than', 'soon']);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/--older-than: "soon" should be a duration/);
    expect((await list(dir)).map((i) => i.state).sort()).toEqual(['delivered', 'delivered', 'held']);
    // queue_retention 0: everything finished goes; the held message stays.
    writeFileSync(config, `account relay\nhost 127.0.0.1\nport ${s.port}\ntls none\nfrom a@example.test\nqueue_dir ${dir}\nqueue_retention 0\n\naccount default : relay\n`);
    const purged = await run(['queue', 'purge', '--json'], { env: { SMTPLIB_CONFIG: config } });
    expect(purged.code, purged.stderr).toBe(0);
    expect(JSON.parse(purged.stdout)).toMatchObject({ purged: 2, olderThanMs: 0 });
    expect((await list(dir)).map((i) => [i.id, i.state])).toEqual([[held, 'held']]);
    expect(readdirSync(join(dir, 'done'))).toEqual([]);
    // Without queue_retention forever, `queue run` takes the queue's purge turn (the default retention applies).
    expect((await run(['queue', 'run', '--queue-dir', dir, '--server', `127.0.0.1:${s.port}`, '--tls', 'none'])).code).toBe(0);
    expect(existsSync(join(dir, 'purge-turn'))).toBe(true);
    writeFileSync(config, `account relay\nhost 127.0.0.1\nqueue_retention someday\n`);
    expect((await run(['queue', 'purge', '--queue-dir', dir], { env: { SMTPLIB_CONFIG: config } })).stderr).toMatch(/queue_retention "someday" should be a duration/);
  });

  it('without a queue directory, queue commands say how to give one', async () => {
    const r = await run(['queue', 'list']);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/--queue-dir/);
  });
});
