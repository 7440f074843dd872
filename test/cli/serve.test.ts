// `smtplib serve` and startDebugServer, driven by nodemailer as an independent client.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDebugServer, type DebugServer } from '../../packages/cli/src/serve.js';
import { assertBuilt, spawnServe, tempDir, waitFor } from './helpers.js';

function transport(port: number, extra: Record<string, unknown> = {}) {
  return nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, ...extra });
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function server(opts: Parameters<typeof startDebugServer>[0]): Promise<DebugServer> {
  const s = await startDebugServer({ port: 0, ...opts });
  cleanups.push(() => s.close());
  return s;
}

describe('startDebugServer', () => {
  it('records envelope, parameters, headers and raw data, and emits "message"', async () => {
    const s = await server({});
    expect(s.host).toBe('127.0.0.1');
    expect(s.port).toBeGreaterThan(0);
    const seen: number[] = [];
    s.on('message', (m) => seen.push(m.seq));
    const info = await transport(s.port).sendMail({
      envelope: { from: 'alice@example.test', to: ['bob@example.test', 'carol@example.test'] },
      from: 'Alice <alice@example.test>',
      to: 'bob@example.test',
      subject: 'Greetings',
      text: 'one\ntwo\nthree\n',
      dsn: { id: 'env-1', return: 'headers', notify: ['failure', 'delay'], recipient: 'alice@example.test' },
    });
    expect(info.accepted).toEqual(['bob@example.test', 'carol@example.test']);
    const m = await s.waitForMessage(1);
    expect(seen).toEqual([1]);
    expect(m.mailFrom.address).toBe('alice@example.test');
    expect(m.mailFrom.args).toMatchObject({ RET: 'HDRS', ENVID: 'env-1' });
    expect(m.rcptTo.map((r) => r.address)).toEqual(['bob@example.test', 'carol@example.test']);
    expect(m.rcptTo[0]!.args).toMatchObject({ NOTIFY: 'FAILURE,DELAY' });
    expect(m.headers.find(([n]) => n === 'Subject')?.[1]).toBe('Greetings');
    expect(m.raw.toString()).toContain('\r\n\r\none\r\ntwo\r\nthree\r\n');
    expect(m.size).toBe(m.raw.length);
  });

  it('refuses recipients, senders and data with the scripted replies', async () => {
    const s = await server({ refuseRcpt: { 'bad@example.test': { code: 550, message: 'No such user' }, 'later@example.test': { code: 451 } } });
    const info = await transport(s.port).sendMail({
      envelope: { from: 'a@example.test', to: ['bad@example.test', 'later@example.test', 'ok@example.test'] },
      raw: 'Subject: x\r\n\r\nbody\r\n',
    });
    expect(info.accepted).toEqual(['ok@example.test']);
    expect(info.rejected.sort()).toEqual(['bad@example.test', 'later@example.test']);
    const codes = (info.rejectedErrors ?? []).map((e: { responseCode?: number }) => e.responseCode).sort();
    expect(codes).toEqual([451, 550]);

    const s2 = await server({ refuseData: { code: 554, message: 'Spam' } });
    await expect(transport(s2.port).sendMail({ envelope: { from: 'a@example.test', to: ['b@example.test'] }, raw: 'x\r\n' })).rejects.toMatchObject({
      responseCode: 554,
    });
    expect(s2.messages).toHaveLength(0);
  });

  it('requires AUTH with --auth and accepts PLAIN, LOGIN and CRAM-MD5', async () => {
    const s = await server({ auth: [{ user: 'alice', pass: 's3cret' }] });
    await expect(transport(s.port).sendMail({ envelope: { from: 'a@example.test', to: ['b@example.test'] }, raw: 'x\r\n' })).rejects.toMatchObject({
      responseCode: 530,
    });
    for (const method of ['PLAIN', 'LOGIN', 'CRAM-MD5']) {
      const t = transport(s.port, { auth: { user: 'alice', pass: 's3cret' }, authMethod: method });
      await t.sendMail({ envelope: { from: 'a@example.test', to: ['b@example.test'] }, raw: `Subject: ${method}\r\n\r\nx\r\n` });
    }
    expect(s.messages.map((m) => m.user)).toEqual(['alice', 'alice', 'alice']);
    await expect(
      transport(s.port, { auth: { user: 'alice', pass: 'wrong' } }).sendMail({ envelope: { from: 'a@example.test', to: ['b@example.test'] }, raw: 'x\r\n' }),
    ).rejects.toMatchObject({ responseCode: 535 });
  });

  it('offers STARTTLS with a generated certificate whose fingerprint it reports', async () => {
    const s = await server({ starttls: true });
    expect(s.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: s.port, requireTLS: true, tls: { ca: s.cert!, servername: 'localhost' } });
    await t.sendMail({ envelope: { from: 'a@example.test', to: ['b@example.test'] }, raw: 'x\r\n' });
    const m = await s.waitForMessage(1);
    expect(m.secure).toBe(true);
    expect(m.tlsProtocol).toMatch(/^TLSv1\.[23]$/);
  });

  it('speaks LMTP and enforces SIZE', async () => {
    const s = await server({ lmtp: true, size: 1000 });
    const t = transport(s.port, { lmtp: true });
    await t.sendMail({ envelope: { from: 'a@example.test', to: ['b@example.test'] }, raw: 'Subject: lmtp\r\n\r\nx\r\n' });
    expect((await s.waitForMessage(1)).transmissionType).toMatch(/LMTP/);
    const big = 'Subject: big\r\n\r\n' + 'y'.repeat(3000) + '\r\n';
    // LMTP: the refusal comes per recipient.
    const info = await t.sendMail({ envelope: { from: 'a@example.test', to: ['b@example.test'] }, raw: big });
    expect(info.rejected).toEqual(['b@example.test']);
    expect((info.rejectedErrors as { responseCode?: number }[])[0]!.responseCode).toBe(552);
    const smtp = await server({ size: 1000 });
    await expect(transport(smtp.port).sendMail({ envelope: { from: 'a@example.test', to: ['b@example.test'] }, raw: big })).rejects.toMatchObject({
      responseCode: 552,
    });
    expect(s.messages).toHaveLength(1);
    expect(smtp.messages).toHaveLength(0);
  });

  it('saves .eml files and delivers into a Maildir', async () => {
    const eml = tempDir();
    const md = tempDir();
    cleanups.push(eml.cleanup, md.cleanup);
    const s1 = await server({ emlDir: eml.dir });
    const s2 = await server({ maildir: join(md.dir, 'Maildir') });
    for (const s of [s1, s2]) {
      await transport(s.port).sendMail({ envelope: { from: 'a@example.test', to: ['b@example.test'] }, raw: 'Subject: saved\r\n\r\nkeep me\r\n' });
      await s.waitForMessage(1);
    }
    // Each .eml has a JSON sidecar with the envelope and transcript (read back on restart).
    const all = readdirSync(eml.dir);
    const files = all.filter((f) => f.endsWith('.eml'));
    expect(all.filter((f) => f.endsWith('.json'))).toEqual([files[0]!.replace(/\.eml$/, '.json')]);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/\.eml$/);
    expect(readFileSync(join(eml.dir, files[0]!), 'utf8')).toBe('Subject: saved\r\n\r\nkeep me\r\n');
    expect(readdirSync(join(md.dir, 'Maildir', 'tmp'))).toEqual([]);
    expect(readdirSync(join(md.dir, 'Maildir', 'cur'))).toEqual([]);
    const delivered = readdirSync(join(md.dir, 'Maildir', 'new'));
    expect(delivered).toHaveLength(1);
    expect(s2.messages[0]!.file).toBe(join(md.dir, 'Maildir', 'new', delivered[0]!));
  });
});

