// `smtplib send --batch FILE`: JSON lines in, per-recipient report and a summary out.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDebugServer, type DebugServerOptions } from '../../packages/cli/src/serve.js';
import { assertBuilt, run, tempDir } from './helpers.js';

beforeAll(assertBuilt);
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(opts: DebugServerOptions = {}) {
  const s = await startDebugServer({ port: 0, ...opts });
  cleanups.push(() => s.close());
  return s;
}

function batchFile(lines: unknown[]): string {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const file = join(t.dir, 'batch.jsonl');
  writeFileSync(file, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  return file;
}

describe('smtplib send --batch', () => {
  it('sends every message, reports each recipient and ends with a summary', async () => {
    const s = await server();
    const file = batchFile([
      { from: 'news@example.test', to: ['a@example.test', 'b@example.test'], subject: 'Issue 1', text: 'first' },
      '# comments and blank lines are skipped',
      '',
      { from: 'news@example.test', to: 'c@example.test', bcc: 'archive@example.test', subject: 'Issue 2', text: 'second', headers: { 'X-Batch': 'yes' } },
      { from: 'news@example.test', to: 'd@example.test', raw: 'From: news@example.test\r\nTo: d@example.test\r\nSubject: Raw\r\n\r\nraw body\r\n' },
    ]);
    const r = await run(['send', '--server', `127.0.0.1:${s.port}`, '--tls', 'none', '--batch', file]);
    expect(r.code, r.stderr).toBe(0);
    const ok = r.stdout.split('\n').filter((l) => l.startsWith('ok '));
    expect(ok.map((l) => l.replace(/\s+/g, ' '))).toEqual([
      'ok line 1 a@example.test',
      'ok line 1 b@example.test',
      'ok line 4 c@example.test',
      'ok line 4 archive@example.test',
      'ok line 5 d@example.test',
    ]);
    expect(r.stdout).toMatch(/^Summary: 3 message\(s\), 3 sent, 0 failed; 5 recipient\(s\) accepted, 0 not; [\d.]+ s via (SMTPPool|one connection)/m);
    expect(s.messages).toHaveLength(3);
    const issue2 = s.messages.find((m) => m.headers.some(([k, v]) => k === 'Subject' && v === 'Issue 2'))!;
    expect(issue2.raw.toString()).toMatch(/^X-Batch: yes\r$/m);
    expect(issue2.raw.toString()).not.toContain('archive@example.test');
    expect(s.messages.find((m) => m.rcptTo[0]!.address === 'd@example.test')!.raw.toString()).toBe('From: news@example.test\r\nTo: d@example.test\r\nSubject: Raw\r\n\r\nraw body\r\n');
  });

  it('exits 69 when a recipient is refused permanently and 75 when one is only deferred', async () => {
    const s = await server({ refuseRcpt: { 'gone@example.test': { code: 550, message: 'No such user' }, 'busy@example.test': { code: 451, message: 'Try later' } } });
    const perm = batchFile([
      { from: 'n@example.test', to: 'a@example.test', subject: 's', text: 't' },
      { from: 'n@example.test', to: 'gone@example.test', subject: 's', text: 't' },
    ]);
    const r = await run(['send', '--server', `127.0.0.1:${s.port}`, '--tls', 'none', '--batch', perm]);
    expect(r.code).toBe(69);
    expect(r.stdout).toMatch(/^refused line 2 +gone@example\.test +550 .*No such user$/m);
    expect(r.stdout).toMatch(/^Summary: 2 message\(s\), 1 sent, 1 failed; 1 recipient\(s\) accepted, 1 not;/m);
    const temp = batchFile([{ from: 'n@example.test', to: ['a@example.test', 'busy@example.test'], subject: 's', text: 't' }]);
    const r2 = await run(['send', '--server', `127.0.0.1:${s.port}`, '--tls', 'none', '--attempts', '1', '--batch', temp]);
    expect(r2.code).toBe(75);
    expect(r2.stdout).toMatch(/^defer +line 1 +busy@example\.test +451 /m);
  });

  it('sends an LMTP batch over one LMTP connection', async () => {
    const s = await server({ lmtp: true });
    const file = batchFile([1, 2, 3].map((i) => ({ from: 'n@example.test', to: `u${i}@example.test`, subject: `m${i}`, text: 't' })));
    const r = await run(['send', '--server', `127.0.0.1:${s.port}`, '--lmtp', '--tls', 'none', '--batch', file]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/3 sent, 0 failed.*via one LMTP connection/);
    expect(s.messages.map((m) => m.rcptTo[0]!.address)).toEqual(['u1@example.test', 'u2@example.test', 'u3@example.test']);
    expect(new Set(s.messages.map((m) => m.sessionId)).size).toBe(1);
  });

  it('checks the whole file first: a bad line stops the batch before anything is sent', async () => {
    const s = await server();
    const file = batchFile([{ from: 'n@example.test', to: 'a@example.test', text: 'ok' }, '{"from": "n@example.test", "to": ']);
    const r = await run(['send', '--server', `127.0.0.1:${s.port}`, '--tls', 'none', '--batch', file]);
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/line 2: not JSON/);
    const noRcpt = batchFile([{ from: 'n@example.test', subject: 'x', text: 'x' }]);
    const r2 = await run(['send', '--server', `127.0.0.1:${s.port}`, '--tls', 'none', '--batch', noRcpt]);
    expect(r2.code).toBe(65);
    expect(r2.stderr).toMatch(/line 1: no recipients/);
    expect(s.messages).toHaveLength(0);
  });
});
