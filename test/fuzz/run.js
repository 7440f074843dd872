// npm run fuzz: a time-boxed fuzzer against the built library ('smtplib',
// i.e. packages/smtplib/dist). Three engines share the time:
//
//   parser   random and mutated reply streams, pushed in random splits:
//            only SMTPProtocolError may be thrown, and every split of the
//            same bytes must give the same replies (and error);
//   encoder  random bytes in random splits, DATA and BDAT mode: only CRLF
//            line ends, every "." line stuffed, decode(encode(m)) ==
//            normalize(m), output independent of the split;
//   session  a loopback server answers each client command with replies
//            drawn from a grammar of plausible SMTP replies, then mutated
//            (byte flips, truncation, bare CR/LF, unsolicited extras, code
//            changes), delivered whole / split / dripped, or it stalls,
//            half-closes or resets. The client (SMTP or LMTP, pipelining
//            and CHUNKING on or off, 200 ms deadlines) runs a random
//            operation. Every call must settle before a watchdog (no hang
//            past its deadlines) and every rejection must be an SMTP error.
//
// Memory is sampled throughout (after gc when run with --expose-gc); the
// run fails if heapUsed grows more than FUZZ_HEAP_BOUND_MB over the start.
//
// Environment: FUZZ_SECONDS (60), FUZZ_SEED (time), FUZZ_CONCURRENCY (24),
// FUZZ_HEAP_BOUND_MB (64). Prints executions/s per engine, totals and
// "FUZZ_RESULT {json}"; exits 1 on any failure.

import net from 'node:net';
import { Readable } from 'node:stream';
import * as smtplib from 'smtplib';

const { SMTP, LMTP, ReplyParser, DataEncoder, decodeData, isSMTPError } = smtplib;

const SECONDS = Number(process.env.FUZZ_SECONDS ?? 60);
const SEED = Number(process.env.FUZZ_SEED ?? (Date.now() % 2 ** 31));
const CONCURRENCY = Number(process.env.FUZZ_CONCURRENCY ?? 24);
const HEAP_BOUND_MB = Number(process.env.FUZZ_HEAP_BOUND_MB ?? 64);
const DEADLINE = 200; // ms, every phase of the client
const WATCHDOG = 4000; // ms, no client call may take longer

// --- randomness -------------------------------------------------------------

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
class Rng {
  constructor(seed) { this.next = mulberry32(seed); }
  int(n) { return Math.floor(this.next() * n); }
  chance(p) { return this.next() < p; }
  pick(list) { return list[this.int(list.length)]; }
  bytes(n, alphabet) {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = alphabet && this.chance(0.7) ? this.pick(alphabet) : this.int(256);
    return out;
  }
}

const failures = [];
function fail(engine, message, detail) {
  if (failures.length < 50) failures.push({ engine, message, ...(detail ? { detail } : {}) });
}

// --- grammar of plausible replies ---------------------------------------------

const WORDS = ['OK', 'ok', 'queued', 'as', 'Go', 'ahead', 'bye', 'mx.test', 'ESMTP', 'Postfix', 'user', 'unknown', 'mailbox', 'full', 'try', 'later', 'denied', '<a@b.test>', 'é', '\u00ff', 'Ready'];
const CAPS = ['PIPELINING', 'SIZE 10240000', 'SIZE', 'SIZE abc', 'SIZE 0', 'SIZE 99999999999999999999', 'SIZE 100', '8BITMIME', 'SMTPUTF8', 'CHUNKING', 'DSN',
  'ENHANCEDSTATUSCODES', 'BINARYMIME', 'AUTH PLAIN LOGIN', 'AUTH=LOGIN', 'AUTH CRAM-MD5 X_UNKNOWN', 'VRFY', 'ETRN', 'X-JUNK a=b', 'REQUIRETLS', 'STARTTLS'];

