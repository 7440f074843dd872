// Builds the library twice: ESM (dist/esm) and CommonJS (dist/cjs), both with
// declarations, so `import` and `require` each get native code and types.
// Output goes to a fresh folder that replaces dist/ in one rename, so a test
// run or another build never sees a half-written dist/.
import { execFileSync } from 'node:child_process';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(root, '..', '..', 'node_modules', '.bin', 'tsc');
const out = join(root, `dist.tmp-${process.pid}`);
rmSync(out, { recursive: true, force: true });
try {
  execFileSync(tsc, ['-p', join(root, 'tsconfig.json'), '--outDir', join(out, 'esm')], { stdio: 'inherit' });
  execFileSync(tsc, ['-p', join(root, 'tsconfig.cjs.json'), '--outDir', join(out, 'cjs')], { stdio: 'inherit' });
  writeFileSync(join(out, 'cjs', 'package.json'), '{ "type": "commonjs" }\n');
  const old = join(root, `dist.old-${process.pid}`);
  try { renameSync(join(root, 'dist'), old); } catch { /* first build */ }
  renameSync(out, join(root, 'dist'));
  rmSync(old, { recursive: true, force: true });
} catch (error) {
  rmSync(out, { recursive: true, force: true });
  throw error;
}
