// smtplib-email beside nodemailer's MailComposer (both: compose and serialize, no network):
// - a 1 KB text + HTML message, composed and serialized to bytes: messages per second;
// - a message with a 20 MB file attached, streamed out: MB/s and peak RSS of the process.
// Each figure comes from its own child process (bench/lib/email-cell.js); the median of 3 runs.
// Goal (issue 14): at least 2x MailComposer's throughput, at most 0.5x its peak memory.
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CELL = fileURLToPath(new URL('../lib/email-cell.js', import.meta.url));

function cell(args) {
  const r = spawnSync(process.execPath, [CELL, ...args], { encoding: 'utf8', timeout: 300_000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`email-cell ${args.join(' ')} failed: ${r.stderr || r.error}`);
  return JSON.parse(line.slice(7));
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run({ quick = false, workDir = join(fileURLToPath(new URL('..', import.meta.url)), '.work') } = {}) {
  mkdirSync(workDir, { recursive: true });
  const reps = quick ? 1 : 3;
  const ms = quick ? 300 : 2000;
  const mb = quick ? 2 : 20;
  const file = join(workDir, `email-attach-${mb}mb.bin`);
  const data = Buffer.alloc(mb * 1e6);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  writeFileSync(file, data);
  const rows = {};
  for (const lib of ['ours', 'nodemailer']) {
    const smalls = Array.from({ length: reps }, () => cell([lib, 'small', String(ms)]));
    const attaches = Array.from({ length: reps }, () => cell([lib, 'attach', file]));
    rows[lib] = {
      msgsPerSec: median(smalls.map((r) => r.msgsPerSec)),
      mbPerSec: median(attaches.map((r) => r.mbPerSec)),
      peakRssMB: median(attaches.map((r) => r.peakRssMB)),
      rssGrowthMB: median(attaches.map((r) => r.rssGrowthMB)),
    };
  }
  const o = rows.ours;
  const n = rows.nodemailer;
  const ratio = (a, b) => `${(a / b).toFixed(2)}x`;
  return [
    '## Messages (smtplib-email vs nodemailer MailComposer)',
    '',
    `Compose + serialize, no network; median of ${reps} runs, each in its own process. ${quick ? 'QUICK run: small counts.' : ''}`,
    '',
    `| | smtplib-email | MailComposer | ours / theirs | goal |`,
    `|---|---:|---:|---:|---|`,
    `| 1 KB text+HTML message, msgs/s | ${o.msgsPerSec.toFixed(0)} | ${n.msgsPerSec.toFixed(0)} | ${ratio(o.msgsPerSec, n.msgsPerSec)} | >= 2x |`,
    `| ${mb} MB attachment streamed, MB/s | ${o.mbPerSec.toFixed(1)} | ${n.mbPerSec.toFixed(1)} | ${ratio(o.mbPerSec, n.mbPerSec)} | >= 2x |`,
    `| ${mb} MB attachment, peak RSS MB | ${o.peakRssMB.toFixed(1)} | ${n.peakRssMB.toFixed(1)} | ${ratio(o.peakRssMB, n.peakRssMB)} | <= 0.5x |`,
    `| ${mb} MB attachment, RSS growth MB | ${o.rssGrowthMB.toFixed(1)} | ${n.rssGrowthMB.toFixed(1)} | ${ratio(o.rssGrowthMB, n.rssGrowthMB)} | |`,
    '',
  ].join('\n');
}

// `node bench/suites/email.js` runs it alone and prints the section.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(await run({ quick: process.env.BENCH_QUICK === '1' }));
}
