// End to end: our signed messages go through Postfix, whose OpenDKIM milter
// (verify mode) adds Authentication-Results; the stored Maildir copy is read
// back and must say dkim=pass for every signature, RSA and Ed25519, over BDAT
// (Postfix offers CHUNKING) and over DATA with dot-stuffing.
// Run by .ci/suites/55-dkim.sh: npx vitest run --project dkim-e2e

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMTP, type DkimAlgorithm, type DkimCanonicalization, type DkimOptions, type MessageInput } from 'smtplib';
import { HARD_CASES, largeCase, toInput, type InputKind } from '../dkim/messages.js';

const HERE = import.meta.dirname;
const STATE = process.env.DKIM_E2E_STATE ?? join(HERE, '.state');
const PORT = Number(process.env.DKIM_SMTP_PORT ?? 2635);
const MAILDIR = join(STATE, 'mail', 'bob');
const ALGORITHMS: readonly DkimAlgorithm[] = ['rsa-sha256', 'ed25519-sha256'];
const CANONICALIZATIONS: readonly DkimCanonicalization[] = ['relaxed/relaxed', 'relaxed/simple', 'simple/simple'];

function unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to start Postfix and OpenDKIM from private configs';
  for (const bin of ['/usr/sbin/postfix', '/usr/sbin/opendkim']) if (!existsSync(bin)) return `${bin} is not installed`;
  return undefined;
}
const reason = unavailable();
if (reason && process.env.CI === 'true') throw new Error(`dkim-e2e cannot run: ${reason}`);
if (reason) console.warn(`SKIP dkim-e2e: ${reason}`);

interface Case {
  label: string;
  messageId: string;
  expected: ('pass' | 'fail')[];
  /** What OpenDKIM wrote, in signature order: result and algorithm. */
  results?: { result: string; algorithm: string; selector: string }[];
}

/** The dkim= entries of the Authentication-Results field our milter added (authserv-id mail.example.test). */
function authenticationResults(message: string): Case['results'] {
  const header = message.split(/\r?\n\r?\n/)[0]!.replace(/\r?\n[ \t]+/g, ' ');
  const field = header.split(/\r?\n/).find((l) => l.startsWith('Authentication-Results: mail.example.test;'));
  if (!field) return [];
  return [...field.matchAll(/dkim=(\w+)[^;]*?header\.a=([\w-]+) header\.s=(\w+)/g)].map((m) => ({ result: m[1]!, algorithm: m[2]!, selector: m[3]! }));
}

