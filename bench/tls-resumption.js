// What TLS session resumption saves, measured: `node bench/tls-resumption.js`
// (after `npm run build`) writes docs/tls-resumption.md.
//
// An implicit-TLS SMTP server (node:tls in front of the scripted test server,
// TCP_NODELAY on both sides, ECDSA P-256 and RSA-2048 certificates from a
// throw-away CA) runs in a child process, so its CPU is its own. The client
// (SMTP_SSL from the built package) opens N connections with a full handshake
// and N resuming a session ticket (a fresh ticket each time: one ticket, one
// use), directly on loopback and through a proxy that delays every segment by
// half of a 10 ms round trip. Per connection: median time to a ready session
// (TCP, TLS, greeting, EHLO), client CPU and server CPU.
import { execFileSync, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const N = Number(process.env.TLS_N ?? 60);
const RTT_MS = 10;

/** A TCP proxy that delays each chunk by `oneWayMs` in each direction. */
async function delayProxy(target, oneWayMs) {
  const server = net.createServer((client) => {
    client.setNoDelay(true);
    const upstream = net.connect(target, '127.0.0.1');
    upstream.setNoDelay(true);
    // Every chunk, and the end of the stream, reach the other side oneWayMs later, in order.
    const relay = (from, to) => {
      from.on('data', (d) => setTimeout(() => to.writable && to.write(d), oneWayMs));
      from.on('end', () => setTimeout(() => to.end(), oneWayMs));
    };
    relay(client, upstream);
    relay(upstream, client);
    const kill = () => { client.destroy(); upstream.destroy(); };
    client.on('error', kill); upstream.on('error', kill);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: server.address().port, close: () => server.close() };
}

function certificates(dir, kind) {
  const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const keyArgs = kind === 'ecdsa' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'] : ['-newkey', 'rsa:2048'];
  ssl('req', '-x509', ...keyArgs, '-nodes', '-keyout', `${kind}-ca.key`, '-out', `${kind}-ca.pem`, '-days', '1', '-subj', '/CN=bench CA');
  ssl('req', ...keyArgs, '-nodes', '-keyout', `${kind}.key`, '-out', `${kind}.csr`, '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  ssl('x509', '-req', '-in', `${kind}.csr`, '-CA', `${kind}-ca.pem`, '-CAkey', `${kind}-ca.key`, '-CAcreateserial', '-out', `${kind}.pem`, '-days', '1', '-extfile', 'ext');
  const read = (f) => readFileSync(join(dir, f), 'utf8');
  return { ca: read(`${kind}-ca.pem`), key: read(`${kind}.key`), cert: read(`${kind}.pem`) };
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const ask = async (child, msg) => { child.send(msg); const [reply] = await once(child, 'message'); return reply; };

async function measure({ SMTP_SSL, port, ca, resume, child, maxVersion }) {
  const times = [];
  let resumed = 0;
  let ticket;
  const open = async () => {
    const t0 = performance.now();
    const smtp = await SMTP_SSL.connect({ host: '127.0.0.1', port, localHostname: 'bench.local', tls: { ca, maxVersion, ...(resume && ticket ? { session: ticket } : {}) } });
    await smtp.ehloOrHeloIfNeeded();
    const ms = performance.now() - t0;
    const socket = smtp.socket;
    if (socket.isSessionReused()) resumed++;
    await new Promise((r) => setTimeout(r, 2)); // let a TLS 1.3 ticket arrive
    ticket = socket.getSession();
    await smtp.quit();
    return ms;
  };
  await open(); await open(); resumed = 0; // warm-up, and a first ticket
  await ask(child, 'cpu-reset');
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) times.push(await open());
  const c = process.cpuUsage(c0);
  const server = await ask(child, 'cpu');
  // the 2 ms pause per connection is not CPU; the client CPU covers connect, EHLO and QUIT
  return { readyMs: median(times), clientCpuMs: (c.user + c.system) / 1000 / N, serverCpuMs: server.cpuMs / N, resumed };
}

async function main() {
  const { SMTP_SSL } = await import('../packages/smtplib/dist/esm/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'smtplib-tls-bench-'));
  const loadStart = os.loadavg()[0];
  const rows = [];
  const children = new Set();
  try {
    for (const kind of ['ecdsa', 'rsa']) {
      const { ca, key, cert } = certificates(dir, kind);
      for (const maxVersion of ['TLSv1.3', 'TLSv1.2']) {
        const child = fork(fileURLToPath(import.meta.url), ['server'], { env: { ...process.env, TLS_SERVER: JSON.stringify({ key, cert, maxVersion }) }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
        children.add(child);
        const [{ port }] = await once(child, 'message');
        const proxy = await delayProxy(port, RTT_MS / 2);
        for (const [where, p] of [['loopback', port], [`${RTT_MS} ms RTT`, proxy.port]]) {
          const full = await measure({ SMTP_SSL, port: p, ca, resume: false, child, maxVersion });
          const res = await measure({ SMTP_SSL, port: p, ca, resume: true, child, maxVersion });
          rows.push({ kind, maxVersion, where, full, res });
          console.error(`${kind} ${maxVersion} ${where}: ready ${full.readyMs.toFixed(2)} -> ${res.readyMs.toFixed(2)} ms; client CPU ${full.clientCpuMs.toFixed(2)} -> ${res.clientCpuMs.toFixed(2)} ms; server CPU ${full.serverCpuMs.toFixed(2)} -> ${res.serverCpuMs.toFixed(2)} ms; resumed ${res.resumed}/${N}`);
        }
        proxy.close();
        child.send('exit');
      }
    }
  } finally {
    for (const child of children) child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
  const f = (v) => v.toFixed(2);
  const ratio = (key, version) => {
    const picked = rows.filter((r) => !version || r.maxVersion === `TLSv${version}`);
    return `${median(picked.map((r) => r.res[key] / r.full[key])).toFixed(2)}×`;
  };
  const commit = (() => { try { return execFileSync('git', ['-C', join(HERE, '..'), 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim(); } catch { return '?'; } })();
  const L = [
    '# TLS session resumption: what it saves',
    '',
    `Generated by \`node bench/tls-resumption.js\` (after \`npm run build\`) at commit ${commit} on ${new Date().toISOString()}; ` +
      `${os.availableParallelism()} CPUs (${os.cpus()[0]?.model}), Node ${process.version}, ${N} connections per cell, medians. ` +
      'The machine was shared with other work while this ran: compare the columns, not the absolute figures.',
    '',
    'An implicit-TLS SMTP server in a child process (TCP_NODELAY on every socket); `SMTP_SSL` opens a connection, says EHLO and QUITs, ' +
      'N times with a full handshake and N times resuming a session ticket it got from the previous connection (one ticket, one use). ' +
      '"ready" is the time from connect() to the EHLO reply; CPU is per connection (connect, EHLO, QUIT), client and server process each. ' +
      `The ${RTT_MS} ms rows go through a proxy that delays every segment by ${RTT_MS / 2} ms each way.`,
    '',
    '| certificate | TLS | path | ready, full | ready, resumed | client CPU, full | client CPU, resumed | server CPU, full | server CPU, resumed | resumed |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.kind === 'ecdsa' ? 'ECDSA P-256' : 'RSA-2048'} | ${r.maxVersion.replace('TLSv', '')} | ${r.where} | ${f(r.full.readyMs)} ms | ${f(r.res.readyMs)} ms | ${f(r.full.clientCpuMs)} ms | ${f(r.res.clientCpuMs)} ms | ${f(r.full.serverCpuMs)} ms | ${f(r.res.serverCpuMs)} ms | ${r.res.resumed}/${N} |`),
    '',
    `Measured here (medians over the ${rows.length} cells of resumed ÷ full): ready time ${ratio('readyMs')}, client CPU ${ratio('clientCpuMs')}, ` +
      `server CPU ${ratio('serverCpuMs')}; by TLS version, ready time: 1.3 ${ratio('readyMs', '1.3')}, 1.2 ${ratio('readyMs', '1.2')}. ` +
      `Load average (1 min) ${loadStart.toFixed(1)} at the start and ${os.loadavg()[0].toFixed(1)} at the end on ${os.availableParallelism()} CPUs: differences smaller than the spread between rows are noise.`,
    '',
    'What to expect from the protocols: TLS 1.3 needs one round trip for a full handshake and one for a resumed one, so resumption saves no ' +
      'round trip there, only the certificate (bytes, verification) and the server\'s signature, i.e. CPU; TLS 1.2 needs two round trips without ' +
      'resumption and one with it. On loopback every round trip is nearly free, so what remains is CPU.',
    '',
  ];
  writeFileSync(join(HERE, '..', 'docs', 'tls-resumption.md'), L.join('\n'));
  console.log(L.join('\n'));
}

// ------------------------------------------------------------------ server (child)
async function serve() {
  const { startFaultServer } = await import('../test/soak/fault-server.js');
  const smtp = await startFaultServer();
  const { key, cert, maxVersion } = JSON.parse(process.env.TLS_SERVER);
  const server = tls.createServer({ key, cert, maxVersion }, (secure) => {
    secure.setNoDelay(true);
    const upstream = net.connect(smtp.port, '127.0.0.1');
    upstream.setNoDelay(true);
    secure.pipe(upstream).pipe(secure);
    secure.on('error', () => upstream.destroy());
    upstream.on('error', () => secure.destroy());
    secure.on('close', () => upstream.destroy());
  });
  server.on('connection', (socket) => socket.setNoDelay(true));
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  let c0 = process.cpuUsage();
  process.on('message', (m) => {
    if (m === 'cpu-reset') { c0 = process.cpuUsage(); process.send({ ok: true }); }
    else if (m === 'cpu') { const c = process.cpuUsage(c0); process.send({ cpuMs: (c.user + c.system) / 1000 }); }
    else if (m === 'exit') process.exit(0);
  });
}

if (process.argv[2] === 'server') await serve();
else await main();
