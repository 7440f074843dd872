// The packages as a user gets them from npm: `npm pack` of every workspace
// package, each tarball's file list and package.json checked, then the
// tarballs installed into a scratch project under the system's temp dir,
// where one consumer program (test/packaging/consumer/index.ts) is
// type-checked and run three ways:
//   - TypeScript 5 (pinned below, installed in the scratch project only),
//     module commonjs + moduleResolution node10, no esModuleInterop;
//   - TypeScript 7 (the workspace's own tsc), nodenext, in a "type": "commonjs" folder;
//   - the same, in a "type": "module" folder.
// Each run sends real mail to an smtp-server this test starts; the test checks
// what arrived. The `smtplib` command is run through `npx` in the scratch
// project, and every README's ```ts examples are type-checked there.
// When everything passed, the generated block of docs/packaging.md is rewritten.
// Run by `npm run test:packaging` and .ci/suites/30-packaging.sh (after a build).
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileListProblems, importProblems, manifestProblems, type PackageJson } from './tarball-rules.js';
import { writeEvidence, type MatrixRow, type TarballRow } from './evidence.js';

/** The TypeScript 5 that node10 consumers are checked with (latest 5.x when written). */
const TS5_VERSION = '5.9.3';
const ROOT = resolve(import.meta.dirname, '..', '..');
const rootPkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  workspaces: string[];
  repository: { url: string };
  devDependencies: Record<string, string>;
};
const TYPES_NODE_VERSION = rootPkg.devDependencies['@types/node']!;
const TS7 = join(ROOT, 'node_modules', '.bin', 'tsc');
const packages = rootPkg.workspaces.map((w) => {
  const pkg = JSON.parse(readFileSync(join(ROOT, w, 'package.json'), 'utf8')) as PackageJson;
  return { dir: w.replace(/^packages\//, ''), pkg };
});

const work = mkdtempSync(join(tmpdir(), 'smtplib-packaging-'));
const tarballDir = join(work, 'tarballs');
const scratch = join(work, 'consumer');
const tarballs = new Map<string, { filename: string; files: string[]; size: number; unpackedSize: number }>();
const tarballRows: TarballRow[] = [];
const matrix: MatrixRow[] = [];
let expectedResults = 0;
const received: string[] = [];
let server: SMTPServer | undefined;
let port = 0;

/** The environment of a child npm/node: without the npm_* variables of an outer `npm run`. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

/** Runs a command without blocking this process: the SMTP server the consumers talk to lives here. */
function run(command: string, args: string[], cwd: string, extra: Record<string, string> = {}): Promise<{ code: number; out: string; stdout: string }> {
  return new Promise((done) => {
    const child = spawn(command, args, { cwd, env: childEnv(extra), timeout: 300_000 });
    let stdout = '';
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => ((stdout += d), (out += d)));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', (e) => (out += String(e)));
    child.on('close', (code) => done({ code: code ?? -1, out, stdout }));
  });
}

beforeAll(async () => {
  const unbuilt = packages.filter(({ dir }) => !existsSync(join(ROOT, 'packages', dir, 'dist')));
  if (unbuilt.length > 0) throw new Error(`not built: ${unbuilt.map((p) => p.pkg.name).join(', ')}: run \`npm run build\` first (\`npm run test:packaging\` does)`);
  mkdirSync(tarballDir);
  const packed = await run('npm', ['pack', '--workspaces', '--json', '--pack-destination', tarballDir], ROOT);
  if (packed.code !== 0) throw new Error(`npm pack failed:\n${packed.out}`);
  const json = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { name: string; filename: string; size: number; unpackedSize: number; files: { path: string }[] }[];
  for (const t of json) tarballs.set(t.name, { filename: t.filename, files: t.files.map((f) => f.path).sort(), size: t.size, unpackedSize: t.unpackedSize });

  server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, callback) {
      let data = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (data += chunk));
      stream.on('end', () => {
        received.push(/^Subject: (.*)$/m.exec(data)?.[1]?.trim() ?? '(no subject)');
        callback();
      });
    },
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  port = (server.server.address() as { port: number }).port;
}, 300_000);

