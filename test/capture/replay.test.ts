// Record and replay: a recording (or a debugLevel 1 log) is in the format of
// the project's transcript tests, runs there unchanged, and a replay server
// answers each client exactly as recorded, scripted failures included.
import { afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';
import * as smtplib from 'smtplib';
import { startCapture, type CaptureOptions } from '../../packages/capture/src/index.js';
import { startReplay } from '../../packages/capture/src/testing.js';
import { loadTranscript, runTranscript } from '../support/transcript.js';
import { expectReplayed } from '../support/transcript-suite.js';
import { testPki } from '../support/certs.js';

const PY_CLIENT = fileURLToPath(new URL('./py_client.py', import.meta.url));
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'capture-replay-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs `session` against a recording capture server; returns the one recording it made. */
async function record(opts: CaptureOptions, session: (port: number) => Promise<unknown>): Promise<{ file: string; text: string }> {
  const dir = tempDir();
  const s = await startCapture({ port: 0, http: false, recordDir: dir, ...opts });
  try {
    await session(s.smtp.port);
    // The recording is written when the server sees the connection close.
    for (let i = 0; i < 100 && readdirSync(dir).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  } finally {
    await s.close();
  }
  const files = readdirSync(dir);
  expect(files).toHaveLength(1);
  const file = join(dir, files[0]!);
  return { file, text: readFileSync(file, 'utf8') };
}

const MESSAGE = 'From: alice@example.org\r\nSubject: hi\r\n\r\nHello\r\n.dot\r\n';

async function oursSend(port: number, to: string[], extra: Partial<smtplib.SMTPOptions> = {}): Promise<unknown> {
  const c = await smtplib.SMTP.connect({ host: '127.0.0.1', port, localHostname: 'client.test', tlsPolicy: 'none', ...extra });
  try {
    const refused = await c.sendmail('alice@example.org', to, MESSAGE);
    await c.quit();
    return Object.fromEntries([...refused].map(([a, r]) => [a, r.code]));
  } catch (err) {
    c.close();
    return { error: (err as Error).name, code: (err as { smtpCode?: number }).smtpCode };
  }
}

describe('record', () => {
  it('writes both directions with timings, in the transcript-test format, AUTH redacted', async () => {
    const { text } = await record({ auth: [{ user: 'alice', pass: 'correct horse' }] }, async (port) => {
      const c = await smtplib.SMTP.connect({ host: '127.0.0.1', port, localHostname: 'client.test', tlsPolicy: 'none' });
      await c.login('alice', 'correct horse');
      await c.sendmail('alice@example.org', ['bob@example.org'], MESSAGE);
      await c.quit();
    });
    const lines = text.split('\n');
    expect(lines[0]).toBe('# class: SMTP');
    expect(lines[1]).toMatch(/^# recorded: \d{4}-\d\d-\d\dT[\d:.]+Z from 127\.0\.0\.1:\d+ to 127\.0\.0\.1:\d+$/);
    const timing = JSON.parse(lines[2]!.replace('# timing: ', '')) as number[];
    const wire = lines.slice(3).filter((l) => /^[SC]: /.test(l));
    expect(timing).toHaveLength(wire.length);
    expect([...timing].sort((a, b) => a - b)).toEqual(timing);
    expect(wire[0]).toMatch(/^S: 220 /);
    expect(wire).toContain('C: EHLO client.test');
    expect(wire.find((l) => l.startsWith('C: AUTH '))).toMatch(/^C: AUTH (PLAIN \*\*\*\*|LOGIN|CRAM-MD5)$/);
    expect(text).not.toContain('correct horse');
    expect(text).not.toContain(Buffer.from('\0alice\0correct horse').toString('base64'));
    expect(wire).toContain('C: ..dot');
    expect(wire.slice(-2)).toEqual(['C: QUIT', expect.stringMatching(/^S: 221 /)]);
  });

  it('a recording pastes into the transcript tests: it runs there whole and split byte by byte', async () => {
    const { text } = await record({}, (port) => oursSend(port, ['bob@example.org', 'carol@example.org']));
    const dir = tempDir();
    const file = join(dir, 'from-recording.smtp');
    writeFileSync(file, `# call: sendmail ["alice@example.org", ["bob@example.org", "carol@example.org"], ${JSON.stringify(MESSAGE)}]\n# result: {}\n# call: quit\n# result: {"code": 221}\n${text}`);
    const t = loadTranscript(file);
    for (const split of ['whole', 'byte', 'line'] as const) {
      expectReplayed(await runTranscript(t, split), split);
    }
  });

  it('so does a debugLevel 1 log of our client', async () => {
    const log: string[] = [];
    const s = await startCapture({ port: 0, http: false });
    cleanups.push(() => s.close());
    await oursSend(s.smtp.port, ['bob@example.org'], { debugLevel: 1, debugOutput: (l: string) => log.push(l) });
    expect(log.some((l) => l.startsWith("send: 'MAIL FROM:<alice@example.org>"))).toBe(true);
    const file = join(tempDir(), 'from-debug-log.smtp');
    writeFileSync(file, `# call: sendmail ["alice@example.org", ["bob@example.org"], ${JSON.stringify(MESSAGE)}]\n# result: {}\n# call: quit\n${log.join('\n')}\n`);
    expectReplayed(await runTranscript(loadTranscript(file), 'random', 7));
    // And the replay server takes the same log.
    const replay = await startReplay({ text: log.join('\n') });
    cleanups.push(() => replay.close());
    expect(await oursSend(replay.port, ['bob@example.org'])).toEqual({});
    expect((await replay.nextSession()).mismatch).toBeUndefined();
  });
});

function python(port: number, to: string[], extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile('/usr/bin/python3', [PY_CLIENT, JSON.stringify({ port, from: 'alice@example.org', to, msg: MESSAGE, ...extra })], { timeout: 20_000 }, (err, out, stderr) =>
      err ? reject(new Error(stderr || err.message)) : resolve(JSON.parse(out)),
    );
  });
}

async function nodemailerSend(port: number, to: string[]): Promise<unknown> {
  const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, name: 'nodemailer.test' });
  try {
    const info = await t.sendMail({ envelope: { from: 'alice@example.org', to }, raw: MESSAGE });
    return { accepted: info.accepted, rejected: info.rejected, codes: (info.rejectedErrors ?? []).map((e: { responseCode?: number }) => e.responseCode) };
  } catch (err) {
    return { error: (err as { command?: string }).command, code: (err as { responseCode?: number }).responseCode };
  } finally {
    t.close();
  }
}

