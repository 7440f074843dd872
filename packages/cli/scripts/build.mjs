// Builds the CLI (ESM only) into dist/ and marks the bin entry points executable.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(root, '..', '..', 'node_modules', '.bin', 'tsc');
rmSync(join(root, 'dist'), { recursive: true, force: true });
try {
  execFileSync(tsc, ['-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
} catch {
  process.exit(1);
}
for (const bin of ['bin.js', 'sendmail-bin.js']) {
  const file = join(root, 'dist', bin);
  if (existsSync(file)) chmodSync(file, 0o755);
}
