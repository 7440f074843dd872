// Several hosts (issue 13): queue workers on two "machines" (network
// namespaces with their own addresses) share one Redis queue; redis-server and
// the SMTP server run on a third, where this script runs. Mid-run one worker
// host is cut off (its link set down in its namespace): its claims must come
// back after their locks expire and be delivered by the other host, or be
// reported `unknown` when their end of data was already written - never lost,
// never delivered twice. Reconciled against the SMTP server's own log.
//
// Run by test/queue/netns/run.sh, which makes the namespaces and runs this
// inside the server's namespace:
//   node hosts.mjs --hosts 'ns1=10.213.1.1,veth1 ns2=10.213.2.1,veth2' [--messages N] [--down S] [--heal] [--doc FILE]
// (ns=address the host reaches the server at, and the host's own link to cut).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { startFaultServer } from '../../soak/fault-server.js';
import { openStore } from '../store-spec.mjs';
import { replaceDocBlock, waitForRedis } from '../script-helpers.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const arg = (name, fallback) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : fallback; };
const N = Number(arg('messages', 1500));
const PER_HOST = Number(arg('workers-per-host', 2));
const DOWN_S = Number(arg('down', 12));
const HEAL = process.argv.includes('--heal');
const LOCK_MS = Number(arg('lock-ms', 3000));
const TIMEOUT_S = Number(arg('timeout', 150));
const DOC = arg('doc', undefined);
const hosts = String(arg('hosts', '')).split(/\s+/).filter(Boolean).map((h, i) => {
  const [ns, rest] = h.split('=');
  const [address, link] = rest.split(',');
  return { name: `h${i + 1}`, ns, address, link, workers: [] };
});
if (hosts.length < 2) throw new Error('--hosts needs two namespaces (run.sh passes them)');
const log = (...a) => console.error('[hosts]', ...a);
const started = Date.now();
const REDIS_PORT = 6379;
const SMTP_PORT = 2525;
const PREFIX = 'hosts';

// redis-server, reachable on every link of this namespace; AOF with fsync always.
const dir = mkdtempSync(join(tmpdir(), 'smtplib-hosts-redis-'));
const redis = spawn('redis-server', ['--port', String(REDIS_PORT), '--bind', '127.0.0.1', ...hosts.map((h) => h.address), '--protected-mode', 'no', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: 'ignore' });
if (!(await waitForRedis(REDIS_PORT, 10_000))) throw new Error('redis-server did not start');

// The SMTP server on every address, logging each arrival with its source address.
const arrivals = [];
const server = await startFaultServer({ host: '0.0.0.0', port: SMTP_PORT, replyDelayMs: 3, onDeliver: (d) => arrivals.push(d) });
const hostOf = (address) => hosts.find((h) => address?.replace(/^::ffff:/, '').split('.').slice(0, 3).join('.') === h.address.split('.').slice(0, 3).join('.'))?.name ?? '?';

const store = await openStore(`redis:redis://127.0.0.1:${REDIS_PORT}#${PREFIX}#${LOCK_MS}`);
const tagOf = new Map();
for (let i = 0; i < N; i += 100) {
  await Promise.all(Array.from({ length: Math.min(100, N - i) }, (_, k) => {
    const j = i + k;
    const tag = `m${j}`;
    const to = j % 10 === 0 ? ['x@example.test', 'y@example.test'] : ['x@example.test'];
    return store.enqueue({ from: 'hosts@example.test', to, message: `From: hosts@example.test\r\nTo: x@example.test\r\nSubject: ${tag}\r\nX-Soak-Id: ${tag}\r\n\r\nhosts ${tag}\r\n` }).then(({ id }) => tagOf.set(id, { tag, to }));
  }));
}
log(`enqueued ${N}`);

// Workers: PER_HOST processes in each host namespace, reaching Redis and SMTP at the host's server address.
const startWorker = (host, k) => new Promise((resolve, reject) => {
  const spec = `redis:redis://${host.address}:${REDIS_PORT}#${PREFIX}#${LOCK_MS}`;
  const child = spawn('ip', ['netns', 'exec', host.ns, process.execPath, join(here, '../soak/worker.mjs'), spec, String(SMTP_PORT), host.address], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, SOAK_EHLO: `${host.name}-w${k}.example.test` } });
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    if (line.startsWith('ready ')) { host.workers.push({ child, id: line.slice(6) }); resolve(); }
  });
  child.once('exit', (code) => reject(new Error(`worker on ${host.ns} exited ${code} before it was ready`)));
});
await Promise.all(hosts.flatMap((h) => Array.from({ length: PER_HOST }, (_, k) => startWorker(h, k))));
log(`workers ready: ${hosts.map((h) => `${h.name} ${h.workers.length}`).join(', ')}`);

