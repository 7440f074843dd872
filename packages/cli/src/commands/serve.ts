// The `smtplib serve` command line.
import { readFileSync, writeFileSync } from 'node:fs';
import { CliError, EX } from '../exit-codes.js';
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

export async function runServe(o: ServeCliOptions): Promise<number> {
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
  const maxMessages = o.maxMessages === undefined ? undefined : Number(o.maxMessages);

  let server;
  try {
    server = await startDebugServer({
      host: o.host,
      port: parsePort(o.port),
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
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') {
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
  ].filter(Boolean);
  if (o.json) {
    process.stdout.write(JSON.stringify({ event: 'listening', host: server.host, port: server.port, features, fingerprint256: server.fingerprint256 }) + '\n');
  } else {
    process.stdout.write(`smtplib serve: listening on ${server.host}:${server.port} (${features.join('; ')})\n`);
    if (server.fingerprint256) process.stdout.write(`TLS certificate (self-signed unless --cert) SHA-256 fingerprint: ${server.fingerprint256}\n`);
    if (o.eml) process.stdout.write(`Saving messages as .eml files in ${o.eml}\n`);
    if (o.maildir) process.stdout.write(`Delivering messages into the Maildir ${o.maildir}\n`);
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
      if (maxMessages && m.seq >= maxMessages) stop();
    });
  });
}
