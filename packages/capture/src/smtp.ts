// The SMTP/LMTP side of the capture server, built on `smtp-server`: it
// accepts (never relays) mail, applies the scripted failures, keeps each
// session's transcript (smtp-server's protocol log, which already hides AUTH
// credentials) and hands finished messages to the store.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo, Socket } from 'node:net';
import { SMTPServer } from 'smtp-server';
import type { SMTPServerAddress, SMTPServerDataStream, SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import { FailureScript, type Outcome, type Phase, type StepFacts } from './failures.js';
import { describeMessage } from './message.js';
import type { EnvelopeAddress, MessageStore } from './store.js';
import { formatTranscript, REDACTED, type TranscriptLine } from './transcript.js';

export interface CaptureAccount {
  user: string;
  pass: string;
}

export interface SmtpCaptureOptions {
  host?: string;
  /** Default 1025; 0 picks a free port. */
  port?: number;
  /** PEM certificate and key, needed for `starttls` and `implicitTls`. */
  cert?: string;
  key?: string;
  starttls?: boolean;
  implicitTls?: boolean;
  /** Accounts for AUTH PLAIN/LOGIN/CRAM-MD5; giving any makes AUTH required unless `authOptional`. */
  auth?: CaptureAccount[];
  authOptional?: boolean;
  /** Allow AUTH without TLS (default: when no TLS mode is on). */
  allowInsecureAuth?: boolean;
  lmtp?: boolean;
  /** Largest message accepted, advertised as SIZE. */
  size?: number;
  /** Greeting and EHLO name. */
  name?: string;
  /** Scripted failures (see failures.ts). */
  failures?: string[];
  /** Store each session's transcript as DIR/<time>-<session>.smtp. */
  recordDir?: string;
  socketTimeout?: number;
}

interface SessionState {
  start: number;
  /** The session so far; without --record only the opening and the current transaction. */
  lines: TranscriptLine[];
  /** Where the first MAIL began: lines before it (greeting, EHLO, STARTTLS, AUTH) open every message's transcript. */
  prologueEnd: number;
  /** Where the current transaction's MAIL began. */
  transactionStart: number;
  lastCommand: string;
  className: 'SMTP' | 'SMTP_SSL' | 'LMTP';
  remote: string;
  local: string;
}

interface Connection {
  id: string;
  send(code: number, data?: string | string[], context?: unknown): void;
  _socket: Socket;
}

export interface SmtpCapture {
  readonly host: string;
  readonly port: number;
  readonly failures: FailureScript;
  readonly server: SMTPServer;
  /** Files written by `recordDir`, in order. */
  readonly recordings: string[];
  close(): Promise<void>;
}

const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3}(?: |$)/;

function replyError(code: number, text: string): Error & { responseCode: number } {
  const err = new Error(text) as Error & { responseCode: number };
  err.responseCode = code;
  return err;
}

function toEnvelope(a: SMTPServerAddress | false): EnvelopeAddress {
  if (!a) return { address: '', args: {} };
  const args: Record<string, string | true> = {};
  for (const [k, v] of Object.entries(a.args || {})) args[k.toUpperCase()] = v === true ? true : String(v);
  return { address: a.address, args };
}

