// `smtplib serve`: a debugging SMTP/LMTP server on the loopback interface,
// built on the `smtp-server` package. It prints every message it receives
// (or files it as .eml / into a Maildir) and never relays anything.
import { EventEmitter } from 'node:events';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import type {
  SMTPServerAddress,
  SMTPServerDataStream,
  SMTPServerOptions,
  SMTPServerSession,
} from 'smtp-server';
import { generateSelfSigned, fingerprintOf } from './certs.js';

export interface DebugServerAccount {
  user: string;
  pass: string;
}

/** A reply the server gives instead of accepting, `code` 4xx or 5xx. */
export interface ScriptedReply {
  code: number;
  message?: string;
}

export interface DebugServerOptions {
  /** Address to listen on, default 127.0.0.1. */
  host?: string;
  /** Port, default 1025; 0 picks a free one. */
  port?: number;
  /** Offer STARTTLS with a certificate (generated if `cert`/`key` are not given). */
  starttls?: boolean;
  /** Implicit TLS (SMTPS, the way port 465 works). */
  implicitTls?: boolean;
  /** PEM certificate (chain) and key; default: a fresh self-signed one. */
  cert?: string;
  key?: string;
  /** Accounts accepted by AUTH PLAIN / LOGIN / CRAM-MD5. Giving any makes AUTH required. */
  auth?: DebugServerAccount[];
  /** With `auth`: accept mail without authentication too. */
  authOptional?: boolean;
  /** Allow AUTH on a connection without TLS (default: only when neither TLS mode is on). */
  allowInsecureAuth?: boolean;
  /** Speak LMTP instead of SMTP (LHLO, one reply per recipient after DATA). */
  lmtp?: boolean;
  /** Largest message accepted, in bytes (advertised as SIZE). */
  size?: number;
  /** Save every message as DIR/<name>.eml. */
  emlDir?: string;
  /** Deliver every message into a Maildir (DIR/{tmp,new,cur}). */
  maildir?: string;
  /** Name used in the greeting and EHLO reply. */
  name?: string;
  /** Refuse MAIL FROM with this reply. */
  refuseMail?: ScriptedReply;
  /** Refuse these recipients (lower-case address → reply); '*' refuses every recipient. */
  refuseRcpt?: Record<string, ScriptedReply>;
  /** Refuse the message after DATA with this reply. */
  refuseData?: ScriptedReply;
  /** Milliseconds of inactivity before a client is dropped (default 60 s). */
  socketTimeout?: number;
}

export interface ReceivedAddress {
  address: string;
  /** ESMTP parameters, upper-case keys; `true` for a keyword without value. */
  args: Record<string, string | true>;
}

export interface ReceivedMessage {
  /** 1-based sequence number within this server's life. */
  seq: number;
  sessionId: string;
  receivedAt: Date;
  remoteAddress: string;
  /** HELO/EHLO/LHLO name the client gave. */
  clientName: string;
  /** SMTP, ESMTP, ESMTPS, ESMTPSA, LMTP, ... */
  transmissionType: string;
  secure: boolean;
  tlsProtocol?: string | undefined;
  tlsCipher?: string | undefined;
  user?: string | undefined;
  mailFrom: ReceivedAddress;
  rcptTo: ReceivedAddress[];
  /** The message exactly as received (dot-unstuffed, CRLF line ends). */
  raw: Buffer;
  size: number;
  /** Header fields in order, unfolded: [name, value]. */
  headers: [string, string][];
  /** Recipients whose delivery the server accepted (all of them for SMTP). */
  accepted: string[];
  /** Where the message was saved, if --eml or --maildir was given. */
  file?: string | undefined;
}

