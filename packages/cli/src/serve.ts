// `smtplib serve`: the capture server of the smtplib-capture package on the
// loopback interface, and the small programmatic API the CLI's tests and the
// demo use (startDebugServer). It accepts mail, shows it in a web inbox and
// the terminal (or files it as .eml / into a Maildir) and never relays it.
import { EventEmitter } from 'node:events';
import { startCapture, type CaptureServer, type StoredMessage } from 'smtplib-capture';
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
  /** Save every message as DIR/<name>.eml (and read them back on start). */
  emlDir?: string;
  /** Deliver every message into a Maildir (DIR/{tmp,new,cur}, read back on start). */
  maildir?: string;
  /** Name used in the greeting and EHLO reply. */
  name?: string;
  /** Refuse MAIL FROM with this reply. */
  refuseMail?: ScriptedReply;
  /** Refuse these recipients (lower-case address → reply); '*' refuses every recipient. */
  refuseRcpt?: Record<string, ScriptedReply>;
  /** Refuse the message after DATA with this reply. */
  refuseData?: ScriptedReply;
  /** Scripted failures, "PHASE [CONDITION ...] -> ACTION" (see smtplib-capture). */
  failures?: string[];
  /** Messages kept in memory, oldest dropped first (default 1000). */
  maxMessages?: number;
  /** The web inbox and API: "ADDR:PORT", or false for none (default: none here; the CLI turns it on). */
  http?: { host?: string; port?: number } | false;
  /** Store each session's transcript in DIR. */
  recordDir?: string;
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
  /** The capture server's id of the message (the web inbox and API use it). */
  id: string;
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
  /** The web inbox's URL, when it runs. */
  readonly url?: string | undefined;
  /** PEM certificate served with STARTTLS / implicit TLS, if any. */
  readonly cert?: string | undefined;
  readonly fingerprint256?: string | undefined;
  readonly messages: ReceivedMessage[];
  /** The capture server underneath (store, failures, HTTP). */
  readonly capture: CaptureServer;
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
  url?: string | undefined;
  cert?: string | undefined;
  fingerprint256?: string | undefined;
  readonly messages: ReceivedMessage[] = [];
  capture!: CaptureServer;

  close(): Promise<void> {
    return this.capture.close();
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

/** A ScriptedReply as the reply part of a failure rule. */
function replyText(r: ScriptedReply, fallback: string): string {
  return `${r.code} ${(r.message ?? fallback).replace(/[\r\n]+/g, ' ')}`;
}

/** The older --refuse-* options as failure rules (one grammar underneath). */
export function refusalsAsRules(o: Pick<DebugServerOptions, 'refuseMail' | 'refuseRcpt' | 'refuseData'>): string[] {
  const rules: string[] = [];
  if (o.refuseMail) rules.push(`MAIL -> ${replyText(o.refuseMail, 'Sender refused')}`);
  for (const [address, reply] of Object.entries(o.refuseRcpt ?? {})) {
    if (address !== '*') rules.push(`RCPT to=${address.toLowerCase()} -> ${replyText(reply, `Recipient <${address}> refused`)}`);
  }
  const all = o.refuseRcpt?.['*'];
  if (all) rules.push(`RCPT -> ${replyText(all, 'Recipient refused')}`);
  if (o.refuseData) rules.push(`DATA -> ${replyText(o.refuseData, 'Message refused')}`);
  return rules;
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

function toReceived(m: StoredMessage, seq: number): ReceivedMessage {
  return {
    seq,
    id: m.id,
    sessionId: m.sessionId,
    receivedAt: new Date(m.receivedAt),
    remoteAddress: m.remoteAddress,
    clientName: m.clientName,
    transmissionType: m.transmissionType,
    secure: Boolean(m.tls),
    tlsProtocol: m.tls?.protocol,
    tlsCipher: m.tls?.cipher,
    user: m.user ?? undefined,
    mailFrom: m.mailFrom,
    rcptTo: m.rcptTo,
    raw: m.raw,
    size: m.size,
    headers: parseHeaders(m.raw),
    accepted: m.accepted,
    file: m.file,
  };
}

/** Starts the server; resolves once it listens. */
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
  const capture = await startCapture({
    host,
    port: options.port ?? 1025,
    starttls: Boolean(options.starttls),
    implicitTls: Boolean(options.implicitTls),
    ...(tlsWanted && cert && key ? { cert, key } : {}),
    auth: options.auth ?? [],
    authOptional: Boolean(options.authOptional),
    ...(options.allowInsecureAuth !== undefined ? { allowInsecureAuth: options.allowInsecureAuth } : {}),
    lmtp: Boolean(options.lmtp),
    ...(options.size ? { size: options.size } : {}),
    ...(options.name ? { name: options.name } : {}),
    ...(options.emlDir ? { emlDir: options.emlDir } : {}),
    ...(options.maildir ? { maildir: options.maildir } : {}),
    ...(options.maxMessages ? { maxMessages: options.maxMessages } : {}),
    ...(options.recordDir ? { recordDir: options.recordDir } : {}),
    ...(options.socketTimeout ? { socketTimeout: options.socketTimeout } : {}),
    failures: [...refusalsAsRules(options), ...(options.failures ?? [])],
    http: options.http ?? false,
  });
  impl.capture = capture;
  impl.host = capture.smtp.host;
  impl.port = capture.smtp.port;
  impl.url = capture.http?.url;
  let seq = 0;
  for (const m of capture.store.all()) impl.messages.push(toReceived(m, ++seq));
  capture.store.on('message', (m: StoredMessage) => {
    const received = toReceived(m, ++seq);
    impl.messages.push(received);
    // The in-memory list of this API follows the store's bound.
    if (impl.messages.length > capture.store.maxMessages) impl.messages.shift();
    impl.emit('message', received);
  });
  return impl;
}

// ---------------------------------------------------------------- printing

const PREVIEW_LINES = 8;

/** A human-readable report of one received message. */
export function formatMessage(m: ReceivedMessage, opts: { raw?: boolean } = {}): string {
  const out: string[] = [];
  const via = [m.transmissionType, m.tlsProtocol, m.tlsCipher, m.user ? `user ${m.user}` : undefined].filter(Boolean).join(', ');
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
    id: m.id,
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