describe.skipIf(reason !== undefined)('Postfix + OpenDKIM milter: stored with Authentication-Results dkim=pass', () => {
  const cases: Case[] = [];
  let dir: string;
  const key = (a: DkimAlgorithm) => readFileSync(join(STATE, 'keys', a === 'rsa-sha256' ? 'rsa.pem' : 'ed25519.pem'));
  const dkim = (a: DkimAlgorithm, c: DkimCanonicalization, selector?: string): DkimOptions =>
    ({ domain: 'example.com', selector: selector ?? (a === 'rsa-sha256' ? 'rsa' : 'ed'), privateKey: key(a), algorithm: a, canonicalization: c });

  beforeAll(async () => {
    execFileSync('bash', [join(HERE, 'servers.sh'), 'start'], { stdio: 'inherit', env: { ...process.env, DKIM_E2E_STATE: STATE } });
    for (const sub of ['new', 'cur']) for (const f of readdirSync(join(MAILDIR, sub))) rmSync(join(MAILDIR, sub, f));
    dir = mkdtempSync(join(tmpdir(), 'dkim-e2e-'));
    const run = Date.now().toString(36);
    let n = 0;
    const send = async (label: string, bytes: Buffer, kind: InputKind, signing: DkimOptions | DkimOptions[], expected: Case['expected'], chunking = true) => {
      const messageId = `<e2e-${run}-${n++}@example.com>`;
      const text = bytes.toString('latin1').replace(/^Message-ID: .*\r\n/m, '').replace('\r\n\r\n', `\r\nMessage-ID: ${messageId}\r\n\r\n`);
      const withId = Buffer.from(text.includes(messageId) ? text : `Message-ID: ${messageId}\r\n${text}`, 'latin1');
      const smtp = await SMTP.connect({ host: '127.0.0.1', port: PORT, chunking });
      const input: MessageInput = toInput(kind, withId, dir, label);
      const utf8 = /[^\x00-\x7f]/.test(text);
      if (utf8) await smtp.deliverMessage(input, { dkim: signing, to: 'bob@example.test' });
      else await smtp.deliver('alice@example.com', ['bob@example.test'], input, { dkim: signing });
      await smtp.quit();
      cases.push({ label, messageId, expected });
    };
    const plain = HARD_CASES.find((c) => c.name === 'plain')!.bytes;
    for (const a of ALGORITHMS) for (const c of CANONICALIZATIONS) await send(`${a} ${c}, string, BDAT`, plain, 'string', dkim(a, c), ['pass']);
    for (const a of ALGORITHMS) {
      await send(`${a}, file (read twice)`, plain, 'file', dkim(a, 'relaxed/relaxed'), ['pass']);
      await send(`${a}, one-shot stream past 1 MiB (spooled)`, largeCase().bytes, 'stream', dkim(a, 'relaxed/relaxed'), ['pass']);
      await send(`${a}, EmailMessage (stream() twice)`, plain, 'EmailMessage', dkim(a, 'simple/simple'), ['pass']);
      await send(`${a}, UTF-8 headers under SMTPUTF8`, HARD_CASES.find((c) => c.utf8)!.bytes, 'Buffer', dkim(a, 'relaxed/relaxed'), ['pass']);
    }
    const dots = HARD_CASES.find((c) => c.name === 'dot-stuffing')!.bytes;
    await send('RSA + Ed25519 (dual), DATA with dot-stuffing', dots, 'Buffer', [dkim('rsa-sha256', 'relaxed/relaxed'), dkim('ed25519-sha256', 'simple/simple')], ['pass', 'pass'], false);
    for (const c of HARD_CASES.filter((h) => !h.utf8)) {
      await send(`hard case "${c.name}", RSA + Ed25519 relaxed/relaxed`, c.bytes, 'Buffer', [dkim('rsa-sha256', 'relaxed/relaxed'), dkim('ed25519-sha256', 'relaxed/relaxed')], ['pass', 'pass']);
    }
    // Negative control: an RSA signature that names the Ed25519 key's selector.
    await send('control: RSA signature under the Ed25519 selector', plain, 'string', dkim('rsa-sha256', 'relaxed/relaxed', 'ed'), ['fail']);

    // Postfix delivers asynchronously: wait until every Message-ID is in the Maildir.
    const deadline = Date.now() + 60_000;
    const found = new Map<string, string>();
    while (found.size < cases.length && Date.now() < deadline) {
      for (const f of readdirSync(join(MAILDIR, 'new'))) {
        const text = readFileSync(join(MAILDIR, 'new', f), 'latin1');
        const id = /^Message-ID: (<[^>]+>)/im.exec(text)?.[1];
        if (id) found.set(id, text);
      }
      if (found.size < cases.length) await new Promise((r) => setTimeout(r, 250));
    }
    for (const c of cases) c.results = found.has(c.messageId) ? authenticationResults(found.get(c.messageId)!) : undefined;
    // `DKIM_E2E=1 node test/dkim/report.mjs` puts this in docs/dkim.md.
    if (process.env.DKIM_E2E_REPORT) writeFileSync(process.env.DKIM_E2E_REPORT, JSON.stringify(cases, null, 1));
  }, 240_000);

  afterAll(() => {
    execFileSync('bash', [join(HERE, 'servers.sh'), 'stop'], { stdio: 'inherit', env: { ...process.env, DKIM_E2E_STATE: STATE } });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('every message reached the Maildir', () => {
    expect(cases.filter((c) => !c.results).map((c) => c.label)).toEqual([]);
  });

  it('OpenDKIM reports dkim=pass for every signature (and fail for the control)', () => {
    const wrong = cases.filter((c) => JSON.stringify(c.results!.map((r) => r.result === 'pass' ? 'pass' : 'fail')) !== JSON.stringify(c.expected));
    expect(wrong.map((c) => `${c.label}: ${JSON.stringify(c.results)}`)).toEqual([]);
  });

  it('both algorithms were verified by the milter', () => {
    const passed = new Set(cases.flatMap((c) => c.results!.filter((r) => r.result === 'pass').map((r) => r.algorithm)));
    expect([...passed].sort()).toEqual(['ed25519-sha256', 'rsa-sha256']);
  });
});