function text(rng) {
  const n = 1 + rng.int(4);
  const words = [];
  if (rng.chance(0.4)) words.push(`${rng.pick([2, 4, 5])}.${rng.int(8)}.${rng.int(8)}`);
  for (let i = 0; i < n; i++) words.push(rng.pick(WORDS));
  return words.join(' ');
}
function reply(rng, code, lines = 1) {
  let out = '';
  for (let i = 0; i < lines; i++) out += `${code}${i === lines - 1 ? ' ' : '-'}${text(rng)}\r\n`;
  return Buffer.from(out, 'utf8');
}
function ehloReply(rng) {
  const lines = ['250-mx.test greets you'];
  const n = rng.int(8);
  for (let i = 0; i < n; i++) lines.push(`250-${rng.pick(CAPS)}`);
  lines.push(`250 ${rng.pick(CAPS)}`);
  return Buffer.from(lines.join('\r\n') + '\r\n');
}
/** The reply a plausible server gives to `line`. */
function answer(rng, line, state) {
  const verb = line.split(' ')[0].toUpperCase();
  const roll = rng.next();
  const bad = (codes) => reply(rng, rng.pick(codes), 1 + rng.int(2));
  switch (verb) {
    case 'EHLO': case 'LHLO': return roll < 0.85 ? ehloReply(rng) : bad([421, 500, 502, 550, 554]);
    case 'HELO': return roll < 0.85 ? reply(rng, 250) : bad([421, 500, 501]);
    case 'MAIL': return roll < 0.8 ? reply(rng, 250) : bad([421, 451, 452, 501, 550, 552, 553]);
    case 'RCPT': if (roll < 0.75) { state.rcpt++; return reply(rng, rng.pick([250, 251])); } return bad([421, 450, 451, 452, 550, 551, 553]);
    case 'DATA': if (roll < 0.8) { state.mode = 'data'; return reply(rng, 354); } return bad([421, 451, 503, 554]);
    case 'BDAT': {
      const m = /^BDAT (\d+)( LAST)?$/i.exec(line);
      if (m) { state.mode = 'bdat'; state.bdat = Number(m[1]); state.last = Boolean(m[2]); }
      return null; // answered after the chunk
    }
    case 'AUTH': return roll < 0.5 ? reply(rng, 334, 1).subarray(0, 4).toString() === '334 ' ? Buffer.from(`334 ${rng.pick(['', 'VXNlcm5hbWU6', 'UGFzc3dvcmQ6', 'PDE4OTYuNjk3MTcwOTUyQG14LnRlc3Q+', '!!notbase64'])}\r\n`) : reply(rng, 334) : roll < 0.8 ? reply(rng, 235) : bad([421, 454, 500, 535, 538]);
    case 'QUIT': state.quit = true; return roll < 0.9 ? reply(rng, 221) : bad([421, 500]);
    case 'RSET': case 'NOOP': return roll < 0.9 ? reply(rng, 250) : bad([421, 500]);
    case 'VRFY': case 'EXPN': return reply(rng, rng.pick([250, 251, 252, 502, 550]));
    case '*': return reply(rng, 501);
    default: return state.auth && roll < 0.5 ? Buffer.from('334 \r\n') : reply(rng, rng.pick([235, 250, 500, 535]));
  }
}
function afterData(rng, state) {
  const n = state.lmtp ? Math.max(1, state.rcpt) : 1;
  const parts = [];
  for (let i = 0; i < n; i++) parts.push(rng.chance(0.85) ? reply(rng, 250) : reply(rng, rng.pick([421, 451, 452, 550, 552, 554])));
  state.rcpt = 0;
  return Buffer.concat(parts);
}

