// The `smtplib serve` command line.
import { readFileSync, writeFileSync } from 'node:fs';
import { CliError, EX } from '../exit-codes.js';
import { FailureSyntaxError, parseFailureRule } from 'smtplib-capture';
import { formatMessage, messageToJson, startDebugServer, type ScriptedReply } from '../serve.js';

export interface ServeCliOptions {
  host: string;
  port: string;
  starttls?: boolean;
  tls?: boolean;
  cert?: string;
  key?: string;
  certOut?: string;
  auth: string[];
  authOptional?: boolean;
  lmtp?: boolean;
  size?: string;
  eml?: string;
  maildir?: string;
  raw?: boolean;
  json?: boolean;
  quiet?: boolean;
  refuseMail?: string;
  refuseRcpt: string[];
  refuseData?: string;
  maxMessages?: string;
  exitAfter?: string;
  /** "ADDR:PORT" of the web inbox, or false (--no-http). */
  http?: string | boolean;
  fail: string[];
  requireTls?: boolean;
  record?: string;
  replay?: string;
}

const DEFAULT_HTTP = '127.0.0.1:8025';

function parseHttp(value: string, anyPort: boolean): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(value.trim()) ?? /^()()(\d+)$/.exec(value.trim());
  if (!m) throw new CliError(`--http: "${value}" should be ADDR:PORT, e.g. 127.0.0.1:8025`, EX.USAGE);
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port > 65535) throw new CliError(`--http: "${value}" has no valid port`, EX.USAGE);
  // With --port 0 (any free SMTP port) and no --http, the inbox takes a free port too.
  return { host: m[1] || m[2] || '127.0.0.1', port: anyPort ? 0 : port };
}

function parsePositive(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new CliError(`${what}: "${value}" is not a positive whole number`, EX.USAGE);
  return n;
}

export function parseReply(spec: string, what: string): ScriptedReply {
  const m = /^([245]\d\d)(?:[ :](.*))?$/.exec(spec.trim());
  if (!m || !/^[45]/.test(m[1]!)) {
    throw new CliError(`${what}: "${spec}" is not a reply; use CODE or "CODE text", CODE 4xx or 5xx`, EX.USAGE);
  }
  // smtp-server puts its own enhanced status code in front; drop one given here.
  const text = m[2]?.replace(/^[245]\.\d{1,3}\.\d{1,3}\s+/, '');
  return { code: Number(m[1]), ...(text ? { message: text } : {}) };
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CliError(`--port: "${value}" is not a port number (0-65535)`, EX.USAGE);
  return n;
}

function readPem(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EX.NOINPUT);
  }
}

/** `serve --replay FILE`: answers every client exactly as the recording says, until stopped. */
async function runReplay(o: ServeCliOptions): Promise<number> {
  const { startReplay } = await import('smtplib-capture');
  const { generateSelfSigned } = await import('../certs.js');
  let tlsFiles: { cert: string; key: string } | undefined;
  if (o.cert && o.key) tlsFiles = { cert: readPem(o.cert, '--cert'), key: readPem(o.key, '--key') };
  else tlsFiles = await generateSelfSigned(['localhost', o.host]);
  let replay;
  try {
    replay = await startReplay({ file: o.replay! }, { host: o.host, port: parsePort(o.port), ...tlsFiles });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new CliError(`--replay: cannot read ${o.replay}`, EX.NOINPUT);
    if (e.code === 'EADDRINUSE') throw new CliError(`port ${o.port} on ${o.host} is already in use`, EX.UNAVAILABLE, 'choose another with --port N, or --port 0 for any free port');
    throw new CliError(`--replay: ${(err as Error).message}`, EX.DATAERR);
  }
  if (o.certOut) writeFileSync(o.certOut, tlsFiles.cert);
  const steps = replay.transcript.steps.length;
  if (o.json) process.stdout.write(JSON.stringify({ event: 'listening', host: replay.host, port: replay.port, replay: o.replay, steps }) + '\n');
  else process.stdout.write(`smtplib serve: listening on ${replay.host}:${replay.port}, replaying ${o.replay} (${steps} steps) to every client. Stop with Ctrl-C.\n`);
  return await new Promise<number>((resolve) => {
    let failed = false;
    const stop = (): void => void replay.close().then(() => resolve(failed ? EX.DATAERR : EX.OK));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const next = (): void =>
      void replay.nextSession().then((s) => {
        if (s.mismatch || s.cutShort) failed = true;
        if (o.json) process.stdout.write(JSON.stringify({ event: 'session', ...s }) + '\n');
        else if (s.mismatch) process.stdout.write(`replay mismatch at step ${s.mismatch.step}: expected ${JSON.stringify(s.mismatch.expected)}, client sent ${JSON.stringify(s.mismatch.actual)}\n`);
        else process.stdout.write(`replayed ${s.completed} of ${s.steps} steps${s.cutShort ? ' (the client stopped early)' : ''}\n`);
        if (o.exitAfter && replay.sessions.length >= Number(o.exitAfter)) stop();
        else next();
      });
    next();
  });
}

