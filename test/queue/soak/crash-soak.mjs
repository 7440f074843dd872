// The crash soak: several worker processes deliver N messages through the
// fault-injecting server (drops, 421/451, drops after the final dot) while a
// chaos loop SIGKILLs workers at random moments and restarts them (and, for
// Redis, SIGKILLs redis-server once, AOF with fsync always). Then it
// reconciles the queue's records against the server's own delivery log.
//
//   node test/queue/soak/crash-soak.mjs --store spool|redis [--messages N] [--workers K] [--report FILE]
//
// Exit 1 when a message was lost, delivered twice, left unfinished, or an
// `unknown` has no cause (a kill or a drop after the dot).
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFaultServer, randomFaults } from '../../soak/fault-server.js';
import { openStore } from '../store-spec.mjs';
import { freePort, replaceDocBlock, waitForRedis } from '../script-helpers.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const STORE = arg('store', 'spool');
const N = Number(arg('messages', 2000));
const WORKERS = Number(arg('workers', 4));
const SEED = Number(arg('seed', 7));
const REPORT = arg('report', undefined);
// A SIGKILL every KILL_MIN..KILL_MIN+KILL_SPREAD ms (0: no chaos).
const KILL_MIN = Number(arg('kill-min', 150));
const KILL_SPREAD = Number(arg('kill-spread', 600));
const log = (...a) => console.error(`[soak ${STORE}]`, ...a);

async function startRedisServer() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'smtplib-soak-redis-'));
  let child;
  // A restart replays the AOF: at 20,000 messages on a loaded machine that takes longer than
  // 10 s (Redis answers -LOADING meanwhile), and a soak that gave up there died mid-run.
  const launch = async (waitMs = 10_000) => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--logfile', join(dir, 'redis.log')], { stdio: 'ignore' });
    if (await waitForRedis(port, waitMs)) return;
    throw new Error(`redis-server did not answer within ${waitMs} ms (is it installed? apt-get install redis-server)`);
  };
  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    async kill() { await new Promise((r) => { child.once('exit', r); child.kill('SIGKILL'); }); },
    launch,
    killNow() { child?.kill('SIGKILL'); },
    async stop() { await new Promise((r) => { if (child.exitCode !== null) return r(); child.once('exit', r); child.kill('SIGTERM'); }); rmSync(dir, { recursive: true, force: true }); },
  };
}

const started = Date.now();
const random = (() => { let a = SEED >>> 0; return () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; }; })();

// The server: random drops (a fifth of them right after the final dot, half of those after delivering), 421/451 replies,
// and 3 ms before each end-of-data reply so kills often land between the dot and its reply.
const endOfDataDrops = { delivered: 0, notDelivered: 0, midData: 0 };
const baseFaults = randomFaults({ seed: SEED, dropRate: Number(arg('drop-rate', 0.08)), replyFaultRate: Number(arg('fault-rate', 0.03)), stepsPerConnection: 40 });
const server = await startFaultServer({
  replyDelayMs: 3,
  fault: (ctx) => {
    const decision = baseFaults(ctx);
    if (ctx.stage === 'end-of-data' && decision?.drop) {
      if (decision.drop === 'after-delivery') endOfDataDrops.delivered++;
      else endOfDataDrops.notDelivered++;
    }
    // A drop while reading the body: the client may have written the final dot already (unknown, not delivered).
    if (ctx.stage === 'data' && decision?.drop) endOfDataDrops.midData++;
    return decision;
  },
});

let spec;
let redis;
let workDir;
if (STORE === 'spool') {
  workDir = mkdtempSync(join(tmpdir(), 'smtplib-soak-spool-'));
  spec = `spool:${workDir}`;
} else {
  redis = await startRedisServer();
  spec = `redis:${redis.url}#soak${SEED}#2000`;
}

// Enqueue everything first (durably), remembering each message's tag.
const store = await openStore(spec);
const tagOf = new Map();
const enqueueStarted = Date.now();
for (let i = 0; i < N; i += 100) {
  const batch = [];
  for (let j = i; j < Math.min(N, i + 100); j++) {
    const tag = `s${j}`;
    const to = j % 10 === 0 ? ['x@example.test', 'y@example.test'] : ['x@example.test'];
    batch.push(store.enqueue({ from: 'soak@example.test', to, message: `From: soak@example.test\r\nTo: x@example.test\r\nSubject: ${tag}\r\nX-Soak-Id: ${tag}\r\n\r\nsoak message ${tag}\r\n` }).then(({ id }) => tagOf.set(id, { tag, to })));
  }
  await Promise.all(batch);
}
const enqueueMs = Date.now() - enqueueStarted;
log(`enqueued ${N} in ${enqueueMs} ms`);

