// Scripted failures, each seen by three independent clients: our smtplib,
// Python's smtplib (/usr/bin/python3) and nodemailer. Every client gets a
// fresh capture server, so greylisting and `n=` counts start over.
import { afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';
import * as smtplib from 'smtplib';
import { startCapture, type CaptureOptions, type CaptureServer } from '../../packages/capture/src/index.js';
import { FailureScript, parseFailureRule } from '../../packages/capture/src/failures.js';
import { testPki } from '../support/certs.js';

const PYTHON = '/usr/bin/python3';
const PY_CLIENT = fileURLToPath(new URL('./py_client.py', import.meta.url));
if (!existsSync(PYTHON)) {
  if (process.env.CI === 'true') throw new Error(`${PYTHON} is missing: CI must install python3 (.ci/apt-packages)`);
  console.warn(`skipping the Python client: ${PYTHON} is missing`);
}

interface Seen {
  accepted: string[];
  refused: Record<string, number>;
  error?: { phase: 'MAIL' | 'RCPT' | 'DATA' | 'CONN' | 'AUTH'; code?: number };
}

interface Attempt {
  port: number;
  from: string;
  to: string[];
  msg: string;
  starttls?: boolean;
  user?: string;
  password?: string;
  lmtp?: boolean;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let caFile: string | undefined;
function pki(): { ca: string; caFile: string; cert: string; key: string } {
  const p = testPki();
  if (!caFile) {
    const dir = mkdtempSync(join(tmpdir(), 'capture-ca-'));
    caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, p.ca);
  }
  return { ca: p.ca, caFile, cert: p.server.cert, key: p.server.key };
}

async function ours(a: Attempt): Promise<Seen> {
  const Class = a.lmtp ? smtplib.LMTP : smtplib.SMTP;
  const seen: Seen = { accepted: [], refused: {} };
  let client: smtplib.SMTP | undefined;
  try {
    client = await Class.connect({
      host: '127.0.0.1',
      port: a.port,
      localHostname: 'ours.test',
      tlsPolicy: a.starttls ? 'required' : 'none',
      ...(a.starttls ? { tls: { ca: pki().ca, servername: 'localhost' } } : {}),
    });
    if (a.user) await client.login(a.user, a.password!);
    const refused = await client.sendmail(a.from, a.to, a.msg);
    for (const [addr, reply] of refused) seen.refused[addr] = reply.code;
    seen.accepted = a.to.filter((t) => !(t in seen.refused));
    await client.quit().catch(() => {});
  } catch (err) {
    const e = err as Error & { smtpCode?: number; recipients?: Iterable<[string, { code: number }]> };
    if (e instanceof smtplib.SMTPSenderRefused) seen.error = { phase: 'MAIL', code: e.smtpCode! };
    else if (e instanceof smtplib.SMTPRecipientsRefused) {
      for (const [addr, reply] of e.recipients!) seen.refused[addr] = reply.code;
      seen.error = { phase: 'RCPT', code: Object.values(seen.refused)[0]! };
    } else if (e instanceof smtplib.SMTPDataError) seen.error = { phase: 'DATA', code: e.smtpCode! };
    else if (e instanceof smtplib.SMTPServerDisconnected) seen.error = { phase: 'CONN' };
    else throw err;
  } finally {
    client?.close();
  }
  return seen;
}

function python(a: Attempt): Promise<Seen> {
  const args = { ...a, ...(a.starttls ? { cafile: pki().caFile } : {}) };
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [PY_CLIENT, JSON.stringify(args)], { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`python client failed: ${stderr || err.message}`));
      resolve(JSON.parse(stdout) as Seen);
    });
  });
}

async function viaNodemailer(a: Attempt): Promise<Seen> {
  const t = nodemailer.createTransport({
    host: '127.0.0.1',
    port: a.port,
    secure: false,
    lmtp: Boolean(a.lmtp),
    name: 'nodemailer.test',
    ...(a.starttls ? { requireTLS: true, tls: { ca: pki().ca, servername: 'localhost' } } : { ignoreTLS: true }),
    ...(a.user ? { auth: { user: a.user, pass: a.password! } } : {}),
  } as Parameters<typeof nodemailer.createTransport>[0]);
  const seen: Seen = { accepted: [], refused: {} };
  try {
    const info = await t.sendMail({ envelope: { from: a.from, to: a.to }, raw: a.msg });
    seen.accepted = info.accepted as string[];
    for (const e of (info.rejectedErrors ?? []) as { recipient: string; responseCode: number }[]) seen.refused[e.recipient] = e.responseCode;
  } catch (err) {
    const e = err as Error & { responseCode?: number; command?: string; rejectedErrors?: { recipient: string; responseCode: number }[] };
    const phase = /^MAIL/.test(e.command ?? '') ? 'MAIL' : /^RCPT/.test(e.command ?? '') ? 'RCPT' : /^DATA/.test(e.command ?? '') ? 'DATA' : /^AUTH/.test(e.command ?? '') ? 'AUTH' : 'CONN';
    for (const r of e.rejectedErrors ?? []) seen.refused[r.recipient] = r.responseCode;
    seen.error = e.responseCode && phase !== 'CONN' ? { phase, code: e.responseCode } : { phase: 'CONN' };
  } finally {
    t.close();
  }
  return seen;
}

