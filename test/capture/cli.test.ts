// `smtplib serve` as a process: the web inbox it announces, --fail, --record
// and --replay end to end (built CLI, real sockets).
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as smtplib from 'smtplib';
import { assertBuilt, run, spawnServe, tempDir, waitFor } from '../cli/helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function sendmail(port: number, to: string[]): Promise<Record<string, number>> {
  const c = await smtplib.SMTP.connect({ host: '127.0.0.1', port, localHostname: 'client.test', tlsPolicy: 'none' });
  const refused = await c.sendmail('alice@example.org', to, 'Subject: cli\r\n\r\nbody\r\n');
  await c.quit();
  return Object.fromEntries([...refused].map(([a, r]) => [a, r.code]));
}

describe('smtplib serve (capture)', () => {
  beforeAll(assertBuilt);

  it('announces the inbox, applies --fail, records with --record, and --replay answers as recorded', async () => {
    const rec = tempDir('capture-cli-');
    cleanups.push(rec.cleanup);
    const srv = await spawnServe(['--fail', 'RCPT to=~@blocked\\.test -> 550 5.1.1 no such user', '--record', rec.dir]);
    cleanups.push(srv.stop);
    await waitFor(() => srv.output().includes('Web inbox and API:'));
    const url = /Web inbox and API: (http:\/\/127\.0\.0\.1:\d+)/.exec(srv.output())?.[1];
    expect(url).toBeDefined();
    expect(srv.output()).toContain('Scripted failure: RCPT to=~@blocked\\.test -> 550 5.1.1 no such user');
    expect(await sendmail(srv.port, ['ok@example.org', 'x@blocked.test'])).toEqual({ 'x@blocked.test': 550 });
    const api = await (await fetch(`${url}/api/v1/messages`)).json();
    expect(api.messages[0].accepted).toEqual(['ok@example.org']);
    await waitFor(() => readdirSync(rec.dir).length === 1);
    expect(await srv.stop()).toBe(0);

    const file = join(rec.dir, readdirSync(rec.dir)[0]!);
    const replay = await spawnServe(['--replay', file]);
    cleanups.push(replay.stop);
    expect(await sendmail(replay.port, ['ok@example.org', 'x@blocked.test'])).toEqual({ 'x@blocked.test': 550 });
    await waitFor(() => /replayed (\d+) of \1 steps/.test(replay.output()));
    expect(await replay.stop()).toBe(0);
  });

  it('rejects a malformed --fail rule and --require-tls without TLS with exit code 64', async () => {
    const bad = await run(['serve', '--fail', 'RCPT -> 250 ok']);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/is not an action/);
    const tls = await run(['serve', '--require-tls']);
    expect(tls.code).toBe(64);
    expect(tls.stderr).toMatch(/--require-tls needs --starttls/);
  });
});
