// A loopback SMTP server for pool and soak tests that misbehaves on purpose.
//
// It speaks enough ESMTP for a pipelining client (EHLO with PIPELINING and
// ENHANCEDSTATUSCODES, MAIL, RCPT, DATA, RSET, NOOP, QUIT; with options,
// CHUNKING/BDAT (`chunking`), STARTTLS (`tls: { key, cert }`) and AUTH PLAIN
// required before MAIL (`auth: { user, pass }`)), counts what it
// really delivered (by the message's X-Soak-Id header and each recipient),
// and asks a `fault` hook, at every step, whether to misbehave:
//   undefined            answer normally
//   { reply: '451 ...' } answer with this instead (a 421 also closes)
//   { drop: true }       destroy the connection without answering
//   { drop: 'after-delivery' }   (end of data only) deliver, then destroy
//
// Usable in-process (startFaultServer) or as a child process (fork this file;
// it listens, sends { port }, answers { cmd: 'report' } with its counts, and
// { cmd: 'close' } closes), so a soak can measure the client's memory alone.
// Options `host`/`port` choose where it listens (default 127.0.0.1, any port);
// `onDeliver({ id, rcpts, at, remoteAddress, ehlo, sha256 })` is called per delivery.
// With `hashBodies`, each delivery's body (as received: dot-unstuffed after
// DATA, the chunks' octets after BDAT, CRLF line ends) is hashed: `sha256` in
// onDeliver and `bodyHashes` (id → the hex digest of each delivery, in order).
// With `dataProbeEveryLines: n`, the fault hook is also asked (stage 'data',
// verb 'DATA-PROBE') every n lines of a DATA body, not only at its third line
// ('DATA-LINE'), so a drop can land anywhere in a large body.
// The hook's context also carries `id` (the X-Soak-Id) at the end of data.
//
// With `watchBodyDrops`, a drop inside a body (stage 'data': DATA-LINE,
// DATA-PROBE, BDAT-CHUNK) closes the connection with a FIN instead of a reset,
// answers nothing more, and keeps reading until the client closes its side.
// What a client has handed to its kernel still arrives after it sees the
// close, so the server learns whether the client had written its end of data
// (the final dot, or BDAT LAST's octets) when it lost the connection: before
// it, nothing was delivered and the client must defer the message; only after
// it may the client call the message unknown. `onBodyDrop(record)` is called
// at the drop with `record = { id, endOfData: undefined }`; `endOfData` becomes
// true or false once known (`stats.bodyDropsWatching` counts those not yet).

import { createHash } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';

/** A small deterministic PRNG (mulberry32), so faults can be replayed by seed. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The X-Soak-Id header among `lines` ('?' when not there yet). */
function soakIdIn(lines) {
  const header = lines.find((l) => /^X-Soak-Id:/i.test(l));
  return header ? header.slice(header.indexOf(':') + 1).trim() : '?';
}

/**
 * After a drop inside a body: a function fed what the client sends on, true once its end of data is
 * in (DATA: the line "."; BDAT: the octets of a chunk sent as LAST). `onId` gets the X-Soak-Id header
 * if it arrives now. Any other command line means the client gave the message up: never true.
 */
export function endOfDataScanner(mode, onId) {
  let text = '';
  let remaining = 0; // octets of the current BDAT chunk still to come
  let last = false;
  let gaveUp = false;
  return (more) => {
    text += more;
    while (!gaveUp) {
      if (remaining > 0) {
        if (text.length === 0) return false;
        const take = Math.min(remaining, text.length);
        for (const line of text.slice(0, take).split('\r\n')) if (/^X-Soak-Id:/i.test(line)) onId(soakIdIn([line]));
        text = text.slice(take);
        remaining -= take;
        if (remaining === 0 && last) return true;
        continue;
      }
      const index = text.indexOf('\r\n');
      if (index < 0) return false;
      const line = text.slice(0, index);
      text = text.slice(index + 2);
      if (mode === 'data') {
        if (line === '.') return true;
        if (/^X-Soak-Id:/i.test(line)) onId(soakIdIn([line]));
        continue;
      }
      const bdat = /^BDAT (\d+)( LAST)?$/i.exec(line);
      if (!bdat) gaveUp = true;
      else {
        remaining = Number(bdat[1]);
        last = Boolean(bdat[2]);
        if (remaining === 0 && last) return true;
      }
    }
    return false;
  };
}