const CLIENTS = { ours, python, nodemailer: viaNodemailer } as const;
type ClientName = keyof typeof CLIENTS;

async function capture(opts: CaptureOptions): Promise<CaptureServer> {
  const s = await startCapture({ port: 0, http: false, ...opts });
  cleanups.push(() => s.close());
  return s;
}

const MSG = 'From: app@example.test\r\nSubject: scripted\r\n\r\nhello\r\n';

describe.each(Object.keys(CLIENTS).filter((c) => c !== 'python' || existsSync(PYTHON)) as ClientName[])('scripted failures seen by %s', (name) => {
  const client = CLIENTS[name];

  it('RCPT to=~@blocked\\.test -> 550 5.1.1 no such user refuses that recipient only', async () => {
    const s = await capture({ failures: ['RCPT to=~@blocked\\.test -> 550 5.1.1 no such user'] });
    const seen = await client({ port: s.smtp.port, from: 'app@example.test', to: ['ok@example.test', 'x@blocked.test'], msg: MSG });
    expect(seen).toEqual({ accepted: ['ok@example.test'], refused: { 'x@blocked.test': 550 } });
    expect(s.store.all()[0]!.accepted).toEqual(['ok@example.test']);
    expect(s.store.all()[0]!.transcript).toContain('S: 550 5.1.1 no such user');
  });

  it('DATA p=1 -> 451 4.3.0 try later defers the message, and stores nothing', async () => {
    const s = await capture({ failures: ['DATA p=1 -> 451 4.3.0 try later'] });
    const seen = await client({ port: s.smtp.port, from: 'app@example.test', to: ['a@example.test'], msg: MSG });
    expect(seen.error).toEqual({ phase: 'DATA', code: 451 });
    expect(s.store.size).toBe(0);
  });

  it('MAIL -> delay 300 451 4.7.0 slow down waits, then defers the sender', async () => {
    const s = await capture({ failures: ['MAIL -> delay 300 451 4.7.0 slow down'] });
    const t0 = Date.now();
    const seen = await client({ port: s.smtp.port, from: 'app@example.test', to: ['a@example.test'], msg: MSG });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(seen.error).toEqual({ phase: 'MAIL', code: 451 });
  });

  it('DATA -> drop closes the connection without a reply', async () => {
    const s = await capture({ failures: ['DATA -> drop'] });
    const seen = await client({ port: s.smtp.port, from: 'app@example.test', to: ['a@example.test'], msg: MSG });
    expect(seen.error).toEqual({ phase: 'CONN' });
    expect(s.store.size).toBe(0);
  });

  it('RCPT -> greylist: the first attempt gets 451 4.7.1, the retry is accepted', async () => {
    const s = await capture({ failures: ['RCPT -> greylist'] });
    const attempt = { port: s.smtp.port, from: 'app@example.test', to: ['grey@example.test'], msg: MSG };
    const first = await client(attempt);
    expect(first.error).toEqual({ phase: 'RCPT', code: 451 });
    const second = await client(attempt);
    expect(second).toEqual({ accepted: ['grey@example.test'], refused: {} });
    expect(s.store.size).toBe(1);
  });

  it('TLS only (MAIL tls=no -> 530): refused in plaintext, accepted after STARTTLS', async () => {
    const { cert, key } = pki();
    const s = await capture({ starttls: true, cert, key, failures: ['MAIL tls=no -> 530 5.7.0 Must issue a STARTTLS command first'] });
    const plain = await client({ port: s.smtp.port, from: 'app@example.test', to: ['a@example.test'], msg: MSG });
    expect(plain.error).toEqual({ phase: 'MAIL', code: 530 });
    const secure = await client({ port: s.smtp.port, from: 'app@example.test', to: ['a@example.test'], msg: MSG, starttls: true });
    expect(secure).toEqual({ accepted: ['a@example.test'], refused: {} });
    expect(s.store.all()[0]!.tls?.protocol).toMatch(/^TLSv1\.[23]$/);
  });

  it('AUTH required: refused without login, accepted with it, and the password never reaches the transcript', async () => {
    const s = await capture({ auth: [{ user: 'app', pass: 's3cret-pw' }] });
    const anonymous = await client({ port: s.smtp.port, from: 'app@example.test', to: ['a@example.test'], msg: MSG });
    expect(anonymous.error).toEqual({ phase: 'MAIL', code: 530 });
    const authed = await client({ port: s.smtp.port, from: 'app@example.test', to: ['a@example.test'], msg: MSG, user: 'app', password: 's3cret-pw' });
    expect(authed).toEqual({ accepted: ['a@example.test'], refused: {} });
    const m = s.store.all()[0]!;
    expect(m.user).toBe('app');
    expect(m.transcript).toMatch(/C: AUTH (PLAIN|LOGIN|CRAM-MD5)/);
    expect(m.transcript).not.toContain('s3cret-pw');
    expect(m.transcript).not.toContain(Buffer.from('\0app\0s3cret-pw').toString('base64'));
    expect(m.transcript).not.toContain(Buffer.from('s3cret-pw').toString('base64'));
  });

  it('SIZE limit: a message over it is refused with 552', async () => {
    const s = await capture({ size: 200 });
    const seen = await client({ port: s.smtp.port, from: 'app@example.test', to: ['a@example.test'], msg: MSG + 'x'.repeat(1000) + '\r\n' });
    expect(seen.error?.code).toBe(552);
    expect(s.store.size).toBe(0);
  });

  it('LMTP: DATA to=bob@example.test -> 452 4.2.2 mailbox full fails that recipient only', async () => {
    const s = await capture({ lmtp: true, failures: ['DATA to=bob@example.test -> 452 4.2.2 mailbox full'] });
    const seen = await client({ port: s.smtp.port, from: 'app@example.test', to: ['bob@example.test', 'carol@example.test'], msg: MSG, lmtp: true });
    if (name === 'python') {
      // Python's smtplib reads one reply after the data, even for LMTP
      // (cpython gh-76984): it sees the first recipient's, the scripted 452.
      expect(seen.error).toEqual({ phase: 'DATA', code: 452 });
    } else {
      expect(seen).toEqual({ accepted: ['carol@example.test'], refused: { 'bob@example.test': 452 } });
    }
    expect(s.store.all()[0]!.accepted).toEqual(['carol@example.test']);
    expect(s.store.all()[0]!.transcript).toMatch(/S: 452 4\.2\.2 mailbox full\nS: 250 2\.1\.5 <carol@example\.test> delivered/);
  });
});

