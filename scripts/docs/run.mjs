#!/usr/bin/env node
// `npm run docs [-- NAME ...] [-- --list]`: rewrites the generated blocks of
// README.md and docs/*.md from real runs. A block is
//
//   <!-- generated: NAME; command: npm run docs -- NAME -->
//   ...whatever the producer printed last time...
//   <!-- end generated -->
//
// and its producer is scripts/docs/NAME.mjs, whose default export
// `async ({ root }) => string` returns the Markdown to put between the
// markers (it runs the real code: servers it starts itself, the built CLI).
// Nothing between the markers is ever typed by hand. See
// docs/CONTRIBUTING-evidence.md.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BLOCK = /(<!-- generated: ([a-z0-9-]+); command: ([^>]*?) -->\n)([\s\S]*?)(<!-- end generated -->)/g;

/** The Markdown files that may hold generated blocks. */
export function documents(base = root) {
  const docs = existsSync(join(base, 'docs')) ? readdirSync(join(base, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join(base, 'docs', f)) : [];
  return [join(base, 'README.md'), ...docs].filter((f) => existsSync(f));
}

/** Every block: file, name, command, current content. */
export function findBlocks(base = root) {
  const out = [];
  for (const file of documents(base)) {
    for (const m of readFileSync(file, 'utf8').matchAll(BLOCK)) out.push({ file, name: m[2], command: m[3], content: m[4] });
  }
  return out;
}

/** Replaces the content of every block named NAME in `text` with `content`. */
export function replaceBlock(text, name, content) {
  const body = content.endsWith('\n') ? content : `${content}\n`;
  return text.replace(BLOCK, (all, open, blockName, _command, _old, close) => (blockName === name ? `${open}${body}${close}` : all));
}

export async function generate(names, base = root) {
  const blocks = findBlocks(base);
  const wanted = names.length ? names : [...new Set(blocks.map((b) => b.name))];
  for (const name of wanted) {
    const producer = join(base, 'scripts', 'docs', `${name}.mjs`);
    if (!existsSync(producer)) throw new Error(`no producer for generated block "${name}": expected ${relative(base, producer)}`);
    const files = [...new Set(blocks.filter((b) => b.name === name).map((b) => b.file))];
    if (files.length === 0) throw new Error(`no <!-- generated: ${name}; ... --> block in README.md or docs/*.md`);
    const started = Date.now();
    const { default: produce } = await import(pathToFileURL(producer).href);
    const content = await produce({ root: base });
    for (const file of files) writeFileSync(file, replaceBlock(readFileSync(file, 'utf8'), name, content));
    process.stdout.write(`${name}: ${files.map((f) => relative(base, f)).join(', ')} (${Date.now() - started} ms)\n`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  if (args.includes('--list')) {
    for (const b of findBlocks()) process.stdout.write(`${b.name}\t${relative(root, b.file)}\t${b.command}\n`);
  } else {
    generate(args).catch((err) => {
      process.stderr.write(`docs: ${err.stack ?? err.message}\n`);
      process.exitCode = 1;
    });
  }
}
