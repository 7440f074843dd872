// Soak test of SMTPPool against a loopback server that misbehaves on purpose
// (test/soak/fault-server.js, in a child process so this process's memory is
// the client's alone): 5% of connections are dropped at a random step
// (sometimes mid-data, sometimes right after the message was delivered and
// before the reply), and 5% of commands are answered 421 or 451.
//
// At the end, the server's delivered (id, recipient) pairs, the client's
// results and the input must agree:
//   - every send settled exactly once;
//   - every recipient the client reports accepted was delivered exactly once;
//   - nothing the client reports not delivered (refused, or rejected with
//     deliveryStatus 'not-delivered') was delivered;
//   - nothing was delivered twice; nothing was delivered that was not sent;
//   - only sends reported 'unknown' may be either (and they are counted);
//   - the heap returns to within SOAK_HEAP_BOUND_MB (default 8 MB) of where
//     it started, after the pool is closed.
//
// Three modes, each a whole soak of its own (the paths where delivery status
// is hardest to keep right):
//   data       DATA with dot-stuffing
//   chunking   CHUNKING: BDAT in small chunks (chunkSize 256: some messages in one
//              BDAT LAST, some in several chunks), pipelined, so
//              several transactions' BDAT LAST groups are chained in one write
//   tls-auth   STARTTLS and AUTH PLAIN on every connection (CHUNKING too)
//
// Used by run.js (npm run soak) and test/pool/soak-short.test.ts:
//   npm run soak                      100 000 messages in each mode
//   SOAK_MODES=chunking npm run soak  one mode
//   SOAK_MESSAGES=2000 npm run soak   the size of the short run (test/pool/soak-short.test.ts)
//
// Prints a human summary and one line "SOAK_RESULT {json}"; exits 1 if any
// check fails.