describe('failure rule grammar', () => {
  it('parses phases, conditions and actions, and explains mistakes', () => {
    expect(parseFailureRule('RCPT to=~@blocked\\.test -> 550 5.1.1 no such user')).toMatchObject({
      phase: 'RCPT',
      delayMs: 0,
      outcome: { kind: 'reply', reply: { code: 550, text: '5.1.1 no such user' } },
    });
    expect(parseFailureRule('DATA p=0.1 -> 451 4.3.0 try later').conditions).toEqual([{ key: 'p', probability: 0.1 }]);
    expect(parseFailureRule('MAIL -> delay 2000')).toMatchObject({ delayMs: 2000, outcome: { kind: 'continue' } });
    expect(parseFailureRule('CONNECT n=1 -> drop').outcome).toEqual({ kind: 'drop' });
    expect(parseFailureRule('rcpt -> greylist 30').outcome).toEqual({ kind: 'greylist', seconds: 30 });
    expect(() => parseFailureRule('RCPT 550')).toThrow(/no "->"/);
    expect(() => parseFailureRule('HELLO -> 550')).toThrow(/phase must be one of/);
    expect(() => parseFailureRule('RCPT to=~( -> 550')).toThrow(/not a valid regular expression/);
    expect(() => parseFailureRule('RCPT -> 250 fine')).toThrow(/not an action/);
    expect(() => parseFailureRule('MAIL -> greylist')).toThrow(/greylist works at RCPT/);
  });

  it('p= draws from the random source, n= stops after N, the first matching rule decides', () => {
    const draws = [0.05, 0.5];
    const script = new FailureScript(['DATA p=0.1 -> 451 4.3.0 try later', 'RCPT n=2 -> 450 busy', 'RCPT -> 550 never after two'], () => draws.shift()!);
    expect(script.decide('DATA', { tls: false }).outcome.kind).toBe('reply');
    expect(script.decide('DATA', { tls: false }).outcome.kind).toBe('continue');
    const codes = [1, 2, 3].map(() => (script.decide('RCPT', { tls: false, to: ['a@x'] }).outcome as { reply: { code: number } }).reply.code);
    expect(codes).toEqual([450, 450, 550]);
  });

  it('CONNECT and AUTH rules answer where they are scripted', async () => {
    const s = await capture({ auth: [{ user: 'u', pass: 'p' }], failures: ['CONNECT n=1 -> 554 5.7.1 go away', 'AUTH user=u -> 454 4.7.0 try later'] });
    await expect(smtplib.SMTP.connect({ host: '127.0.0.1', port: s.smtp.port, localHostname: 'x.test' })).rejects.toMatchObject({ name: 'SMTPConnectError', smtpCode: 554 });
    const c = await smtplib.SMTP.connect({ host: '127.0.0.1', port: s.smtp.port, localHostname: 'x.test', tlsPolicy: 'none' });
    await expect(c.login('u', 'p')).rejects.toMatchObject({ smtpCode: 454 });
    c.close();
  });
});

// The CA file is shared by the tests of this file; removed when the worker exits.
process.on('exit', () => {
  if (caFile) rmSync(join(caFile, '..'), { recursive: true, force: true });
});
