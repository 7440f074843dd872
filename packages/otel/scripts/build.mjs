// Builds smtplib-otel (ESM only) into dist/.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
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
