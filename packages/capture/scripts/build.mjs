// Builds the capture server (ESM only) into dist/. The web inbox in public/ is
// plain static files shipped as they are: nothing is built at run time.
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