afterAll(async () => {
  if (server) await new Promise<void>((r) => server!.close(() => r()));
  rmSync(work, { recursive: true, force: true });
  if (expectedResults > 0 && matrix.length === expectedResults && matrix.every((m) => m.ok) && tarballRows.length === packages.length) {
    writeEvidence(join(ROOT, 'docs', 'packaging.md'), { root: ROOT, tarballs: tarballRows, matrix });
  }
});

describe('tarballs', () => {
  it.each(packages)('$pkg.name: files, package.json, imports', ({ dir, pkg }) => {
    const t = tarballs.get(pkg.name);
    expect(t, `npm pack made no tarball for ${pkg.name}`).toBeDefined();
    const unpacked = join(work, 'unpacked', dir);
    mkdirSync(unpacked, { recursive: true });
    execFileSync('tar', ['xzf', join(tarballDir, t!.filename), '-C', unpacked, '--strip-components=1']);
    const files = t!.files;
    const shipped = JSON.parse(readFileSync(join(unpacked, 'package.json'), 'utf8')) as PackageJson;
    expect(fileListProblems(files)).toEqual([]);
    expect(manifestProblems(shipped, dir, files, rootPkg.repository.url)).toEqual([]);
    expect(importProblems(shipped, unpacked, files)).toEqual([]);
    // The shipped README is the package's own and the LICENSE the repository's.
    expect(readFileSync(join(unpacked, 'README.md'), 'utf8')).toBe(readFileSync(join(ROOT, 'packages', dir, 'README.md'), 'utf8'));
    expect(readFileSync(join(unpacked, 'LICENSE'), 'utf8')).toBe(readFileSync(join(ROOT, 'LICENSE'), 'utf8'));
    const top = [...new Set(files.map((f) => (f.includes('/') ? `${f.split('/')[0]}/` : f)))];
    tarballRows.push({ name: pkg.name, filename: t!.filename, fileCount: files.length, size: t!.size, unpackedSize: t!.unpackedSize, top });
  });
});

interface Variant {
  name: string;
  title: string;
  compiler: 'ts5' | 'ts7';
  packageType: 'commonjs' | 'module';
  compilerOptions: Record<string, unknown>;
}

const common = { target: 'es2022', strict: true, skipLibCheck: false, types: ['node'], rootDir: 'src', outDir: 'dist' };
const variants: Variant[] = [
  {
    name: 'ts5-node10',
    title: 'TS 5 · module commonjs · moduleResolution node10 · no esModuleInterop',
    compiler: 'ts5',
    packageType: 'commonjs',
    compilerOptions: { ...common, module: 'commonjs', moduleResolution: 'node10', esModuleInterop: false },
  },
  { name: 'ts7-nodenext-cjs', title: 'TS 7 · nodenext · CommonJS ("type": "commonjs")', compiler: 'ts7', packageType: 'commonjs', compilerOptions: { ...common, module: 'nodenext', moduleResolution: 'nodenext' } },
  { name: 'ts7-nodenext-esm', title: 'TS 7 · nodenext · ESM ("type": "module")', compiler: 'ts7', packageType: 'module', compilerOptions: { ...common, module: 'nodenext', moduleResolution: 'nodenext' } },
];

/**
 * Diagnostics a node10 consumer without esModuleInterop gets from third-party
 * declarations that smtplib-capture's types pull in: smtp-server's (and its
 * nodemailer's) .d.ts default-import node:net/node:tls/node:os (TS1192).
 * Not ours to fix; a consumer with skipLibCheck (tsc --init's default) or
 * esModuleInterop does not see them. Anything else fails the test.
 */
const THIRD_PARTY = /^node_modules\/(smtp-server|nodemailer)\/\S+\.d\.ts\(\d+,\d+\): error TS1192: /;

