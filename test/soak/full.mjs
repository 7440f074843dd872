// The full fault soak of SMTPPool, written into docs/sending-at-scale.md
// (between the "soak:begin" and "soak:end" markers): every mode (DATA;
// CHUNKING with chained BDAT LAST groups; STARTTLS + AUTH on every
// connection) at each seed, against the built package.
//   npm run build && node test/soak/full.mjs [--messages 3000] [--seeds 4242,1,2] [--no-write]
// Exits 1 if any run failed (the table is written either way, failures shown).

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { runSoak, SOAK_MODES } from './soak.js';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '3000' }, seeds: { type: 'string', default: '4242,1,2' }, 'no-write': { type: 'boolean', default: false } } });
const messages = Number(values.messages);
const seeds = values.seeds.split(',').map(Number);
const { SMTPPool } = await import('../../packages/smtplib/dist/esm/index.js');
const docs = new URL('../../docs/sending-at-scale.md', import.meta.url);

const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
const loadBefore = loadavg()[0].toFixed(1);
const rows = [];
let failed = 0;
const total = { sends: 0, duplicates: 0, lost: 0, phantom: 0, strays: 0, unknownSends: 0, unknownDelivered: 0, unknownNotDelivered: 0, drops: 0, faults: 0 };
for (const seed of seeds) {
  for (const mode of SOAK_MODES) {
    const r = await runSoak({ SMTPPool, mode, messages, window: 1000, seed });
    if (r.failures.length) failed++;
    total.sends += r.messages;
    total.duplicates += r.duplicates;
    total.lost += r.lost;
    total.phantom += r.phantom;
    total.strays += r.strays;
    total.unknownSends += r.unknown.sends;
    total.unknownDelivered += r.unknown.delivered;
    total.unknownNotDelivered += r.unknown.notDelivered;
    total.drops += r.server.drops;
    total.faults += r.server.faults;
    rows.push(
      `| ${mode} | ${seed} | ${r.messages} | ${r.server.connections} | ${r.server.drops} | ${r.server.faults} | ${r.pool.retried} | ` +
        `${r.outcomes.resolved} | ${r.outcomes.notDelivered} | ${r.unknown.sends} (≤ ${r.unknown.bound}) | ${r.unknown.delivered} / ${r.unknown.notDelivered} | ` +
        `${r.lost} | ${r.duplicates} | ${r.phantom} | ${r.strays} | ${r.failures.length ? `FAILED: ${r.failures.join('; ')}` : 'ok'} |`,
    );
  }
}
const block = [
  '<!-- soak:begin (written by test/soak/full.mjs; do not edit by hand) -->',
  `Command: \`npm run build && node test/soak/full.mjs --messages ${messages} --seeds ${seeds.join(',')}\` at commit ${commit}${dirty ? ' (with uncommitted changes)' : ''}, ` +
    `Node ${process.version}, load average ${loadBefore} at the start and ${loadavg()[0].toFixed(1)} at the end (a shared 2-core machine).`,
  '',
  '| mode | seed | sends | connections | dropped | faults | retries | resolved | not delivered | unknown sends (bound) | unknown recipients delivered / not | lost | twice | phantom | strays | checks |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ...rows,
  '',
  `Total: ${total.sends} sends, ${total.drops} dropped connections, ${total.faults} injected faults; ` +
    `lost ${total.lost}, delivered twice ${total.duplicates}, phantom ${total.phantom}, strays ${total.strays}; ` +
    `${total.unknownSends} sends ended \`unknown\` (recipients: ${total.unknownDelivered} were in fact delivered, ${total.unknownNotDelivered} were not).`,
  '<!-- soak:end -->',
].join('\n');
console.log(block);
if (!values['no-write']) {
  const text = readFileSync(docs, 'utf8');
  const start = text.indexOf('<!-- soak:begin');
  const end = text.indexOf('<!-- soak:end -->');
  if (start < 0 || end < 0) throw new Error('docs/sending-at-scale.md has no soak:begin / soak:end markers');
  writeFileSync(docs, text.slice(0, start) + block + text.slice(end + '<!-- soak:end -->'.length));
}
process.exitCode = failed ? 1 : 0;