const CLIENTS = {
  ours: (port: number, to: string[]) => oursSend(port, to),
  python: (port: number, to: string[]) => python(port, to),
  nodemailer: (port: number, to: string[]) => nodemailerSend(port, to),
};

describe.each(Object.keys(CLIENTS) as (keyof typeof CLIENTS)[])('replay driven by %s', (name) => {
  const client = CLIENTS[name];

  it('answers exactly as recorded: the scripted 550 and 451 come back without a capture server', async () => {
    const to = ['ok@example.org', 'x@blocked.test'];
    let live: unknown;
    const { file } = await record({ failures: ['RCPT to=~@blocked\\.test -> 550 5.1.1 no such user'] }, async (port) => (live = await client(port, to)));
    const replay = await startReplay({ file });
    cleanups.push(() => replay.close());
    const replayed = await client(replay.port, to);
    expect(replayed).toEqual(live);
    const session = await replay.nextSession();
    expect(session.mismatch).toBeUndefined();
    expect(session.completed).toBe(session.steps);
    expect(JSON.stringify(replayed)).toContain('550');

    const { file: deferred } = await record({ failures: ['DATA -> 451 4.3.0 try later'] }, (port) => client(port, ['ok@example.org']));
    const replay2 = await startReplay({ file: deferred });
    cleanups.push(() => replay2.close());
    expect(JSON.stringify(await client(replay2.port, ['ok@example.org']))).toContain('451');
  });

  it('a client that differs from the recording gets 421 and the mismatch is reported', async () => {
    const { file } = await record({}, (port) => client(port, ['bob@example.org']));
    const replay = await startReplay({ file });
    cleanups.push(() => replay.close());
    const seen = await client(replay.port, ['mallory@example.org']);
    // Our client treats a 421 as the end of the connection (SMTPServerDisconnected); the others show the code.
    expect(JSON.stringify(seen)).toMatch(name === 'ours' ? /SMTPServerDisconnected/ : /421/);
    const session = await replay.nextSession();
    // (Python's smtplib writes "rcpt TO:", as it was recorded.)
    expect(session.mismatch).toEqual({
      step: expect.any(Number),
      expected: expect.stringMatching(/^RCPT TO:<bob@example\.org>$/i),
      actual: expect.stringMatching(/^RCPT TO:<mallory@example\.org>$/i),
    });
  });
});

describe('replay with STARTTLS and redacted AUTH', () => {
  it('upgrades where the recording says and accepts any credentials where they were redacted', async () => {
    const { server } = testPki();
    const session = async (port: number, password: string) => {
      const c = await smtplib.SMTP.connect({ host: '127.0.0.1', port, localHostname: 'client.test', tlsPolicy: 'required', tls: { ca: testPki().ca, servername: 'localhost' } });
      await c.login('alice', password);
      await c.sendmail('alice@example.org', ['bob@example.org'], MESSAGE);
      await c.quit();
      return c;
    };
    const { file, text } = await record({ starttls: true, cert: server.cert, key: server.key, auth: [{ user: 'alice', pass: 'pw-1' }] }, (port) => session(port, 'pw-1'));
    expect(text).toContain('S: <starttls>');
    const replay = await startReplay({ file }, { cert: server.cert, key: server.key });
    cleanups.push(() => replay.close());
    await session(replay.port, 'a-different-password');
    const s = await replay.nextSession();
    expect(s.mismatch).toBeUndefined();
    expect(s.completed).toBe(s.steps);
  });
});
