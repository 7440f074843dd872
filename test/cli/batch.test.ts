// `smtplib send --batch FILE`: JSON lines in, per-recipient report and a summary out.
import { writeFileSync } from 'node:fs';
import net from 'node:net';
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
    const ok = r.stdout.split('\n').filter((l) => l.startsWith('delivered '));
    // Each delivered recipient with the server's reply to the end of data.
    expect(ok.map((l) => l.replace(/\s+/g, ' ').replace(/ 250 .*$/, ' 250'))).toEqual([
      'delivered line 1 a@example.test 250',
      'delivered line 1 b@example.test 250',
      'delivered line 4 c@example.test 250',
      'delivered line 4 archive@example.test 250',
      'delivered line 5 d@example.test 250',
    ]);
    expect(r.stdout).toMatch(/^Summary: 3 message\(s\), 3 sent in full, 0 not; recipients: 5 delivered, 0 refused, 0 not delivered, 0 unknown; [\d.]+ s via SMTPPool/m);
    expect(s.messages).toHaveLength(3);
    const issue2 = s.messages.find((m) => m.headers.some(([k, v]) => k === 'Subject' && v === 'Issue 2'))!;
    expect(issue2.raw.toString()).toMatch(/^X-Batch: yes\r$/m);
    expect(issue2.raw.toString()).not.toContain('archive@example.test');
    expect(s.messages.find((m) => m.rcptTo[0]!.address === 'd@example.test')!.raw.toString()).toBe('From: news@example.test\r\nTo: d@example.test\r\nSubject: Raw\r\n\r\nraw body\r\n');
  });

  it('exits 79 (partial) when a recipient is refused, 75 when the only failures are deferrals, 69 when all are refused', async () => {
    const s = await server({ refuseRcpt: { 'gone@example.test': { code: 550, message: 'No such user' }, 'busy@example.test': { code: 451, message: 'Try later' } } });
    const perm = batchFile([
      { from: 'n@example.test', to: 'a@example.test', subject: 's', text: 't' },
      { from: 'n@example.test', to: 'gone@example.test', subject: 's', text: 't' },
    ]);
    const r = await run(['send', '--server', `127.0.0.1:${s.port}`, '--tls', 'none', '--batch', perm]);
    expect(r.code).toBe(79);
    expect(r.stdout).toMatch(/^refused +line 2 +gone@example\.test +550 .*No such user$/m);
    expect(r.stdout).toMatch(/^Summary: 2 message\(s\), 1 sent in full, 1 not; recipients: 1 delivered, 1 refused, 0 not delivered, 0 unknown;/m);
    const temp = batchFile([{ from: 'n@example.test', to: 'busy@example.test', subject: 's', text: 't' }]);
    const r2 = await run(['send', '--server', `127.0.0.1:${s.port}`, '--tls', 'none', '--attempts', '1', '--batch', temp]);
    expect(r2.code).toBe(75);
    expect(r2.stdout).toMatch(/^refused +line 1 +busy@example\.test +451 /m);
    const gone = batchFile([{ from: 'n@example.test', to: 'gone@example.test', subject: 's', text: 't' }]);
    const r3 = await run(['send', '--server', `127.0.0.1:${s.port}`, '--tls', 'none', '--batch', gone]);
    expect(r3.code).toBe(69);
  });

  it('sends an LMTP batch over one LMTP connection', async () => {
    const s = await server({ lmtp: true });
    const file = batchFile([1, 2, 3].map((i) => ({ from: 'n@example.test', to: `u${i}@example.test`, subject: `m${i}`, text: 't' })));
    const r = await run(['send', '--server', `127.0.0.1:${s.port}`, '--lmtp', '--tls', 'none', '--batch', file]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/3 sent in full, 0 not.*via one LMTP connection/);
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

  it('--json prints one object per recipient with the server reply, then a summary', async () => {
    const s = await server({ refuseRcpt: { 'gone@example.test': { code: 550, message: '5.1.1 No such user' } } });
    const file = batchFile([{ from: 'n@example.test', to: ['a@example.test', 'gone@example.test'], subject: 's', text: 't' }]);
    const r = await run(['send', '--server', `127.0.0.1:${s.port}`, '--tls', 'none', '--json', '--batch', file]);
    expect(r.code).toBe(79);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ line: 1, recipient: 'a@example.test', status: 'delivered', reply: { code: 250 } });
    expect(lines[1]).toMatchObject({ line: 1, recipient: 'gone@example.test', status: 'refused', reply: { code: 550, enhancedStatus: '5.1.1', message: expect.stringMatching(/No such user$/) } });
    expect(lines[2]).toMatchObject({ summary: { messages: 1, delivered: 1, refused: 1, notDelivered: 0, unknown: 0, exitCode: 79 } });
  });

  it('reports not-delivered when the message is refused after DATA', async () => {
    const s = await server({ refuseData: { code: 554, message: 'Rejected as spam' } });
    const file = batchFile([{ from: 'n@example.test', to: ['a@example.test', 'b@example.test'], subject: 's', text: 't' }]);
    const r = await run(['send', '--server', `127.0.0.1:${s.port}`, '--tls', 'none', '--batch', file]);
    expect(r.code).toBe(69);
    expect(r.stdout).toMatch(/^not-delivered +line 1 +a@example\.test +554 .*spam$/m);
    expect(r.stdout).toMatch(/^not-delivered +line 1 +b@example\.test +554 .*spam$/m);
    expect(r.stdout).not.toMatch(/^delivered/m);
  });

  it('reports unknown (never ok) when the connection drops after the end of data', async () => {
    // A server that takes the whole message and hangs up instead of answering it.
    const sockets = new Set<net.Socket>();
    const srv = net.createServer((sock) => {
      sockets.add(sock);
      sock.on('error', () => {});
      sock.write('220 drop.test ESMTP\r\n');
      let inData = false;
      let buf = '';
      sock.on('data', (d) => {
        buf += d.toString('latin1');
        for (;;) {
          if (inData) {
            if (!buf.includes('\r\n.\r\n')) return;
            sock.destroy();
            return;
          }
          const nl = buf.indexOf('\r\n');
          if (nl < 0) return;
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 2);
          if (/^EHLO/i.test(line)) sock.write('250-drop.test\r\n250 8BITMIME\r\n');
          else if (/^DATA/i.test(line)) {
            inData = true;
            sock.write('354 go ahead\r\n');
          } else if (/^QUIT/i.test(line)) sock.end('221 bye\r\n');
          else sock.write('250 ok\r\n');
        }
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      for (const x of sockets) x.destroy();
      return new Promise<void>((r) => srv.close(() => r()));
    });
    const port = (srv.address() as net.AddressInfo).port;
    const file = batchFile([{ from: 'n@example.test', to: 'a@example.test', subject: 's', text: 't' }]);
    const r = await run(['send', '--server', `127.0.0.1:${port}`, '--tls', 'none', '--batch', file]);
    expect(r.stdout).toMatch(/^unknown +line 1 +a@example\.test /m);
    expect(r.stdout).not.toMatch(/^delivered/m);
    expect(r.stdout).toMatch(/0 delivered, 0 refused, 0 not delivered, 1 unknown/);
    expect(r.code).not.toBe(0);
  });

  it('accepts attachments as { path, filename, contentType } and names the line of a bad one', async () => {
    const s = await server();
    const t = tempDir();
    cleanups.push(t.cleanup);
    const file = join(t.dir, 'data.bin');
    writeFileSync(file, 'x,y\n');
    const good = batchFile([{ from: 'n@example.test', to: 'a@example.test', subject: 's', text: 't', attachments: [{ path: file, filename: 'numbers.csv', contentType: 'text/csv' }, file] }]);
    const r = await run(['send', '--server', `127.0.0.1:${s.port}`, '--tls', 'none', '--batch', good]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const raw = s.messages[0]!.raw.toString();
    // The part declares the given type and file name (whatever order the composer writes its fields in).
    expect(raw).toMatch(/^Content-Type: text\/csv\r?$(?:\n[^\r\n]+\r?$)*?\nContent-Disposition: attachment; filename=numbers\.csv\r?$/m);
    expect(raw).toMatch(/filename=data\.bin/);
    const bad = batchFile([
      { from: 'n@example.test', to: 'a@example.test', text: 'ok' },
      { from: 'n@example.test', to: 'a@example.test', text: 't', attachments: [{ file: 'x' }] },
    ]);
    const r2 = await run(['send', '--server', `127.0.0.1:${s.port}`, '--tls', 'none', '--batch', bad]);
    expect(r2.code).toBe(65);
    expect(r2.stderr).toMatch(/line 2: attachments\[0\]: unknown key\(s\) "file"/);
    const missing = batchFile([{ from: 'n@example.test', to: 'a@example.test', text: 't', attachments: [{ path: join(t.dir, 'nope.pdf') }] }]);
    const r3 = await run(['send', '--server', `127.0.0.1:${s.port}`, '--tls', 'none', '--batch', missing]);
    expect(r3.code).toBe(66);
    expect(r3.stderr).toMatch(/line 1: cannot read attachment/);
    expect(s.messages).toHaveLength(1);
  });
});
