// The README's batch report sample: `smtplib send --batch` against
// `smtplib serve`, started here, with one recipient refused by the server.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startServe, transcript } from './lib.mjs';

export default async function batchSample({ root }) {
  const dir = mkdtempSync(join(tmpdir(), 'smtplib-docs-'));
  const file = join(dir, 'mails.jsonl');
  writeFileSync(
    file,
    [
      { from: 'news@example.test', to: ['ann@example.test', 'bob@example.test'], subject: 'Issue 1', text: 'first' },
      { from: 'news@example.test', to: 'gone@example.test', subject: 'Issue 1', text: 'first' },
    ]
      .map((l) => JSON.stringify(l))
      .join('\n') + '\n',
  );
  const server = await startServe(root, ['--quiet', '--refuse-rcpt', 'gone@example.test=550 5.1.1 No such user']);
  try {
    const r = await runCli(root, ['send', '--server', `127.0.0.1:${server.port}`, '--batch', file]);
    const out = r.stdout.replace(/[\d.]+ s via/, 'N s via').replace(/queued as [0-9A-Za-z]+/g, 'queued as ID');
    return transcript('npx smtplib send --server 127.0.0.1:PORT --batch mails.jsonl', `${out.replace(/\s+$/, '')}\n$ echo $?\n${r.code}`);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