/** Damages a reply in one of many ways (or leaves it). */
function mutate(rng, buf) {
  if (!rng.chance(0.12)) return buf;
  const b = Buffer.from(buf);
  switch (rng.int(11)) {
    case 0: if (b.length) b[rng.int(b.length)] = rng.int(256); return b;
    case 1: return b.subarray(0, rng.int(b.length + 1));
    case 2: { const i = rng.int(b.length + 1); return Buffer.concat([b.subarray(0, i), Buffer.from([rng.pick([0x0d, 0x0a, 0x00, 0x2d, 0x20])]), b.subarray(i)]); }
    case 3: return Buffer.concat([b, reply(rng, rng.pick([250, 421, 550, 220]))]); // unsolicited extra
    case 4: return Buffer.from(b.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
    case 5: return Buffer.from(b.toString('latin1').replace(/^(\d)(\d\d)-/m, (_, a, c) => `${a}${(Number(c) + 1) % 100}-`), 'latin1');
    case 6: return Buffer.concat([b, b]);
    case 7: return Buffer.from(b.toString('latin1').replace(/ /, '-'), 'latin1'); // never-ending multi-line
    case 8: return rng.bytes(rng.int(40), [0x32, 0x35, 0x30, 0x20, 0x2d, 0x0d, 0x0a]);
    case 9: return Buffer.concat([Buffer.from(`250-${'x'.repeat(rng.pick([100, 1000, 9000]))}\r\n`), b]);
    default: return Buffer.concat([b.subarray(0, 3), Buffer.from(' '), b.subarray(3)]);
  }
}

// --- the loopback server ----------------------------------------------------------

let connectionSeq = 0;
function serve(socket) {
  const rng = new Rng(SEED ^ (++connectionSeq * 2654435761));
  socket.setNoDelay(true);
  socket.on('error', () => {});
  const state = { rcpt: 0, mode: 'command', bdat: 0, last: false, quit: false, lmtp: false, auth: false };
  let buffer = Buffer.alloc(0);
  let chain = Promise.resolve();
  let dead = false;
  const kill = () => { dead = true; };
  socket.on('close', kill);

  const deliver = async (bytes) => {
    if (dead) return;
    const roll = rng.next();
    if (roll < 0.015) { dead = true; socket.resetAndDestroy(); return; }
    if (roll < 0.03) { dead = true; socket.end(); return; }
    if (roll < 0.045) return; // stall: say nothing
    const mode = rng.int(10);
    if (mode < 6 || bytes.length < 2) { socket.write(bytes); return; }
    if (mode < 8) {
      let i = 0;
      while (i < bytes.length && !dead) {
        const n = 1 + rng.int(Math.min(16, bytes.length - i));
        socket.write(bytes.subarray(i, i + n));
        i += n;
        if (rng.chance(0.3)) await new Promise((r) => setTimeout(r, rng.int(3)));
      }
      return;
    }
    if (mode === 8) { for (const b of bytes) { if (dead) return; socket.write(Buffer.from([b])); } return; }
    // A slow drip, which the client's absolute deadline must cut short.
    for (const b of bytes) { if (dead) return; socket.write(Buffer.from([b])); await new Promise((r) => setTimeout(r, 15)); }
  };
  const send = (bytes) => { chain = chain.then(() => deliver(mutate(rng, bytes))); };

  const process = () => {
    for (;;) {
      if (dead) return;
      if (state.mode === 'data') {
        const atStart = buffer.subarray(0, 3).toString('latin1') === '.\r\n';
        const end = atStart ? 0 : buffer.indexOf('\r\n.\r\n');
        if (end === -1) { if (buffer.length > 1 << 20) buffer = buffer.subarray(buffer.length - 8); return; }
        buffer = buffer.subarray(atStart ? 3 : end + 5);
        state.mode = 'command';
        send(afterData(rng, state));
        continue;
      }
      if (state.mode === 'bdat') {
        if (buffer.length < state.bdat) return;
        buffer = buffer.subarray(state.bdat);
        state.mode = 'command';
        send(state.last ? afterData(rng, state) : reply(rng, rng.chance(0.9) ? 250 : rng.pick([421, 451, 552])));
        continue;
      }
      const lf = buffer.indexOf('\r\n');
      if (lf === -1) { if (buffer.length > 1 << 16) { dead = true; socket.destroy(); } return; }
      const line = buffer.subarray(0, lf).toString('latin1');
      buffer = buffer.subarray(lf + 2);
      if (/^LHLO/i.test(line)) state.lmtp = true;
      if (/^AUTH/i.test(line)) state.auth = true;
      const out = answer(rng, line, state);
      if (out) send(out);
      if (state.quit) { chain = chain.then(() => { if (!dead) socket.end(); }); return; }
    }
  };
  socket.on('data', (chunk) => { buffer = Buffer.concat([buffer, chunk]); process(); });
  // The greeting (sometimes not 220, sometimes multi-line, sometimes mutated).
  const g = rng.next();
  send(g < 0.93 ? reply(rng, 220, 1 + rng.int(3)) : reply(rng, rng.pick([421, 554, 250, 500])));
}

// --- engines ------------------------------------------------------------------------

const stats = { parser: 0, encoder: 0, session: 0, sessionOk: 0, sessionErrors: {}, maxCallMs: 0 };

function splitAt(rng, buf) {
  const out = [];
  let i = 0;
  while (i < buf.length) {
    const n = rng.chance(0.2) ? 1 : 1 + rng.int(Math.max(1, buf.length - i));
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  if (rng.chance(0.1)) out.splice(rng.int(out.length + 1), 0, Buffer.alloc(0));
  return out;
}
function parseChunks(chunks, limits) {
  const parser = new ReplyParser(limits);
  const replies = [];
  try {
    for (const c of chunks) for (const r of parser.push(c)) replies.push(`${r.code}|${r.lines.join('\n')}`);
  } catch (error) {
    if (error?.name !== 'SMTPProtocolError' || error?.code !== 'ERR_SMTP_PROTOCOL') return { crash: error };
    for (const r of error.replies ?? []) replies.push(`${r.code}|${r.lines.join('\n')}`);
    return { replies, error: error.message };
  }
  return { replies };
}

function parserOnce(rng) {
  const parts = [];
  const n = 1 + rng.int(5);
  for (let i = 0; i < n; i++) parts.push(mutate(rng, rng.chance(0.3) ? ehloReply(rng) : reply(rng, rng.pick([220, 250, 334, 354, 421, 550]), 1 + rng.int(3))));
  if (rng.chance(0.1)) parts.push(rng.bytes(rng.int(64), [0x0d, 0x0a, 0x32, 0x35, 0x30, 0x20, 0x2d]));
  const stream = Buffer.concat(parts);
  const limits = rng.chance(0.2) ? { maxLineLength: 8 + rng.int(64), maxReplyLength: 16 + rng.int(256), maxReplyLines: 1 + rng.int(6) } : {};
  const whole = parseChunks([stream], limits);
  const split = parseChunks(splitAt(rng, stream), limits);
  for (const o of [whole, split]) if (o.crash) return fail('parser', `threw ${o.crash?.name}: ${o.crash?.message}`, stream.toString('base64'));
  if (JSON.stringify(whole) !== JSON.stringify(split)) fail('parser', 'split changed the outcome', stream.toString('base64'));
}

function normalize(buf) {
  let t = buf.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n');
  if (t.length && !t.endsWith('\r\n')) t += '\r\n';
  return Buffer.from(t, 'latin1');
}
function encodeChunks(mode, chunks) {
  const e = new DataEncoder(mode);
  const out = [];
  for (const c of chunks) out.push(...e.encode(c));
  out.push(e.end());
  return Buffer.concat(out);
}
function encoderOnce(rng) {
  const m = rng.bytes(rng.int(300), [0x0d, 0x0a, 0x2e, 0x00, 0x61]);
  const data = encodeChunks('data', splitAt(rng, m));
  const whole = encodeChunks('data', [m]);
  const text = data.toString('latin1');
  if (!data.equals(whole)) return fail('encoder', 'split changed the DATA output', m.toString('base64'));
  if (/\r(?!\n)|(?<!\r)\n/.test(text)) return fail('encoder', 'bare CR or LF on the wire', m.toString('base64'));
  if (text.slice(0, -3).includes('\r\n.\r\n') || !text.endsWith('.\r\n')) return fail('encoder', 'end marker before the end', m.toString('base64'));
  if (!decodeData(data).equals(normalize(m))) return fail('encoder', 'decode(encode(m)) != normalize(m)', m.toString('base64'));
  const bdat = encodeChunks('bdat', splitAt(rng, m));
  if (!bdat.equals(normalize(m))) return fail('encoder', 'BDAT output is not the normalized input', m.toString('base64'));
}

async function sessionOnce(rng, port) {
  const lmtp = rng.chance(0.15);
  const Class = lmtp ? LMTP : SMTP;
  const options = {
    host: '127.0.0.1', port, localHostname: 'fuzz.test', timeout: DEADLINE, tlsPolicy: 'none',
    pipelining: rng.chance(0.7), chunking: rng.chance(0.5), chunkSize: rng.pick([8, 64, 1 << 20]),
  };
  const body = rng.chance(0.5)
    ? `Subject: fuzz\r\n\r\n${rng.bytes(rng.int(400), [0x0d, 0x0a, 0x2e, 0x61]).toString('latin1')}`
    : rng.bytes(rng.int(2000), [0x0d, 0x0a, 0x2e, 0x61]);
  const op = rng.int(6);
  let client;
  const run = async () => {
    client = new Class(options);
    await client.connect();
    switch (op) {
      case 0: case 1: await client.sendmail('a@x.test', ['b@y.test', 'c@y.test'], body); break;
      case 2: await client.sendmail('a@x.test', ['b@y.test'], Readable.from(splitAt(rng, Buffer.from(body)))); break;
      case 3: await client.login('user', 'pass').catch((e) => { if (!isSMTPError(e)) throw e; }); await client.sendmail('a@x.test', ['b@y.test'], body); break;
      case 4: await client.noop(); await client.verify('x@y.test'); await client.rset(); break;
      default: {
        // Queued concurrent sends on one connection (pipelined into each other).
        const sends = [0, 1, 2].map((i) => client.sendmail('a@x.test', [`r${i}@y.test`], body));
        const settled = await Promise.allSettled(sends);
        for (const s of settled) if (s.status === 'rejected') throw s.reason;
      }
    }
    await client.quit();
  };
  const started = performance.now();
  let timer;
  const watchdog = new Promise((resolve) => { timer = setTimeout(() => resolve('hang'), WATCHDOG); });
  const outcome = await Promise.race([run().then(() => 'ok', (e) => e), watchdog]);
  clearTimeout(timer);
  const ms = performance.now() - started;
  stats.maxCallMs = Math.max(stats.maxCallMs, ms);
  client?.close();
  stats.session++;
  if (outcome === 'hang') return fail('session', `a call did not settle within ${WATCHDOG} ms (op ${op}, lmtp ${lmtp})`);
  if (outcome === 'ok') { stats.sessionOk++; return; }
  if (!isSMTPError(outcome)) return fail('session', `untyped rejection ${outcome?.name}: ${outcome?.message}`, String(outcome?.stack));
  stats.sessionErrors[outcome.name] = (stats.sessionErrors[outcome.name] ?? 0) + 1;
}

// --- main -----------------------------------------------------------------------------

const unhandled = [];
process.on('unhandledRejection', (e) => unhandled.push(`unhandledRejection: ${e?.stack ?? e}`));
process.on('uncaughtException', (e) => unhandled.push(`uncaughtException: ${e?.stack ?? e}`));

const gc = globalThis.gc;
const heap = () => { gc?.(); return process.memoryUsage().heapUsed; };
const baseline = heap();
let maxHeap = baseline;
const sampler = setInterval(() => { maxHeap = Math.max(maxHeap, process.memoryUsage().heapUsed); }, 250);

const server = net.createServer(serve);
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const port = server.address().port;
const rng = new Rng(SEED);
const total = SECONDS * 1000;
const t0 = performance.now();
const times = {};

async function timeBox(name, share, body) {
  const start = performance.now();
  const end = start + total * share;
  await body(end);
  times[name] = (performance.now() - start) / 1000;
}

await timeBox('parser', 0.2, async (end) => {
  while (performance.now() < end) { for (let i = 0; i < 200; i++) { parserOnce(rng); stats.parser++; } await new Promise(setImmediate); }
});
await timeBox('encoder', 0.15, async (end) => {
  while (performance.now() < end) { for (let i = 0; i < 200; i++) { encoderOnce(rng); stats.encoder++; } await new Promise(setImmediate); }
});
await timeBox('session', 0.65, async (end) => {
  const worker = async (w) => {
    const wr = new Rng(SEED + 7919 * (w + 1));
    while (performance.now() < end) await sessionOnce(wr, port);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
});

clearInterval(sampler);
server.close();
for (const s of server.connections ?? []) s.destroy?.();
await new Promise((r) => setTimeout(r, 300));
const finalHeap = heap();
const growthMB = (Math.max(maxHeap, finalHeap) - baseline) / 2 ** 20;
if ((gc ? finalHeap - baseline : maxHeap - baseline) / 2 ** 20 > HEAP_BOUND_MB) fail('memory', `heap grew ${growthMB.toFixed(1)} MB (bound ${HEAP_BOUND_MB} MB)`);
for (const u of unhandled.slice(0, 10)) fail('process', u);

const elapsed = (performance.now() - t0) / 1000;
const rate = (n, s) => (s > 0 ? Math.round(n / s) : 0);
const result = {
  seed: SEED,
  seconds: Number(elapsed.toFixed(1)),
  executions: { parser: stats.parser, encoder: stats.encoder, session: stats.session, total: stats.parser + stats.encoder + stats.session },
  perSecond: { parser: rate(stats.parser, times.parser), encoder: rate(stats.encoder, times.encoder), session: rate(stats.session, times.session) },
  session: { ok: stats.sessionOk, errors: stats.sessionErrors, maxCallMs: Math.round(stats.maxCallMs) },
  heap: { baselineMB: +(baseline / 2 ** 20).toFixed(1), maxMB: +(maxHeap / 2 ** 20).toFixed(1), finalMB: +(finalHeap / 2 ** 20).toFixed(1), gc: Boolean(gc) },
  failures,
};
console.log(`fuzz: seed ${SEED}, ${result.seconds} s`);
console.log(`  parser : ${stats.parser} executions (${result.perSecond.parser}/s)`);
console.log(`  encoder: ${stats.encoder} executions (${result.perSecond.encoder}/s)`);
console.log(`  session: ${stats.session} executions (${result.perSecond.session}/s), ${stats.sessionOk} delivered, errors ${JSON.stringify(stats.sessionErrors)}, slowest call ${result.session.maxCallMs} ms`);
console.log(`  heap: ${result.heap.baselineMB} MB at start, ${result.heap.maxMB} MB max, ${result.heap.finalMB} MB at end${gc ? ' (after gc)' : ''}`);
console.log(`  total: ${result.executions.total} executions, ${failures.length} failure(s)`);
for (const f of failures) console.log(`  FAIL [${f.engine}] ${f.message}${f.detail ? `\n    ${String(f.detail).split('\n').slice(0, 6).join('\n    ')}` : ''}`);
console.log(`FUZZ_RESULT ${JSON.stringify(result)}`);
process.exitCode = failures.length ? 1 : 0;
setTimeout(() => process.exit(process.exitCode), 100).unref();
