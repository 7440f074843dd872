// node:diagnostics_channel instrumentation. Nothing is built or published
// unless a channel has subscribers, so the cost when unused is one property
// read per event.
//
//   smtplib:connect  { connectionId, host, port, path?, secure, verified, tlsWeakenedBy?, greeting: { code, message },
//                      durationMs, tls?: { protocol, cipher, resumed, authorized } }
//                      (after the TLS policy: durationMs covers TCP, TLS, greeting, EHLO, STARTTLS)
//   smtplib:auth     { connectionId, mechanism, code, enhancedStatus?, durationMs, error? }
//   smtplib:command  { connectionId, command }            (masked exactly as the debug log masks it)
//   smtplib:reply    { connectionId, command, code, enhancedStatus?, message }   (SASL challenges masked)
//   smtplib:send     { connectionId, from, accepted, refused, refusedReplies, code, enhancedStatus?, durationMs }
//   smtplib:error    { connectionId?, error, scope: 'connect' | 'connection' | 'transaction', durationMs?, host?, port?, from?, to? }
//                      ('connect': connect() failed, with host, port, durationMs; 'transaction': with from, to, durationMs)
//   smtplib:close    { connectionId, durationMs }   (the connection is gone, whatever the reason)
//
// `connectionId` is a number unique within the process for each connection
// (one Session), so command/reply/send events can be grouped per connection.
// Secrets never reach a channel: AUTH arguments and SASL exchanges are
// published as "****", as in the debug transcript.

import * as dc from 'node:diagnostics_channel';
import type { Reply } from './protocol/reply.js';

export const CONNECT_CHANNEL = 'smtplib:connect';
export const COMMAND_CHANNEL = 'smtplib:command';
export const REPLY_CHANNEL = 'smtplib:reply';
export const SEND_CHANNEL = 'smtplib:send';
export const ERROR_CHANNEL = 'smtplib:error';
export const AUTH_CHANNEL = 'smtplib:auth';
export const CLOSE_CHANNEL = 'smtplib:close';

export const channels = {
  connect: dc.channel(CONNECT_CHANNEL),
  command: dc.channel(COMMAND_CHANNEL),
  reply: dc.channel(REPLY_CHANNEL),
  send: dc.channel(SEND_CHANNEL),
  error: dc.channel(ERROR_CHANNEL),
  auth: dc.channel(AUTH_CHANNEL),
  close: dc.channel(CLOSE_CHANNEL),
} as const;

/** TLS facts of a connection (no certificate contents). */
export interface TlsDetails {
  /** 'TLSv1.3', ... */
  protocol: string | null;
  /** OpenSSL cipher name. */
  cipher: string | undefined;
  /** An abbreviated handshake (session resumption). */
  resumed: boolean;
  /** The certificate was verified (false when verification was turned off or a fingerprint pinned it). */
  authorized: boolean;
}

export interface ConnectEvent {
  connectionId: number;
  host: string;
  port: number;
  path?: string;
  secure: boolean;
  /** TLS is up and the certificate was verified (chain and name, or the pin). */
  verified: boolean;
  /** The caller's TLS options that weaken verification, when TLS is up ("rejectUnauthorized: false", "checkServerIdentity", ...). */
  tlsWeakenedBy?: string[];
  greeting: { code: number; message: string };
  /** From the start of connect() to a ready session (TCP, TLS, greeting, EHLO, STARTTLS). */
  durationMs: number;
  tls?: TlsDetails;
}

export interface AuthEvent {
  connectionId: number;
  mechanism: string;
  /** The final reply's code (235 on success), -1 when none came. */
  code: number;
  enhancedStatus?: string;
  durationMs: number;
  /** Set when authentication failed. */
  error?: Error;
}

export interface CloseEvent {
  connectionId: number;
  /** From the session's start (after TCP/TLS connect) to its end. */
  durationMs: number;
}

export interface CommandEvent {
  connectionId: number;
  /** The command line without CRLF, secrets replaced by "****". */
  command: string;
}

export interface ReplyEvent {
  connectionId: number;
  /** The command the reply answers (masked). */
  command: string;
  code: number;
  enhancedStatus?: string;
  /** The reply text ("****" for SASL challenges). */
  message: string;
}

export interface SendEvent {
  connectionId: number;
  /** The envelope sender. */
  from: string;
  accepted: string[];
  refused: string[];
  /** Each refused recipient's reply. */
  refusedReplies: { address: string; code: number; enhancedStatus?: string }[];
  code: number;
  enhancedStatus?: string;
  durationMs: number;
}

export interface ErrorEvent {
  connectionId?: number;
  error: Error;
  scope: 'connect' | 'connection' | 'transaction';
  /** 'connect' and 'transaction': from the start of connect() or of the transaction to the failure. */
  durationMs?: number;
  /** 'connect': the target. */
  host?: string;
  port?: number;
  /** 'transaction': the envelope. */
  from?: string;
  to?: string[];
}