// Workers and chaos.
const workers = new Map();
let kills = 0;
let restarts = 0;
let redisRestarts = 0;
let redisRestartMs;
let unexpectedExits = 0;
let chaos = true;
const startWorker = (slot) => {
  const child = fork(join(here, 'worker.mjs'), [spec, String(server.port)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  workers.set(slot, child);
  child.on('exit', () => {
    // Killed by the chaos loop (which restarts it), or stopped by the soak's own SIGTERM at the end.
    if (workers.get(slot) !== child || !chaos) return;
    // A worker that died by itself (a crash) is counted, reported and replaced: the soak must not quietly shrink.
    workers.delete(slot);
    unexpectedExits++;
    log(`worker in slot ${slot} exited by itself (${child.exitCode ?? child.signalCode}); restarting it`);
    setTimeout(() => { if (chaos) startWorker(slot); }, 500);
  });
};
for (let slot = 0; slot < WORKERS; slot++) startWorker(slot);
// However the soak ends (a throw included), it leaves no worker or redis-server behind.
process.on('exit', () => {
  for (const child of workers.values()) child.kill('SIGKILL');
  redis?.killNow();
});

// Progress: stats() reads every record, which at 20,000 messages on a loaded
// machine takes longer than the poll itself; the spool's pending messages are
// the files in queue/, active/*/ and hold/, so counting names is enough there.
// The end is always confirmed by stats() (and reconciled by list()).
const countPending = async () => {
  if (STORE !== 'spool') return (await store.stats()).pending;
  const names = async (dir) => (await readdir(join(workDir, dir)).catch(() => [])).filter((n) => n.endsWith('.json')).length;
  let n = (await names('queue')) + (await names('hold'));
  for (const worker of await readdir(join(workDir, 'active')).catch(() => [])) n += await names(join('active', worker));
  return n;
};
const terminal = async () => {
  const pending = await countPending();
  if (pending > 0) return { pending };
  return { pending: (await store.stats()).pending };
};

const chaosLoop = (async () => {
  while (chaos && KILL_MIN > 0) {
    await new Promise((r) => setTimeout(r, KILL_MIN + random() * KILL_SPREAD));
    if (!chaos) break;
    const slots = [...workers.keys()];
    if (slots.length === 0) continue;
    const slot = slots[Math.floor(random() * slots.length)];
    const child = workers.get(slot);
    child.kill('SIGKILL');
    kills++;
    workers.delete(slot);
    setTimeout(() => { if (chaos) { startWorker(slot); restarts++; } }, 50 + random() * 300);
  }
})();

const deadline = Date.now() + Number(arg('timeout', 600)) * 1000;
let last = '';
// stats() reads every record: at 20,000 messages that is a real load, so look less often.
const POLL_MS = Math.max(500, Math.min(5000, N / 4));
for (;;) {
  await new Promise((r) => setTimeout(r, POLL_MS));
  let state;
  try {
    state = await terminal();
  } catch {
    continue; // Redis restarting
  }
  const done = N - state.pending;
  const line = `${done}/${N} finished, kills ${kills}`;
  if (line !== last) { log(line); last = line; }
  if (redis && redisRestarts === 0 && done >= N * 0.3) {
    log('SIGKILL redis-server (AOF, appendfsync always), restarting it');
    await redis.kill();
    await new Promise((r) => setTimeout(r, 500));
    const restartedAt = Date.now();
    await redis.launch(300_000);
    redisRestarts++;
    redisRestartMs = Date.now() - restartedAt;
    log(`redis-server answered again ${redisRestartMs} ms after it was started`);
  }
  if (state.pending === 0 || Date.now() > deadline) break;
}
chaos = false;
await chaosLoop;
for (const child of workers.values()) child.kill('SIGTERM');
await new Promise((r) => setTimeout(r, 1500));
for (const child of workers.values()) child.kill('SIGKILL');

// Reconcile against the server's own log.
const messages = await store.list();
const count = (tag, rcpt) => server.deliveries.get(`${tag} ${rcpt}`) ?? 0;
const result = { store: STORE, messages: N, workers: WORKERS, kills, restarts, redisRestarts, redisRestartMs, unexpectedExits, serverDeliveries: server.stats.messages, endOfDataDrops, enqueueMs, durationMs: 0,
  states: {}, lost: [], duplicates: [], unfinished: [], unknown: { total: 0, byKillDelivered: 0, byKillNotDelivered: 0, byDropDelivered: 0, byDropNotDelivered: 0, unexplained: [] } };
const seen = new Set();
for (const m of messages) {
  const info = tagOf.get(m.id);
  if (!info) continue;
  seen.add(m.id);
  result.states[m.state] = (result.states[m.state] ?? 0) + 1;
  for (const r of m.recipients) {
    const n = count(info.tag, r.address);
    if (n > 1) result.duplicates.push(`${m.id} ${r.address} x${n}`);
    if (r.state === 'delivered' && n !== 1) result.lost.push(`${m.id} ${r.address}: recorded delivered, server has ${n}`);
    if (r.state === 'bounced') result.lost.push(`${m.id} ${r.address}: bounced (${r.lastReply?.code} ${r.lastAdvice})`);
    if (!['delivered', 'bounced', 'unknown'].includes(r.state)) result.unfinished.push(`${m.id} ${r.address}: ${r.state}`);
  }
  if (m.state === 'unknown') {
    result.unknown.total++;
    const delivered = m.recipients.every((r) => count(info.tag, r.address) === 1);
    const byKill = /worker stopped/.test(m.unknownReason ?? '');
    const byDrop = /connection lost after the end of data/.test(m.unknownReason ?? '');
    if (byKill && kills + redisRestarts > 0) result.unknown[delivered ? 'byKillDelivered' : 'byKillNotDelivered']++;
    else if (byDrop) result.unknown[delivered ? 'byDropDelivered' : 'byDropNotDelivered']++;
    else result.unknown.unexplained.push(`${m.id}: ${m.unknownReason}`);
  }
}
for (const [id] of tagOf) if (!seen.has(id)) result.lost.push(`${id}: missing from the queue`);
// The server's drops bound the unknowns they can explain: a connection carries at most one
// final dot awaiting its reply (DATA: the next body waits for its 354), so each drop loses at
// most one such reply - whether it happened at the dot itself or at the next pipelined command
// before the reply left the server. Undelivered ones need a drop at the dot itself.
const drops = server.stats.drops;
result.serverDrops = drops;
if (result.unknown.byDropDelivered + result.unknown.byDropNotDelivered > drops) result.unknown.unexplained.push(`${result.unknown.byDropDelivered + result.unknown.byDropNotDelivered} unknowns blamed on ${drops} server drops`);
if (result.unknown.byDropNotDelivered > endOfDataDrops.notDelivered + endOfDataDrops.midData) result.unknown.unexplained.push(`${result.unknown.byDropNotDelivered} undelivered unknowns blamed on ${endOfDataDrops.notDelivered} drops at the dot and ${endOfDataDrops.midData} in the body`);
result.durationMs = Date.now() - started;
const ok = unexpectedExits === 0 && result.lost.length === 0 && result.duplicates.length === 0 && result.unfinished.length === 0 && result.unknown.unexplained.length === 0;
result.ok = ok;
for (const key of ['lost', 'duplicates', 'unfinished']) if (result[key].length > 20) result[key] = [...result[key].slice(0, 20), `... ${result[key].length - 20} more`];
console.log(JSON.stringify(result, null, 2));
if (REPORT) writeFileSync(REPORT, JSON.stringify(result, null, 2) + '\n');
const DOC = arg('doc', undefined);
if (DOC) writeDocBlock(DOC, result);

await store.close().catch(() => undefined);
await server.close();
if (redis) await redis.stop();
if (workDir) rmSync(workDir, { recursive: true, force: true });
process.exit(ok ? 0 : 1);

/** Replaces the block <!-- soak:STORE:begin --> ... <!-- soak:STORE:end --> in the doc with this run's reconciliation. */
function writeDocBlock(file, r) {
  const begin = `<!-- soak:${r.store}:begin -->`;
  const end = `<!-- soak:${r.store}:end -->`;
  const command = `node test/queue/soak/crash-soak.mjs ${process.argv.slice(2).filter((a, i, all) => !['--doc', '--report'].includes(a) && !['--doc', '--report'].includes(all[i - 1])).join(' ')}`;
  const u = r.unknown;
  const lines = [
    begin,
    `Command: \`${command}\` (${new Date().toISOString().slice(0, 10)}, ${Math.round(r.durationMs / 1000)} s)`,
    '',
    '| store | messages | workers | SIGKILLs | Redis restarts | server deliveries | lost | delivered twice | unfinished | unknown | unknown explained by a kill (delivered / not) | by a drop after the dot (delivered / not) | unexplained |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |',
    `| ${r.store} | ${r.messages} | ${r.workers} | ${r.kills} | ${r.redisRestarts} | ${r.serverDeliveries} | ${r.lost.length} | ${r.duplicates.length} | ${r.unfinished.length} | ${u.total} | ${u.byKillDelivered} / ${u.byKillNotDelivered} | ${u.byDropDelivered} / ${u.byDropNotDelivered} | ${u.unexplained.length} |`,
    '',
    `Final states: ${Object.entries(r.states).map(([k, v]) => `${v} ${k}`).join(', ')}. Workers that died by themselves: ${r.unexpectedExits}. The server dropped ${r.serverDrops} connections, ${r.endOfDataDrops.delivered + r.endOfDataDrops.notDelivered} of them at the final dot (${r.endOfDataDrops.delivered} after delivering); a drop at the command pipelined after a dot also loses that dot's reply. ${r.redisRestartMs !== undefined ? `The restarted redis-server answered ${r.redisRestartMs} ms after it was started (AOF replay). ` : ''}Durable enqueue of ${r.messages} messages took ${r.enqueueMs} ms (${Math.round(r.messages / (r.enqueueMs / 1000))} msgs/s, 100 at a time).`,
    end,
  ].join('\n');
  replaceDocBlock(file, begin, end, lines);
}
