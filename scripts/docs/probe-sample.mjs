// The README's probe sample: `smtplib probe` against `smtplib serve` with
// STARTTLS (a freshly generated certificate), AUTH and SIZE, started here.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startServe, transcript } from './lib.mjs';

export default async function probeSample({ root }) {
  const dir = mkdtempSync(join(tmpdir(), 'smtplib-docs-'));
  const cert = join(dir, 'serve.pem');
  const server = await startServe(root, ['--starttls', '--auth', 'alice:secret', '--size', '10485760', '--cert-out', cert]);
  try {
    const args = ['probe', `localhost:${server.port}`, '--ca', cert];
    const r = await runCli(root, args);
    if (r.code !== 0) throw new Error(`probe exited ${r.code}: ${r.stdout}${r.stderr}`);
    return transcript(`npx smtplib probe localhost:PORT --ca serve.pem   # PORT: a \`smtplib serve --starttls --auth alice:secret --size 10485760\``, r.stdout.replaceAll(String(server.port), 'PORT'));
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
