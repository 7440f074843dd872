// A scriptable, recording SMTP/LMTP server for the differential tests.
//
// It listens on 127.0.0.1:0 (or a Unix socket for LMTP), answers every
// command line on its own even when several arrive in one segment (so a
// pipelining client and a lock-step client see the same replies), and
// records what it received as a flat list of events: command lines, AUTH
// continuation lines, message data (as it was on the wire, dot-stuffed),
// TLS handshakes and connections. The event list is what the tests compare.

import { createHmac } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';

/** A reply: a code and one or more text lines. */
export interface ReplySpec {
  code: number;
  lines: string[];
}

export function r(code: number, ...lines: string[]): ReplySpec {
  return { code, lines: lines.length ? lines : [''] };
}

export interface ServerScript {
  /** The greeting (default 220). */
  greeting?: ReplySpec;
  /** LHLO instead of EHLO/HELO, and one reply per accepted recipient after the data. */
  lmtp?: boolean;
  /** EHLO keywords (after the first line) before TLS. */
  extensions?: string[];
  /** EHLO keywords after STARTTLS (default: `extensions` without STARTTLS). */
  tlsExtensions?: string[];
  /** Reply to EHLO instead of the extension list (e.g. 502: the client must fall back to HELO). */
  ehloReply?: ReplySpec;
  /** Reply to HELO (default 250). */
  heloReply?: ReplySpec;
  /** Valid user → password (default bob / secret). */
  users?: Record<string, string>;
  /** Mechanisms that always end in 535 (to drive a client's fallback). */
  failMechanisms?: string[];
  /** Reply to STARTTLS instead of 220 + handshake. */
  starttlsReply?: ReplySpec;
  /** VRFY argument → reply (default 252). */
  vrfy?: Record<string, ReplySpec>;
  /** EXPN argument → reply (default 550). */
  expn?: Record<string, ReplySpec>;
  /** HELP argument ('' for none) → reply (default 214). */
  help?: Record<string, ReplySpec>;
  /** MAIL FROM address → reply (default 250). */
  mail?: Record<string, ReplySpec>;
  /** RCPT TO address → reply (default 250). */
  rcpt?: Record<string, ReplySpec>;
  /** Reply to DATA when there are recipients (default 354). */
  data?: ReplySpec;
  /** Reply after the end of data (SMTP; default 250). */
  end?: ReplySpec;
  /** LMTP: recipient → reply after the end of data (default 250). */
  lmtpEnd?: Record<string, ReplySpec>;
  /** On the nth (default 1st) command with this verb: send `reply` (if any) and close the connection. */
  closeAt?: { verb: string; nth?: number; reply?: ReplySpec };
}

export interface ServerEvent {
  kind: 'conn' | 'cmd' | 'reply' | 'auth' | 'auth-result' | 'message' | 'tls' | 'note';
  text: string;
  /** For commands: the number of the read (segment) that completed the line, counted per server. */
  segment?: number;
}

export interface RecordingServer {
  host: string;
  port: number;
  path?: string;
  events: ServerEvent[];
  /** How many segments (reads) carried command lines; for information only. */
  segments: number;
  /** Forgets what was recorded (between the two runs). */
  reset(): void;
  /** Resolves when every connection opened so far has closed. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export interface ServerOptions {
  script: ServerScript;
  tls?: { key: string; cert: string };
  /** Listen on this Unix socket path instead of 127.0.0.1:0. */
  path?: string;
}

function render(reply: ReplySpec): string {
  return reply.lines.map((line, i) => `${reply.code}${i === reply.lines.length - 1 ? ' ' : '-'}${line}\r\n`).join('');
}

const CRAM_CHALLENGE = '<1896.697170952@mx.test>';

