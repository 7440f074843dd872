// The README's "Queueing" and "Scaling out" blocks are copied out of
// docs/queue.md by scripts/docs/queue-summary.mjs and scaling-summary.mjs. A
// docs/queue.md whose shape changed must make them throw, never copy the
// wrong table or fence (a later section's) into the README.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './helpers.js';

// The generators are plain JavaScript; typed here by what the test uses.
type Producer = (options: { root: string }) => Promise<string>;
const load = async (name: string): Promise<Producer> => ((await import(join(ROOT, 'scripts', 'docs', `${name}.mjs`))) as { default: Producer }).default;

const real = readFileSync(join(ROOT, 'docs', 'queue.md'), 'utf8');
const tmp = tempDir('smtplib-queue-summary-test-');
afterAll(tmp.cleanup);

let variants = 0;
/** A root holding `text` as its docs/queue.md. */
function rootWith(text: string): string {
  const root = join(tmp.dir, String(variants++));
  mkdirSync(join(root, 'docs'), { recursive: true });
  writeFileSync(join(root, 'docs', 'queue.md'), text);
  return root;
}

/** `text` with the first occurrence of `from` (which must be there) replaced by `to`. */
function edit(text: string, from: string | RegExp, to: string): string {
  expect(text).toMatch(from);
  return text.replace(from, to);
}

/** The lines of the section under `heading`, up to the next line starting with '#' (these sections hold no '#' in a fence). */
function sectionOf(text: string, heading: string): string {
  const start = text.indexOf(`\n${heading}\n`) + heading.length + 2;
  const next = text.slice(start).search(/^#/m);
  return text.slice(start, start + next);
}

describe('queue-summary and scaling-summary', () => {
  it('copy the real docs/queue.md: the States diagram, each guarantee, the 4-worker delivery rows, one table per measured block', async () => {
    const queue = await (await load('queue-summary'))({ root: ROOT });
    const states = sectionOf(real, '### States');
    const diagram = states.slice(states.indexOf('```'), states.indexOf('```', states.indexOf('```') + 3) + 3);
    expect(queue).toContain(`\n${diagram}\n`);
    const guaranteeRows = sectionOf(real, '### Guarantees')
      .split('\n')
      .filter((line) => line.startsWith('|'))
      .slice(2);
    const bullets = queue.split('\n').filter((line) => line.startsWith('- ') && !line.startsWith('- Goal: '));
    expect(bullets).toEqual(guaranteeRows.map((row) => `- ${row.slice(2, row.indexOf(' | '))}`));
    const bench = real.slice(real.indexOf('<!-- bench:queue:begin -->'), real.indexOf('<!-- bench:queue:end -->'));
    const deliveryRows = queue.split('\n').filter((line) => /^\| \d/.test(line) && !line.startsWith('| spool '));
    expect(deliveryRows.length).toBeGreaterThan(0);
    for (const row of deliveryRows) expect(row).toMatch(/^\| 4 \| (warm|cold)/);
    for (const row of bench.split('\n').filter((line) => /^\| 4 \| (warm|cold)/.test(line))) expect(queue).toContain(`\n${row}\n`);
    const soak = real.slice(real.indexOf('<!-- soak:spool:begin -->'), real.indexOf('<!-- soak:spool:end -->'));
    expect(queue).toContain(soak.split('\n').filter((line) => line.startsWith('|')).join('\n'));

    const scaling = await (await load('scaling-summary'))({ root: ROOT });
    expect(scaling.split('\n').filter((line) => line.startsWith('| ---')).length).toBe(5);
  });

  it('throw when the Guarantees table is a list (not a later section\'s table)', async () => {
    const rows = sectionOf(real, '### Guarantees')
      .split('\n')
      .filter((line) => line.startsWith('|'));
    const list = rows
      .slice(2)
      .map((row) => `- ${row.slice(2, -2)}`)
      .join('\n');
    const root = rootWith(edit(real, rows.join('\n'), list));
    await expect((await load('queue-summary'))({ root })).rejects.toThrow(/no table under "### Guarantees"/);
  });

  it('throw when the Guarantees table\'s header is not `| what | how |`', async () => {
    const root = rootWith(edit(real, '\n| what | how |\n', '\n| how | what |\n'));
    await expect((await load('queue-summary'))({ root })).rejects.toThrow(/header/);
  });

  it('throw when the States diagram is removed (not copy a later code example)', async () => {
    const states = sectionOf(real, '### States');
    const fence = states.slice(states.indexOf('```'), states.indexOf('```', states.indexOf('```') + 3) + 3);
    const root = rootWith(edit(real, fence, ''));
    await expect((await load('queue-summary'))({ root })).rejects.toThrow(/no fenced block under "### States"/);
  });

  it('throw when a measured block holds a second table', async () => {
    const second = '\n| other | table |\n| --- | --- |\n| 1 | 2 |\n';
    const spool = rootWith(edit(real, '<!-- soak:spool:end -->', `${second}<!-- soak:spool:end -->`));
    await expect((await load('queue-summary'))({ root: spool })).rejects.toThrow(/soak:spool block holds 2 tables/);
    const redis = rootWith(edit(real, '<!-- soak:redis:end -->', `${second}<!-- soak:redis:end -->`));
    await expect((await load('scaling-summary'))({ root: redis })).rejects.toThrow(/soak:redis block holds 2 tables/);
  });

  it('take the 4-worker rows from the delivery table only, and throw when its header changed', async () => {
    const header = '| worker processes | messages timed | smtplib-queue, spool |';
    const renamed = rootWith(edit(real, header, '| worker processes | messages timed | smtplib-queue, the spool |'));
    await expect((await load('queue-summary'))({ root: renamed })).rejects.toThrow(/bench:queue delivery: the table's header/);
    // A 4-worker row in another table of the block (the pipelined one's shape) is not copied.
    const stray = '| 4 | warm: stray row of another table |';
    const extra = rootWith(edit(real, '\nPipelined: ', `\n| worker processes | other |\n| --- | --- |\n${stray}\n\nPipelined: `));
    expect(await (await load('queue-summary'))({ root: extra })).not.toContain(stray);
  });
});
