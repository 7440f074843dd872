// The payloads of smtplib's diagnostics channels this package reads (see
// packages/smtplib/src/diagnostics.ts, where they are published). Declared
// here so the package needs nothing of smtplib at run time but the channel
// names; test/otel runs them against the real client.

export interface TlsDetails {
  protocol: string | null;
  cipher: string | undefined;
  resumed: boolean;
  authorized: boolean;
}

export interface ConnectEvent {
  connectionId: number;
  host: string;
  port: number;
  path?: string;
  secure: boolean;
  greeting: { code: number; message: string };
  durationMs: number;
  tls?: TlsDetails;
}

export interface AuthEvent {
  connectionId: number;
  mechanism: string;
  code: number;
  enhancedStatus?: string;
  durationMs: number;
  error?: Error;
}

export interface SendEvent {
  connectionId: number;
  from: string;
  accepted: string[];
  refused: string[];
  refusedReplies: { address: string; code: number; enhancedStatus?: string }[];
  code: number;
  enhancedStatus?: string;
  durationMs: number;
}

export interface ErrorEvent {
  connectionId?: number;
  error: Error;
  scope: 'connect' | 'connection' | 'transaction';
  durationMs?: number;
  host?: string;
  port?: number;
  from?: string;
  to?: string[];
}

export interface CloseEvent {
  connectionId: number;
  durationMs: number;
}

export const CHANNELS = {
  connect: 'smtplib:connect',
  auth: 'smtplib:auth',
  send: 'smtplib:send',
  error: 'smtplib:error',
  close: 'smtplib:close',
} as const;