import { execFileSync, fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

export const SOAK_MODES = ['data', 'chunking', 'tls-auth'];

/** A throw-away CA and a server certificate for 127.0.0.1 (openssl), for the tls-auth mode. */
function makeCertificates() {
  const dir = mkdtempSync(join(tmpdir(), 'smtplib-soak-'));
  try {
    const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=soak CA');
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
    writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
    ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'server.ext');
    return { ca: readFileSync(join(dir, 'ca.pem'), 'utf8'), key: readFileSync(join(dir, 'server.key'), 'utf8'), cert: readFileSync(join(dir, 'server.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs the soak and returns its figures (`failures` lists every broken
 * invariant). `SMTPPool` is passed in so the same code runs against the
 * built package (run.js) or the sources (test/pool/soak-short.test.ts).
 */
export async function runSoak({
  SMTPPool,
  messages: N = 100_000,
  window: WINDOW = 2000,
  seed: SEED = Date.now() % 1_000_000,
  heapBoundMB: HEAP_BOUND_MB = 8,
  dropRate = 0.05,
  replyFaultRate = 0.05,
  mode = 'data',
  log = console.log,
} = {}) {
  if (!SOAK_MODES.includes(mode)) throw new Error(`soak mode must be one of ${SOAK_MODES.join(', ')}, got ${mode}`);
  const env = process.env;
  const chunking = mode !== 'data';
  const certificates = mode === 'tls-auth' ? makeCertificates() : undefined;
  const credentials = { user: 'soak', pass: 'soak-password' };
  const server = fork(fileURLToPath(new URL('./fault-server.js', import.meta.url)), [], {
    env: {
      ...env,
      SOAK_SEED: String(SEED),
      SOAK_DROP_RATE: String(dropRate),
      SOAK_REPLY_FAULT_RATE: String(replyFaultRate),
      SOAK_CHUNKING: chunking ? '1' : '0',
      ...(certificates ? { SOAK_TLS_KEY: certificates.key, SOAK_TLS_CERT: certificates.cert, SOAK_AUTH_USER: credentials.user, SOAK_AUTH_PASS: credentials.pass } : {}),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [ready] = await once(server, 'message');
  const port = ready.port;

  // Outcome per message: 0 pending, 1 resolved, 2 rejected not-delivered, 3 rejected unknown, 4 rejected other.
  const outcome = new Uint8Array(N);
  // Per message, bit r set: recipient r reported accepted / refused / unknown.
  const acceptedMask = new Uint8Array(N);
  const refusedMask = new Uint8Array(N);
  const unknownMask = new Uint8Array(N);
  const attemptsHistogram = new Uint32Array(16);
  let settledTwice = 0;
  const errorCodes = new Map();

  const recipientsOf = (i) => (i % 10 === 0 ? [`a${i}@soak.test`, `b${i}@soak.test`] : [`a${i}@soak.test`]);
  const bitOf = (address) => (address.startsWith('b') ? 2 : 1);
  const body = (i) =>
    `From: soak@soak.test\r\nTo: a${i}@soak.test\r\nSubject: soak ${i}\r\nX-Soak-Id: ${i}\r\nMessage-ID: <${i}.${SEED}@soak.test>\r\n\r\n` +
    `message ${i}\r\n.leading dot\r\n${'x'.repeat(i % 200)}\r\n`;

  gc();
  const before = process.memoryUsage();

  const IN_FLIGHT = 10;
  let pool = new SMTPPool({
    host: '127.0.0.1',
    port,
    localHostname: 'soak.test',
    maxConnections: 8,
    maxMessagesPerConnection: 500,
    maxInFlightPerConnection: IN_FLIGHT,
    maxQueued: WINDOW,
    idleTimeout: 5_000,
    noopAfterIdleMs: 1_000,
    timeout: 10_000,
    retry: { attempts: 10, minDelayMs: 2, maxDelayMs: 50 },
    connectAttempts: 10,
    ...(chunking ? { chunkSize: 256 } : { chunking: false }),
    ...(certificates ? { tlsPolicy: 'required', tls: { ca: certificates.ca }, auth: { ...credentials, mechanism: 'PLAIN' } } : {}),
  });

  const started = performance.now();
  let outstanding = 0;
  let wake;
  for (let i = 0; i < N; i++) {
    while (outstanding >= WINDOW) await new Promise((resolve) => (wake = resolve));
    outstanding++;
    pool.sendmail('soak@soak.test', recipientsOf(i), body(i)).then(
      (result) => {
        if (outcome[i] !== 0) settledTwice++;
        outcome[i] = 1;
        for (const a of result.accepted) acceptedMask[i] |= bitOf(a);
        for (const a of result.refused.keys()) refusedMask[i] |= bitOf(a);
        for (const a of result.unknown) unknownMask[i] |= bitOf(a);
        attemptsHistogram[Math.min(15, result.attempts)]++;
      },
      (error) => {
        if (outcome[i] !== 0) settledTwice++;
        outcome[i] = error?.deliveryStatus === 'unknown' ? 3 : error?.deliveryStatus === 'not-delivered' ? 2 : 4;
        const key = `${error?.code ?? error?.name}${error?.smtpCode ? ` ${error.smtpCode}` : ''} (${error?.deliveryStatus ?? '-'})`;
        errorCodes.set(key, (errorCodes.get(key) ?? 0) + 1);
        if (env.SOAK_DEBUG_ERRORS) console.error(`message ${i}: ${error?.deliveryStatus} ${error?.message}`);
        attemptsHistogram[Math.min(15, error?.attempts ?? 0)]++;
      },
    ).finally(() => {
      outstanding--;
      if (wake && outstanding < WINDOW) { const w = wake; wake = undefined; w(); }
    });
  }
  while (outstanding > 0) await new Promise((resolve) => (wake = resolve));
  const elapsedMs = performance.now() - started;
  const poolStats = pool.stats();
  await pool.close();
  pool = undefined;

  // Memory, before the accounting below allocates its own maps.
  await new Promise((resolve) => setTimeout(resolve, 50));
  for (let i = 0; i < 3; i++) { gc(); await new Promise((resolve) => setImmediate(resolve)); }
  const after = process.memoryUsage();
  const heapGrowthMB = (after.heapUsed - before.heapUsed) / 2 ** 20;

  server.send({ cmd: 'report' });
  const [report] = await once(server, 'message');
  server.send({ cmd: 'close' });

  // --- accounting -------------------------------------------------------------
  const delivered = new Map(report.deliveries);
  const counts = { resolved: 0, notDelivered: 0, unknown: 0, other: 0, pending: 0 };
  let lost = 0; // reported accepted, not delivered
  let phantom = 0; // delivered, reported not delivered (and not unknown)
  let duplicates = 0; // delivered more than once
  let unknownDelivered = 0;
  let unknownNotDelivered = 0;
  let strays = 0; // delivered but never sent
  const seen = new Set();
  for (let i = 0; i < N; i++) {
    const state = outcome[i];
    counts[['pending', 'resolved', 'notDelivered', 'unknown', 'other'][state]]++;
    for (const address of recipientsOf(i)) {
      const key = `${i} ${address}`;
      seen.add(key);
      const n = delivered.get(key) ?? 0;
      const bit = bitOf(address);
      if (n > 1) duplicates++;
      if (state === 1) {
        if (acceptedMask[i] & bit) { if (n !== 1) lost++; }
        else if (unknownMask[i] & bit) { if (n) unknownDelivered++; else unknownNotDelivered++; }
        else if (n !== 0) phantom++;
      } else if (state === 3) {
        if (n) unknownDelivered++; else unknownNotDelivered++;
      } else if (n !== 0) {
        phantom++;
      }
    }
  }
  for (const key of delivered.keys()) if (!seen.has(key)) strays++;
  // Sends with an unknown outcome (rejected 'unknown', or resolved with unknown recipients).
  let unknownSends = 0;
  for (let i = 0; i < N; i++) if (outcome[i] === 3 || (outcome[i] === 1 && unknownMask[i])) unknownSends++;
  // "Unknown" must be explained: only a connection lost after a message's
  // last byte was written leaves it unknown (a reply, 421 included, is always
  // certain), and one dropped connection carries at most IN_FLIGHT sends.
  const unknownBound = report.stats.drops * IN_FLIGHT;

  const result = {
    mode,
    messages: N,
    seed: SEED,
    elapsedMs: Math.round(elapsedMs),
    messagesPerSecond: Math.round((N / elapsedMs) * 1000),
    outcomes: counts,
    settledTwice,
    lost,
    phantom,
    duplicates,
    strays,
    unknown: { sends: unknownSends, bound: unknownBound, delivered: unknownDelivered, notDelivered: unknownNotDelivered },
    errors: Object.fromEntries(errorCodes),
    attempts: Object.fromEntries([...attemptsHistogram].map((n, i) => [i, n]).filter(([, n]) => n > 0)),
    pool: poolStats,
    server: report.stats,
    memory: {
      heapBeforeMB: +(before.heapUsed / 2 ** 20).toFixed(1),
      heapAfterMB: +(after.heapUsed / 2 ** 20).toFixed(1),
      heapGrowthMB: +heapGrowthMB.toFixed(2),
      heapBoundMB: HEAP_BOUND_MB,
      rssBeforeMB: +(before.rss / 2 ** 20).toFixed(1),
      rssAfterMB: +(after.rss / 2 ** 20).toFixed(1),
    },
  };

  const failures = [];
  if (counts.pending) failures.push(`${counts.pending} sends never settled`);
  if (settledTwice) failures.push(`${settledTwice} sends settled twice`);
  if (lost) failures.push(`${lost} recipients reported accepted but not delivered`);
  if (phantom) failures.push(`${phantom} recipients delivered but reported not delivered`);
  if (duplicates) failures.push(`${duplicates} recipients delivered more than once`);
  if (strays) failures.push(`${strays} deliveries that were never sent`);
  if (counts.other) failures.push(`${counts.other} rejections without a deliveryStatus`);
  if (unknownSends > unknownBound) failures.push(`${unknownSends} sends ended unknown, more than the ${report.stats.drops} dropped connections can explain (at most ${IN_FLIGHT} each)`);
  if (report.stats.nestedMail) failures.push(`the client wrote MAIL inside an open transaction ${report.stats.nestedMail} times`);
  // The mode's path was really taken.
  if (chunking && report.stats.bdatLast < report.stats.messages) failures.push(`only ${report.stats.bdatLast} of ${report.stats.messages} deliveries came by BDAT LAST`);
  if (chunking && report.stats.maxBdatLastInOneRead < 2) failures.push('no two BDAT LAST groups were ever chained in one read');
  if (certificates && (report.stats.starttls < poolStats.connectionsOpened || report.stats.auths < poolStats.connectionsOpened)) {
    failures.push(`STARTTLS ${report.stats.starttls} and AUTH ${report.stats.auths} for ${poolStats.connectionsOpened} connections`);
  }
  if (heapGrowthMB > HEAP_BOUND_MB) failures.push(`heap grew by ${heapGrowthMB.toFixed(1)} MB (bound ${HEAP_BOUND_MB} MB)`);
  result.failures = failures;

  log(`soak (${mode}): ${N} messages in ${(elapsedMs / 1000).toFixed(1)} s (${result.messagesPerSecond}/s), seed ${SEED}`);
  log(`  server: ${report.stats.connections} connections, ${report.stats.drops} dropped, ${report.stats.faults} faults injected, ${report.stats.messages} messages delivered`);
  if (chunking) log(`  chunking: ${report.stats.bdatChunks} BDAT chunks, ${report.stats.bdatLast} BDAT LAST, up to ${report.stats.maxBdatLastInOneRead} BDAT LAST groups in one read`);
  if (certificates) log(`  tls-auth: ${report.stats.starttls} STARTTLS, ${report.stats.auths} AUTH`);
  log(`  client: resolved ${counts.resolved}, not delivered ${counts.notDelivered}, unknown ${counts.unknown}; retried attempts ${poolStats.retried}; connections opened ${poolStats.connectionsOpened}`);
  log(`  attempts per message: ${JSON.stringify(result.attempts)}`);
  log(`  errors: ${JSON.stringify(result.errors)}`);
  log(`  lost ${lost}, delivered twice ${duplicates}, phantom ${phantom}, strays ${strays}; unknown: ${unknownSends} sends (at most ${unknownBound} explained by ${report.stats.drops} drops), recipients ${unknownDelivered} delivered, ${unknownNotDelivered} not`);
  log(`  heap ${result.memory.heapBeforeMB} MB → ${result.memory.heapAfterMB} MB (growth ${result.memory.heapGrowthMB} MB, bound ${HEAP_BOUND_MB} MB); rss ${result.memory.rssBeforeMB} → ${result.memory.rssAfterMB} MB`);
  log(failures.length ? `  FAILED: ${failures.join('; ')}` : '  OK');
  return result;
}