const ids = new WeakMap<object, number>();
let nextId = 1;

/** A stable number for a connection object (its Session). */
export function connectionId(owner: object | undefined): number {
  if (!owner) return 0;
  let id = ids.get(owner);
  if (id === undefined) {
    id = nextId++;
    ids.set(owner, id);
  }
  return id;
}

export function publishConnect(owner: object, event: Omit<ConnectEvent, 'connectionId' | 'durationMs' | 'tls'>, startedAt: number, socket: unknown): void {
  if (!channels.connect.hasSubscribers) return;
  const published: ConnectEvent = { connectionId: connectionId(owner), ...event, durationMs: performance.now() - startedAt };
  const tls = tlsDetails(socket);
  if (tls) published.tls = tls;
  channels.connect.publish(published);
}

/** Protocol, cipher, resumption and verification of a TLS socket; undefined for a plain one. */
function tlsDetails(socket: unknown): TlsDetails | undefined {
  const s = socket as { encrypted?: boolean; getProtocol?(): string | null; getCipher?(): { name: string } | undefined; isSessionReused?(): boolean; authorized?: boolean } | undefined;
  if (!s?.encrypted || typeof s.getProtocol !== 'function') return undefined;
  return { protocol: s.getProtocol(), cipher: s.getCipher?.()?.name, resumed: s.isSessionReused?.() ?? false, authorized: Boolean(s.authorized) };
}

export function publishAuth(owner: object, mechanism: string, outcome: { reply?: Reply; error?: unknown }, startedAt: number): void {
  if (!channels.auth.hasSubscribers) return;
  const error = outcome.error;
  const reply = outcome.reply ?? (error as { reply?: Reply } | undefined)?.reply;
  const code = reply?.code ?? (typeof (error as { smtpCode?: unknown })?.smtpCode === 'number' ? (error as { smtpCode: number }).smtpCode : -1);
  const event: AuthEvent = { connectionId: connectionId(owner), mechanism, code, durationMs: performance.now() - startedAt };
  if (reply?.enhancedStatus) event.enhancedStatus = reply.enhancedStatus;
  if (error !== undefined) event.error = error instanceof Error ? error : new Error(String(error));
  channels.auth.publish(event);
}

export function publishClose(owner: object, startedAt: number): void {
  if (!channels.close.hasSubscribers) return;
  channels.close.publish({ connectionId: connectionId(owner), durationMs: performance.now() - startedAt } satisfies CloseEvent);
}

export function publishCommand(owner: object, command: string): void {
  if (!channels.command.hasSubscribers) return;
  channels.command.publish({ connectionId: connectionId(owner), command } satisfies CommandEvent);
}

export function publishReply(owner: object, command: string, reply: Reply, masked: boolean): void {
  if (!channels.reply.hasSubscribers) return;
  const event: ReplyEvent = { connectionId: connectionId(owner), command, code: reply.code, message: masked ? '****' : reply.message };
  if (reply.enhancedStatus) event.enhancedStatus = reply.enhancedStatus;
  channels.reply.publish(event);
}

export function publishSend(owner: object | undefined, from: string, result: { accepted: string[]; refused: Iterable<[string, Reply]>; reply: Reply }, startedAt: number): void {
  if (!channels.send.hasSubscribers) return;
  const refusedReplies: SendEvent['refusedReplies'] = [];
  for (const [address, reply] of result.refused) {
    refusedReplies.push(reply.enhancedStatus ? { address, code: reply.code, enhancedStatus: reply.enhancedStatus } : { address, code: reply.code });
  }
  const event: SendEvent = {
    connectionId: connectionId(owner),
    from,
    accepted: [...result.accepted],
    refused: refusedReplies.map((r) => r.address),
    refusedReplies,
    code: result.reply.code,
    durationMs: performance.now() - startedAt,
  };
  if (result.reply.enhancedStatus) event.enhancedStatus = result.reply.enhancedStatus;
  channels.send.publish(event);
}

export function publishError(
  owner: object | undefined,
  error: unknown,
  scope: ErrorEvent['scope'],
  transaction?: { from: string; to: readonly string[]; startedAt: number },
  connect?: { host: string; port: number; path?: string; startedAt: number },
): void {
  if (!channels.error.hasSubscribers) return;
  const event: ErrorEvent = { error: error instanceof Error ? error : new Error(String(error)), scope };
  if (owner) event.connectionId = connectionId(owner);
  if (transaction) {
    event.durationMs = performance.now() - transaction.startedAt;
    event.from = transaction.from;
    event.to = [...transaction.to];
  }
  if (connect) {
    event.durationMs = performance.now() - connect.startedAt;
    event.host = connect.path ?? connect.host;
    event.port = connect.port;
  }
  channels.error.publish(event);
}