export async function startServer(options: ServerOptions): Promise<RecordingServer> {
  const script = options.script;
  const users = script.users ?? { bob: 'secret' };
  const events: ServerEvent[] = [];
  const open = new Set<Promise<void>>();
  let segments = 0;

  const server = net.createServer((raw) => {
    let closedResolve!: () => void;
    const closed = new Promise<void>((resolve) => (closedResolve = resolve));
    open.add(closed);
    raw.on('close', () => {
      open.delete(closed);
      closedResolve();
    });
    raw.on('error', () => undefined);
    events.push({ kind: 'conn', text: 'connect' });

    let stream: net.Socket | tls.TLSSocket = raw;
    let buffer = Buffer.alloc(0);
    let secure = false;
    let finished = false;
    let mode: 'cmd' | 'data' | 'auth' = 'cmd';
    let greeted = false;
    let sender: string | undefined;
    let recipients: string[] = [];
    let message: string[] = [];
    let authenticated = false;
    let auth: { mech: string; user?: string } | undefined;
    const counts = new Map<string, number>();

    const send = (reply: ReplySpec) => {
      if (finished) return;
      events.push({ kind: 'reply', text: `${reply.code} ${reply.lines.join(' / ')}` });
      stream.write(render(reply));
    };
    const finish = () => {
      finished = true;
      stream.end();
    };
    const extensions = () => (secure ? (script.tlsExtensions ?? (script.extensions ?? []).filter((e) => e.toUpperCase() !== 'STARTTLS')) : (script.extensions ?? []));
    const offered = (mech: string) =>
      extensions()
        .filter((e) => /^auth[ =]/i.test(e))
        .flatMap((e) => e.slice(5).toUpperCase().split(/\s+/))
        .includes(mech);

    const endAuth = (mech: string, user: string | undefined, ok: boolean) => {
      const good = ok && !(script.failMechanisms ?? []).map((m) => m.toUpperCase()).includes(mech);
      events.push({ kind: 'auth-result', text: `${mech} user=${user ?? '?'} ${good ? 235 : 535}` });
      mode = 'cmd';
      auth = undefined;
      if (good) {
        authenticated = true;
        send(r(235, '2.7.0 Authentication successful'));
      } else send(r(535, '5.7.8 Authentication credentials invalid'));
    };
    const decode = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');
    const checkPlain = (b64: string) => {
      const [, user, pass] = decode(b64).split('\0');
      endAuth('PLAIN', user, user !== undefined && users[user] === pass);
    };

    const handleAuthLine = (line: string) => {
      events.push({ kind: 'auth', text: line });
      const a = auth!;
      if (line === '*') {
        events.push({ kind: 'auth-result', text: `${a.mech} cancelled 501` });
        mode = 'cmd';
        auth = undefined;
        send(r(501, '5.7.0 Authentication cancelled'));
        return;
      }
      if (a.mech === 'PLAIN') return checkPlain(line);
      if (a.mech === 'LOGIN') {
        if (a.user === undefined) {
          a.user = decode(line);
          send(r(334, 'UGFzc3dvcmQ6'));
          return;
        }
        return endAuth('LOGIN', a.user, users[a.user] === decode(line));
      }
      if (a.mech === 'CRAM-MD5') {
        const [user, digest] = decode(line).split(' ');
        const expected = user !== undefined && users[user] !== undefined ? createHmac('md5', users[user]!).update(CRAM_CHALLENGE).digest('hex') : '';
        return endAuth('CRAM-MD5', user, digest === expected);
      }
    };

    const handleCommand = (line: string): 'stop' | void => {
      events.push({ kind: 'cmd', text: line, segment: segments });
      const match = /^(\S+)(?:\s(.*))?$/.exec(line);
      const verb = (match?.[1] ?? '').toUpperCase();
      const arg = match?.[2] ?? '';
      const n = (counts.get(verb) ?? 0) + 1;
      counts.set(verb, n);
      if (script.closeAt && script.closeAt.verb.toUpperCase() === verb && (script.closeAt.nth ?? 1) === n) {
        if (script.closeAt.reply) send(script.closeAt.reply);
        finish();
        return 'stop';
      }
      const hello = script.lmtp ? 'LHLO' : 'EHLO';
      switch (verb) {
        case 'EHLO':
        case 'LHLO':
          if (verb !== hello) return send(r(500, `5.5.1 ${verb} not recognized`));
          if (script.ehloReply) return send(script.ehloReply);
          greeted = true;
          sender = undefined;
          recipients = [];
          return send(r(250, `mx.test greets ${arg}`, ...extensions()));
        case 'HELO':
          if (script.lmtp) return send(r(500, '5.5.1 HELO not recognized'));
          greeted = true;
          sender = undefined;
          recipients = [];
          return send(script.heloReply ?? r(250, 'mx.test'));
        case 'NOOP':
          return send(r(250, '2.0.0 OK'));
        case 'RSET':
          sender = undefined;
          recipients = [];
          return send(r(250, '2.0.0 Reset state'));
        case 'QUIT':
          send(r(221, '2.0.0 Bye'));
          finish();
          return 'stop';
        case 'HELP':
          return send(script.help?.[arg] ?? r(214, '2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY EXPN HELP AUTH STARTTLS', 'End of HELP info'));
        case 'VRFY':
          return send(script.vrfy?.[arg] ?? r(252, '2.5.2 Cannot VRFY user, but will accept message'));
        case 'EXPN':
          return send(script.expn?.[arg] ?? r(550, '5.1.1 Mailing list not found'));
        case 'STARTTLS': {
          if (script.starttlsReply) return send(script.starttlsReply);
          if (secure || !options.tls || !extensions().some((e) => e.toUpperCase() === 'STARTTLS')) return send(r(502, '5.5.1 STARTTLS not available'));
          send(r(220, '2.0.0 Ready to start TLS'));
          return 'stop';
        }
        case 'AUTH': {
          const [mechRaw, initial] = arg.split(' ');
          const mech = (mechRaw ?? '').toUpperCase();
          if (authenticated) return send(r(503, '5.5.1 Already authenticated'));
          if (!offered(mech)) return send(r(504, '5.5.4 Unrecognized authentication type'));
          mode = 'auth';
          auth = { mech };
          if (mech === 'PLAIN') {
            if (initial !== undefined) return checkPlain(initial);
            return send(r(334, ''));
          }
          if (mech === 'LOGIN') {
            if (initial !== undefined) {
              auth.user = decode(initial);
              return send(r(334, 'UGFzc3dvcmQ6'));
            }
            return send(r(334, 'VXNlcm5hbWU6'));
          }
          if (mech === 'CRAM-MD5') return send(r(334, Buffer.from(CRAM_CHALLENGE).toString('base64')));
          mode = 'cmd';
          auth = undefined;
          return send(r(504, '5.5.4 Unrecognized authentication type'));
        }
        case 'MAIL': {
          const m = /^FROM:<([^>]*)>(.*)$/i.exec(arg);
          if (!m) return send(r(501, '5.5.4 Syntax: MAIL FROM:<address>'));
          if (!greeted) return send(r(503, '5.5.1 Error: send HELO/EHLO first'));
          if (sender !== undefined) return send(r(503, '5.5.1 Error: nested MAIL command'));
          const reply = script.mail?.[m[1]!] ?? r(250, '2.1.0 Ok');
          if (reply.code < 300) sender = m[1]!;
          return send(reply);
        }
        case 'RCPT': {
          const m = /^TO:<([^>]*)>(.*)$/i.exec(arg);
          if (!m) return send(r(501, '5.5.4 Syntax: RCPT TO:<address>'));
          if (sender === undefined) return send(r(503, '5.5.1 Error: need MAIL command'));
          const reply = script.rcpt?.[m[1]!] ?? r(250, '2.1.5 Ok');
          if (reply.code < 300) recipients.push(m[1]!);
          return send(reply);
        }
        case 'DATA':
          if (sender === undefined) return send(r(503, '5.5.1 Error: need MAIL command'));
          if (recipients.length === 0) return send(r(554, '5.5.1 Error: no valid recipients'));
          if (script.data) return send(script.data);
          mode = 'data';
          message = [];
          return send(r(354, 'End data with <CR><LF>.<CR><LF>'));
        default:
          return send(r(500, '5.5.2 Error: command not recognized'));
      }
    };

    const endOfData = () => {
      events.push({ kind: 'message', text: message.join('\r\n') });
      mode = 'cmd';
      if (script.lmtp) {
        for (const rcpt of recipients) send(script.lmtpEnd?.[rcpt] ?? r(250, `2.0.0 <${rcpt}> delivered`));
      } else send(script.end ?? r(250, '2.0.0 Ok: queued as 1A2B3C'));
      sender = undefined;
      recipients = [];
    };

    const pump = () => {
      for (;;) {
        if (finished) return;
        const eol = buffer.indexOf('\r\n');
        if (eol === -1) return;
        const line = buffer.subarray(0, eol).toString('utf8');
        buffer = buffer.subarray(eol + 2);
        if (mode === 'data') {
          if (line === '.') endOfData();
          else message.push(line);
          continue;
        }
        if (mode === 'auth') {
          handleAuthLine(line);
          continue;
        }
        if (handleCommand(line) === 'stop') {
          if (!finished) upgrade();
          return;
        }
      }
    };

    const onData = (chunk: Buffer) => {
      segments++;
      buffer = Buffer.concat([buffer, chunk]);
      pump();
    };

    const upgrade = () => {
      stream.removeListener('data', onData);
      if (buffer.length) {
        events.push({ kind: 'note', text: `plaintext after STARTTLS discarded: ${JSON.stringify(buffer.toString('utf8'))}` });
        buffer = Buffer.alloc(0);
      }
      const secured = new tls.TLSSocket(raw, { isServer: true, key: options.tls!.key, cert: options.tls!.cert });
      secured.on('error', () => raw.destroy());
      secured.once('secure', () => {
        events.push({ kind: 'tls', text: 'TLS handshake complete' });
        secure = true;
        greeted = false;
        sender = undefined;
        recipients = [];
        authenticated = false;
      });
      stream = secured;
      secured.on('data', onData);
    };

    raw.on('data', onData);
    send(script.greeting ?? r(220, script.lmtp ? 'mx.test LMTP ready' : 'mx.test ESMTP ready'));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (options.path) server.listen(options.path, resolve);
    else server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    host: '127.0.0.1',
    port,
    ...(options.path ? { path: options.path } : {}),
    events,
    get segments() {
      return segments;
    },
    reset() {
      events.length = 0;
      segments = 0;
    },
    async idle() {
      await Promise.all([...open]);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
      }),
  };
}