export interface DebugServer extends EventEmitter {
  readonly host: string;
  readonly port: number;
  /** PEM certificate served with STARTTLS / implicit TLS, if any. */
  readonly cert?: string | undefined;
  readonly fingerprint256?: string | undefined;
  readonly messages: ReceivedMessage[];
  close(): Promise<void>;
  on(event: 'message', listener: (message: ReceivedMessage) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  /** Resolves with the next message (or the n-th overall when `seq` is given). */
  waitForMessage(seq?: number, timeoutMs?: number): Promise<ReceivedMessage>;
}

class DebugServerImpl extends EventEmitter implements DebugServer {
  host = '127.0.0.1';
  port = 0;
  cert?: string | undefined;
  fingerprint256?: string | undefined;
  readonly messages: ReceivedMessage[] = [];
  server!: SMTPServer;
  private closed = false;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  waitForMessage(seq?: number, timeoutMs = 10_000): Promise<ReceivedMessage> {
    const want = seq ?? this.messages.length + 1;
    const have = this.messages[want - 1];
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('message', onMessage);
        reject(new Error(`no message #${want} within ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (m: ReceivedMessage): void => {
        if (m.seq >= want) {
          clearTimeout(timer);
          this.off('message', onMessage);
          resolve(m);
        }
      };
      this.on('message', onMessage);
    });
  }
}

function smtpError(reply: ScriptedReply, fallback: string): Error & { responseCode: number } {
  const err = new Error(reply.message ?? fallback) as Error & { responseCode: number };
  err.responseCode = reply.code;
  return err;
}

function toReceived(a: SMTPServerAddress | false): ReceivedAddress {
  if (!a) return { address: '', args: {} };
  return { address: a.address, args: a.args ? { ...a.args } : {} };
}

/** Splits the header section of a raw message into unfolded [name, value] pairs. */
export function parseHeaders(raw: Buffer): [string, string][] {
  const text = raw.toString('utf8');
  const end = text.search(/\r?\n\r?\n/);
  const head = end < 0 ? text : text.slice(0, end);
  const fields: [string, string][] = [];
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && fields.length > 0) {
      fields[fields.length - 1]![1] += ' ' + line.trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon > 0) fields.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  return fields;
}

/** The body (after the first empty line) of a raw message. */
export function bodyOf(raw: Buffer): string {
  const text = raw.toString('utf8');
  const m = /\r?\n\r?\n/.exec(text);
  return m ? text.slice(m.index + m[0].length) : '';
}

let maildirCounter = 0;
function deliverMaildir(dir: string, raw: Buffer): string {
  for (const sub of ['tmp', 'new', 'cur']) mkdirSync(join(dir, sub), { recursive: true });
  const now = Date.now();
  const name = `${Math.floor(now / 1000)}.M${(now % 1000) * 1000}P${process.pid}Q${++maildirCounter}.${hostname().replace(/[/:]/g, '_')}`;
  const tmp = join(dir, 'tmp', name);
  writeFileSync(tmp, raw, { flag: 'wx' });
  const dest = join(dir, 'new', name);
  renameSync(tmp, dest);
  return dest;
}

let emlCounter = 0;
function saveEml(dir: string, raw: Buffer, seq: number): string {
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = join(dir, `${stamp}-${process.pid}-${seq}-${++emlCounter}.eml`);
  writeFileSync(file, raw, { flag: 'wx' });
  return file;
}

/** Starts the debugging server; resolves once it listens. */
export async function startDebugServer(options: DebugServerOptions = {}): Promise<DebugServer> {
  const impl = new DebugServerImpl();
  const host = options.host ?? '127.0.0.1';
  const tlsWanted = Boolean(options.starttls || options.implicitTls);
  let cert = options.cert;
  let key = options.key;
  if (tlsWanted && (!cert || !key)) {
    const generated = await generateSelfSigned(['localhost', host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host]);
    cert = generated.cert;
    key = generated.key;
  }
  if (tlsWanted && cert) {
    impl.cert = cert;
    impl.fingerprint256 = fingerprintOf(cert);
  }
  const accounts = options.auth ?? [];
  const disabledCommands: string[] = [];
  if (!options.starttls) disabledCommands.push('STARTTLS');
  if (accounts.length === 0) disabledCommands.push('AUTH');
  const refuseRcpt = new Map(Object.entries(options.refuseRcpt ?? {}).map(([k, v]) => [k.toLowerCase(), v]));

  const serverOptions: SMTPServerOptions = {
    secure: Boolean(options.implicitTls),
    name: options.name ?? 'smtplib-debug.localhost',
    banner: 'smtplib debugging server, nothing is relayed',
    logger: false,
    lmtp: Boolean(options.lmtp),
    disabledCommands,
    disableReverseLookup: true,
    hideDSN: false,
    hideENHANCEDSTATUSCODES: false,
    hideREQUIRETLS: !tlsWanted,
    authMethods: ['PLAIN', 'LOGIN', 'CRAM-MD5'],
    authOptional: accounts.length === 0 || Boolean(options.authOptional),
    allowInsecureAuth: options.allowInsecureAuth ?? !tlsWanted,
    maxAllowedUnauthenticatedCommands: false,
    socketTimeout: options.socketTimeout ?? 60_000,
    closeTimeout: 1_000,
    ...(options.size ? { size: options.size, rejectOversized: true } : {}),
    ...(cert && key ? { cert, key } : {}),
    onAuth(auth, _session, callback) {
      const account = accounts.find((a) => a.user === auth.username);
      let ok = false;
      if (account) {
        ok = auth.method === 'CRAM-MD5' ? auth.validatePassword(account.pass) : auth.password === account.pass;
      }
      if (!ok) {
        callback(null, { message: 'Authentication credentials invalid', responseCode: 535 });
        return;
      }
      callback(null, { user: auth.username });
    },
    onMailFrom(_address, _session, callback) {
      if (options.refuseMail) return callback(smtpError(options.refuseMail, 'Sender refused'));
      callback();
    },
    onRcptTo(address, _session, callback) {
      const reply = refuseRcpt.get(address.address.toLowerCase()) ?? refuseRcpt.get('*');
      if (reply) return callback(smtpError(reply, `Recipient <${address.address}> refused`));
      callback();
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (err) => callback(err));
      stream.on('end', () => {
        if (stream.sizeExceeded) {
          const err = smtpError({ code: 552, message: 'Message exceeds fixed maximum message size' }, '');
          return callback(err);
        }
        if (options.refuseData) return callback(smtpError(options.refuseData, 'Message refused'));
        const raw = Buffer.concat(chunks);
        const seq = impl.messages.length + 1;
        const tlsInfo = session.tlsOptions || undefined;
        const message: ReceivedMessage = {
          seq,
          sessionId: session.id,
          receivedAt: new Date(),
          remoteAddress: session.remoteAddress,
          clientName: session.hostNameAppearsAs || '',
          transmissionType: session.transmissionType,
          secure: session.secure,
          tlsProtocol: tlsInfo?.version,
          tlsCipher: tlsInfo?.name,
          user: typeof session.user === 'string' ? session.user : undefined,
          mailFrom: toReceived(session.envelope.mailFrom),
          rcptTo: session.envelope.rcptTo.map(toReceived),
          raw,
          size: raw.length,
          headers: parseHeaders(raw),
          accepted: session.envelope.rcptTo.map((r) => r.address),
        };
        try {
          if (options.maildir) message.file = deliverMaildir(options.maildir, raw);
          if (options.emlDir) message.file = saveEml(options.emlDir, raw, seq);
        } catch (err) {
          const e = smtpError({ code: 451, message: `Could not save the message: ${(err as Error).message}` }, '');
          return callback(e);
        }
        impl.messages.push(message);
        impl.emit('message', message);
        if (options.lmtp) {
          callback(null, session.envelope.rcptTo.map(() => `<${message.seq}> delivered`));
        } else {
          callback(null, `Message #${seq} received (${raw.length} bytes), not relayed`);
        }
      });
    },
  };
  const server = new SMTPServer(serverOptions);
  impl.server = server;
  server.on('error', (err) => {
    if (impl.listenerCount('error') > 0) impl.emit('error', err);
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.server.once('error', onError);
    server.listen(options.port ?? 1025, host, () => {
      server.server.off('error', onError);
      resolve();
    });
  });
  const addr = server.server.address() as AddressInfo;
  impl.host = addr.address;
  impl.port = addr.port;
  return impl;
}

