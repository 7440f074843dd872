// DKIM signing cost: signed messages per second and the sender's peak RSS,
// ours (rsa-sha256 and ed25519-sha256) beside nodemailer's DKIM (rsa-sha256
// only), on the same 1 KB and 20 MB messages, each cell a fresh process
// (bench/dkim-cell.js) sending to the bench sink on one connection, awaited
// one by one. Unsigned sends of each client are the baseline.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CELL = fileURLToPath(new URL('../dkim-cell.js', import.meta.url));

function cell(args, timeoutMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CELL, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (line) resolve(JSON.parse(line.slice(7)));
      else reject(new Error(`dkim cell ${args.join(' ')} exited ${code}: ${err.slice(-800)}`));
    });
  });
}

export async function run({ quick, host, port }) {
  const sizes = quick
    ? [{ label: '1 KB', size: '1k', count: 100 }, { label: '2 MB', size: String(2 * 1024 * 1024), count: 2 }]
    : [{ label: '1 KB', size: '1k', count: 2000 }, { label: '20 MB', size: String(20 * 1024 * 1024), count: 5 }];
  const rows = [
    ['smtplib (ours)', 'smtplib', 'none'],
    ['smtplib (ours)', 'smtplib', 'rsa-sha256'],
    ['smtplib (ours)', 'smtplib', 'ed25519-sha256'],
    ['nodemailer 10.6.1', 'nodemailer', 'none'],
    ['nodemailer 10.6.1', 'nodemailer', 'rsa-sha256'],
  ];
  const lines = [
    '## DKIM signing',
    '',
    'Messages per second (sent and accepted by the sink, one connection, each send awaited) and the sending',
    "process's peak RSS, with DKIM (relaxed/relaxed, 2048-bit RSA or Ed25519) and without. Each cell is a",
    `fresh process (\`bench/dkim-cell.js\`). ${quick ? 'QUICK run: small counts.' : ''}`,
    '',
    `| client | signature | ${sizes.map((s) => `${s.label}: msgs/s | ${s.label}: peak RSS`).join(' | ')} |`,
    `| --- | --- | ${sizes.map(() => '---: | ---:').join(' | ')} |`,
  ];
  for (const [label, client, algorithm] of rows) {
    const cells = [];
    for (const s of sizes) {
      const r = await cell([client, algorithm, s.size, String(s.count), host, String(port)], quick ? 120e3 : 600e3);
      cells.push(`${r.msgsPerSec >= 100 ? r.msgsPerSec.toFixed(0) : r.msgsPerSec.toFixed(2)} | ${r.peakRssMB.toFixed(0)} MB`);
    }
    lines.push(`| ${label} | ${algorithm === 'none' ? 'none (baseline)' : algorithm} | ${cells.join(' | ')} |`);
  }
  lines.push('', 'nodemailer has no ed25519-sha256. Command: `BENCH_ONLY=suites BENCH_SUITES=dkim npm run bench`.', '');
  return lines.join('\n');
}
