// The `smtplib` command line against the real Postfix (+ Dovecot SASL) and
// aiosmtpd that test/interop/servers/{setup,peers}.sh start on loopback.
// Every delivery is read back from the Maildir: the envelope Postfix recorded
// (Return-Path:, Delivered-To:, which mailboxes got a copy), the protocol
// (Received: "with ESMTP" / "ESMTPS" / "ESMTPSA"), the message itself.
// `smtplib sendmail -t` is compared with Postfix's own /usr/sbin/sendmail
// (postdrop → pickup → cleanup) run against the same private instance.
//
//   npx vitest run --project interop test/interop/cli.test.ts
//
// The CLI is compiled from packages/cli/src into a private directory for the
// run (tsc, well under a second), so this file neither needs nor races with a
// `npm run build` of packages/cli/dist. Skips with setup.sh's reason when the
// servers cannot be set up (not root and something missing), like matrix.test.ts.

import { execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const SERVERS_DIR = path.join(HERE, 'servers');
const STATE = path.resolve(process.env.INTEROP_STATE ?? path.join(HERE, '.state'));
const CLI_SRC = path.join(ROOT, 'packages', 'cli');
// Inside packages/cli so that `import 'smtplib'` resolves through the workspace; git-ignored (dist.tmp-*/).
const CLI_OUT = path.join(CLI_SRC, `dist.tmp-interop-cli-${process.pid}`);
const BIN = path.join(CLI_OUT, 'bin.js');
const POSTFIX_SENDMAIL = '/usr/sbin/sendmail';

interface Env {
  tls: { ca: string; otherCa: string; servername: string };
  servers: Record<string, { maildir: string; envelopes?: string }>;
}

let env: Env;
let skipReason: string | undefined;
let CA: string;
let POSTFIX_CONF: string;
let MAILLOG: string;
let tmp: string;

beforeAll(() => {
  const run = (cmd: string, args: string[]) =>
    execFileSync(cmd, args, { env: { ...process.env, INTEROP_STATE: STATE }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const out = run(path.join(SERVERS_DIR, 'setup.sh'), []) + run(path.join(SERVERS_DIR, 'peers.sh'), ['start', 'dovecot', 'postfix', 'aiosmtpd']);
  const skipFile = path.join(STATE, 'SKIP');
  if (out.includes('INTEROP-SKIP') || fs.existsSync(skipFile)) {
    skipReason = fs.existsSync(skipFile) ? fs.readFileSync(skipFile, 'utf8').trim() : out.trim();
    return;
  }
  env = JSON.parse(fs.readFileSync(path.join(STATE, 'env.json'), 'utf8')) as Env;
  CA = env.tls.ca;
  POSTFIX_CONF = path.join(STATE, 'postfix', 'etc');
  MAILLOG = path.join(STATE, 'postfix', 'maillog');
  // The CLI loads the library's build (node_modules/smtplib → packages/smtplib/dist); ci.sh builds it.
  if (!fs.existsSync(path.join(ROOT, 'packages', 'smtplib', 'dist', 'esm'))) {
    execFileSync('npm', ['run', 'build', '-w', 'smtplib', '--silent'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  }
  const tsc = path.join(ROOT, 'node_modules', '.bin', 'tsc');
  execFileSync(tsc, ['-p', path.join(CLI_SRC, 'tsconfig.json'), '--outDir', CLI_OUT, '--declaration', 'false', '--sourceMap', 'false'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smtplib-interop-cli-'));
}, 300_000);

afterAll(() => {
  fs.rmSync(CLI_OUT, { recursive: true, force: true });
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function skipIfNeeded(ctx: TestContext): void {
  if (skipReason) ctx.skip(`interop servers unavailable: ${skipReason}`);
}

// ---------------------------------------------------------------- running commands

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], o: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out: ${cmd} ${args.join(' ')}\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, o.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(o.input ?? '');
  });
}

/** Runs the freshly compiled `smtplib`, with no config file unless one is given. */
function cli(args: string[], o: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return run(process.execPath, [BIN, ...args], {
    ...o,
    env: { SMTPLIB_CONFIG: '', XDG_CONFIG_HOME: path.join(os.tmpdir(), 'smtplib-interop-cli-no-config'), ...o.env },
  });
}

const show = (r: RunResult) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

// ---------------------------------------------------------------- Maildir

interface Stored {
  file: string;
  raw: string;
  head: string;
  body: string;
  /** Unfolded header fields, in order. */
  fields: [string, string][];
}

function parseStored(file: string): Stored {
  const raw = fs.readFileSync(file, 'latin1').replace(/\r\n/g, '\n');
  const at = raw.indexOf('\n\n');
  const head = at < 0 ? raw : raw.slice(0, at + 1);
  const body = at < 0 ? '' : raw.slice(at + 2);
  const fields: [string, string][] = [];
  for (const line of head.split('\n')) {
    if (!line) continue;
    if (/^[ \t]/.test(line) && fields.length) fields[fields.length - 1]![1] += ' ' + line.trim();
    else {
      const c = line.indexOf(':');
      fields.push([line.slice(0, c), line.slice(c + 1).trim()]);
    }
  }
  return { file, raw, head, body, fields };
}

const header = (s: Stored, name: string): string[] => s.fields.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);

function postfixMaildir(user: string): string {
  return env.servers.postfix!.maildir.replace('{user}', user);
}

function filesWith(dir: string, needle: string): string[] {
  const found: string[] = [];
  for (const sub of ['new', 'cur']) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(path.join(dir, sub));
    } catch {
      continue;
    }
    for (const n of names) {
      const file = path.join(dir, sub, n);
      try {
        if (fs.readFileSync(file, 'latin1').includes(needle)) found.push(file);
      } catch {
        // moved or removed meanwhile
      }
    }
  }
  return found;
}

async function waitStored(dir: string, needle: string, timeoutMs = 20_000): Promise<Stored> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const f = filesWith(dir, needle);
    if (f.length) return parseStored(f[0]!);
    if (Date.now() > deadline) throw new Error(`no message with ${needle} in ${dir} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The Postfix queue id from the topmost Received: field ("… id 5478D512859 …"). */
function queueId(s: Stored): string {
  const m = /\bid ([0-9A-F]{6,})\b/.exec(header(s, 'Received')[0] ?? '');
  if (!m) throw new Error(`no queue id in ${JSON.stringify(header(s, 'Received')[0])}`);
  return m[1]!;
}

/** Waits until Postfix logged "<id>: removed": every recipient of the queue file has been handled. */
async function waitQueueDone(id: string, timeoutMs = 20_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = fs.readFileSync(MAILLOG, 'utf8').split('\n').filter((l) => l.includes(` ${id}: `));
    if (lines.some((l) => l.endsWith(`${id}: removed`))) return lines;
    if (Date.now() > deadline) throw new Error(`queue file ${id} not removed within ${timeoutMs} ms:\n${lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const MAILBOXES = ['alice', 'bob', 'postmaster'] as const;

/**
 * Where a message went: waits for it in `expect` mailboxes, then for Postfix to
 * finish its queue file, then reads every mailbox (the others must have none).
 */
async function deliveries(tag: string, expected: string[]): Promise<Map<string, Stored[]>> {
  const first = await waitStored(postfixMaildir(expected[0]!), tag);
  await waitQueueDone(queueId(first));
  for (const u of expected.slice(1)) await waitStored(postfixMaildir(u), tag);
  const got = new Map<string, Stored[]>();
  for (const u of MAILBOXES) {
    const files = filesWith(postfixMaildir(u), tag);
    if (files.length) got.set(u, files.map(parseStored));
  }
  return got;
}

const tagOf = (what: string) => `cli-${what}-${randomUUID()}`;

// ---------------------------------------------------------------- send

describe('smtplib send → Postfix', () => {
  it('plaintext to 2525 with --tls none: built message, envelope and body in the Maildir', async (ctx) => {
    skipIfNeeded(ctx);
    const tag = tagOf('plain');
    const r = await cli(['send', '-s', '127.0.0.1:2525', '--tls', 'none', '-f', 'alice@example.test', '-t', 'bob@example.test', '--subject', `plain ${tag}`, '-H', `X-Cli-Id: ${tag}`, '--body', `Hello Bob.\n.\n..two dots\n${tag}\n`]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toMatch(/accepted by 127\.0\.0\.1:2525 for 1 recipient\(s\).*bob@example\.test/);
    const got = await deliveries(tag, ['bob']);
    expect([...got.keys()]).toEqual(['bob']);
    const m = got.get('bob')![0]!;
    expect(header(m, 'Return-Path')).toEqual(['<alice@example.test>']);
    expect(header(m, 'Delivered-To')).toEqual(['bob@example.test']);
    expect(header(m, 'Received')[0]).toMatch(/ with ESMTP id /); // no S: plaintext
    expect(header(m, 'X-Cli-Id')).toEqual([tag]);
    expect(header(m, 'Subject')).toEqual([`plain ${tag}`]);
    expect(header(m, 'From')).toEqual(['alice@example.test']);
    expect(header(m, 'To')).toEqual(['bob@example.test']);
    expect(header(m, 'Message-ID')).toHaveLength(1); // header() ignores case: Message-Id too
    expect(header(m, 'Date')).toHaveLength(1);
    // Dot-stuffing survives the round trip: the lone "." and ".." lines come back as written.
    expect(m.body).toContain(`Hello Bob.\n.\n..two dots\n${tag}\n`);
  });

  it('TLS modes on 2525: the library default to loopback is plaintext; --tls opportunistic --ca upgrades; without --ca the unverifiable certificate is an error (76)', async (ctx) => {
    skipIfNeeded(ctx);
    const plainTag = tagOf('loopback-default');
    const plain = await cli(['send', '-s', '127.0.0.1:2525', '-f', 'alice@example.test', '-t', 'alice@example.test', '--subject', plainTag, '--body', 'loopback default']);
    expect(plain.code, show(plain)).toBe(0);
    const pm = (await deliveries(plainTag, ['alice'])).get('alice')![0]!;
    expect(header(pm, 'Received')[0]).toMatch(/ with ESMTP id /);

    const tag = tagOf('opportunistic');
    const ok = await cli(['send', '-s', '127.0.0.1:2525', '--tls', 'opportunistic', '--ca', CA, '-f', 'alice@example.test', '-t', 'alice@example.test', '--subject', tag, '--body', 'over STARTTLS']);
    expect(ok.code, show(ok)).toBe(0);
    const m = (await deliveries(tag, ['alice'])).get('alice')![0]!;
    expect(header(m, 'Received')[0]).toMatch(/ with ESMTPS id /);

    const bad = await cli(['send', '-s', '127.0.0.1:2525', '--tls', 'opportunistic', '-f', 'alice@example.test', '-t', 'alice@example.test', '--subject', tagOf('untrusted'), '--body', 'x']);
    expect(bad.code, show(bad)).toBe(76);
    expect(bad.stderr).toMatch(/TLS failed: .*certificate/);
    expect(bad.stderr).toMatch(/--ca FILE/);
  });

  it('STARTTLS on 2525 with --tls required --ca, transcript with -v', async (ctx) => {
    skipIfNeeded(ctx);
    const tag = tagOf('starttls');
    const r = await cli(['send', '-s', '127.0.0.1:2525', '--tls', 'required', '--ca', CA, '-v', '-f', 'alice@example.test', '-t', 'alice@example.test', '--subject', tag, '--body', 'required TLS']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toMatch(/STARTTLS/);
    const m = (await deliveries(tag, ['alice'])).get('alice')![0]!;
    expect(header(m, 'Received')[0]).toMatch(/ with ESMTPS id /);
    expect(header(m, 'Return-Path')).toEqual(['<alice@example.test>']);
  });

  it('implicit TLS on 4465 with --tls implicit; --tls none there is diagnosed (76, hint: --tls implicit)', async (ctx) => {
    skipIfNeeded(ctx);
    const tag = tagOf('implicit');
    const r = await cli(['send', '-s', '127.0.0.1:4465', '--tls', 'implicit', '--ca', CA, '-f', 'alice@example.test', '-t', 'bob@example.test', '--subject', tag, '--body', 'SMTPS']);
    expect(r.code, show(r)).toBe(0);
    const m = (await deliveries(tag, ['bob'])).get('bob')![0]!;
    expect(header(m, 'Received')[0]).toMatch(/ with ESMTPS id /);
    expect(header(m, 'Delivered-To')).toEqual(['bob@example.test']);

    const started = Date.now();
    const wrong = await cli(['send', '-s', '127.0.0.1:4465', '--tls', 'none', '--timeout', '2', '-f', 'alice@example.test', '-t', 'bob@example.test', '--subject', tagOf('wrong-mode'), '--body', 'x']);
    expect(wrong.code, show(wrong)).toBe(76);
    expect(wrong.stderr).toMatch(/no SMTP greeting/);
    expect(wrong.stderr).toMatch(/--tls implicit/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('submission 2587: --user alice --password-env, AUTH after STARTTLS, password never printed', async (ctx) => {
    skipIfNeeded(ctx);
    const tag = tagOf('submission');
    const r = await cli(
      ['send', '-s', '127.0.0.1:2587', '--tls', 'required', '--ca', CA, '--user', 'alice', '--password-env', 'SMTP_PASS', '--debug', '-f', 'alice@example.test', '-t', 'bob@example.test', '--subject', tag, '--body', 'authenticated'],
      { env: { SMTP_PASS: 'alice-pass' } },
    );
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toMatch(/STARTTLS/);
    expect(r.stderr).toMatch(/AUTH /);
    expect(r.stderr).not.toContain('alice-pass');
    expect(r.stderr).not.toContain(Buffer.from('\0alice\0alice-pass').toString('base64'));
    const m = (await deliveries(tag, ['bob'])).get('bob')![0]!;
    expect(header(m, 'Received')[0]).toMatch(/ with ESMTPSA id /); // TLS + authenticated (RFC 3848)
    expect(header(m, 'Return-Path')).toEqual(['<alice@example.test>']);
  });

  it('submission 2587: wrong password → 77; no login → MAIL refused (530/554) permanently → 69; unset --password-env → 78', async (ctx) => {
    skipIfNeeded(ctx);
    const base = ['send', '-s', '127.0.0.1:2587', '--tls', 'required', '--ca', CA, '-f', 'alice@example.test', '-t', 'bob@example.test', '--subject', tagOf('auth-fail'), '--body', 'x'];
    const wrong = await cli([...base, '--user', 'alice', '--password-env', 'SMTP_PASS'], { env: { SMTP_PASS: 'not-the-password' } });
    expect(wrong.code, show(wrong)).toBe(77);
    expect(wrong.stderr).toMatch(/authentication failed.*535/);
    expect(wrong.stderr).not.toContain('not-the-password');

    const anonymous = await cli(base);
    expect(anonymous.code, show(anonymous)).toBe(69);
    expect(anonymous.stderr).toMatch(/5\d\d/);

    const unset = await cli([...base, '--user', 'alice', '--password-env', 'SMTPLIB_INTEROP_UNSET_VARIABLE']);
    expect(unset.code, show(unset)).toBe(78);
  });

  it('a refused recipient: nobody@example.test alone → 69; with alice → 79 (partial), alice still gets her copy', async (ctx) => {
    skipIfNeeded(ctx);
    const alone = await cli(['send', '-s', '127.0.0.1:2525', '--tls', 'none', '-f', 'alice@example.test', '-t', 'nobody@example.test', '--subject', tagOf('nobody'), '--body', 'x']);
    expect(alone.code, show(alone)).toBe(69);
    expect(alone.stderr).toMatch(/nobody@example\.test: 550 5\.1\.1/);

    const tag = tagOf('partial');
    const mixed = await cli(['send', '-s', '127.0.0.1:2525', '--tls', 'none', '-f', 'alice@example.test', '-t', 'alice@example.test', '-t', 'nobody@example.test', '--subject', tag, '--body', 'partial']);
    expect(mixed.code, show(mixed)).toBe(79);
    expect(mixed.stderr).toMatch(/partial delivery \(exit 79\): only alice@example\.test got the message/);
    expect(mixed.stderr).toMatch(/1 recipient\(s\) refused[\s\S]*nobody@example\.test: 550 5\.1\.1/);
    const got = await deliveries(tag, ['alice']);
    expect([...got.keys()]).toEqual(['alice']);
  });

  it('attachments (text and binary) arrive intact; --bcc gets a copy without a Bcc: field', async (ctx) => {
    skipIfNeeded(ctx);
    const tag = tagOf('attach');
    const textFile = path.join(tmp, 'notes.txt');
    const binFile = path.join(tmp, 'blob.bin');
    const text = `Attached notes ${tag}\nwith two lines\n`;
    const bin = randomBytes(70_000);
    fs.writeFileSync(textFile, text);
    fs.writeFileSync(binFile, bin);
    const r = await cli(['send', '-s', '127.0.0.1:2525', '--tls', 'none', '-f', 'alice@example.test', '-t', 'bob@example.test', '--bcc', 'postmaster@example.test', '--subject', tag, '--body', 'See attached.', '--attach', textFile, '--attach', binFile]);
    expect(r.code, show(r)).toBe(0);
    const got = await deliveries(tag, ['bob', 'postmaster']);
    expect([...got.keys()].sort()).toEqual(['bob', 'postmaster']);
    for (const [user, [m]] of got) {
      expect(header(m!, 'Delivered-To')).toEqual([`${user}@example.test`]);
      expect(header(m!, 'Bcc')).toEqual([]);
      expect(m!.raw).not.toMatch(/^Bcc:/im);
      const parts = mimeParts(m!);
      const byName = new Map(parts.filter((p) => p.filename).map((p) => [p.filename!, p.content]));
      expect(byName.get('notes.txt')?.toString('utf8')).toBe(text);
      expect(byName.get('blob.bin')?.equals(bin), 'binary attachment byte for byte').toBe(true);
      expect(parts.some((p) => !p.filename && p.content.toString('utf8').includes('See attached.'))).toBe(true);
    }
  });

  it('--message FILE: recipients from To/Cc/Bcc, Bcc removed, the file otherwise unchanged', async (ctx) => {
    skipIfNeeded(ctx);
    const tag = tagOf('message');
    const file = path.join(tmp, 'msg.eml');
    fs.writeFileSync(file, `From: Alice <alice@example.test>\nTo: Bob <bob@example.test>\nBcc: postmaster@example.test\nSubject: ${tag}\nMessage-ID: <${tag}@example.test>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nline one\n.\nlast line\n`);
    const r = await cli(['send', '-s', '127.0.0.1:2525', '--tls', 'none', '--message', file]);
    expect(r.code, show(r)).toBe(0);
    const got = await deliveries(tag, ['bob', 'postmaster']);
    expect([...got.keys()].sort()).toEqual(['bob', 'postmaster']);
    for (const [user, [m]] of got) {
      expect(header(m!, 'Return-Path')).toEqual(['<alice@example.test>']);
      expect(header(m!, 'Delivered-To')).toEqual([`${user}@example.test`]);
      const ours = m!.raw.slice(m!.raw.indexOf('From: Alice'));
      expect(ours).toBe(`From: Alice <alice@example.test>\nTo: Bob <bob@example.test>\nSubject: ${tag}\nMessage-ID: <${tag}@example.test>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nline one\n.\nlast line\n`);
    }
  });
});

/** Leaf parts of a multipart message, transfer-decoded (base64 / quoted-printable / 7bit). */
function mimeParts(m: Stored): { filename?: string; content: Buffer }[] {
  const out: { filename?: string; content: Buffer }[] = [];
  const walk = (head: string, body: string): void => {
    const fields = head.replace(/\n[ \t]+/g, ' ');
    const ct = /^content-type:\s*(.*)$/im.exec(fields)?.[1] ?? 'text/plain';
    const boundary = /boundary="?([^";]+)"?/i.exec(ct)?.[1];
    if (/^multipart\//i.test(ct) && boundary) {
      const chunks = body.split(`--${boundary}`);
      for (const chunk of chunks.slice(1)) {
        if (chunk.startsWith('--')) break;
        const part = chunk.replace(/^\n/, '');
        const at = part.indexOf('\n\n');
        walk(part.slice(0, at + 1), part.slice(at + 2).replace(/\n$/, ''));
      }
      return;
    }
    const cte = (/^content-transfer-encoding:\s*(\S+)/im.exec(fields)?.[1] ?? '7bit').toLowerCase();
    const filename = /filename\*?=(?:"([^"]+)"|([^;\s]+))/i.exec(fields);
    let content: Buffer;
    if (cte === 'base64') content = Buffer.from(body.replace(/\s+/g, ''), 'base64');
    else if (cte === 'quoted-printable') {
      content = Buffer.from(body.replace(/=\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
    } else content = Buffer.from(body, 'latin1');
    out.push({ ...(filename ? { filename: filename[1] ?? filename[2]! } : {}), content });
  };
  walk(m.head, m.body);
  return out;
}

// ---------------------------------------------------------------- exit code 75

describe('smtplib send → aiosmtpd: temporary failures', () => {
  it('tempfail@example.test (451 at RCPT) → 75; with alice → 79 (partial), alice delivered', async (ctx) => {
    skipIfNeeded(ctx);
    const only = await cli(['send', '-s', '127.0.0.1:2528', '--tls', 'none', '-f', 'alice@example.test', '-t', 'tempfail@example.test', '--subject', tagOf('tempfail'), '--body', 'x']);
    expect(only.code, show(only)).toBe(75);
    expect(only.stderr).toMatch(/tempfail@example\.test: 451/);
    expect(only.stderr).toMatch(/try again later/);

    const tag = tagOf('tempfail-mixed');
    const mixed = await cli(['send', '-s', '127.0.0.1:2528', '--tls', 'none', '-f', 'alice@example.test', '-t', 'tempfail@example.test', '-t', 'alice@example.test', '--subject', tag, '--body', 'x']);
    expect(mixed.code, show(mixed)).toBe(79);
    expect(mixed.stderr).toMatch(/partial delivery \(exit 79\): only alice@example\.test got the message/);
    await waitStored(env.servers.aiosmtpd!.maildir.replace('{user}', 'alice'), tag);
  });

  it('rejectdata@example.test (554 after DATA) → 65', async (ctx) => {
    skipIfNeeded(ctx);
    const r = await cli(['send', '-s', '127.0.0.1:2528', '--tls', 'none', '-f', 'alice@example.test', '-t', 'rejectdata@example.test', '--subject', tagOf('rejectdata'), '--body', 'x']);
    expect(r.code, show(r)).toBe(65);
    expect(r.stderr).toMatch(/message was refused: 554/);
  });
});

// ---------------------------------------------------------------- sendmail -t vs Postfix's sendmail

interface Observed {
  tool: string;
  code: number | null;
  stderr: string;
  mailboxes: string[];
  returnPath: string[];
  deliveredTo: Record<string, string[]>;
  bccInHeaders: boolean;
  /** Our header fields as delivered (name: value), in order, minus the ones each tool may add. */
  fields: string[];
  body: string;
}

async function observe(tool: string, r: RunResult, tag: string, expected: string[]): Promise<Observed> {
  const got = await deliveries(tag, expected);
  const all = [...got.values()].flat();
  const one = all[0]!;
  const added = new Set(['return-path', 'x-original-to', 'delivered-to', 'received', 'message-id', 'date']);
  return {
    tool,
    code: r.code,
    stderr: r.stderr,
    mailboxes: [...got.keys()].sort(),
    returnPath: [...new Set(all.flatMap((m) => header(m, 'Return-Path')))],
    deliveredTo: Object.fromEntries([...got].map(([u, ms]) => [u, ms.flatMap((m) => header(m, 'Delivered-To'))])),
    bccInHeaders: all.some((m) => /^bcc:/im.test(m.head) || /^resent-bcc:/im.test(m.head)),
    fields: one.fields.filter(([n]) => !added.has(n.toLowerCase())).map(([n, v]) => `${n}: ${v}`),
    body: one.body,
  };
}

function postfixSendmail(args: string[], input: string): Promise<RunResult> {
  return run(POSTFIX_SENDMAIL, ['-C', POSTFIX_CONF, ...args], { input });
}

function smtplibSendmail(args: string[], input: string): Promise<RunResult> {
  return cli(['sendmail', '--server', '127.0.0.1:2525', '--tls', 'none', ...args], { input });
}

function message(tag: string, o: { resent?: boolean } = {}): string {
  return [
    'From: Alice Example <alice@example.test>',
    'To: Bob <bob@example.test>',
    'Cc: "The Postmaster" <postmaster@example.test>, Team: bob@example.test;',
    'Bcc: alice@example.test',
    ...(o.resent ? ['Resent-From: alice@example.test', 'Resent-To: postmaster@example.test', 'Resent-Bcc: bob@example.test'] : []),
    `Subject: sendmail -t ${tag}`,
    `X-Cli-Id: ${tag}`,
    '',
    'first line',
    '.',
    'after a lone dot',
    '..two dots',
    '',
  ].join('\n');
}

describe('smtplib sendmail -t compared with Postfix /usr/sbin/sendmail -t', () => {
  it("Postfix's sendmail works against the private instance (postdrop as root)", async (ctx) => {
    skipIfNeeded(ctx);
    // postdrop is setgid postdrop and writes into $queue_directory/maildrop (postfix:postdrop, 730);
    // with -C (or MAIL_CONFIG) a non-root caller is refused unless the directory is listed in
    // alternate_config_directories of the default main.cf. The tests run as root, which may use any.
    expect(fs.existsSync(POSTFIX_SENDMAIL), `${POSTFIX_SENDMAIL} (Postfix) is installed`).toBe(true);
    const tag = tagOf('postdrop');
    const r = await postfixSendmail(['-f', 'alice@example.test', 'alice@example.test'], `Subject: ${tag}\n\npostdrop works\n`);
    expect(r.code, show(r)).toBe(0);
    const m = (await deliveries(tag, ['alice'])).get('alice')![0]!;
    expect(header(m, 'Received')[0]).toMatch(/\(Postfix, from userid 0\)/);
  });

  it('-t -i -f: same mailboxes, Return-Path, Delivered-To, headers (Bcc removed) and body as Postfix', async (ctx) => {
    skipIfNeeded(ctx);
    const results: Observed[] = [];
    for (const [tool, send] of [['postfix', postfixSendmail], ['smtplib', smtplibSendmail]] as const) {
      const tag = tagOf(`t-${tool}`);
      const r = await send(['-t', '-i', '-f', 'alice@example.test'], message(tag));
      expect(r.code, `${tool}: ${show(r)}`).toBe(0);
      const o = await observe(tool, r, tag, ['alice', 'bob', 'postmaster']);
      results.push({ ...o, fields: o.fields.map((f) => f.replaceAll(tag, '<tag>')) });
    }
    const [pf, ours] = results as [Observed, Observed];
    // Documented sendmail -t semantics, which Postfix shows: To + Cc + Bcc (a group's members too),
    // each mailbox once, Bcc: deleted, the message otherwise as given.
    expect(pf.mailboxes).toEqual(['alice', 'bob', 'postmaster']);
    expect(pf.returnPath).toEqual(['<alice@example.test>']);
    expect(pf.deliveredTo).toEqual({ alice: ['alice@example.test'], bob: ['bob@example.test'], postmaster: ['postmaster@example.test'] });
    expect(pf.bccInHeaders).toBe(false);
    expect(pf.body).toBe('first line\n.\nafter a lone dot\n..two dots\n');
    // And smtplib does the same.
    expect(ours.mailboxes).toEqual(pf.mailboxes);
    expect(ours.returnPath).toEqual(pf.returnPath);
    expect(ours.deliveredTo).toEqual(pf.deliveredTo);
    expect(ours.bccInHeaders).toBe(false);
    expect(ours.fields).toEqual(pf.fields);
    expect(ours.body).toBe(pf.body);
  });

  it('-t with a recipient argument: both add it to the header recipients', async (ctx) => {
    skipIfNeeded(ctx);
    const seen: Record<string, string[]> = {};
    for (const [tool, send] of [['postfix', postfixSendmail], ['smtplib', smtplibSendmail]] as const) {
      const tag = tagOf(`targ-${tool}`);
      const r = await send(['-t', '-i', '-f', 'alice@example.test', 'postmaster@example.test'], `From: alice@example.test\nTo: bob@example.test\nSubject: ${tag}\n\nx\n`);
      expect(r.code, `${tool}: ${show(r)}`).toBe(0);
      seen[tool] = (await observe(tool, r, tag, ['bob', 'postmaster'])).mailboxes;
    }
    expect(seen.postfix).toEqual(['bob', 'postmaster']);
    expect(seen.smtplib).toEqual(seen.postfix);
  });

  it('without -i a line with a single "." ends the message, in both', async (ctx) => {
    skipIfNeeded(ctx);
    const bodies: Record<string, string> = {};
    for (const [tool, send] of [['postfix', postfixSendmail], ['smtplib', smtplibSendmail]] as const) {
      const tag = tagOf(`dot-${tool}`);
      const r = await send(['-t', '-f', 'alice@example.test'], `From: alice@example.test\nTo: bob@example.test\nSubject: ${tag}\n\nbefore\n.\nafter\n`);
      expect(r.code, `${tool}: ${show(r)}`).toBe(0);
      bodies[tool] = (await observe(tool, r, tag, ['bob'])).body;
    }
    expect(bodies.postfix).toBe('before\n');
    expect(bodies.smtplib).toBe(bodies.postfix);
  });

  it('without -f: Postfix uses the invoking user (root@$myorigin), smtplib the From: address (documented difference)', async (ctx) => {
    skipIfNeeded(ctx);
    const rp: Record<string, string[]> = {};
    for (const [tool, send] of [['postfix', postfixSendmail], ['smtplib', smtplibSendmail]] as const) {
      const tag = tagOf(`nof-${tool}`);
      const r = await send(['-t', '-i'], `From: Bob <bob@example.test>\nTo: alice@example.test\nSubject: ${tag}\n\nx\n`);
      expect(r.code, `${tool}: ${show(r)}`).toBe(0);
      rp[tool] = (await observe(tool, r, tag, ['alice'])).returnPath;
    }
    expect(rp.postfix).toEqual([`<${os.userInfo().username}@mail.example.test>`]);
    expect(rp.smtplib).toEqual(['<bob@example.test>']);
  });

  it('Resent-* fields: -t takes Resent-To/Cc/Bcc instead of To/Cc/Bcc, and drops Resent-Bcc, like Postfix', async (ctx) => {
    skipIfNeeded(ctx);
    const results: Observed[] = [];
    for (const [tool, send] of [['postfix', postfixSendmail], ['smtplib', smtplibSendmail]] as const) {
      const tag = tagOf(`resent-${tool}`);
      const r = await send(['-t', '-i', '-f', 'alice@example.test'], message(tag, { resent: true }));
      expect(r.code, `${tool}: ${show(r)}`).toBe(0);
      results.push(await observe(tool, r, tag, ['bob', 'postmaster']));
    }
    const [pf, ours] = results as [Observed, Observed];
    expect(pf.mailboxes).toEqual(['bob', 'postmaster']);
    expect(pf.bccInHeaders).toBe(false);
    expect(ours.mailboxes).toEqual(pf.mailboxes);
    expect(ours.bccInHeaders).toBe(false);
  });

  it('a refused header recipient: smtplib exits 79 (partial: bob got it) at once; Postfix accepts (0) and bounces later', async (ctx) => {
    skipIfNeeded(ctx);
    const tag = tagOf('refused');
    const ours = await smtplibSendmail(['-t', '-i', '-f', 'alice@example.test'], `From: alice@example.test\nTo: bob@example.test, nobody@example.test\nSubject: ${tag}\n\nx\n`);
    expect(ours.code, show(ours)).toBe(79);
    expect(ours.stderr).toMatch(/nobody@example\.test: 550 5\.1\.1/);
    expect((await deliveries(tag, ['bob'])).size).toBe(1);

    const tag2 = tagOf('refused-postfix');
    const pf = await postfixSendmail(['-t', '-i', '-f', 'alice@example.test'], `From: alice@example.test\nTo: bob@example.test, nobody@example.test\nSubject: ${tag2}\n\nx\n`);
    expect(pf.code, show(pf)).toBe(0);
    const m = (await deliveries(tag2, ['bob'])).get('bob')![0]!;
    const log = await waitQueueDone(queueId(m));
    expect(log.some((l) => /to=<nobody@example\.test>.*status=bounced/.test(l)), log.join('\n')).toBe(true);
  });

  it('account from a config file (-C): submission 2587 with tls_trust_file, user and password-file', async (ctx) => {
    skipIfNeeded(ctx);
    const tag = tagOf('account');
    const pass = path.join(tmp, 'alice.pass');
    fs.writeFileSync(pass, 'alice-pass\n', { mode: 0o600 });
    const conf = path.join(tmp, 'config');
    fs.writeFileSync(conf, `account submission\nhost 127.0.0.1\nport 2587\ntls on\ntls_trust_file ${CA}\nfrom alice@example.test\nuser alice\npassword-file ${pass}\n\naccount default : submission\n`);
    const r = await cli(['sendmail', '-C', conf, '-t', '-i'], { input: `From: alice@example.test\nTo: bob@example.test\nBcc: postmaster@example.test\nSubject: ${tag}\n\nvia the account\n` });
    expect(r.code, show(r)).toBe(0);
    const got = await deliveries(tag, ['bob', 'postmaster']);
    expect([...got.keys()].sort()).toEqual(['bob', 'postmaster']);
    for (const [, [m]] of got) {
      expect(header(m!, 'Received')[0]).toMatch(/ with ESMTPSA id /);
      expect(header(m!, 'Return-Path')).toEqual(['<alice@example.test>']);
      expect(header(m!, 'Bcc')).toEqual([]);
    }
  });
});

// ---------------------------------------------------------------- probe

interface ProbeJson {
  host: string;
  port: number;
  mode: string;
  greeting?: string;
  starttls?: { offered: boolean; ok: boolean };
  tls?: { protocol: string; cipher: string; authorized: boolean; hostnameOk: boolean; chain: { subject: string; names: string[] }[] };
  authMechanisms: { beforeTls: string[]; afterTls: string[] };
  size?: number | null;
  findings: { level: string; message: string }[];
}

describe('smtplib probe → Postfix', () => {
  const AUTH = ['PLAIN', 'LOGIN', 'CRAM-MD5', 'SCRAM-SHA-1', 'SCRAM-SHA-256'];

  it('2587 (text): STARTTLS, TLS version, AUTH only after TLS, SIZE, trusted certificate', async (ctx) => {
    skipIfNeeded(ctx);
    const r = await cli(['probe', '127.0.0.1:2587', '--ca', CA, '--servername', env.tls.servername]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toMatch(/^Probe of 127\.0\.0\.1:2587: plaintext SMTP$/m);
    expect(r.stdout).toMatch(/^Greeting: 220 mail\.example\.test ESMTP Postfix/m);
    expect(r.stdout).toMatch(/^STARTTLS: offered, upgraded$/m);
    expect(r.stdout).toMatch(/^TLS: TLSv1\.[23], cipher \S+; chain trusted; name matches$/m);
    expect(r.stdout).toMatch(/^AUTH before TLS: none$/m);
    expect(r.stdout).toMatch(new RegExp(`^AUTH after TLS: ${AUTH.join(' ')}$`, 'm'));
    expect(r.stdout).toMatch(/^SIZE: 41943040 bytes \(40\.0 MiB\)$/m);
    expect(r.stdout).toMatch(/OK\s+the certificate is trusted and valid for mail\.example\.test/);
  });

  it('2587 --json: the same facts, machine-readable', async (ctx) => {
    skipIfNeeded(ctx);
    const r = await cli(['probe', '127.0.0.1:2587', '--ca', CA, '--servername', env.tls.servername, '--json']);
    expect(r.code, show(r)).toBe(0);
    const j = JSON.parse(r.stdout) as ProbeJson;
    expect(j).toMatchObject({ host: '127.0.0.1', port: 2587, mode: 'plaintext', starttls: { offered: true, ok: true } });
    expect(j.greeting).toMatch(/^220 mail\.example\.test ESMTP Postfix/);
    expect(j.tls!.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(j.tls!.authorized).toBe(true);
    expect(j.tls!.hostnameOk).toBe(true);
    expect(j.tls!.chain[0]!.names).toEqual(expect.arrayContaining(['mail.example.test', '127.0.0.1']));
    expect(j.authMechanisms).toEqual({ beforeTls: [], afterTls: AUTH });
    expect(j.size).toBe(41943040);
    expect(j.findings.filter((f) => f.level === 'error' || f.level === 'warning')).toEqual([]);
  });

  it('4465 (implicit TLS) probed as a plaintext port: diagnosed as SMTPS, then inspected over TLS', async (ctx) => {
    skipIfNeeded(ctx);
    const r = await cli(['probe', '127.0.0.1:4465', '--ca', CA, '--servername', env.tls.servername, '--timeout', '2', '--json']);
    expect(r.code, show(r)).toBe(0);
    const j = JSON.parse(r.stdout) as ProbeJson;
    expect(j.mode).toBe('implicit-tls');
    expect(j.findings.some((f) => f.level === 'info' && /speaks implicit TLS \(SMTPS\): use --tls implicit/.test(f.message))).toBe(true);
    expect(j.tls!.authorized).toBe(true);
    expect(j.authMechanisms.afterTls).toEqual(AUTH);
    expect(j.size).toBe(10485760);

    const text = await cli(['probe', '127.0.0.1:4465', '--ca', CA, '--servername', env.tls.servername, '--timeout', '2']);
    expect(text.stdout).toMatch(/^Probe of 127\.0\.0\.1:4465: implicit TLS \(SMTPS\)$/m);
    expect(text.stdout).toMatch(/INFO\s+127\.0\.0\.1:4465 speaks implicit TLS/);
  });

  it('2525 without --ca: the private CA is reported as untrusted (76); with the wrong --servername, the name mismatch', async (ctx) => {
    skipIfNeeded(ctx);
    const r = await cli(['probe', '127.0.0.1:2525', '--json']);
    expect(r.code, show(r)).toBe(76);
    const j = JSON.parse(r.stdout) as ProbeJson;
    expect(j.tls!.authorized).toBe(false);
    expect(j.findings.some((f) => f.level === 'error' && /for a private CA use --ca FILE/.test(f.message))).toBe(true);

    const wrong = await cli(['probe', '127.0.0.1:2525', '--ca', CA, '--servername', 'wrong.example.test', '--json']);
    expect(wrong.code, show(wrong)).toBe(76);
    const w = JSON.parse(wrong.stdout) as ProbeJson;
    expect(w.tls!.authorized).toBe(true);
    expect(w.tls!.hostnameOk).toBe(false);
    expect(w.findings.some((f) => f.level === 'error' && /not for wrong\.example\.test/.test(f.message))).toBe(true);
  });

  it('a port nobody listens on: 69', async (ctx) => {
    skipIfNeeded(ctx);
    const r = await cli(['probe', '127.0.0.1:1', '--json']);
    expect(r.code, show(r)).toBe(69);
    expect((JSON.parse(r.stdout) as ProbeJson).mode).toBe('unreachable');
  });
});
