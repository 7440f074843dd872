// A new user's first day, literally: a fresh clone, the README's two set-up
// commands, then the README's command-line examples exactly as written (the
// server block in the background, the client block with bash -e), checked by
// their exit codes and by what the server received. Run by
// `npm run test:first-day` and .ci/suites/20-first-day.sh.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'smtplib-first-day-'));
const clone = join(work, 'repo');
let server: ChildProcess | undefined;
let serverOutput = '';

/** The fenced sh block that follows `<!-- cli-examples: NAME -->` in the README. */
function example(readme: string, name: string): string {
  const m = new RegExp(`<!-- cli-examples: ${name} -->\\n\`\`\`sh\\n([\\s\\S]*?)\`\`\``).exec(readme);
  if (!m) throw new Error(`README.md has no <!-- cli-examples: ${name} --> block`);
  return m[1]!;
}

function sh(command: string, timeoutMs: number): { code: number; out: string } {
  try {
    const out = execFileSync('bash', ['-e', '-o', 'pipefail', '-c', command], { cwd: clone, encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: process.env.CI ?? '' } });
    return { code: 0, out };
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string };
    return { code: e.status ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = net.createServer().once('error', () => r(false)).listen(port, '127.0.0.1', () => s.close(() => r(true)));
  });
}

beforeAll(() => {
  // A clone of the committed tree: what a new user gets, nothing uncommitted.
  execFileSync('git', ['clone', '-q', ROOT, clone], { stdio: 'inherit' });
}, 120_000);

afterAll(async () => {
  if (server?.pid && server.exitCode === null) {
    process.kill(-server.pid, 'SIGTERM');
    await new Promise((r) => server!.once('close', r));
  }
  rmSync(work, { recursive: true, force: true });
});

describe('first day, from a fresh clone', () => {
  it('the README\'s two set-up commands: npm ci && npm start', () => {
    // --prefer-offline: the packages come from the npm cache the outer `npm ci` filled.
    const ci = sh('npm ci --prefer-offline --no-audit --no-fund', 600_000);
    expect(ci.code, ci.out).toBe(0);
    const start = sh('npm start', 300_000);
    expect(start.code, start.out).toBe(0);
    expect(start.out).toMatch(/The server received:/);
  }, 900_000);

  it('npx smtplib works without a second install; bare smtplib prints help and exits 64', () => {
    const version = sh('npx smtplib --version', 60_000);
    expect(version.code, version.out).toBe(0);
    const bare = sh('npx smtplib', 60_000);
    expect(bare.code).toBe(64);
    expect(bare.out).toMatch(/Usage: smtplib/);
  }, 120_000);

  it('the README\'s command-line examples, as written', async () => {
    const readme = readFileSync(join(clone, 'README.md'), 'utf8');
    const serverBlock = example(readme, 'server');
    const clientBlock = example(readme, 'client');
    if (!(await portFree(1025))) throw new Error('port 1025 is in use: the README\'s examples use it; stop what listens there');
    server = spawn('bash', ['-c', serverBlock], { cwd: clone, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout!.setEncoding('utf8').on('data', (d: string) => (serverOutput += d));
    server.stderr!.setEncoding('utf8').on('data', (d: string) => (serverOutput += d));
    const deadline = Date.now() + 60_000;
    while (!/listening on 127\.0\.0\.1:1025/.test(serverOutput)) {
      if (server.exitCode !== null || Date.now() > deadline) throw new Error(`the README's server example did not start: ${serverOutput}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const client = sh(clientBlock, 300_000);
    expect(client.code, client.out).toBe(0);
    // What each example printed.
    expect(client.out).toMatch(/accepted by localhost:1025 for 1 recipient\(s\)/);
    expect(client.out).toMatch(/chain trusted; name matches/);
    expect(client.out).toMatch(/^Summary: 2 message\(s\), 2 sent in full, 0 not; recipients: 3 delivered/m);
    // What the server received: the send, the sendmail (Bcc gone), the two batch messages.
    await new Promise((r) => setTimeout(r, 500));
    for (const rcpt of ['bob@example.test', 'carol@example.test', 'dan@example.test']) expect(serverOutput).toContain(rcpt);
    expect(serverOutput).not.toMatch(/^Bcc:/m);
  }, 600_000);
});
