// node:diagnostics_channel instrumentation. Nothing is built or published
// unless a channel has subscribers, so the cost when unused is one property
// read per event.
//
//   smtplib:connect  { connectionId, host, port, path?, secure, greeting: { code, message } }
//   smtplib:command  { connectionId, command }            (masked exactly as the debug log masks it)
//   smtplib:reply    { connectionId, command, code, enhancedStatus?, message }   (SASL challenges masked)
//   smtplib:send     { connectionId, from?, accepted, refused, code, durationMs }
//   smtplib:error    { connectionId?, error, scope: 'connection' | 'transaction' }
//
// `connectionId` is a number unique within the process for each connection
// (one Session), so command/reply/send events can be grouped per connection.
// Secrets never reach a channel: AUTH arguments and SASL exchanges are
// published as "****", as in the debug transcript.

import dc from 'node:diagnostics_channel';
import type { Reply } from './protocol/reply.js';

export const CONNECT_CHANNEL = 'smtplib:connect';
export const COMMAND_CHANNEL = 'smtplib:command';
export const REPLY_CHANNEL = 'smtplib:reply';
export const SEND_CHANNEL = 'smtplib:send';
export const ERROR_CHANNEL = 'smtplib:error';

export const channels = {
  connect: dc.channel(CONNECT_CHANNEL),
  command: dc.channel(COMMAND_CHANNEL),
  reply: dc.channel(REPLY_CHANNEL),
  send: dc.channel(SEND_CHANNEL),
  error: dc.channel(ERROR_CHANNEL),
} as const;

export interface ConnectEvent {
  connectionId: number;
  host: string;
  port: number;
  path?: string;
  secure: boolean;
  greeting: { code: number; message: string };
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
  accepted: string[];
  refused: string[];
  code: number;
  durationMs: number;
}

export interface ErrorEvent {
  connectionId?: number;
  error: Error;
  scope: 'connection' | 'transaction';
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

export function publishConnect(owner: object, event: Omit<ConnectEvent, 'connectionId'>): void {
  if (!channels.connect.hasSubscribers) return;
  channels.connect.publish({ connectionId: connectionId(owner), ...event } satisfies ConnectEvent);
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

export function publishSend(owner: object | undefined, result: { accepted: string[]; refused: { keys(): Iterable<string> }; reply: Reply }, startedAt: number): void {
  if (!channels.send.hasSubscribers) return;
  channels.send.publish({
    connectionId: connectionId(owner),
    accepted: [...result.accepted],
    refused: [...result.refused.keys()],
    code: result.reply.code,
    durationMs: performance.now() - startedAt,
  } satisfies SendEvent);
}

export function publishError(owner: object | undefined, error: unknown, scope: ErrorEvent['scope']): void {
  if (!channels.error.hasSubscribers) return;
  const event: ErrorEvent = { error: error instanceof Error ? error : new Error(String(error)), scope };
  if (owner) event.connectionId = connectionId(owner);
  channels.error.publish(event);
}
