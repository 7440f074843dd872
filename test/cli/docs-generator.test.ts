// The generated-block convention (docs/CONTRIBUTING-evidence.md): every block
// in README.md and docs/*.md has a producer, and the generator rewrites only
// what lies between a block's markers.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './helpers.js';

// scripts/docs/run.mjs is plain JavaScript; typed here by what the test uses.
interface Generator {
  findBlocks(base?: string): { file: string; name: string; command: string; content: string }[];
  generate(names: string[], base?: string): Promise<void>;
}
const load = async (): Promise<Generator> => (await import(join(ROOT, 'scripts', 'docs', 'run.mjs'))) as Generator;

const tmp = tempDir('smtplib-docs-test-');
afterAll(tmp.cleanup);

describe('npm run docs', () => {
  it('every generated block in the repository has a producer script, and says how to regenerate it', async () => {
    const { findBlocks } = await load();
    const blocks = findBlocks();
    expect(blocks.length).toBeGreaterThan(0);
    for (const b of blocks) {
      expect(existsSync(join(ROOT, 'scripts', 'docs', `${b.name}.mjs`)), `${b.file}: ${b.name}`).toBe(true);
      expect(b.command, b.name).toContain(b.name);
    }
  });

  it('rewrites what is between the markers and nothing else; an unknown block is an error', async () => {
    const { generate } = await load();
    const base = tmp.dir;
    mkdirSync(join(base, 'scripts', 'docs'), { recursive: true });
    mkdirSync(join(base, 'docs'), { recursive: true });
    writeFileSync(join(base, 'scripts', 'docs', 'now.mjs'), 'export default async () => "```text\\n" + (40 + 2) + "\\n```\\n";\n');
    const before = 'intro\n<!-- generated: now; command: npm run docs -- now -->\nstale, typed by hand\n<!-- end generated -->\noutro\n';
    writeFileSync(join(base, 'README.md'), before);
    writeFileSync(join(base, 'docs', 'a.md'), `# A\n${before}`);
    await generate(['now'], base);
    const after = '<!-- generated: now; command: npm run docs -- now -->\n```text\n42\n```\n<!-- end generated -->';
    expect(readFileSync(join(base, 'README.md'), 'utf8')).toBe(`intro\n${after}\noutro\n`);
    expect(readFileSync(join(base, 'docs', 'a.md'), 'utf8')).toBe(`# A\nintro\n${after}\noutro\n`);
    await expect(generate(['missing'], base)).rejects.toThrow(/no producer for generated block "missing"/);
  });
});
