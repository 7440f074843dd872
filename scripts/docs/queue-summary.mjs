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

/**
 * The lines of the section under the heading `heading`, up to the next heading
 * (a line starting with '#' outside a fence): a search stops there, so a table
 * or fence that was removed from this section is an error, not a later one.
 */
function section(text, heading) {
  const lines = text.split('\n');
  const at = lines.indexOf(heading);
  if (at < 0) throw new Error(`docs/queue.md has no heading "${heading}"`);
  const out = [];
  let inFence = false;
  for (const line of lines.slice(at + 1)) {
    if (line.startsWith('```')) inFence = !inFence;
    else if (!inFence && line.startsWith('#')) break;
    out.push(line);
  }
  return out;
}

/** The first fenced block in the section under `heading`. */
function fenceIn(text, heading) {
  const lines = section(text, heading);
  const open = lines.findIndex((line) => line.startsWith('```'));
  const close = open < 0 ? -1 : lines.findIndex((line, i) => i > open && line.startsWith('```'));
  if (open < 0 || close < 0) throw new Error(`docs/queue.md: no fenced block under "${heading}"`);
  return lines.slice(open, close + 1).join('\n');
}

/** The cells of a table line. */
const cells = (line) => line.slice(1, -1).split(' | ').map((cell) => cell.trim());

/** The Markdown tables among `lines`: each its consecutive `|` lines (header, separator, rows). */
export function tables(lines) {
  const out = [];
  let current = null;
  for (const line of lines) {
    if (!line.startsWith('|')) current = null;
    else if (current) current.push(line);
    else out.push((current = [line]));
  }
  return out;
}

/** Throws unless `table`'s header cells are exactly `header` and a separator row follows it. */
function checkHeader(table, header, where) {
  const found = cells(table[0]);
  if (found.join(' | ') !== header.join(' | ') || !/^\|[ :|-]+\|$/.test(table[1] ?? '')) {
    throw new Error(`docs/queue.md: ${where}: the table's header is "${table[0]}", expected "| ${header.join(' | ')} |"`);
  }
}

/** The rows (cells, header and separator dropped) of the first table in the section under `heading`, whose header must be `header`. */
function tableIn(text, heading, header) {
  const [table] = tables(section(text, heading));
  if (!table) throw new Error(`docs/queue.md: no table under "${heading}"`);
  checkHeader(table, header, heading);
  return table.slice(2).map(cells);
}

/** The bench:queue block's delivery table (the default cells; the pipelined table's header differs). */
const DELIVERY_HEADER_START = '| worker processes | messages timed |';
const DELIVERY_HEADER = ['worker processes', 'messages timed', 'smtplib-queue, spool', 'smtplib-queue, Redis', 'nodemailer pool + BullMQ', 'ours ÷ nodemailer (spool / Redis)'];

export default async function queueSummary({ root }) {
  const text = readFileSync(join(root, 'docs', 'queue.md'), 'utf8');
  const out = [];

  out.push('States (a message; each recipient has its own, and every change emits a `transition` event):', '');
  out.push(fenceIn(text, '### States'), '');

  const guarantees = tableIn(text, '### Guarantees', ['what', 'how']);
  if (guarantees.length === 0) throw new Error('docs/queue.md: the Guarantees table is empty');
  out.push('What is guaranteed, by both stores (how each does it: [docs/queue.md](docs/queue.md#guarantees)):', '');
  for (const [what] of guarantees) out.push(`- ${what}`);
  out.push('');

  const bench = block(text, 'bench:queue');
  const command = bench.find((line) => line.startsWith('Command:'));
  const delivery = tables(bench).filter((table) => table[0].startsWith(DELIVERY_HEADER_START));
  if (delivery.length !== 1) throw new Error(`docs/queue.md: the bench:queue block holds ${delivery.length} delivery tables (header "${DELIVERY_HEADER_START}"), expected 1`);
  const [deliveryTable] = delivery;
  checkHeader(deliveryTable, DELIVERY_HEADER, 'bench:queue delivery');
  const fourWorkers = deliveryTable.slice(2).filter((line) => cells(line)[0] === '4');
  const goals = bench.filter((line) => /^- Goal: /.test(line));
  if (!command || fourWorkers.length === 0 || goals.length === 0) throw new Error('docs/queue.md: the bench:queue block has changed its shape');
  out.push(`Delivery with 4 worker processes at 1 ms server latency, beside nodemailer's pool driven by BullMQ workers (the whole table, with 1 and 2 workers, the enqueue rates and the floors: [docs/queue.md](docs/queue.md#bench)). ${command}`, '');
  out.push(...deliveryTable.slice(0, 2), ...fourWorkers, '', ...goals, '');

  out.push(...measured(text, 'soak:spool', 'Crash soak (spool): workers killed with SIGKILL at random moments and restarted, reconciled against the SMTP server\'s own log.'));
  return out.join('\n').replace(/\n+$/, '\n');
}

/** A measured block of docs/queue.md (a command line and one table) under `label`: its command, then its table. */
export function measured(text, name, label) {
  const lines = block(text, name);
  const command = lines.find((line) => line.startsWith('Command:'));
  const found = tables(lines);
  if (found.length !== 1) throw new Error(`docs/queue.md: the ${name} block holds ${found.length} tables, expected 1`);
  const [table] = found;
  if (!command || table.length < 3 || !/^\|[ :|-]+\|$/.test(table[1])) throw new Error(`docs/queue.md: the ${name} block has changed its shape`);
  return [`${label} ${command}`, '', ...table, ''];
}