const ip = (...args) => new Promise((resolve, reject) => {
  const child = spawn('ip', args, { stdio: 'inherit' });
  child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ip ${args.join(' ')} exited ${code}`))));
});

/** Message ids whose BullMQ lock belongs to one of these workers (a lock is taken atomically with the claim). */
async function lockedBy(workerIds) {
  const { Redis } = await import('ioredis');
  const r = new Redis({ host: '127.0.0.1', port: REDIS_PORT, lazyConnect: false });
  const ids = new Set();
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `bull:${PREFIX}:*:lock`, 'COUNT', 1000);
    cursor = next;
    if (keys.length === 0) continue;
    const tokens = await r.mget(...keys);
    keys.forEach((key, i) => {
      if (tokens[i] && workerIds.some((w) => tokens[i].startsWith(`${w}:`))) ids.add(key.slice(`bull:${PREFIX}:`.length, -':lock'.length));
    });
  } while (cursor !== '0');
  r.disconnect();
  return ids;
}

const cut = hosts[0];
let cutAt;
let healedAt;
let heldAtCut = new Set();
const deliveredBefore = {};
const deadline = Date.now() + TIMEOUT_S * 1000;
let last = '';
for (;;) {
  await new Promise((r) => setTimeout(r, 250));
  if (cutAt === undefined && server.stats.messages >= N * 0.3) {
    for (const h of hosts) deliveredBefore[h.name] = arrivals.filter((a) => hostOf(a.remoteAddress) === h.name).length;
    await ip('netns', 'exec', cut.ns, 'ip', 'link', 'set', cut.link, 'down');
    cutAt = Date.now();
    heldAtCut = await lockedBy(cut.workers.map((w) => w.id));
    log(`cut ${cut.name} off (${cut.ns}: ip link set ${cut.link} down) after ${server.stats.messages} deliveries; it held ${heldAtCut.size} claims`);
  }
  if (HEAL && cutAt !== undefined && healedAt === undefined && Date.now() - cutAt >= DOWN_S * 1000) {
    await ip('netns', 'exec', cut.ns, 'ip', 'link', 'set', cut.link, 'up');
    healedAt = Date.now();
    log(`${cut.name} back (link up after ${DOWN_S} s)`);
  }
  const pending = (await store.stats()).pending;
  const line = `${N - pending}/${N} finished, server ${server.stats.messages}`;
  if (line !== last) { log(line); last = line; }
  if ((pending === 0 && cutAt !== undefined && (!HEAL || healedAt !== undefined)) || Date.now() > deadline) break;
}
const finishedAt = Date.now();
for (const h of hosts) for (const w of h.workers) w.child.kill(h === cut && !HEAL ? 'SIGKILL' : 'SIGTERM');
await new Promise((r) => setTimeout(r, 1500));
for (const h of hosts) for (const w of h.workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');

// Reconcile against the server's log.
const count = (tag, rcpt) => server.deliveries.get(`${tag} ${rcpt}`) ?? 0;
const byTag = new Map();
for (const a of arrivals) byTag.set(a.id, [...(byTag.get(a.id) ?? []), hostOf(a.remoteAddress)]);
const result = { messages: N, hosts: hosts.length, workersPerHost: PER_HOST, lockMs: LOCK_MS, cutHost: cut.name, downSeconds: HEAL ? DOWN_S : 'until the end', heldAtCut: heldAtCut.size,
  heldAtCutOutcome: { deliveredByOther: 0, deliveredByCutHost: 0, unknownDelivered: 0, unknownNotDelivered: 0 }, deliveredBeforeCut: deliveredBefore, deliveredPerHost: {},
  states: {}, lost: [], duplicates: [], unfinished: [], unknown: 0, unexplainedUnknown: [], durationMs: 0, firstRecoveredDeliveryAfterCutMs: undefined };
for (const h of hosts) result.deliveredPerHost[h.name] = arrivals.filter((a) => hostOf(a.remoteAddress) === h.name).length;
const seen = new Set();
for (const m of await store.list()) {
  const info = tagOf.get(m.id);
  if (!info) continue;
  seen.add(m.id);
  result.states[m.state] = (result.states[m.state] ?? 0) + 1;
  for (const r of m.recipients) {
    const n = count(info.tag, r.address);
    if (n > 1) result.duplicates.push(`${m.id} ${info.tag} ${r.address} x${n}: arrivals ${arrivals.filter((a) => a.id === info.tag).map((a) => `${hostOf(a.remoteAddress)} ${a.ehlo} at cut${a.at - cutAt >= 0 ? '+' : ''}${a.at - cutAt} ms`).join(', ')}; heal at cut+${healedAt - cutAt} ms; held at cut ${heldAtCut.has(m.id)}; record ${JSON.stringify({ attempts: m.attempts, state: m.state, lastError: m.lastError, firstAttemptAt: m.firstAttemptAt - cutAt, lastAttemptAt: m.lastAttemptAt - cutAt, finishedAt: m.finishedAt - cutAt })}`);
    if (r.state === 'delivered' && n !== 1) result.lost.push(`${m.id} ${r.address}: recorded delivered, server has ${n}`);
    if (r.state === 'bounced') result.lost.push(`${m.id} ${r.address}: bounced`);
    if (!['delivered', 'bounced', 'unknown'].includes(r.state)) result.unfinished.push(`${m.id} ${r.address}: ${r.state}`);
  }
  const delivered = m.recipients.every((r) => count(info.tag, r.address) === 1);
  if (m.state === 'unknown') {
    result.unknown++;
    if (!heldAtCut.has(m.id)) result.unexplainedUnknown.push(`${m.id}: ${m.unknownReason}`);
  }
  if (heldAtCut.has(m.id)) {
    const o = result.heldAtCutOutcome;
    if (m.state === 'unknown') o[delivered ? 'unknownDelivered' : 'unknownNotDelivered']++;
    else if (delivered && (byTag.get(info.tag) ?? [])[0] === cut.name) o.deliveredByCutHost++;
    else if (delivered) o.deliveredByOther++;
  }
}
for (const [id] of tagOf) if (!seen.has(id)) result.lost.push(`${id}: missing from the queue`);
const recovered = arrivals.filter((a) => a.at > cutAt && hostOf(a.remoteAddress) !== cut.name && [...tagOf].some(([id, info]) => info.tag === a.id && heldAtCut.has(id)));
if (recovered.length > 0) result.firstRecoveredDeliveryAfterCutMs = recovered[0].at - cutAt;
result.durationMs = finishedAt - started;
result.ok = cutAt !== undefined && result.lost.length === 0 && result.duplicates.length === 0 && result.unfinished.length === 0 && result.unexplainedUnknown.length === 0;
for (const key of ['lost', 'duplicates', 'unfinished', 'unexplainedUnknown']) if (result[key].length > 20) result[key] = [...result[key].slice(0, 20), `... ${result[key].length - 20} more`];
console.log(JSON.stringify(result, null, 2));
if (DOC) writeDoc(DOC, result);

await store.close().catch(() => undefined);
await server.close();
redis.kill('SIGTERM');
await new Promise((r) => redis.once('exit', r));
rmSync(dir, { recursive: true, force: true });
process.exit(result.ok ? 0 : 1);

function writeDoc(file, r) {
  const key = HEAL ? 'hosts:heal' : 'hosts:cut';
  const begin = `<!-- ${key}:begin -->`;
  const end = `<!-- ${key}:end -->`;
  const o = r.heldAtCutOutcome;
  const block = [
    begin,
    `Command: \`bash test/queue/netns/run.sh --messages ${r.messages}${HEAL ? ` --heal --down ${DOWN_S}` : ''}\` (${new Date().toISOString().slice(0, 10)}, ${Math.round(r.durationMs / 1000)} s)`,
    '',
    '| messages | hosts × workers | lock | cut | claims held by the cut host | of those: delivered by the other host / by the cut host / unknown (delivered / not) | first recovered delivery after the cut | deliveries per host | lost | delivered twice | unfinished | unknown | unexplained |',
    '| ---: | --- | ---: | --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |',
    `| ${r.messages} | ${r.hosts} × ${r.workersPerHost} | ${r.lockMs} ms | ${r.cutHost}, ${HEAL ? `link up again after ${DOWN_S} s` : 'down to the end'} | ${r.heldAtCut} | ${o.deliveredByOther} / ${o.deliveredByCutHost} / ${o.unknownDelivered} / ${o.unknownNotDelivered} | ${r.firstRecoveredDeliveryAfterCutMs ?? '-'} ms | ${Object.entries(r.deliveredPerHost).map(([h, n]) => `${h} ${n}`).join(', ')} | ${r.lost.length} | ${r.duplicates.length} | ${r.unfinished.length} | ${r.unknown} | ${r.unexplainedUnknown.length} |`,
    end,
  ].join('\n');
  replaceDocBlock(file, begin, end, block);
}