// ---------------------------------------------------------------- printing

const PREVIEW_LINES = 8;

/** A human-readable report of one received message. */
export function formatMessage(m: ReceivedMessage, opts: { raw?: boolean } = {}): string {
  const out: string[] = [];
  const via = [m.transmissionType, m.tlsProtocol, m.tlsCipher, m.user ? `user ${m.user}` : undefined]
    .filter(Boolean)
    .join(', ');
  out.push(`---------- message #${m.seq} from ${m.remoteAddress} (${m.clientName || 'no HELO'}) via ${via} ----------`);
  out.push(`MAIL FROM:<${m.mailFrom.address}>${formatArgs(m.mailFrom.args)}`);
  for (const r of m.rcptTo) out.push(`RCPT TO:<${r.address}>${formatArgs(r.args)}`);
  if (opts.raw) {
    out.push(`DATA (${m.size} bytes):`);
    const text = m.raw.toString('utf8').replace(/\r\n$/, '');
    for (const line of text.split(/\r?\n/)) out.push(line);
  } else {
    out.push('Headers:');
    for (const [name, value] of m.headers) out.push(`  ${name}: ${value}`);
    const body = bodyOf(m.raw);
    const lines = body.length === 0 ? [] : body.replace(/\r?\n$/, '').split(/\r?\n/);
    out.push(`Body: ${Buffer.byteLength(body)} bytes, ${lines.length} line${lines.length === 1 ? '' : 's'} (message ${m.size} bytes)`);
    for (const line of lines.slice(0, PREVIEW_LINES)) out.push(`  | ${line.length > 200 ? line.slice(0, 200) + '…' : line}`);
    if (lines.length > PREVIEW_LINES) out.push(`  | … ${lines.length - PREVIEW_LINES} more line(s)`);
  }
  if (m.file) out.push(`Saved to ${m.file}`);
  out.push('-'.repeat(40));
  return out.join('\n');
}

function formatArgs(args: Record<string, string | true>): string {
  return Object.entries(args)
    .map(([k, v]) => ` ${k}${v === true ? '' : '=' + v}`)
    .join('');
}

/** The JSON form printed by `serve --json`, one line per message. */
export function messageToJson(m: ReceivedMessage): Record<string, unknown> {
  return {
    seq: m.seq,
    receivedAt: m.receivedAt.toISOString(),
    remoteAddress: m.remoteAddress,
    clientName: m.clientName,
    transmissionType: m.transmissionType,
    secure: m.secure,
    tlsProtocol: m.tlsProtocol,
    user: m.user,
    mailFrom: m.mailFrom,
    rcptTo: m.rcptTo,
    size: m.size,
    headers: m.headers,
    raw: m.raw.toString('utf8'),
    file: m.file,
  };
}
