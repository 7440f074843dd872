// Helpers for producers of generated blocks: the built CLI, run for real.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export function cliBin(root) {
  const bin = join(root, 'packages', 'cli', 'dist', 'bin.js');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`npm run build\` first`);
  return bin;
}

/** Runs `smtplib ARGS` and collects its output. */
export function runCli(root, args, { input, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliBin(root), ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

/** Starts `smtplib serve --port 0 ARGS`; resolves once it listens. */
export function startServe(root, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliBin(root), 'serve', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start: ${out}`));
    }, 20_000);
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({
          port: Number(m[1]),
          output: () => out,
          stop: () => new Promise((r) => (child.exitCode !== null ? r() : (child.once('close', () => r()), child.kill('SIGTERM')))),
        });
      }
    });
    child.on('close', (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
  });
}

/** A fenced block holding what a command printed, with the command above it. */
export function transcript(command, output) {
  return `\`\`\`text\n$ ${command}\n${output.replace(/\s+$/, '')}\n\`\`\`\n`;
}
