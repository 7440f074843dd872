// The README's hostile-server memory table: runs test/hostile/bounds.test.ts
// (the tests assert the bounds; each prints a "[bounds] ..." line with what
// it measured) and tabulates those lines. Nothing here is typed.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const ENDS = {
  'G1 endless line': (extra) => `protocol error at the 8 KiB line cap${extra}`,
  'G2 endless multi-line': (extra) => `protocol error at the 10,000-line / 1 MiB reply caps${extra}`,
  'H2 drip x50': (extra) => `every phase at its absolute deadline${extra}`,
};

export default async function hostileBounds({ root }) {
  const vitest = join(root, 'node_modules', '.bin', 'vitest');
  const output = execFileSync(vitest, ['run', '--project', 'unit', 'test/hostile/bounds.test.ts', '--reporter', 'verbose'], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 16 * 1024 * 1024 });
  const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
  const rows = [...plain.matchAll(/^\[bounds\] (.+?): heap \+([\d.]+) MB, rss \+([\d.]+) MB(.*)$/gm)];
  if (rows.length === 0) throw new Error('test/hostile/bounds.test.ts printed no [bounds] lines');
  const out = [
    `Measured by \`npx vitest run --project unit test/hostile/bounds.test.ts\` on ${new Date().toISOString().slice(0, 16)}Z (limits asserted: +32 MB heap, +64 MB RSS; timeouts of 300 ms):`,
    '',
    '| Hostile server | Heap growth | RSS growth | Ends |',
    '| --- | --- | --- | --- |',
  ];
  for (const [, name, heap, rss, extra] of rows) {
    const detail = extra.replace(/^, /, '');
    const ends = ENDS[name] ? ENDS[name](detail ? ` (${detail})` : '') : detail;
    out.push(`| ${name} | +${heap} MB | +${rss} MB | ${ends} |`);
  }
  return `${out.join('\n')}\n`;
}
