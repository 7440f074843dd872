// Builds one workspace package (run by its `npm run build`, so the working
// directory is the package): tsc with the package's tsconfig.json into
// dist/, and when the package has a tsconfig.cjs.json (smtplib) a second,
// CommonJS build into dist/cjs with its own {"type":"commonjs"} marker.
// Output goes to a fresh folder that replaces dist/ in one rename, so a test
// run or another build never sees a half-written dist/. Files of dist/ that
// start with a #! line are made executable (the CLI's entry points), and the
// repository's LICENSE is copied next to package.json so that `npm pack`
// ships it (the copy is git-ignored: one LICENSE in git).
//
// smtplib's two entry points (dist/esm/index.js, dist/cjs/index.js), and
// smtplib-email's one (dist/index.js), are then replaced by a bundle of the
// modules each reaches (rolldown, no minifying; a
// lazily imported module stays a chunk of its own in dist/<format>/chunks/). Why:
// Node keeps a per-module cost in memory, and importing the 70-odd modules one by
// one raised RSS by 13 MB against 6-7 MB for the same code bundled (measured on
// Node 20: `import('smtplib')` then gc, RSS before and after). The per-module files
// stay in dist/ for the repository's own scripts that import an internal module;
// package.json's "files" ships only the bundles and the declaration files.
// The bundles carry no comments (the declaration files keep the documentation)
// and only ASCII (other characters escaped): V8 keeps a module's source text in
// the heap for as long as the module lives, and a handful of "–" and "→" in
// comments made smtplib's 330 KB source a two-byte string. Heap kept after
// `import('smtplib')` and a gc: 1,809 KB -> 1,426 KB (Node 20).
//
// `node build-package.mjs --check` (the packages' `prepack`) builds nothing:
// it fails when dist/ or the LICENSE copy is missing, so a tarball is never
// packed from an unbuilt tree.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repository = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = process.cwd();
const name = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).name;

if (process.argv.includes('--check')) {
  const missing = ['dist', 'LICENSE'].filter((file) => !existsSync(join(pkg, file)));
  if (missing.length > 0) {
    process.stderr.write(`${name}: ${missing.join(' and ')} missing: run \`npm run build\` at the root of the repository before packing\n`);
    process.exit(1);
  }
  process.exit(0);
}

/**
 * Packages whose entry points are bundled (see the comment at the top).
 * smtplib-email (ESM only, dist/index.js): `import('smtplib-email')` raised
 * RSS by 8.6-8.7 MB one module at a time, 3.0-3.1 MB bundled (Node 20).
 */
const BUNDLED = new Set(['smtplib', 'smtplib-email']);

/** Replaces dist/{esm,cjs}/index.js (or dist/index.js of an ESM-only package) under `out` by a bundle of what each reaches. */
async function bundleEntryPoints(out, dual) {
  const { build } = await import('rolldown');
  for (const format of dual ? ['esm', 'cjs'] : ['esm']) {
    const dir = dual ? join(out, format) : out;
    const bundled = join(out, `${format}-bundle`);
    await build({
      input: join(dir, 'index.js'),
      cwd: out, // region comments name cjs/client/smtp.js, not this build's temporary folder
      platform: 'node',
      logLevel: 'warn',
      write: true,
      output: { dir: bundled, format, entryFileNames: 'index.js', chunkFileNames: 'chunks/[name]-[hash].js', minify: false, comments: false, charset: 'ascii' },
    });
    renameSync(join(bundled, 'index.js'), join(dir, 'index.js'));
    if (existsSync(join(bundled, 'chunks'))) renameSync(join(bundled, 'chunks'), join(dir, 'chunks'));
    rmSync(bundled, { recursive: true, force: true });
  }
}

const tsc = join(repository, 'node_modules', '.bin', 'tsc');
const out = join(pkg, `dist.tmp-${process.pid}`);
const cjsConfig = join(pkg, 'tsconfig.cjs.json');
const dual = existsSync(cjsConfig);

rmSync(out, { recursive: true, force: true });
try {
  execFileSync(tsc, ['-p', join(pkg, 'tsconfig.json'), '--outDir', dual ? join(out, 'esm') : out], { stdio: 'inherit' });
  if (dual) {
    execFileSync(tsc, ['-p', cjsConfig, '--outDir', join(out, 'cjs')], { stdio: 'inherit' });
    writeFileSync(join(out, 'cjs', 'package.json'), '{ "type": "commonjs" }\n');
  }
  if (BUNDLED.has(name)) await bundleEntryPoints(out, dual);
  for (const file of readdirSync(out, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.js')) continue;
    const path = join(out, file);
    if (readFileSync(path, 'utf8').startsWith('#!')) chmodSync(path, 0o755);
  }
  const old = join(pkg, `dist.old-${process.pid}`);
  try { renameSync(join(pkg, 'dist'), old); } catch { /* first build */ }
  renameSync(out, join(pkg, 'dist'));
  rmSync(old, { recursive: true, force: true });
  copyFileSync(join(repository, 'LICENSE'), join(pkg, 'LICENSE'));
} catch (error) {
  rmSync(out, { recursive: true, force: true });
  process.stderr.write(`${name}: build failed${error instanceof Error && 'status' in error ? '' : `: ${error}`}\n`);
  process.exit(1);
}
