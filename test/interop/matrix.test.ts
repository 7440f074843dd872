// Interop matrix: the smtplib client against real mail servers (Postfix +
// Dovecot SASL, Dovecot LMTP, Exim, OpenSMTPD, aiosmtpd) that
// test/interop/servers/{setup,peers}.sh install and start on loopback.
// Every delivered message is read back from the server's Maildir and compared
// byte for byte with what was sent (after the server's trace headers; CRLF
// normalised to LF, since most servers store LF). Writes test/interop/MATRIX.md.
//
//   npx vitest run --project interop
//
// Needs root the first time (apt-get); otherwise every test is skipped with the
// reason setup.sh printed.

import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LMTP,
  SMTP,
  SMTP_SSL,
  SMTPAuthenticationError,
  SMTPDataError,
  SMTPException,
  SMTPRecipientsRefused,
  SMTPResponseException,
  type SMTPOptions,
} from 'smtplib';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SERVERS_DIR = path.join(HERE, 'servers');
const STATE = path.resolve(process.env.INTEROP_STATE ?? path.join(HERE, '.state'));
const SERVERS = ['postfix', 'dovecot', 'exim', 'opensmtpd', 'aiosmtpd'] as const;
type Server = (typeof SERVERS)[number];

interface Endpoint {
  name: string;
  protocol: 'smtp' | 'lmtp';
  host: string;
  port?: number;
  tls: 'none' | 'starttls' | 'starttls-required' | 'implicit';
  auth: string[];
  authRequired?: boolean;
  sizeLimit?: number;
  negative?: string;
}
interface Env {
  tls: { ca: string; otherCa: string; servername: string; wrongServername: string };
  servers: Record<Server, { version: string; maildir: string; envelopes?: string; endpoints: Endpoint[] }>;
}

let env: Env;
let skipReason: string | undefined;
let CA: Buffer;
let OTHER_CA: Buffer;

// ---------------------------------------------------------------- results

type Status = 'pass' | 'FAIL' | 'not offered' | 'n/a' | 'skipped';
const results = new Map<string, Map<Server, { status: Status; detail?: string }>>();
const featureOrder: string[] = [];
const ehloSnapshots: { endpoint: string; state: string; greeting: string; ehlo: string }[] = [];

function record(feature: string, server: Server, status: Status, detail?: string): void {
  let row = results.get(feature);
  if (!row) {
    row = new Map();
    results.set(feature, row);
  }
  row.set(server, detail === undefined ? { status } : { status, detail });
}

/** A cell's outcome when it did not simply pass. */
class Outcome {
  constructor(
    readonly status: 'not offered' | 'n/a',
    readonly detail: string,
  ) {}
}
const notOffered = (detail: string) => new Outcome('not offered', detail);
const na = (detail: string) => new Outcome('n/a', detail);

type CellFn = () => Promise<string | Outcome | void>;

/** One test per feature × server; its outcome lands in MATRIX.md. */
function feature(name: string, cells: Partial<Record<Server, CellFn>>, otherwise = 'n/a'): void {
  featureOrder.push(name);
  describe(name, () => {
    for (const server of SERVERS) {
      const fn = cells[server];
      if (!fn) {
        // Nothing to check here: an n/a cell in MATRIX.md, not a test that "passes".
        record(name, server, 'n/a', otherwise);
        continue;
      }
      it(`${name} × ${server}`, async (ctx) => {
        if (skipReason) {
          record(name, server, 'skipped', skipReason);
          ctx.skip();
          return;
        }
        try {
          const out = await fn();
          if (out instanceof Outcome) record(name, server, out.status, out.detail);
          else record(name, server, 'pass', out || undefined);
        } catch (error) {
          record(name, server, 'FAIL', describeError(error));
          throw error;
        }
      });
    }
  });
}

function describeError(error: unknown): string {
  if (error instanceof SMTPResponseException) return `${error.name}: ${error.smtpCode} ${error.smtpError}`;
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 300);
  return String(error);
}

// ---------------------------------------------------------------- servers

function ep(server: Server, name: string): Endpoint {
  const found = env.servers[server].endpoints.find((e) => e.name === name);
  if (!found) throw new Error(`no endpoint ${name} in env.json`);
  return found;
}
const PLAIN: Record<Server, string> = {
  postfix: 'postfix-smtp',
  dovecot: 'dovecot-lmtp-unix',
  exim: 'exim-smtp',
  opensmtpd: 'opensmtpd-smtp',
  aiosmtpd: 'aiosmtpd-smtp',
};
const STARTTLS: Record<Server, string> = {
  postfix: 'postfix-smtp',
  dovecot: 'dovecot-lmtp-tcp',
  exim: 'exim-smtp',
  opensmtpd: 'opensmtpd-smtp',
  aiosmtpd: 'aiosmtpd-smtp',
};
const IMPLICIT: Partial<Record<Server, string>> = { postfix: 'postfix-smtps', exim: 'exim-smtps', aiosmtpd: 'aiosmtpd-smtps' };
/** Where AUTH is tested (after STARTTLS). Postfix: the submission port, SASL by Dovecot. */
const AUTH: Partial<Record<Server, string>> = { postfix: 'postfix-submission', exim: 'exim-smtp', aiosmtpd: 'aiosmtpd-smtp' };

