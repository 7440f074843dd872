// Helpers for the CLI tests: run the built command, start servers on port 0.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import net from 'node:net';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'packages', 'cli', 'dist', 'bin.js');
export const SENDMAIL_BIN = join(ROOT, 'packages', 'cli', 'dist', 'sendmail-bin.js');

export function assertBuilt(): void {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npm run build\` first`);
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(
  args: string[],
  opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; bin?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [opts.bin ?? BIN, ...args], {
      env: { ...process.env, SMTPLIB_CONFIG: '', XDG_CONFIG_HOME: join(tmpdir(), 'smtplib-cli-test-no-config'), ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out: smtplib ${args.join(' ')}\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** A port nothing listens on (bound, then released). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export function tempDir(prefix = 'smtplib-cli-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Starts `smtplib serve` as a child process; resolves with its port once it listens. */
export function spawnServe(args: string[]): Promise<{ port: number; output: () => string; stop: () => Promise<number | null> }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let started = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start: ${out} ${err}`));
    }, 15_000);
    const stop = (): Promise<number | null> =>
      new Promise((r) => {
        if (child.exitCode !== null) return r(child.exitCode);
        child.once('close', (code) => r(code));
        child.kill('SIGTERM');
      });
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /listening on 127\.0\.0\.1:(\d+)|"port":(\d+)/.exec(out);
      if (m && !started) {
        started = true;
        clearTimeout(timer);
        resolvePromise({ port: Number(m[1] ?? m[2]), output: () => out, stop });
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('close', (code) => {
      if (!started) {
        clearTimeout(timer);
        reject(new Error(`serve exited with ${code}: ${out} ${err}`));
      }
    });
  });
}

export async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
