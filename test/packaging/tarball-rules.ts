// What a published tarball of this workspace may contain, and what its
// package.json and declaration files must satisfy so that an installed copy
// works: each rule returns the problems it found (empty: none).
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, posix } from 'node:path';

export interface PackageJson {
  name: string;
  version: string;
  description?: string;
  license?: string;
  keywords?: string[];
  homepage?: string;
  bugs?: { url?: string };
  repository?: { type?: string; url?: string; directory?: string };
  engines?: { node?: string };
  files?: string[];
  main?: string;
  types?: string;
  bin?: Record<string, string>;
  exports?: Record<string, unknown>;
  typesVersions?: Record<string, Record<string, string[]>>;
  dependencies?: Record<string, string>;
}

/** Files a tarball may hold besides package.json, README.md and LICENSE. */
const SHIPPED = [
  /^dist\/.+\.(js|d\.ts)$/,
  /^dist\/cjs\/package\.json$/, // smtplib's {"type":"commonjs"} marker
  /^bin\/[\w-]+\.js$/, // the CLI's committed bin shims
  /^public\/[\w.-]+\.(html|css|svg|js)$/, // the capture server's web inbox
];
const REQUIRED = ['package.json', 'README.md', 'LICENSE'];

export function fileListProblems(files: readonly string[]): string[] {
  const problems = REQUIRED.filter((f) => !files.includes(f)).map((f) => `${f} missing`);
  for (const f of files) {
    if (REQUIRED.includes(f)) continue;
    if (!SHIPPED.some((re) => re.test(f))) problems.push(`unexpected file ${f}`);
    if (/(^|\/)(test|tests|__tests__)\/|\.test\.|\.spec\.|tsbuildinfo|\.map$|dist\.(tmp|old)-/.test(f)) problems.push(`test, build or map file ${f}`);
  }
  return problems;
}

/** Every path a consumer or a tool reaches through package.json, as a tarball path. */
function entryPoints(pkg: PackageJson): string[] {
  const paths: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') paths.push(v);
    else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x);
  };
  walk(pkg.exports);
  walk(pkg.bin);
  walk(pkg.typesVersions);
  for (const f of [pkg.main, pkg.types]) if (f) paths.push(f);
  return paths.map((p) => posix.normalize(p));
}

export function manifestProblems(pkg: PackageJson, dir: string, files: readonly string[], repositoryUrl: string): string[] {
  const problems: string[] = [];
  if (pkg.license !== 'MIT') problems.push(`license is ${pkg.license}`);
  if (!pkg.keywords?.length) problems.push('no keywords');
  if (!pkg.homepage?.startsWith('https://')) problems.push('no homepage');
  if (!pkg.bugs?.url?.startsWith('https://')) problems.push('no bugs.url');
  if (pkg.repository?.url !== repositoryUrl) problems.push(`repository.url ${pkg.repository?.url} is not the workspace's ${repositoryUrl}`);
  if (pkg.repository?.directory !== `packages/${dir}`) problems.push(`repository.directory is ${pkg.repository?.directory}`);
  if (!pkg.engines?.node) problems.push('no engines.node');
  if (!pkg.files?.length) problems.push('no files');
  if (!pkg.main || !pkg.types) problems.push('no top-level main/types (moduleResolution node10 ignores exports)');
  for (const p of entryPoints(pkg)) if (p !== 'package.json' && !files.includes(p)) problems.push(`package.json names ${p}, which is not in the tarball`);
  // node10 ignores `exports`: a subpath needs a typesVersions entry to have types there.
  const mapped = pkg.typesVersions?.['*'] ?? {};
  for (const [sub, target] of Object.entries(pkg.exports ?? {})) {
    if (sub === '.' || sub === './package.json') continue;
    const types = (target as { types?: string }).types;
    const entry = mapped[sub.slice(2)];
    if (!types || !entry || posix.normalize(entry[0]!) !== posix.normalize(types)) problems.push(`exports["${sub}"] has no typesVersions entry for its types`);
  }
  return problems;
}

const builtins = new Set(builtinModules);
const isBuiltin = (s: string): boolean => s.startsWith('node:') || builtins.has(s.split('/')[0]!);
const packageOf = (s: string): string => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!);

/** Module specifiers of a JS or declaration file (static imports/exports, import(), require()). */
export function specifiers(source: string): string[] {
  const out: string[] = [];
  const re = /(?:^|[\s;])(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|\b(?:import|require)\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const m of source.matchAll(re)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

/**
 * In an unpacked tarball (`root`): every relative import of a shipped file
 * resolves to a shipped file, and every bare one is a Node built-in, the
 * package itself or one of its `dependencies` (a consumer has nothing else).
 */
export function importProblems(pkg: PackageJson, root: string, files: readonly string[]): string[] {
  const problems: string[] = [];
  const deps = new Set([pkg.name, ...Object.keys(pkg.dependencies ?? {})]);
  for (const f of files.filter((x) => /\.(js|d\.ts)$/.test(x))) {
    const text = readFileSync(join(root, f), 'utf8');
    if (/^\/\/# sourceMappingURL=/m.test(text)) problems.push(`${f} points at a source map`);
    // Comment lines hold usage examples, not imports.
    const source = text.replace(/^\s*(\/\/|\/\*|\*).*$/gm, '');
    for (const s of specifiers(source)) {
      if (s.startsWith('.')) {
        const target = posix.join(posix.dirname(f), s);
        const candidates = f.endsWith('.d.ts') ? [target.replace(/\.js$/, '.d.ts'), `${target}/index.d.ts`] : [target];
        if (!candidates.some((c) => files.includes(c) && existsSync(join(root, c)))) problems.push(`${f} imports ${s}, which is not shipped`);
      } else if (!isBuiltin(s) && !deps.has(packageOf(s))) {
        problems.push(`${f} imports ${s}, which is not among the dependencies`);
      }
    }
  }
  return problems;
}
