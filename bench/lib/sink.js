// Builds and drives the C sink (bench/sink.c): compile, start, and a tiny control client.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const WORK_DIR = join(BENCH_DIR, '.work');

/** Compiles bench/sink.c; uses OpenSSL's SHA-256 when its headers are there, else CRC-32. */
export function buildSink() {
  mkdirSync(WORK_DIR, { recursive: true });
  const out = join(WORK_DIR, 'sink');
  const src = join(BENCH_DIR, 'sink.c');
  const withSsl = existsSync('/usr/include/openssl/evp.h');
  const args = ['-O2', '-Wall', '-o', out, src];
  if (withSsl) args.splice(1, 0, '-DHAVE_OPENSSL'), args.push('-lcrypto');
  try {
    execFileSync('gcc', args, { stdio: ['ignore', 'inherit', 'inherit'] });
  } catch (e) {
    if (!withSsl) throw e;
    execFileSync('gcc', ['-O2', '-Wall', '-o', out, src], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  return out;
}

/** Starts the sink; resolves { proc, port, ctrlPort, hashAlgo }. */
export function startSink(bin) {
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, [], { stdio: ['ignore', 'pipe', 'inherit'] });
    const rl = createInterface({ input: proc.stdout });
    rl.once('line', (line) => {
      const m = /^SMTP (\d+) CONTROL (\d+) HASH (\w+)/.exec(line);
      if (!m) return reject(new Error('sink said: ' + line));
      resolve({ proc, port: Number(m[1]), ctrlPort: Number(m[2]), hashAlgo: m[3] });
    });
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error('sink exited ' + code)));
  });
}

/** Line-based control connection to the sink. */
export class SinkControl {
  static connect(port, host = '127.0.0.1') {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ port, host }, () => resolve(new SinkControl(sock)));
      sock.once('error', reject);
    });
  }
  constructor(sock) {
    this.sock = sock;
    this.buf = '';
    this.waiters = [];
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        const w = this.waiters.shift();
        if (w) w(line);
      }
    });
  }
  cmd(line) {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.sock.write(line + '\n');
    });
  }
  config(opts) {
    const parts = Object.entries(opts).map(([k, v]) => `${k}=${Number(v)}`);
    return this.cmd('CONFIG ' + parts.join(' '));
  }
  reset() {
    return this.cmd('RESET');
  }
  async stats() {
    return JSON.parse(await this.cmd('STATS'));
  }
  close() {
    this.sock.end();
    this.sock.unref();
  }
}