describe('smtplib serve (command)', () => {
  beforeAll(assertBuilt);

  it('prints the envelope, headers and a body summary of each message', async () => {
    const srv = await spawnServe([]);
    cleanups.push(srv.stop);
    await transport(srv.port).sendMail({
      envelope: { from: 'alice@example.test', to: ['bob@example.test', 'carol@example.test'] },
      raw: 'From: alice@example.test\r\nTo: bob@example.test\r\nSubject: Printed\r\n\r\nfirst line\r\nsecond line\r\n',
    });
    await waitFor(() => srv.output().includes('-'.repeat(40) + '\n'));
    const out = srv.output();
    expect(out).toContain('MAIL FROM:<alice@example.test>');
    expect(out).toContain('RCPT TO:<bob@example.test>');
    expect(out).toContain('RCPT TO:<carol@example.test>');
    expect(out).toContain('  Subject: Printed');
    expect(out).toMatch(/Body: 25 bytes, 2 lines/);
    expect(out).toContain('  | first line');
    expect(await srv.stop()).toBe(0);
  });

  it('prints JSON lines with --json and stops after --exit-after', async () => {
    const srv = await spawnServe(['--json', '--exit-after', '1', '--refuse-rcpt', 'no@example.test=550 5.1.1 Unknown']);
    const info = await transport(srv.port).sendMail({ envelope: { from: 'a@example.test', to: ['no@example.test', 'yes@example.test'] }, raw: 'Subject: j\r\n\r\nx\r\n' });
    expect(info.rejected).toEqual(['no@example.test']);
    const code = await srv.stop();
    const lines = srv.output().trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ event: 'listening', port: srv.port });
    expect(lines[1]).toMatchObject({ seq: 1, mailFrom: { address: 'a@example.test' }, rcptTo: [{ address: 'yes@example.test' }] });
    expect(lines[1].raw).toBe('Subject: j\r\n\r\nx\r\n');
    expect(code).toBe(0);
  });

  it('rejects bad options with exit code 64', async () => {
    const { run } = await import('./helpers.js');
    const r = await run(['serve', '--refuse-rcpt', 'nobody']);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/ADDRESS=CODE/);
  });
});
