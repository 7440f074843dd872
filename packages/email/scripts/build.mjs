// Builds the package (ESM with declarations) into a fresh folder that
// replaces dist/ in one rename, so a test run never sees a half-written dist/.
import { execFileSync } from 'node:child_process';
import { renameSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(root, '..', '..', 'node_modules', '.bin', 'tsc');
const out = join(root, `dist.tmp-${process.pid}`);
rmSync(out, { recursive: true, force: true });
try {
  execFileSync(tsc, ['-p', join(root, 'tsconfig.json'), '--outDir', out], { stdio: 'inherit' });
  const old = join(root, `dist.old-${process.pid}`);
  try { renameSync(join(root, 'dist'), old); } catch { /* first build */ }
  renameSync(out, join(root, 'dist'));
  rmSync(old, { recursive: true, force: true });
} catch {
  rmSync(out, { recursive: true, force: true });
  process.exit(1);
}