type Client = SMTP;
interface OpenOptions {
  tls?: 'none' | 'starttls' | 'implicit';
  extra?: SMTPOptions;
  login?: boolean;
}

async function open(e: Endpoint, o: OpenOptions = {}): Promise<Client> {
  const base: SMTPOptions = {
    host: e.host,
    ...(e.port !== undefined ? { port: e.port } : {}),
    localHostname: 'client.example.test',
    timeout: 60_000,
    tls: { ca: CA, servername: env.tls.servername },
    tlsPolicy: 'none',
    ...o.extra,
  };
  const mode = o.tls ?? (e.tls === 'implicit' ? 'implicit' : e.tls === 'none' ? 'none' : e.tls === 'starttls-required' ? 'starttls' : 'none');
  let client: Client;
  if (e.protocol === 'lmtp') client = await LMTP.connect(base);
  else if (mode === 'implicit') client = await SMTP_SSL.connect({ ...base, tlsPolicy: undefined } as SMTPOptions);
  else client = await SMTP.connect(base);
  await client.ehlo();
  if (mode === 'starttls') {
    await client.starttls();
    await client.ehlo();
    expect(client.isSecure).toBe(true);
  }
  if (o.login ?? e.authRequired) await client.login('alice', 'alice-pass');
  return client;
}

async function withClient<T>(e: Endpoint, o: OpenOptions, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = await open(e, o);
  try {
    return await fn(c);
  } finally {
    try {
      await c.quit();
    } catch {
      c.close();
    }
  }
}

// ---------------------------------------------------------------- messages + Maildir

interface Sent {
  id: string;
  bytes: Buffer;
}

