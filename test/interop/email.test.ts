// smtplib-email through real servers: an EmailMessage with text, HTML, an
// inline image and attachments (one from a file, read while sending) goes
// to Postfix (SMTP, STARTTLS) and to Dovecot (LMTP), each storing it in its
// Maildir; the stored file, from our first header on, is the message we
// wrote byte for byte (line ends as the Maildir stores them), and it parses
// back (ours and Python's email) into the same tree.
//
//   npx vitest run --project interop test/interop/email.test.ts

import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { LMTP, SMTP } from 'smtplib';
import { Address, EmailMessage, parseMessage } from 'smtplib-email';
import { pythonMissing, pythonTrees } from '../email/helpers.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SERVERS_DIR = path.join(HERE, 'servers');
const STATE = path.resolve(process.env.INTEROP_STATE ?? path.join(HERE, '.state'));

interface Env {
  tls: { ca: string; servername: string };
  servers: Record<string, { maildir: string; endpoints: { name: string; host: string; port?: number }[] }>;
}
let env: Env;
let skipReason: string | undefined;
let tmp: string;

beforeAll(() => {
  const run = (cmd: string, args: string[]) =>
    execFileSync(cmd, args, { env: { ...process.env, INTEROP_STATE: STATE }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const out = run(path.join(SERVERS_DIR, 'setup.sh'), []) + run(path.join(SERVERS_DIR, 'peers.sh'), ['start', 'dovecot', 'postfix']);
  const skipFile = path.join(STATE, 'SKIP');
  if (out.includes('INTEROP-SKIP') || fs.existsSync(skipFile)) {
    skipReason = fs.existsSync(skipFile) ? fs.readFileSync(skipFile, 'utf8').trim() : out.trim();
    if (process.env.CI === 'true') throw new Error(`interop servers unavailable under CI: ${skipReason}`);
    return;
  }
  env = JSON.parse(fs.readFileSync(path.join(STATE, 'env.json'), 'utf8')) as Env;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smtplib-interop-email-'));
}, 300_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function skipIfNeeded(ctx: TestContext): void {
  if (skipReason) ctx.skip(`interop servers unavailable: ${skipReason}`);
}

function endpoint(server: string, name: string): { host: string; port?: number } {
  const e = env.servers[server]!.endpoints.find((x) => x.name === name);
  if (!e) throw new Error(`no endpoint ${name} in env.json`);
  return e;
}

/** The message: text + HTML alternatives, an inline image, a PDF from a file, a non-ASCII named attachment. */
function build(tag: string, pdfPath: string, image: Buffer): EmailMessage {
  const msg = new EmailMessage();
  msg.set('X-Interop-Id', tag);
  msg.set('From', new Address('Zoë Ångström', 'alice', 'example.test'));
  msg.set('To', new Address('Alice', 'alice', 'example.test'));
  msg.set('Bcc', 'bob@example.test');
  msg.set('Subject', 'Quarterly figures – Q4 ✓');
  msg.set('Message-ID', `<${tag}@client.example.test>`);
  msg.set('Date', new Date());
  msg.setContent('The chart and the report are attached.\nGrüße\n');
  msg.addAlternative(`<p>The chart: <img src="cid:chart@example.test"></p>${'<span>long html line</span>'.repeat(80)}\n`, { subtype: 'html' });
  msg.getBody(['html'])!.addRelated(image, { maintype: 'image', subtype: 'png', cid: 'chart@example.test', filename: 'chart.png' });
  msg.addAttachment({ path: pdfPath });
  msg.addAttachment('naïve café notes\n', { filename: 'Überweisungsbestätigung für das Geschäftsjahr 2026.txt' });
  return msg;
}

async function waitStored(server: string, user: string, needle: string, timeoutMs = 30_000): Promise<Buffer> {
  const dir = env.servers[server]!.maildir.replace('{user}', user);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const sub of ['new', 'cur']) {
      let names: string[] = [];
      try { names = fs.readdirSync(path.join(dir, sub)); } catch { /* not yet */ }
      for (const n of names) {
        const file = path.join(dir, sub, n);
        try {
          const bytes = fs.readFileSync(file);
          if (bytes.includes(needle)) return bytes;
        } catch { /* moved meanwhile */ }
      }
    }
    if (Date.now() > deadline) throw new Error(`message ${needle} not found in ${dir} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const lf = (b: Buffer) => Buffer.from(b.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');

/** The stored file from our first header on, and what we wrote without Bcc: the same bytes (LF line ends in a Maildir). */
async function assertStoredAsWritten(stored: Buffer, msg: EmailMessage, tag: string): Promise<void> {
  const at = stored.indexOf(`X-Interop-Id: ${tag}`);
  expect(at).toBeGreaterThanOrEqual(0);
  const written = Buffer.from((await msg.asBytes()).toString('latin1').replace(/^Bcc: .*\r\n/m, ''), 'latin1');
  const got = lf(stored.subarray(at));
  const want = lf(written);
  if (!got.equals(want)) {
    let i = 0;
    while (i < got.length && i < want.length && got[i] === want[i]) i++;
    throw new Error(`stored message differs at byte ${i} of ${want.length}: ${JSON.stringify(got.subarray(Math.max(0, i - 40), i + 40).toString())} vs ${JSON.stringify(want.subarray(Math.max(0, i - 40), i + 40).toString())}`);
  }
  const parsed = parseMessage(stored);
  expect([...parsed.walk()].map((p) => p.getContentType())).toEqual(['multipart/mixed', 'multipart/alternative', 'text/plain', 'multipart/related', 'text/html', 'image/png', 'application/pdf', 'text/plain']);
  expect(parsed.get('subject')).toBe('Quarterly figures – Q4 ✓');
  expect([...parsed.iterAttachments()].map((p) => p.getFilename())).toEqual(['report.pdf', 'Überweisungsbestätigung für das Geschäftsjahr 2026.txt']);
  expect([...parsed.walk()].every((p) => p.defects.length === 0)).toBe(true);
  if (!pythonMissing()) {
    const [py] = await pythonTrees([stored]);
    expect(py!.parts.map((p) => [p.type, p.filename])).toEqual([...parsed.walk()].map((p) => [p.getContentType(), p.getFilename() ?? null]));
    expect([...py!.defects, ...py!.parts.flatMap((p) => (p as { defects?: string[] }).defects ?? [])]).toEqual([]);
  }
}

describe('EmailMessage through real servers, read back from the Maildir', () => {
  it('Postfix (STARTTLS, sendMessage): stored byte for byte, Bcc only in the envelope', async (ctx) => {
    skipIfNeeded(ctx);
    const tag = `email-${randomUUID()}`;
    const pdf = path.join(tmp, 'report.pdf');
    fs.writeFileSync(pdf, Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(300_000)]));
    const msg = build(tag, pdf, randomBytes(5000));
    const e = endpoint('postfix', 'postfix-smtp');
    await using smtp = await SMTP.connect({ host: e.host, port: e.port!, localHostname: 'client.example.test', tls: { ca: fs.readFileSync(env.tls.ca, 'utf8'), servername: env.tls.servername }, tlsPolicy: 'required' });
    const refused = await smtp.sendMessage(msg);
    expect(Object.keys(refused)).toEqual([]);
    await assertStoredAsWritten(await waitStored('postfix', 'alice', tag), msg, tag);
    const bcc = await waitStored('postfix', 'bob', tag);
    expect(bcc.includes('Bcc:')).toBe(false);
  });

  it('Dovecot (LMTP over its Unix socket, sendMessage): stored byte for byte', async (ctx) => {
    skipIfNeeded(ctx);
    const tag = `email-${randomUUID()}`;
    const pdf = path.join(tmp, 'report.pdf');
    fs.writeFileSync(pdf, Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(200_000)]));
    const msg = build(tag, pdf, randomBytes(3000));
    const e = endpoint('dovecot', 'dovecot-lmtp-unix');
    await using lmtp = await LMTP.connect({ host: e.host, localHostname: 'client.example.test' });
    await lmtp.sendMessage(msg);
    await assertStoredAsWritten(await waitStored('dovecot', 'alice', tag), msg, tag);
  });
});
