// Servers for the pool tests: the npm smtp-server (a real, well-behaved
// server) and the scripted fault server of the soak (misbehaviour on cue).
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';
// @ts-expect-error plain JS module without types
import { startFaultServer as startFault } from '../soak/fault-server.js';

export interface Received {
  from: string;
  to: string[];
  body: string;
  connection: number;
}

export interface SmtpServerHandle {
  port: number;
  messages: Received[];
  connections: number;
  maxConcurrent: number;
  authAttempts: number;
  close(): Promise<void>;
}

export async function startSmtpServer(options: { users?: Record<string, string>; rcptReply?: (address: string) => string | undefined } = {}): Promise<SmtpServerHandle> {
  const handle = { messages: [] as Received[], connections: 0, maxConcurrent: 0, authAttempts: 0 } as SmtpServerHandle;
  let open = 0;
  const ids = new WeakMap<object, number>();
  const server = new SMTPServer({
    secure: false,
    hideSTARTTLS: true,
    disabledCommands: options.users ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    authOptional: !options.users,
    allowInsecureAuth: true,
    logger: false,
    onConnect(session, callback) {
      handle.connections++;
      open++;
      handle.maxConcurrent = Math.max(handle.maxConcurrent, open);
      ids.set(session, handle.connections);
      callback();
    },
    onClose() {
      open--;
    },
    onAuth(auth, _session, callback) {
      handle.authAttempts++;
      if (options.users && options.users[auth.username ?? ''] === auth.password) callback(null, { user: auth.username });
      else callback(new Error('5.7.8 authentication failed'));
    },
    onRcptTo(address, _session, callback) {
      const refusal = options.rcptReply?.(address.address);
      if (refusal) {
        const error = new Error(refusal.slice(4)) as Error & { responseCode: number };
        error.responseCode = Number(refusal.slice(0, 3));
        callback(error);
      } else callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        handle.messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          body: Buffer.concat(chunks).toString('utf8'),
          connection: ids.get(session) ?? 0,
        });
        callback(null, 'queued');
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  handle.port = (server.server.address() as AddressInfo).port;
  handle.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return handle;
}

export interface FaultContext {
  connection: { id: number };
  step: number;
  stage: 'greeting' | 'command' | 'data' | 'end-of-data';
  verb: string;
  line: string;
  rcpts: string[];
}

export type FaultDecision = undefined | { reply: string } | { drop: true | 'after-delivery' };

export interface FaultServerHandle {
  port: number;
  deliveries: Map<string, number>;
  stats: {
    connections: number; commands: number; messages: number; drops: number; faults: number; maxConcurrent: number; open: number;
    nestedMail: number; bdatChunks: number; bdatLast: number; maxBdatLastInOneRead: number; starttls: number; auths: number;
    /** Writes of replies (each a batch answered together: one round trip as the client sees it). */
    replyBatches: number;
  };
  sayToAll(text: string): void;
  dropAll(): void;
  close(): Promise<void>;
}

export function startFaultServer(options: {
  fault?: (ctx: FaultContext) => FaultDecision;
  rcptReply?: (rcpt: string, connection: { id: number }) => string | undefined;
  replyDelayMs?: number;
  log?: (line: string) => void;
  /** Offer CHUNKING and take BDAT. */
  chunking?: boolean;
  /** Offer STARTTLS with this certificate (and require it before MAIL). */
  tls?: { key: string; cert: string };
  /** Offer AUTH PLAIN and require it before MAIL. */
  auth?: { user: string; pass: string };
} = {}): Promise<FaultServerHandle> {
  return startFault(options);
}

export const message = (id: string | number, extra = '') =>
  `From: a@example.test\r\nTo: b@example.test\r\nSubject: test ${id}\r\nX-Soak-Id: ${id}\r\n${extra}\r\nbody of ${id}\r\n`;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