export async function startSmtpCapture(store: MessageStore, options: SmtpCaptureOptions = {}): Promise<SmtpCapture> {
  const host = options.host ?? '127.0.0.1';
  const tlsWanted = Boolean(options.starttls || options.implicitTls);
  if (tlsWanted && (!options.cert || !options.key)) throw new Error('STARTTLS and implicit TLS need a certificate and key (cert, key)');
  const failures = new FailureScript(options.failures ?? []);
  const accounts = options.auth ?? [];
  const sessions = new Map<string, SessionState>();
  const connections = new Map<string, Connection>();
  const recordings: string[] = [];
  const className: SessionState['className'] = options.lmtp ? 'LMTP' : options.implicitTls ? 'SMTP_SSL' : 'SMTP';

  const push = (cid: string, line: TranscriptLine | Omit<TranscriptLine, 'at'>): void => {
    const s = sessions.get(cid);
    if (!s) return;
    s.lines.push({ ...line, at: Date.now() - s.start } as TranscriptLine);
  };

  // smtp-server's protocol log: 'S:' for every reply written, 'C:' for every
  // command line read (AUTH arguments and continuation lines already replaced).
  const logger = {
    debug(meta: { tnx?: string; cid?: string }, ...args: unknown[]): void {
      if (!meta?.cid || (args[0] !== 'S:' && args[0] !== 'C:')) return;
      const text = String(args[1] ?? '');
      const s = sessions.get(meta.cid);
      if (!s) return;
      if (args[0] === 'C:') {
        const line = text.replace(/\/\* secured \*\//g, REDACTED);
        s.lastCommand = line.split(' ')[0]!.toUpperCase();
        if (s.lastCommand === 'MAIL') {
          if (s.prologueEnd < 0) s.prologueEnd = s.lines.length;
          // Without a recording, earlier transactions are done with: memory stays flat however long the session.
          else if (!options.recordDir) s.lines.splice(s.prologueEnd);
          s.transactionStart = s.lines.length;
        }
        push(meta.cid, { side: 'C', text: line });
        return;
      }
      for (const l of text.split('\r\n')) push(meta.cid, { side: 'S', text: /^334 ./.test(l) ? `334 ${REDACTED}` : l });
      if (s.lastCommand === 'STARTTLS' && /^220 /.test(text)) {
        push(meta.cid, { side: 'S', directive: 'starttls' });
        s.lastCommand = '';
      }
    },
    info(): void {},
    warn(): void {},
    error(): void {},
    trace(): void {},
    fatal(): void {},
    child() {
      return logger;
    },
  };

  /** Runs the scripted failures for a step; resolves with what to tell smtp-server. */
  const script = async (phase: Phase, session: SMTPServerSession, facts: Omit<StepFacts, 'tls' | 'helo'>): Promise<Outcome> => {
    const d = failures.decide(
      phase,
      { tls: session.secure, user: typeof session.user === 'string' ? session.user : undefined, helo: session.hostNameAppearsAs || undefined, ...facts },
      session.remoteAddress,
    );
    if (d.delayMs > 0) {
      push(session.id, { side: 'S', directive: `delay ${d.delayMs}` });
      await new Promise((r) => setTimeout(r, d.delayMs));
    }
    if (d.outcome.kind === 'drop') connections.get(session.id)?._socket.destroy();
    return d.outcome;
  };

  /** Calls back as smtp-server wants for an outcome; returns false when the step may proceed. */
  const refuse = (outcome: Outcome, callback: (err?: Error | null) => void): boolean => {
    if (outcome.kind === 'reply') {
      callback(replyError(outcome.reply.code, outcome.reply.text));
      return true;
    }
    if (outcome.kind === 'drop') return true;
    return false;
  };

  const serverOptions: SMTPServerOptions = {
    secure: Boolean(options.implicitTls),
    name: options.name ?? 'capture.localhost',
    banner: 'smtplib capture server, nothing is relayed',
    logger: logger as unknown as SMTPServerOptions['logger'],
    lmtp: Boolean(options.lmtp),
    disabledCommands: [...(options.starttls ? [] : ['STARTTLS']), ...(accounts.length ? [] : ['AUTH'])],
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
    ...(options.cert && options.key ? { cert: options.cert, key: options.key } : {}),
    onConnect(session, callback) {
      void script('CONNECT', session, {}).then((outcome) => {
        if (!refuse(outcome, callback)) callback();
      });
    },
    onAuth(auth, session, callback) {
      void script('AUTH', session, { user: auth.username }).then((outcome) => {
        if (outcome.kind === 'reply') return callback(replyError(outcome.reply.code, outcome.reply.text));
        if (outcome.kind === 'drop') return;
        const account = accounts.find((a) => a.user === auth.username);
        const ok = account ? (auth.method === 'CRAM-MD5' ? auth.validatePassword(account.pass) : auth.password === account.pass) : false;
        if (!ok) return callback(null, { message: '5.7.8 Authentication credentials invalid', responseCode: 535 });
        callback(null, { user: auth.username });
      });
    },
    onMailFrom(address, session, callback) {
      const size = Number(address.args && (address.args as Record<string, string>).SIZE) || undefined;
      void script('MAIL', session, { from: address.address, size }).then((outcome) => {
        if (!refuse(outcome, callback)) callback();
      });
    },
    onRcptTo(address, session, callback) {
      const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
      void script('RCPT', session, { from, to: [address.address] }).then((outcome) => {
        if (!refuse(outcome, callback)) callback();
      });
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (err) => callback(err));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        void finishData(raw, stream.sizeExceeded, session, callback);
      });
    },
    onClose(session) {
      const s = sessions.get(session.id);
      connections.delete(session.id);
      if (!s) return;
      sessions.delete(session.id);
      if (options.recordDir && s.lines.length > 0) {
        mkdirSync(options.recordDir, { recursive: true });
        const file = join(options.recordDir, `${new Date(s.start).toISOString().replace(/[:.]/g, '-')}-${session.id}.smtp`);
        writeFileSync(file, formatTranscript({ className: s.className, recorded: `${new Date(s.start).toISOString()} from ${s.remote} to ${s.local}` }, s.lines));
        recordings.push(file);
      }
    },
  };

  const finishData = async (
    raw: Buffer,
    sizeExceeded: boolean,
    session: SMTPServerSession,
    callback: (err?: Error | null, message?: string | (string | Error)[]) => void,
  ): Promise<void> => {
    // The data goes into the transcript as one entry: its bytes only when
    // recording, else a marker filled in from the stored message when shown.
    push(session.id, { side: 'C', data: options.recordDir ? raw : null });
    if (sizeExceeded) return callback(replyError(552, '5.3.4 Message exceeds fixed maximum message size'));
    const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    const rcpts = session.envelope.rcptTo.map((r) => r.address);
    let results: (Outcome | undefined)[];
    if (options.lmtp) {
      results = [];
      for (const to of rcpts) results.push(await script('DATA', session, { from, to: [to], size: raw.length }));
    } else {
      results = [await script('DATA', session, { from, to: rcpts, size: raw.length })];
    }
    if (results.some((r) => r?.kind === 'drop')) return;
    const accepted = options.lmtp ? rcpts.filter((_, i) => results[i]!.kind !== 'reply') : results[0]!.kind === 'reply' ? [] : rcpts;
    let message;
    if (accepted.length > 0) {
      message = await describeMessage(raw, {
        sessionId: session.id,
        remoteAddress: session.remoteAddress,
        clientName: session.hostNameAppearsAs || '',
        transmissionType: session.transmissionType,
        tls: session.secure ? { protocol: session.tlsOptions ? session.tlsOptions.version : undefined, cipher: session.tlsOptions ? session.tlsOptions.name : undefined } : null,
        user: typeof session.user === 'string' ? session.user : null,
        mailFrom: toEnvelope(session.envelope.mailFrom),
        rcptTo: session.envelope.rcptTo.map(toEnvelope),
        accepted,
      });
    }
    if (options.lmtp) {
      callback(
        null,
        results.map((r, i) =>
          r!.kind === 'reply' ? replyError(r!.reply.code, r!.reply.text) : `2.1.5 <${rcpts[i]}> delivered as ${message!.id}`,
        ),
      );
    } else if (results[0]!.kind === 'reply') {
      const r = results[0] as { reply: { code: number; text: string } };
      return callback(replyError(r.reply.code, r.reply.text));
    } else {
      callback(null, `2.0.0 Message ${message!.id} received (${raw.length} bytes), not relayed`);
    }
    // The reply has been written (synchronously, by the callback): the
    // transcript now ends with it.
    if (message) {
      const s = sessions.get(session.id);
      if (s) {
        const opening = s.prologueEnd < 0 ? [] : s.lines.slice(0, s.prologueEnd);
        const transaction = s.lines.slice(s.prologueEnd < 0 ? 0 : s.transactionStart).map((l) => ('data' in l ? { ...l, data: null } : l));
        message.transcript = formatTranscript({ className: s.className }, [...opening, ...transaction]);
      }
      try {
        store.add(message);
      } catch (err) {
        server.emit('error', err as Error);
      }
    }
  };

  const server = new SMTPServer(serverOptions);
  // Each new connection: a transcript, and replies that keep an enhanced
  // status code the script gave instead of adding smtp-server's own.
  const tracked = new (class extends Set<Connection> {
    override add(conn: Connection): this {
      connections.set(conn.id, conn);
      const sock = conn._socket;
      sessions.set(conn.id, {
        start: Date.now(),
        lines: [],
        prologueEnd: -1,
        transactionStart: 0,
        lastCommand: '',
        className,
        remote: `${sock.remoteAddress}:${sock.remotePort}`,
        local: `${sock.localAddress}:${sock.localPort}`,
      });
      const send = conn.send.bind(conn);
      conn.send = (code, data, context) => send(code, data, typeof data === 'string' && ENHANCED.test(data) ? false : context);
      return super.add(conn);
    }
  })();
  (server as unknown as { connections: Set<Connection> }).connections = tracked;
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(options.port ?? 1025, host, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const addr = server.server.address() as AddressInfo;
  let closed = false;
  return {
    host: addr.address,
    port: addr.port,
    failures,
    server,
    recordings,
    close: () => {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