/**
 * Random faults for the soak: each connection is dropped at a random step
 * with probability `dropRate`; each command (and each end of data) is
 * answered 421 or 451 with probability `replyFaultRate`.
 */
export function randomFaults({ seed = 1, dropRate = 0.05, replyFaultRate = 0.05, stepsPerConnection = 30 } = {}) {
  const random = prng(seed);
  const dropAt = new WeakMap();
  return (ctx) => {
    if (!dropAt.has(ctx.connection)) {
      dropAt.set(ctx.connection, random() < dropRate ? Math.floor(random() * stepsPerConnection) : -1);
    }
    if (ctx.step === dropAt.get(ctx.connection)) {
      return ctx.stage === 'end-of-data' && random() < 0.5 ? { drop: 'after-delivery' } : { drop: true };
    }
    if (ctx.stage === 'greeting' || ctx.verb === 'EHLO' || ctx.verb === 'QUIT') return undefined;
    if (random() < replyFaultRate) {
      return random() < 0.5 ? { reply: '421 4.3.2 closing, try again later' } : { reply: '451 4.3.0 temporary failure, try again' };
    }
    return undefined;
  };
}

export function startFaultServer(options = {}) {
  const fault = options.fault ?? (() => undefined);
  /** key `${id} ${rcpt}` → times delivered */
  const deliveries = new Map();
  /** id → the sha256 (hex) of each delivery's body, with `hashBodies` */
  const bodyHashes = new Map();
  const probeEvery = options.dataProbeEveryLines ?? 0;
  const stats = { connections: 0, commands: 0, messages: 0, drops: 0, faults: 0, maxConcurrent: 0, open: 0, nestedMail: 0, bdatChunks: 0, bdatLast: 0, maxBdatLastInOneRead: 0, starttls: 0, auths: 0, replyBatches: 0, bodyDropsWatching: 0 };
  const secureContext = options.tls ? tls.createSecureContext({ key: options.tls.key, cert: options.tls.cert }) : undefined;
  const sockets = new Set();
  const log = options.log;

  const server = net.createServer((socket) => {
    sockets.add(socket);
    stats.connections++;
    stats.open++;
    stats.maxConcurrent = Math.max(stats.maxConcurrent, stats.open);
    socket.setNoDelay(true);
    const connection = { id: stats.connections, socket };
    let step = 0;
    let buffer = '';
    let mode = 'command';
    let from;
    let rcpts = [];
    let dataLines = [];
    let dead = false;
    let stream = socket; // the TLS socket after STARTTLS
    let secure = false;
    let authed = false;
    let bdatRemaining = 0; // octets of the current BDAT chunk still to read
    let bdatLast = false;
    let bdatBody = '';
    let bdatRefused; // the reply owed once a refused BDAT chunk has been read
    let lastsThisRead = 0;
    const out = [];
    const kill = () => {
      if (dead) return;
      dead = true;
      stats.drops++;
      stream.destroy();
      socket.destroy();
    };
    // Replies written in one batch per turn (or after replyDelayMs, to model a round trip).
    const flushSoon = () => {
      if (out.length !== 1) return;
      if (options.replyDelayMs) setTimeout(flush, options.replyDelayMs);
      else setImmediate(flush);
    };
    const flush = () => {
      if (dead || out.length === 0) return;
      stats.replyBatches++; // one write of replies: a round trip, as the client sees it
      stream.write(out.join(''));
      out.length = 0;
    };
    const reply = (text) => {
      if (log) log(`${connection.id} S: ${text.split('\r\n')[0]}`);
      out.push(text.endsWith('\r\n') ? text : `${text}\r\n`);
      flushSoon();
    };
    const closeAfter = (text) => {
      reply(text);
      flush();
      dead = true;
      stream.end();
    };
    // A drop inside a body: a FIN, then read on to learn whether the client had written its end of data.
    const dropInBody = () => {
      if (!options.watchBodyDrops) return kill();
      if (dead) return undefined;
      dead = true;
      stats.drops++;
      out.length = 0; // replies not yet written are lost, as with a reset
      stream.off('data', onData);
      const record = { id: soakIdIn(mode === 'data' ? dataLines : bdatBody.split('\r\n')), endOfData: undefined };
      options.onBodyDrop?.(record);
      stats.bodyDropsWatching++;
      const scan = endOfDataScanner(mode === 'data' ? 'data' : 'bdat', (id) => { if (record.id === '?') record.id = id; });
      const settle = (seen) => {
        if (record.endOfData !== undefined) return;
        record.endOfData = seen;
        stats.bodyDropsWatching--;
        clearTimeout(timer);
        stream.destroy();
        socket.destroy();
      };
      // A client that neither closes nor writes on is taken as one that wrote no end of data.
      const timer = setTimeout(() => settle(false), 10_000);
      const read = (text) => { if (scan(text)) settle(true); };
      stream.on('data', (chunk) => read(chunk.toString('latin1')));
      stream.once('close', () => settle(false));
      stream.end();
      const rest = buffer;
      buffer = '';
      read(rest);
      return undefined;
    };
    const ask = (stage, verb, line, id) => {
      const decision = fault({ connection, step: step++, stage, verb, line, from, rcpts, id });
      if (decision) stats.faults++;
      return decision;
    };
    socket.on('close', () => {
      sockets.delete(socket);
      stats.open--;
    });
    socket.on('error', () => {});

    const greeting = ask('greeting', 'CONNECT', '');
    if (greeting?.drop) return kill();
    if (greeting?.reply) return closeAfter(greeting.reply);
    reply('220 fault.test ESMTP ready');

    const onCommand = (line) => {
      stats.commands++;
      const verb = line.slice(0, 4).toUpperCase();
      if (log) log(`${connection.id} C: ${line}`);
      const decision = ask('command', verb, line);
      if (decision?.drop) return kill();
      const bdat = /^BDAT (\d+)( LAST)?$/i.exec(line);
      if (decision?.reply && bdat && options.chunking && !decision.reply.startsWith('421')) {
        // A refused chunk is still read in full (RFC 3030 §3), then answered.
        bdatRemaining = Number(bdat[1]);
        bdatLast = Boolean(bdat[2]);
        bdatRefused = decision.reply;
        stats.bdatChunks++;
        if (bdatRemaining === 0) return endOfChunk();
        return undefined;
      }
      if (decision?.reply) {
        if (decision.reply.startsWith('421')) return closeAfter(decision.reply);
        if (verb === 'MAIL') from = undefined;
        return reply(decision.reply);
      }
      switch (verb) {
        case 'EHLO': {
          from = undefined; rcpts = [];
          connection.ehlo = line.slice(5).trim();
          const extensions = ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES'];
          if (options.chunking) extensions.push('CHUNKING');
          if (secureContext && !secure) extensions.push('STARTTLS');
          if (options.auth && (secure || !secureContext)) extensions.push('AUTH PLAIN');
          extensions.push('SIZE 10485760');
          return reply(['fault.test', ...extensions].map((e, i, all) => `250${i === all.length - 1 ? ' ' : '-'}${e}`).join('\r\n'));
        }
        case 'STAR': {
          if (!secureContext || secure) return reply('502 5.5.1 not offered');
          reply('220 2.0.0 go ahead');
          flush();
          // Bytes pipelined after STARTTLS are discarded (RFC 3207 §4.2, as a careful server does).
          buffer = '';
          socket.off('data', onData);
          const upgraded = new tls.TLSSocket(socket, { isServer: true, secureContext });
          upgraded.on('error', () => {});
          upgraded.on('data', onData);
          stream = upgraded;
          secure = true;
          from = undefined; rcpts = [];
          authed = false;
          stats.starttls++;
          return undefined;
        }
        case 'AUTH': {
          if (!options.auth) return reply('502 5.5.1 not offered');
          const [, mechanism, initial] = line.split(' ');
          if (mechanism?.toUpperCase() !== 'PLAIN' || !initial) return reply('504 5.5.4 PLAIN with an initial response only');
          const [, user, pass] = Buffer.from(initial, 'base64').toString('utf8').split('\0');
          if (user !== options.auth.user || pass !== options.auth.pass) return reply('535 5.7.8 authentication failed');
          authed = true;
          stats.auths++;
          return reply('235 2.7.0 authenticated');
        }
        case 'BDAT': {
          const match = /^BDAT (\d+)( LAST)?$/i.exec(line);
          if (!options.chunking || !match) return reply('501 5.5.4 BDAT syntax');
          bdatRemaining = Number(match[1]);
          bdatLast = Boolean(match[2]);
          stats.bdatChunks++;
          // RFC 3030 §3: the chunk is read whatever the reply will be.
          bdatRefused = from === undefined || rcpts.length === 0 ? '503 5.5.1 no valid recipients' : undefined;
          if (bdatRemaining === 0) return endOfChunk();
          return undefined;
        }
        case 'HELO':
          return reply('250 fault.test');
        case 'MAIL':
          if (options.auth && !authed) return reply('530 5.7.0 authentication required');
          if (secureContext && !secure) return reply('530 5.7.0 STARTTLS first');
          // A MAIL inside an open transaction is a client error (RFC 5321 §4.1.4), as real servers say.
          if (from !== undefined) { stats.nestedMail++; return reply('503 5.5.1 nested MAIL command'); }
          from = line.slice(10);
          rcpts = [];
          return reply('250 2.1.0 ok');
        case 'RCPT': {
          if (from === undefined) return reply('503 5.5.1 MAIL first');
          const match = /<([^>]*)>/.exec(line);
          const rcpt = match ? match[1] : line.slice(8);
          const refusal = options.rcptReply?.(rcpt, connection);
          if (refusal) return reply(refusal);
          rcpts.push(rcpt);
          return reply('250 2.1.5 ok');
        }
        case 'DATA':
          if (from === undefined || rcpts.length === 0) return reply('503 5.5.1 no valid recipients');
          mode = 'data';
          dataLines = [];
          return reply('354 go ahead');
        case 'RSET':
          from = undefined; rcpts = [];
          return reply('250 2.0.0 ok');
        case 'NOOP':
          return reply('250 2.0.0 ok');
        case 'QUIT':
          return closeAfter('221 2.0.0 bye');
        default:
          return reply('500 5.5.2 unknown command');
      }
    };

    // The digest of the body as received: after DATA, its lines each ended by CRLF (the final dot's CRLF is
    // the body's last line end); after BDAT, the octets themselves.
    const digestOf = (lines, octets) => {
      if (!options.hashBodies) return undefined;
      const hash = createHash('sha256');
      if (octets !== undefined) hash.update(octets, 'latin1');
      else for (const line of lines) hash.update(`${line}\r\n`, 'latin1');
      return hash.digest('hex');
    };

    const onEndOfData = (sha256 = digestOf(dataLines)) => {
      mode = 'command';
      const header = dataLines.find((l) => /^X-Soak-Id:/i.test(l));
      const id = header ? header.slice(header.indexOf(':') + 1).trim() : '?';
      const deliver = () => {
        stats.messages++;
        for (const rcpt of rcpts) {
          const key = `${id} ${rcpt}`;
          deliveries.set(key, (deliveries.get(key) ?? 0) + 1);
        }
        // The server's own log of each arrival: when, from which address, under which EHLO name.
        if (sha256) bodyHashes.set(id, [...(bodyHashes.get(id) ?? []), sha256]);
        options.onDeliver?.({ id, rcpts: [...rcpts], at: Date.now(), remoteAddress: socket.remoteAddress, ehlo: connection.ehlo, sha256 });
      };
      const decision = ask('end-of-data', '.', '.', id);
      const recipients = rcpts;
      from = undefined;
      rcpts = [];
      if (decision?.drop === 'after-delivery') {
        rcpts = recipients; deliver(); rcpts = [];
        return kill();
      }
      if (decision?.drop) return kill();
      if (decision?.reply) {
        if (decision.reply.startsWith('421')) return closeAfter(decision.reply);
        return reply(decision.reply);
      }
      rcpts = recipients; deliver(); rcpts = [];
      return reply(`250 2.0.0 queued as ${id}`);
    };

    // The end of one BDAT chunk: more to come, or (LAST) the end of the message.
    const endOfChunk = () => {
      if (bdatRefused) {
        const refusal = bdatRefused;
        bdatRefused = undefined;
        bdatBody = '';
        from = undefined; rcpts = [];
        return reply(refusal);
      }
      if (!bdatLast) {
        // A drop in the middle of a chunked message, sometimes.
        const decision = ask('data', 'BDAT-CHUNK', '');
        if (decision?.drop) return dropInBody();
        return reply(`250 2.0.0 ${bdatBody.length} octets so far`);
      }
      stats.bdatLast++;
      lastsThisRead++;
      const sha256 = digestOf(undefined, bdatBody);
      dataLines = bdatBody.split('\r\n');
      bdatBody = '';
      return onEndOfData(sha256);
    };

    function onData(chunk) {
      if (dead) return;
      buffer += chunk.toString('latin1');
      lastsThisRead = 0;
      let index;
      while (!dead) {
        if (bdatRemaining > 0) {
          if (buffer.length === 0) break;
          const take = Math.min(bdatRemaining, buffer.length);
          if (!bdatRefused) bdatBody += buffer.slice(0, take);
          buffer = buffer.slice(take);
          bdatRemaining -= take;
          if (bdatRemaining === 0) endOfChunk();
          continue;
        }
        if ((index = buffer.indexOf('\r\n')) < 0) break;
        const line = buffer.slice(0, index);
        buffer = buffer.slice(index + 2);
        if (mode === 'data') {
          if (line === '.') {
            onEndOfData();
          } else {
            dataLines.push(line.startsWith('..') ? line.slice(1) : line);
            // A drop in the middle of the data, sometimes.
            const probe = dataLines.length === 3 ? 'DATA-LINE' : probeEvery > 0 && dataLines.length % probeEvery === 0 ? 'DATA-PROBE' : undefined;
            if (probe) {
              const decision = ask('data', probe, line);
              if (decision?.drop) return dropInBody();
            }
          }
        } else {
          onCommand(line);
        }
      }
      stats.maxBdatLastInOneRead = Math.max(stats.maxBdatLastInOneRead, lastsThisRead);
    }
    socket.on('data', onData);
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        port,
        deliveries,
        bodyHashes,
        stats,
        /** Writes `text` to every open connection, then closes them (an unsolicited 421). */
        sayToAll(text) {
          for (const socket of sockets) socket.end(`${text}\r\n`);
        },
        /** Drops every open connection (a server crash, from the client's side). */
        dropAll() {
          for (const socket of sockets) socket.destroy();
        },
        close() {
          for (const socket of sockets) socket.destroy();
          return new Promise((done) => server.close(() => done()));
        },
      });
    });
  });
}

// As a child process: random faults from the environment.
if (process.send && process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, '/'))) {
  const env = process.env;
  const server = await startFaultServer({
    chunking: env.SOAK_CHUNKING === '1',
    ...(env.SOAK_TLS_KEY ? { tls: { key: env.SOAK_TLS_KEY, cert: env.SOAK_TLS_CERT } } : {}),
    ...(env.SOAK_AUTH_USER ? { auth: { user: env.SOAK_AUTH_USER, pass: env.SOAK_AUTH_PASS } } : {}),
    fault: randomFaults({
      seed: Number(env.SOAK_SEED ?? 1),
      dropRate: Number(env.SOAK_DROP_RATE ?? 0.05),
      replyFaultRate: Number(env.SOAK_REPLY_FAULT_RATE ?? 0.05),
    }),
  });
  process.on('message', async (message) => {
    if (message?.cmd === 'report') {
      process.send({ cmd: 'report', deliveries: [...server.deliveries], stats: server.stats });
    } else if (message?.cmd === 'close') {
      await server.close();
      process.exit(0);
    }
  });
  process.send({ cmd: 'ready', port: server.port });
}