export async function runServe(o: ServeCliOptions): Promise<number> {
  if (o.replay) return runReplay(o);
  const auth = o.auth.map((spec) => {
    const colon = spec.indexOf(':');
    if (colon <= 0) throw new CliError(`--auth: "${spec}" should be user:password`, EX.USAGE);
    return { user: spec.slice(0, colon), pass: spec.slice(colon + 1) };
  });
  const refuseRcpt: Record<string, ScriptedReply> = {};
  for (const spec of o.refuseRcpt) {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw new CliError(`--refuse-rcpt: "${spec}" should be ADDRESS=CODE[ text] (ADDRESS may be *)`, EX.USAGE);
    refuseRcpt[spec.slice(0, eq)] = parseReply(spec.slice(eq + 1), '--refuse-rcpt');
  }
  if ((o.cert && !o.key) || (!o.cert && o.key)) throw new CliError('--cert and --key go together', EX.USAGE);
  if (o.starttls && o.tls) throw new CliError('choose one of --starttls and --tls (implicit TLS)', EX.USAGE);
  const size = o.size === undefined ? undefined : Number(o.size);
  if (size !== undefined && (!Number.isInteger(size) || size <= 0)) throw new CliError(`--size: "${o.size}" is not a positive number of bytes`, EX.USAGE);
  const maxMessages = o.maxMessages === undefined ? undefined : parsePositive(o.maxMessages, '--max-messages');
  const exitAfter = o.exitAfter === undefined ? undefined : parsePositive(o.exitAfter, '--exit-after');
  const failures = [...(o.requireTls ? ['MAIL tls=no -> 530 5.7.0 Must issue a STARTTLS command first'] : []), ...(o.fail ?? [])];
  for (const rule of failures) {
    try {
      parseFailureRule(rule);
    } catch (err) {
      if (err instanceof FailureSyntaxError) throw new CliError(err.message, EX.USAGE);
      throw err;
    }
  }
  if (o.requireTls && !o.starttls && !o.tls) throw new CliError('--require-tls needs --starttls (or --tls): otherwise no client could ever send', EX.USAGE);
  const smtpPort = parsePort(o.port);
  const http = o.http === false ? false : parseHttp(typeof o.http === 'string' ? o.http : DEFAULT_HTTP, typeof o.http !== 'string' && smtpPort === 0);

  let server;
  try {
    server = await startDebugServer({
      host: o.host,
      port: smtpPort,
      starttls: Boolean(o.starttls),
      implicitTls: Boolean(o.tls),
      ...(o.cert && o.key ? { cert: readPem(o.cert, '--cert'), key: readPem(o.key, '--key') } : {}),
      auth,
      authOptional: Boolean(o.authOptional),
      lmtp: Boolean(o.lmtp),
      ...(size ? { size } : {}),
      ...(o.eml ? { emlDir: o.eml } : {}),
      ...(o.maildir ? { maildir: o.maildir } : {}),
      ...(o.refuseMail ? { refuseMail: parseReply(o.refuseMail, '--refuse-mail') } : {}),
      ...(o.refuseData ? { refuseData: parseReply(o.refuseData, '--refuse-data') } : {}),
      refuseRcpt,
      failures,
      http,
      ...(maxMessages ? { maxMessages } : {}),
      ...(o.record ? { recordDir: o.record } : {}),
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') {
      const web = http && (e as NodeJS.ErrnoException & { port?: number }).port === http.port;
      if (web) throw new CliError(`the web inbox's port ${http.port} on ${http.host} is already in use`, EX.UNAVAILABLE, 'choose another with --http ADDR:PORT, or --no-http');
      throw new CliError(`port ${o.port} on ${o.host} is already in use`, EX.UNAVAILABLE, 'choose another with --port N, or --port 0 for any free port');
    }
    if (e.code === 'EACCES') {
      throw new CliError(`not allowed to listen on ${o.host}:${o.port}`, EX.NOPERM, 'ports below 1024 need privileges; the default is 1025');
    }
    if (e.code === 'EADDRNOTAVAIL') throw new CliError(`${o.host} is not an address of this machine`, EX.CONFIG);
    throw err;
  }
  if (o.certOut && server.cert) writeFileSync(o.certOut, server.cert);

  const features = [
    o.lmtp ? 'LMTP' : 'SMTP',
    o.tls ? 'implicit TLS' : undefined,
    o.starttls ? 'STARTTLS' : undefined,
    auth.length ? `AUTH PLAIN LOGIN CRAM-MD5 ${o.authOptional ? 'optional' : 'required'}` : undefined,
    size ? `SIZE ${size}` : undefined,
    o.requireTls ? 'TLS required' : undefined,
  ].filter(Boolean);
  if (o.json) {
    process.stdout.write(
      JSON.stringify({ event: 'listening', host: server.host, port: server.port, features, fingerprint256: server.fingerprint256, inbox: server.url }) + '\n',
    );
  } else {
    process.stdout.write(`smtplib serve: listening on ${server.host}:${server.port} (${features.join('; ')})\n`);
    if (server.fingerprint256) process.stdout.write(`TLS certificate (self-signed unless --cert) SHA-256 fingerprint: ${server.fingerprint256}\n`);
    if (o.eml) process.stdout.write(`Saving messages as .eml files in ${o.eml}\n`);
    if (o.maildir) process.stdout.write(`Delivering messages into the Maildir ${o.maildir}\n`);
    const reloaded = server.capture.reloaded;
    if (reloaded) process.stdout.write(`Read back ${reloaded} saved message${reloaded === 1 ? '' : 's'}\n`);
    for (const rule of server.capture.failures.list()) process.stdout.write(`Scripted failure: ${rule.rule}\n`);
    if (o.record) process.stdout.write(`Recording each session's transcript in ${o.record}\n`);
    if (server.url) process.stdout.write(`Web inbox and API: ${server.url}\n`);
    process.stdout.write('Nothing is relayed. Stop with Ctrl-C.\n');
  }

  return await new Promise<number>((resolve) => {
    const stop = (): void => {
      void server.close().then(() => resolve(EX.OK));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    server.on('message', (m) => {
      if (o.json) process.stdout.write(JSON.stringify(messageToJson(m)) + '\n');
      else if (!o.quiet) process.stdout.write(formatMessage(m, { raw: Boolean(o.raw) }) + '\n');
      else if (m.file) process.stdout.write(`${m.file}\n`);
      if (exitAfter && m.seq >= exitAfter) stop();
    });
  });
}
