// The README's queue summary (its "Queueing" section): the state diagram, what
// is guaranteed, and the figures with their commands, read from docs/queue.md,
// where each is written (scaling-summary.mjs does the same for "Scaling out"):
// the diagram and the guarantees by hand (they are the design, not a
// measurement), the figures by the scripts named in their blocks
// (bench/suites/queue.js, test/queue/soak/crash-soak.mjs). Nothing here is
// typed: a block that is missing or has changed its shape fails the run.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The lines of docs/queue.md between `<!-- NAME:begin -->` and `<!-- NAME:end -->`. */
export function block(text, name) {
  const begin = text.indexOf(`<!-- ${name}:begin -->`);
  const end = text.indexOf(`<!-- ${name}:end -->`);
  if (begin < 0 || end < begin) throw new Error(`docs/queue.md has no ${name} block`);
  return text.slice(begin, end).split('\n').slice(1);
}

/** The first fenced block after the heading `heading`. */
function fenceAfter(text, heading) {
  const at = text.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`docs/queue.md has no heading "${heading}"`);
  const open = text.indexOf('```', at);
  const close = text.indexOf('```', open + 3);
  if (open < 0 || close < 0) throw new Error(`docs/queue.md: no fenced block after "${heading}"`);
  return text.slice(open, close + 3);
}

/** The first Markdown table after the heading `heading`, as rows of cells (the separator row dropped). */
function tableAfter(text, heading) {
  const lines = text.slice(text.indexOf(`\n${heading}\n`)).split('\n');
  const start = lines.findIndex((line) => line.startsWith('|'));
  if (start < 0) throw new Error(`docs/queue.md: no table after "${heading}"`);
  const rows = [];
  for (const line of lines.slice(start)) {
    if (!line.startsWith('|')) break;
    rows.push(line);
  }
  return rows.filter((_, i) => i !== 1).map((line) => line.slice(1, -1).split(' | ').map((cell) => cell.trim()));
}

/** A table's header, separator and rows, from the lines of a block. */
export const tableLines = (lines) => lines.filter((line) => line.startsWith('|'));

export default async function queueSummary({ root }) {
  const text = readFileSync(join(root, 'docs', 'queue.md'), 'utf8');
  const out = [];

  out.push('States (a message; each recipient has its own, and every change emits a `transition` event):', '');
  out.push(fenceAfter(text, '### States'), '');

  const [, ...guarantees] = tableAfter(text, '### Guarantees');
  if (guarantees.length === 0) throw new Error('docs/queue.md: the Guarantees table is empty');
  out.push('What is guaranteed, by both stores (how each does it: [docs/queue.md](docs/queue.md#guarantees)):', '');
  for (const [what] of guarantees) out.push(`- ${what}`);
  out.push('');

  const bench = block(text, 'bench:queue');
  const command = bench.find((line) => line.startsWith('Command:'));
  const lines = tableLines(bench);
  const header = lines.findIndex((line) => line.startsWith('| worker processes | messages timed |'));
  const delivery = header < 0 ? [] : lines.slice(header, header + 2); // the delivery table's header and separator
  const fourWorkers = lines.filter((line) => /^\| 4 \| (warm|cold)/.test(line));
  const goals = bench.filter((line) => /^- Goal: /.test(line));
  if (!command || delivery.length < 2 || fourWorkers.length === 0 || goals.length === 0) throw new Error('docs/queue.md: the bench:queue block has changed its shape');
  out.push(`Delivery with 4 worker processes at 1 ms server latency, beside nodemailer's pool driven by BullMQ workers (the whole table, with 1 and 2 workers, the enqueue rates and the floors: [docs/queue.md](docs/queue.md#bench)). ${command}`, '');
  out.push(...delivery, ...fourWorkers, '', ...goals, '');

  out.push(...measured(text, 'soak:spool', 'Crash soak (spool): workers killed with SIGKILL at random moments and restarted, reconciled against the SMTP server\'s own log.'));
  return out.join('\n').replace(/\n+$/, '\n');
}

/** A measured block of docs/queue.md (a command line and a table) under `label`: its command, then its table. */
export function measured(text, name, label) {
  const lines = block(text, name);
  const command = lines.find((line) => line.startsWith('Command:'));
  const table = tableLines(lines);
  if (!command || table.length < 3) throw new Error(`docs/queue.md: the ${name} block has changed its shape`);
  return [`${label} ${command}`, '', ...table, ''];
}