describe('a consumer of the tarballs', () => {
  const tsc = (v: Variant): string => (v.compiler === 'ts5' ? join(scratch, 'node_modules', '.bin', 'tsc') : TS7);
  const versions: Record<string, string> = {};
  const thirdParty: Record<string, number> = {};

  beforeAll(async () => {
    mkdirSync(scratch);
    writeFileSync(join(scratch, 'package.json'), `${JSON.stringify({ name: 'smtplib-consumer', private: true }, null, 2)}\n`);
    const files = [...tarballs.values()].map((t) => join(tarballDir, t.filename));
    const installed = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...files, `typescript@${TS5_VERSION}`, `@types/node@${TYPES_NODE_VERSION}`], scratch);
    if (installed.code !== 0) throw new Error(`npm install in ${scratch} failed (the registry must be reachable for typescript@${TS5_VERSION} and the packages' dependencies):\n${installed.out}`);
    // The workspace packages in the scratch project are the tarballs, never a registry package of the same name.
    for (const { pkg } of packages) {
      const got = JSON.parse(readFileSync(join(scratch, 'node_modules', pkg.name, 'package.json'), 'utf8')) as PackageJson;
      if (got.description !== pkg.description || got.version !== pkg.version) throw new Error(`node_modules/${pkg.name} is not the packed workspace package`);
    }
    for (const c of ['ts5', 'ts7'] as const) versions[c] = (await run(tsc({ compiler: c } as Variant), ['-v'], scratch)).out.trim();
    if (versions.ts5 !== `Version ${TS5_VERSION}`) throw new Error(`scratch TypeScript is ${versions.ts5}`);
    if (!/^Version 7\./.test(versions.ts7!)) throw new Error(`workspace TypeScript is ${versions.ts7}, not 7.x`);
    for (const v of variants) {
      const dir = join(scratch, v.name);
      mkdirSync(join(dir, 'src'), { recursive: true });
      cpSync(join(import.meta.dirname, 'consumer', 'index.ts'), join(dir, 'src', 'index.ts'));
      writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ type: v.packageType })}\n`);
      writeFileSync(join(dir, 'tsconfig.json'), `${JSON.stringify({ compilerOptions: v.compilerOptions, include: ['src'] }, null, 2)}\n`);
    }
    expectedResults = variants.length * 2 + 2;
  }, 600_000);

  describe.each(variants)('$title', (v) => {
    it('type-checks', async () => {
      const r = await run(tsc(v), ['-p', v.name], scratch);
      const lines = r.out.split('\n').filter((l) => /error TS\d+/.test(l));
      const ours = lines.filter((l) => !(v.compiler === 'ts5' && THIRD_PARTY.test(l)));
      thirdParty[v.name] = lines.length - ours.length;
      const ok = ours.length === 0 && (r.code === 0 || thirdParty[v.name]! > 0) && existsSync(join(scratch, v.name, 'dist', 'index.js'));
      const note = thirdParty[v.name] ? `; ${thirdParty[v.name]} TS1192 in smtp-server/nodemailer declarations (third party: see "What a consumer gets")` : '';
      matrix.push({ consumer: v.title, step: 'type-check', command: `${v.compiler === 'ts5' ? 'node_modules/.bin/tsc' : '<workspace>/node_modules/.bin/tsc'} -p ${v.name}`, compiler: versions[v.compiler]!, ok, result: ok ? `0 errors in our declarations${note}` : `${ours.length} errors` });
      expect(ours, r.out).toEqual([]);
      expect(ok, r.out).toBe(true);
    }, 300_000);

    it('runs: SMTP, SMTPPool, sendMessage, MailQueue, capture, cli/serve', async () => {
      const r = await run(process.execPath, [join(v.name, 'dist', 'index.js')], scratch, { CONSUMER_VARIANT: v.name, SMTP_PORT: String(port) });
      const steps = r.out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { step: string; moduleSystem?: string; smtplibEntry?: string | null });
      const arrived = received.filter((s) => s.startsWith(`${v.name}: `)).map((s) => s.slice(v.name.length + 2)).sort();
      const loaded = steps.find((s) => s.step === 'loaded');
      const ok = r.code === 0 && steps.at(-1)?.step === 'done' && arrived.join() === 'MailQueue,SMTP.sendMessage,SMTP.sendmail,SMTPPool.sendmail';
      matrix.push({ consumer: v.title, step: 'run', command: `node ${v.name}/dist/index.js`, compiler: `node ${process.version}`, ok, result: ok ? `${loaded?.moduleSystem}; ${arrived.length} messages arrived; steps ${steps.map((s) => s.step).join(', ')}` : 'failed' });
      expect(r.code, r.out).toBe(0);
      expect(steps.map((s) => s.step)).toEqual(['loaded', 'smtp', 'pool', 'queue', 'capture', 'cli-serve', 'done']);
      expect(loaded?.moduleSystem).toBe(v.packageType === 'module' ? 'esm' : 'commonjs');
      // require() gets smtplib's CommonJS build; import gets its ESM one (no entry to report).
      if (v.packageType === 'commonjs') expect(loaded?.smtplibEntry).toMatch(/node_modules\/smtplib\/dist\/cjs\/index\.js$/);
      expect(arrived).toEqual(['MailQueue', 'SMTP.sendMessage', 'SMTP.sendmail', 'SMTPPool.sendmail']);
    }, 300_000);
  });

  it('README examples (```ts) type-check under TS 7 nodenext ESM', async () => {
    const dir = join(scratch, 'readme-examples');
    mkdirSync(dir, { recursive: true });
    let count = 0;
    for (const { pkg } of packages) {
      const readme = readFileSync(join(scratch, 'node_modules', pkg.name, 'README.md'), 'utf8');
      const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
      expect(blocks.length, `${pkg.name}'s README has no \`\`\`ts example`).toBeGreaterThan(0);
      // Each block is a module of its own (export {} makes one even without imports).
      blocks.forEach((b, i) => writeFileSync(join(dir, `${pkg.name}-${i + 1}.ts`), `${b}\nexport {};\n`));
      count += blocks.length;
    }
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    const options = { ...common, module: 'nodenext', moduleResolution: 'nodenext', noEmit: true, rootDir: '.', lib: ['es2023', 'esnext.disposable'] };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: options, include: ['*.ts'] }));
    const r = await run(TS7, ['-p', 'readme-examples'], scratch);
    matrix.push({ consumer: `README examples (${count} blocks from ${packages.length} READMEs)`, step: 'type-check', command: '<workspace>/node_modules/.bin/tsc -p readme-examples', compiler: versions.ts7!, ok: r.code === 0, result: r.code === 0 ? '0 errors' : 'errors' });
    expect(r.code, r.out).toBe(0);
  }, 300_000);

  it('the smtplib command through npx: --version, then a real send', async () => {
    const version = await run('npx', ['--no-install', 'smtplib', '--version'], scratch);
    expect(version.out.trim()).toBe(packages.find((p) => p.dir === 'cli')!.pkg.version);
    const args = ['--no-install', 'smtplib', 'send', '-s', `127.0.0.1:${port}`, '--tls', 'none', '-f', 'app@example.com', '-t', 'ann@example.org', '--subject', 'npx: smtplib send', '--body', 'hello'];
    const send = await run('npx', args, scratch);
    const ok = version.code === 0 && send.code === 0 && received.includes('npx: smtplib send');
    matrix.push({ consumer: 'the CLI bin, installed from the tarball', step: 'run', command: `npx smtplib send -s 127.0.0.1:PORT --tls none ...`, compiler: `node ${process.version}`, ok, result: ok ? `--version printed ${version.out.trim()}; send exited 0 and the message arrived` : 'failed' });
    expect(send.code, send.out).toBe(0);
    expect(received).toContain('npx: smtplib send');
  }, 120_000);
});

// Keep the list of installed tarballs honest: one per workspace package.
it('npm pack made exactly one tarball per workspace package', () => {
  expect(readdirSync(tarballDir).sort()).toEqual([...tarballs.values()].map((t) => t.filename).sort());
  expect(tarballs.size).toBe(packages.length);
});