function makeMessage(tag: string, o: { from?: string; to?: string; body?: string; eightBit?: boolean; subject?: string } = {}): Sent {
  const id = randomUUID();
  const body =
    o.body ??
    [
      `Interop test ${tag}.`,
      '.a line that starts with a dot (dot-stuffing)',
      '..and one with two dots',
      '.',
      'trailing spaces   ',
      ...Array.from({ length: 30 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog`),
      '',
    ].join('\r\n');
  const head = [
    `X-Interop-Id: ${id}`,
    `From: <${o.from ?? 'alice@example.test'}>`,
    `To: <${o.to ?? 'alice@example.test'}>`,
    `Subject: ${o.subject ?? `interop ${tag}`}`,
    `Message-ID: <${id}@client.example.test>`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Transfer-Encoding: ${o.eightBit ? '8bit' : '7bit'}`,
  ].join('\r\n');
  return { id, bytes: Buffer.from(`${head}\r\n\r\n${body}`, 'utf8') };
}

function maildir(server: Server, user: string): string {
  return env.servers[server].maildir.replace('{user}', user);
}

/** Finds the stored file containing `needle`; DSN reports (multipart/report) only when `report` is set. */
async function waitStored(server: Server, user: string, needle: string, timeoutMs = 20_000, report = false): Promise<Buffer> {
  const dir = maildir(server, user);
  const want = Buffer.from(needle);
  const deadline = Date.now() + timeoutMs;
  const seen = new Set<string>();
  for (;;) {
    for (const sub of ['new', 'cur']) {
      let names: string[] = [];
      try {
        names = fs.readdirSync(path.join(dir, sub));
      } catch {
        names = [];
      }
      for (const n of names) {
        const file = path.join(dir, sub, n);
        if (seen.has(file)) continue;
        let head: Buffer;
        try {
          const fd = fs.openSync(file, 'r');
          head = Buffer.alloc(64 * 1024);
          const len = fs.readSync(fd, head, 0, head.length, 0);
          fs.closeSync(fd);
          head = head.subarray(0, len);
        } catch {
          continue;
        }
        if (head.includes(want) && head.includes('multipart/report') === report) return fs.readFileSync(file);
        seen.add(file);
      }
    }
    if (Date.now() > deadline) throw new Error(`message ${needle} not found in ${dir} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const lf = (b: Buffer) => Buffer.from(b.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');

/** The stored file, from our first header on, equals what was sent (line ends normalised). */
function assertSame(stored: Buffer, sent: Sent): void {
  const marker = Buffer.from(`X-Interop-Id: ${sent.id}`);
  const at = stored.indexOf(marker);
  expect(at, 'our first header is in the stored file').toBeGreaterThanOrEqual(0);
  expect(at === 0 || stored[at - 1] === 0x0a, 'our first header starts a line').toBe(true);
  const got = lf(stored.subarray(at));
  const want = lf(sent.bytes);
  if (!got.equals(want)) {
    let i = 0;
    while (i < got.length && i < want.length && got[i] === want[i]) i++;
    throw new Error(
      `stored message differs at byte ${i} (stored ${got.length} bytes, sent ${want.length}): ` +
        `stored ${JSON.stringify(got.subarray(Math.max(0, i - 40), i + 40).toString('utf8'))} vs sent ${JSON.stringify(want.subarray(Math.max(0, i - 40), i + 40).toString('utf8'))}`,
    );
  }
}

async function sendAndVerify(server: Server, c: Client, tag: string, o: { user?: string; eightBit?: boolean; body?: string } = {}): Promise<Sent> {
  const user = o.user ?? 'alice';
  const msg = makeMessage(tag, { to: `${user}@example.test`, ...(o.eightBit ? { eightBit: true } : {}), ...(o.body ? { body: o.body } : {}) });
  const refused = await c.sendmail('alice@example.test', [`${user}@example.test`], msg.bytes);
  expect(refused.size, `refused: ${JSON.stringify(refused)}`).toBe(0);
  assertSame(await waitStored(server, user, `X-Interop-Id: ${msg.id}`), msg);
  return msg;
}

/** Records each flush to the socket (one _write/_writev = one write to the kernel). */
function wireRecorder(): { flushes: string[]; hook: SMTPOptions['connect'] } {
  const flushes: string[] = [];
  const hook: SMTPOptions['connect'] = (target) =>
    new Promise((resolve, reject) => {
      const s = target.path ? net.connect(target.path) : net.connect(target.port, target.host);
      const sock = s as unknown as {
        _write: (c: Buffer, e: string, cb: () => void) => void;
        _writev?: (cs: { chunk: Buffer | string }[], cb: () => void) => void;
      };
      const w = sock._write.bind(s);
      sock._write = (c, e, cb) => {
        flushes.push(Buffer.from(c).toString('latin1'));
        w(c, e, cb);
      };
      if (sock._writev) {
        const wv = sock._writev.bind(s);
        sock._writev = (cs, cb) => {
          flushes.push(cs.map((x) => Buffer.from(x.chunk).toString('latin1')).join(''));
          wv(cs, cb);
        };
      }
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
  return { flushes, hook };
}

async function expectRejects(p: Promise<unknown>, test: (e: unknown) => boolean, what: string): Promise<unknown> {
  try {
    await p;
  } catch (error) {
    if (!test(error)) throw new Error(`expected ${what}, got ${describeError(error)}`);
    return error;
  }
  throw new Error(`expected ${what}, but it succeeded`);
}

function readEnvelopes(): Record<string, unknown>[] {
  const file = env.servers.aiosmtpd.envelopes!;
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

// ---------------------------------------------------------------- setup

beforeAll(() => {
  const run = (cmd: string, args: string[]) =>
    execFileSync(cmd, args, { env: { ...process.env, INTEROP_STATE: STATE }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const out = run(path.join(SERVERS_DIR, 'setup.sh'), []) + run(path.join(SERVERS_DIR, 'peers.sh'), ['start', 'all']);
  const skipFile = path.join(STATE, 'SKIP');
  if (out.includes('INTEROP-SKIP') || fs.existsSync(skipFile)) {
    skipReason = fs.existsSync(skipFile) ? fs.readFileSync(skipFile, 'utf8').trim() : out.trim();
    return;
  }
  run(path.join(SERVERS_DIR, 'peers.sh'), ['clean-mail', 'all']);
  env = JSON.parse(fs.readFileSync(path.join(STATE, 'env.json'), 'utf8')) as Env;
  CA = fs.readFileSync(env.tls.ca);
  OTHER_CA = fs.readFileSync(env.tls.otherCa);
}, 300_000);

// ---------------------------------------------------------------- EHLO snapshots

describe('EHLO / LHLO as seen by the client', () => {
  it('captures every endpoint before and after TLS', async (ctx) => {
    if (skipReason) ctx.skip();
    for (const server of SERVERS) {
      for (const e of env.servers[server].endpoints) {
        if (e.negative) continue;
        const c = await open(e, { tls: e.tls === 'implicit' ? 'implicit' : 'none', login: false });
        const snap = (state: string) =>
          ehloSnapshots.push({ endpoint: `${e.name} (${e.port ?? e.host.replace(STATE, '$STATE')})`, state, greeting: c.greeting?.message ?? '', ehlo: c.ehloResp ?? '' });
        snap(e.tls === 'implicit' ? 'implicit TLS' : 'plain');
        if (e.tls.startsWith('starttls') && c.hasExtn('starttls')) {
          await c.starttls();
          await c.ehlo();
          snap('after STARTTLS');
        }
        await c.quit();
      }
    }
    expect(ehloSnapshots.length).toBeGreaterThan(8);
  });
});

// ---------------------------------------------------------------- the matrix

const each = (fn: (s: Server) => Promise<string | Outcome | void>): Record<Server, CellFn> =>
  Object.fromEntries(SERVERS.map((s) => [s, () => fn(s)])) as Record<Server, CellFn>;

feature(
  'plain connection, send + Maildir byte-for-byte',
  each(async (s) => {
    const e = ep(s, PLAIN[s]);
    if (e.authRequired) return na('submission needs TLS');
    await withClient(e, { tls: 'none' }, (c) => sendAndVerify(s, c, 'plain'));
    return e.protocol === 'lmtp' ? 'LMTP over the Unix socket' : undefined;
  }),
);

feature(
  'STARTTLS (CA-verified), send',
  each(async (s) => {
    const e = ep(s, STARTTLS[s]);
    const c = await open(e, { tls: 'none' });
    try {
      if (!c.hasExtn('starttls')) {
        if (s === 'opensmtpd') return notOffered('not offered: OpenSMTPD 6.8.0p2 TLS is broken under OpenSSL 3');
        throw new Error('STARTTLS not offered');
      }
      await c.starttls();
      await c.ehlo();
      expect(c.isSecure).toBe(true);
      expect(c.hasExtn('starttls')).toBe(false);
      await sendAndVerify(s, c, 'starttls');
    } finally {
      c.close();
    }
  }),
);

feature(
  "tlsPolicy 'required' (automatic STARTTLS)",
  each(async (s) => {
    const e = ep(s, STARTTLS[s]);
    const connect = () => (e.protocol === 'lmtp' ? LMTP : SMTP).connect({ host: e.host, port: e.port!, localHostname: 'client.example.test', tls: { ca: CA, servername: env.tls.servername }, tlsPolicy: 'required' });
    if (s === 'opensmtpd') {
      await expectRejects(connect(), (err) => err instanceof SMTPException && /STARTTLS/.test((err as Error).message), 'SMTPTLSError (no STARTTLS)');
      return notOffered('no STARTTLS: the client refuses to continue in plaintext (checked)');
    }
    const c = await connect();
    try {
      expect(c.isSecure).toBe(true);
      await sendAndVerify(s, c, 'policy-required');
    } finally {
      await c.quit();
    }
  }),
);

feature(
  'implicit TLS (SMTPS), send',
  each(async (s) => {
    const name = IMPLICIT[s];
    if (!name) return notOffered(s === 'opensmtpd' ? 'no SMTPS listener (TLS broken under OpenSSL 3)' : 'LMTP has no implicit-TLS port');
    await withClient(ep(s, name), { tls: 'implicit' }, async (c) => {
      expect(c.isSecure).toBe(true);
      await sendAndVerify(s, c, 'smtps');
    });
  }),
);

function tlsNegative(kind: 'ca' | 'name') {
  return each(async (s) => {
    const name = IMPLICIT[s] ?? (s === 'dovecot' ? STARTTLS[s] : undefined);
    if (!name) return notOffered('no TLS');
    const e = ep(s, name);
    const tls = kind === 'ca' ? { ca: OTHER_CA, servername: env.tls.servername } : { ca: CA, servername: env.tls.wrongServername };
    const attempt = async () => {
      if (e.tls === 'implicit') {
        const c = await SMTP_SSL.connect({ host: e.host, port: e.port!, tls, timeout: 20_000 });
        c.close();
      } else {
        const c = await LMTP.connect({ host: e.host, port: e.port!, tls, timeout: 20_000 });
        try {
          await c.starttls();
        } finally {
          c.close();
        }
      }
    };
    const err = await expectRejects(attempt(), (x) => x instanceof Error && /certif|altname|host ?name|self.signed|verify/i.test((x as Error).message), 'a certificate verification error');
    return `refused: ${describeError(err).slice(0, 140)}`;
  });
}
feature('TLS: untrusted CA refused', tlsNegative('ca'));
feature('TLS: wrong host name refused', tlsNegative('name'));
feature(
  'TLS: expired certificate refused',
  {
    aiosmtpd: async () => {
      const e = ep('aiosmtpd', 'aiosmtpd-expired-cert');
      const err = await expectRejects(
        SMTP_SSL.connect({ host: e.host, port: e.port!, tls: { ca: CA, servername: env.tls.servername }, timeout: 20_000 }),
        (x) => x instanceof Error && /expired/i.test((x as Error).message),
        'a certificate-expired error',
      );
      return `refused: ${describeError(err).slice(0, 140)}`;
    },
  },
  'only the aiosmtpd harness serves an expired certificate (port 4469)',
);

for (const mech of ['PLAIN', 'LOGIN', 'CRAM-MD5', 'SCRAM-SHA-1', 'SCRAM-SHA-256']) {
  feature(
    `AUTH ${mech}, then send`,
    each(async (s) => {
      const name = AUTH[s];
      if (!name) {
        // check it really is absent (after TLS where TLS exists)
        const e = ep(s, STARTTLS[s]);
        const c = await open(e, { tls: e.protocol === 'smtp' && s !== 'opensmtpd' ? 'starttls' : 'none' });
        try {
          expect(c.hasExtn('auth')).toBe(false);
        } finally {
          c.close();
        }
        return notOffered(s === 'dovecot' ? 'LMTP has no AUTH' : 'no AUTH (OpenSMTPD offers AUTH only with TLS)');
      }
      const e = ep(s, name);
      const c = await open(e, { tls: 'starttls', login: false });
      try {
        const offered = (c.esmtpFeatures.get('auth') ?? '').toUpperCase().split(/\s+/);
        if (!offered.includes(mech)) return notOffered(`AUTH offers ${offered.join(' ')}`);
        const reply = await c.login('alice', 'alice-pass', { mechanism: mech });
        expect(reply.code).toBe(235);
        await sendAndVerify(s, c, `auth-${mech}`);
        return `${reply.code} ${reply.message}`.slice(0, 80);
      } finally {
        c.close();
      }
    }),
  );
}

feature(
  'AUTH wrong password refused',
  each(async (s) => {
    const name = AUTH[s];
    if (!name) return notOffered('no AUTH');
    const c = await open(ep(s, name), { tls: 'starttls', login: false });
    try {
      const err = await expectRejects(c.login('alice', 'wrong-pass'), (x) => x instanceof SMTPAuthenticationError, 'SMTPAuthenticationError');
      const code = (err as SMTPAuthenticationError).smtpCode;
      expect(code >= 400 && code < 600).toBe(true);
      return `${code} ${(err as SMTPAuthenticationError).smtpError}`.slice(0, 80);
    } finally {
      c.close();
    }
  }),
);

feature(
  'submission: MAIL/AUTH before STARTTLS refused',
  {
    postfix: async () => {
      const c = await open(ep('postfix', 'postfix-submission'), { tls: 'none', login: false });
      try {
        expect(c.hasExtn('auth'), 'no AUTH before TLS').toBe(false);
        const reply = await c.mail('alice@example.test');
        expect(reply.code).toBe(530);
        return `MAIL before TLS: ${reply.code} ${reply.message}`;
      } finally {
        c.close();
      }
    },
  },
  'no submission port in this harness',
);

feature(
  'refused recipient (550) + partial delivery',
  each(async (s) => {
    const e = ep(s, PLAIN[s]);
    return withClient(e, { tls: 'none' }, async (c) => {
      const msg = makeMessage('partial');
      const refused = await c.sendmail('alice@example.test', ['alice@example.test', 'nosuchuser@example.test'], msg.bytes);
      expect([...refused.keys()]).toEqual(['nosuchuser@example.test']);
      const r = refused.get('nosuchuser@example.test')!;
      expect(r.code).toBe(550);
      assertSame(await waitStored(s, 'alice', `X-Interop-Id: ${msg.id}`), msg);
      return `${r.code} ${r.message}`.slice(0, 90);
    });
  }),
);

feature(
  'relaying refused (all recipients → SMTPRecipientsRefused)',
  each(async (s) => {
    const e = ep(s, PLAIN[s]);
    return withClient(e, { tls: 'none' }, async (c) => {
      const err = await expectRejects(
        c.sendmail('alice@example.test', ['someone@elsewhere.invalid'], makeMessage('relay').bytes),
        (x) => x instanceof SMTPRecipientsRefused,
        'SMTPRecipientsRefused',
      );
      const r = (err as SMTPRecipientsRefused).recipients.get('someone@elsewhere.invalid')!;
      expect(r.code >= 500 && r.code < 600).toBe(true);
      // the connection is still usable afterwards
      expect((await c.noop()).code).toBe(250);
      return `${r.code} ${r.message}`.slice(0, 90);
    });
  }),
);

feature(
  '8-bit body (8BITMIME)',
  each(async (s) => {
    const e = ep(s, PLAIN[s]);
    return withClient(e, { tls: 'none' }, async (c) => {
      if (!c.hasExtn('8bitmime')) return notOffered('no 8BITMIME');
      const body = 'Olá, Pelé! Grüße aus Köln — ½ € ✓ 日本語\r\nsecond line ß\r\n';
      const msg = await sendAndVerify(s, c, '8bit', { eightBit: true, body });
      if (s === 'aiosmtpd') {
        const rec = readEnvelopes().find((r) => (r.paths as string[]).some((p) => fs.readFileSync(p).includes(msg.id)));
        expect(rec?.mail_options).toContain('BODY=8BITMIME');
        return `envelope: ${(rec!.mail_options as string[]).join(' ')}`;
      }
    });
  }),
);

feature(
  'SMTPUTF8 address (pelé@example.test)',
  each(async (s) => {
    const e = ep(s, PLAIN[s]);
    return withClient(e, { tls: 'none' }, async (c) => {
      if (!c.hasExtn('smtputf8')) {
        const err = await expectRejects(
          c.sendmail('alice@example.test', ['pelé@example.test'], makeMessage('utf8-refused').bytes),
          (x) => x instanceof SMTPException,
          'an SMTPException (non-ASCII local part without SMTPUTF8)',
        );
        return notOffered(`no SMTPUTF8; client refuses locally: ${describeError(err).slice(0, 100)}`);
      }
      const msg = makeMessage('smtputf8', { to: 'pelé@example.test', eightBit: true, subject: 'Olá pelé', body: 'Für pelé ✓\r\n' });
      const refused = await c.sendmail('alice@example.test', ['pelé@example.test'], msg.bytes);
      expect(refused.size).toBe(0);
      assertSame(await waitStored(s, 'pelé', `X-Interop-Id: ${msg.id}`), msg);
      if (s === 'aiosmtpd') {
        const rec = readEnvelopes().find((r) => (r.rcpt_tos as string[]).includes('pelé@example.test'));
        expect(rec?.smtp_utf8).toBe(true);
      }
    });
  }),
);

feature(
  'DSN parameters (RET, ENVID, NOTIFY, ORCPT)',
  each(async (s) => {
    const e = ep(s, PLAIN[s]);
    return withClient(e, { tls: 'none' }, async (c) => {
      const envid = `env-${randomUUID()}`;
      const msg = makeMessage('dsn');
      if (!c.hasExtn('dsn')) {
        // the parameters are left out when DSN is not offered; the message still goes
        const refused = await c.sendmail('alice@example.test', ['alice@example.test'], msg.bytes, { ret: 'HDRS', envid }, { notify: ['SUCCESS', 'FAILURE'], orcpt: 'alice@example.test' });
        expect(refused.size).toBe(0);
        assertSame(await waitStored(s, 'alice', `X-Interop-Id: ${msg.id}`), msg);
        if (s === 'aiosmtpd') {
          const rec = readEnvelopes().find((r) => (r.paths as string[]).some((p) => fs.readFileSync(p).includes(msg.id)));
          expect(JSON.stringify(rec)).not.toContain('NOTIFY');
        }
        return notOffered('no DSN: client omitted the parameters and delivered (checked)');
      }
      const refused = await c.sendmail('alice@example.test', ['alice@example.test'], msg.bytes, { ret: 'HDRS', envid }, { notify: ['SUCCESS', 'FAILURE'], orcpt: 'alice@example.test' });
      expect(refused.size).toBe(0);
      assertSame(await waitStored(s, 'alice', `X-Interop-Id: ${msg.id}`), msg);
      // a success DSN comes back to alice@ carrying our ENVID
      try {
        await waitStored(s, 'alice', envid, s === 'postfix' ? 20_000 : 8_000, true);
        return 'success DSN with ENVID received';
      } catch (error) {
        if (s === 'postfix') throw error;
        return 'accepted + delivered; no success DSN generated';
      }
    });
  }),
);

const BIG = 25 * 1024 * 1024;
function bigBody(): string {
  const line = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-+=/.,:;!?0123456789abcdef\r\n';
  return line.repeat(Math.ceil(BIG / line.length));
}

feature(
  'SIZE: 25 MB message over the limit refused',
  each(async (s) => {
    const e = ep(s, PLAIN[s]);
    return withClient(e, { tls: 'none' }, async (c) => {
      if (!c.hasExtn('size')) return notOffered('no SIZE (Dovecot LMTP sets no limit)');
      const msg = makeMessage('oversize', { body: bigBody() });
      const err = await expectRejects(c.sendmail('alice@example.test', ['alice@example.test'], msg.bytes), (x) => x instanceof SMTPDataError && (x as SMTPDataError).smtpCode === 552, 'SMTPDataError 552');
      // and the server itself refuses MAIL FROM with SIZE= above its limit
      const mail = await c.mail('alice@example.test', { size: BIG });
      await c.rset();
      const serverSide = `server MAIL SIZE=${BIG}: ${mail.code} ${mail.message}`.slice(0, 100);
      if (s === 'opensmtpd') {
        // known quirk: OpenSMTPD accepts the SIZE= and refuses only after the data
        return `client refused first (${(err as SMTPDataError).smtpCode}); ${serverSide}`;
      }
      expect(mail.code).toBe(552);
      return `client refused first; ${serverSide}`;
    });
  }),
);

feature(
  '25 MB message delivered',
  {
    postfix: async () =>
      withClient(ep('postfix', 'postfix-submission'), { tls: 'starttls', login: true }, async (c) => {
        expect(c.capabilities.maxSize).toBe(41943040);
        await sendAndVerify('postfix', c, 'big', { body: bigBody() });
        return 'submission port, message_size_limit 40 MiB';
      }),
    dovecot: async () =>
      withClient(ep('dovecot', 'dovecot-lmtp-unix'), { tls: 'none' }, async (c) => {
        await sendAndVerify('dovecot', c, 'big', { body: bigBody() });
        return 'LMTP, no size limit';
      }),
  },
  'server limit is 10 MiB',
);

feature(
  '20 messages on one connection',
  each(async (s) => {
    const e = ep(s, PLAIN[s]);
    return withClient(e, { tls: 'none' }, async (c) => {
      const msgs = Array.from({ length: 20 }, (_, i) => makeMessage(`batch-${i}`));
      const all = await Promise.all(msgs.map((m) => c.sendmail('alice@example.test', ['alice@example.test'], m.bytes)));
      expect(all.every((r) => r.size === 0)).toBe(true);
      for (const m of msgs) assertSame(await waitStored(s, 'alice', `X-Interop-Id: ${m.id}`), m);
      return '20 queued sendmail() calls, all stored';
    });
  }),
);

feature(
  'PIPELINING used when offered',
  each(async (s) => {
    const e = ep(s, PLAIN[s]);
    const rec = wireRecorder();
    return withClient(e, { tls: 'none', extra: { connect: rec.hook, chunking: false } }, async (c) => {
      await sendAndVerify(s, c, 'pipelining');
      const grouped = rec.flushes.some((f) => /MAIL FROM:/.test(f) && /RCPT TO:/.test(f));
      if (!c.hasExtn('pipelining')) {
        expect(grouped, 'no pipelining when not offered').toBe(false);
        return notOffered('not offered; client sent MAIL/RCPT/DATA one at a time (checked)');
      }
      expect(grouped, `a write with MAIL and RCPT; writes: ${JSON.stringify(rec.flushes.slice(0, 6))}`).toBe(true);
      return `MAIL+RCPT+DATA in one write`;
    });
  }),
);

feature(
  'CHUNKING (BDAT) used when offered',
  each(async (s) => {
    const e = ep(s, PLAIN[s]);
    const rec = wireRecorder();
    return withClient(e, { tls: 'none', extra: { connect: rec.hook, chunkSize: 64 * 1024 } }, async (c) => {
      const body = 'x'.repeat(70) + '\r\n';
      await sendAndVerify(s, c, 'chunking', { body: body.repeat(3000) }); // ~216 KB: several chunks
      const bdat = rec.flushes.join('').match(/BDAT \d+( LAST)?\r\n/g) ?? [];
      if (!c.hasExtn('chunking')) {
        expect(bdat.length, 'no BDAT when not offered').toBe(0);
        return notOffered('not offered; client used DATA (checked)');
      }
      expect(bdat.length).toBeGreaterThan(1);
      expect(bdat[bdat.length - 1]).toMatch(/LAST/);
      return `${bdat.length} BDAT chunks`;
    });
  }),
);

feature(
  'LMTP per-recipient replies (alice ok, full 552 after DATA)',
  {
    dovecot: async () => {
      const details: string[] = [];
      for (const name of ['dovecot-lmtp-unix', 'dovecot-lmtp-tcp']) {
        await withClient(ep('dovecot', name), { tls: name.endsWith('tcp') ? 'starttls' : 'none' }, async (c) => {
          const msg = makeMessage('lmtp', { body: 'filler to exceed the 1 KB quota\r\n'.repeat(60) });
          const result = await c.deliver('alice@example.test', ['alice@example.test', 'full@example.test', 'nosuchuser@example.test'], msg.bytes);
          expect(result.accepted).toEqual(['alice@example.test']);
          expect(result.refused.get('nosuchuser@example.test')?.code).toBe(550);
          expect(result.refused.get('full@example.test')?.code).toBe(552);
          expect(result.recipientReplies?.get('alice@example.test')?.code).toBe(250);
          assertSame(await waitStored('dovecot', 'alice', `X-Interop-Id: ${msg.id}`), msg);
          details.push(`${name}: full ${result.refused.get('full@example.test')!.code} ${result.refused.get('full@example.test')!.enhancedStatus ?? ''}`);
        });
      }
      return details.join('; ');
    },
  },
  'SMTP server',
);

feature(
  'transient 451 at RCPT (tempfail@)',
  {
    aiosmtpd: async () =>
      withClient(ep('aiosmtpd', 'aiosmtpd-smtp'), { tls: 'none' }, async (c) => {
        const msg = makeMessage('tempfail');
        const refused = await c.sendmail('alice@example.test', ['tempfail@example.test', 'alice@example.test'], msg.bytes);
        expect(refused.get('tempfail@example.test')?.code).toBe(451);
        assertSame(await waitStored('aiosmtpd', 'alice', `X-Interop-Id: ${msg.id}`), msg);
        return `${refused.get('tempfail@example.test')!.code} ${refused.get('tempfail@example.test')!.message}`.slice(0, 80);
      }),
  },
  'only the aiosmtpd harness is scripted for this',
);

feature(
  'refused after DATA (554) → SMTPDataError',
  {
    aiosmtpd: async () =>
      withClient(ep('aiosmtpd', 'aiosmtpd-smtp'), { tls: 'none' }, async (c) => {
        const err = await expectRejects(
          c.sendmail('alice@example.test', ['rejectdata@example.test', 'alice@example.test'], makeMessage('rejectdata').bytes),
          (x) => x instanceof SMTPDataError && (x as SMTPDataError).smtpCode === 554,
          'SMTPDataError 554',
        );
        expect((await c.noop()).code).toBe(250);
        return describeError(err).slice(0, 90);
      }),
  },
  'only the aiosmtpd harness is scripted for this',
);

// ---------------------------------------------------------------- MATRIX.md

afterAll(() => {
  // A run that skipped (or ran nothing) never rewrites the committed matrix.
  if (results.size === 0 || skipReason) return;
  if ([...results.values()].some((row) => [...row.values()].some((r) => r.status === 'skipped'))) return;
  let commit = 'unknown commit';
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: HERE, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', '.', '../../packages'], { cwd: HERE, encoding: 'utf8' }).trim() !== '';
    commit = `commit ${head}${dirty ? ' with uncommitted changes' : ''}`;
  } catch {
    // not a git checkout: say so in the file
  }
  const versions = env
    ? SERVERS.map((s) => `${s} ${env.servers[s].version}`).join(', ')
    : '';
  const lines: string[] = [];
  lines.push('# Interop matrix', '');
  lines.push(`Generated by \`npx vitest run --project interop\` (test/interop/matrix.test.ts) on ${new Date().toISOString()}, from ${commit}.`);
  lines.push('Cells marked n/a have nothing to check on that server and are not tests: they are not in the test count.', '');
  lines.push(`Servers: ${versions}. Every "pass" that sends mail read the message back from the Maildir and compared it byte for byte.`, '');
  lines.push(`| feature | ${SERVERS.join(' | ')} |`);
  lines.push(`| --- | ${SERVERS.map(() => '---').join(' | ')} |`);
  const notes: string[] = [];
  for (const f of featureOrder) {
    const row = results.get(f);
    const cells = SERVERS.map((s) => {
      const r = row?.get(s);
      if (!r) return '—';
      if (r.detail && r.status !== 'n/a') notes.push(`- **${f} × ${s}** (${r.status}): ${r.detail.replace(/\|/g, '\\|').replace(/\n/g, ' ')}`);
      return r.status === 'FAIL' ? '**FAIL**' : r.status;
    });
    lines.push(`| ${f} | ${cells.join(' | ')} |`);
  }
  const counts = { pass: 0, FAIL: 0, 'not offered': 0, 'n/a': 0, skipped: 0 } as Record<Status, number>;
  for (const row of results.values()) for (const r of row.values()) counts[r.status]++;
  lines.push('', `Totals: ${counts.pass} pass, ${counts.FAIL} fail, ${counts['not offered']} not offered, ${counts['n/a']} n/a, ${counts.skipped} skipped.`, '');
  lines.push('## Details', '', ...notes, '');
  lines.push('## EHLO / LHLO replies (as the client received them)', '');
  for (const snap of ehloSnapshots) {
    lines.push(`### ${snap.endpoint} — ${snap.state}`, '', '```', `220 ${snap.greeting}`, ...snap.ehlo.split('\n').map((l, i, a) => `250${i === a.length - 1 ? ' ' : '-'}${l}`), '```', '');
  }
  const text = lines.join('\n');
  fs.writeFileSync(path.join(HERE, 'MATRIX.md'), text);
  console.log(text.split('## Details')[0]);
});
