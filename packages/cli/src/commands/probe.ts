// `smtplib probe host[:port]`: what does this server say, which TLS does it
// speak, which certificate does it show, and what is wrong with the setup.
//
// The probe drives the few commands it needs (greeting, EHLO, STARTTLS, QUIT)
// over node:net / node:tls itself rather than through SMTP.connect(): it has
// to look at servers the client would rightly refuse to talk to (wrong TLS
// mode, untrusted or mismatched certificates) and report on them. Replies and
// EHLO are read with the library's own ReplyParser (bounded) and Capabilities.
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { hostname as localHostname } from 'node:os';
import { Capabilities, LMTP_PORT, ReplyParser, SMTP_PORT, SMTP_SSL_PORT, SMTPProtocolError, type Reply } from 'smtplib';
import { isUnixSocket, parseServerArg } from '../connection.js';
import { CliError, EX } from '../exit-codes.js';

export interface ProbeOptions {
  json?: boolean;
  ca?: string;
  timeout?: string;
  servername?: string;
  helo?: string;
  lmtp?: boolean;
  fingerprint?: string[];
}

export interface CertInfo {
  subject: string;
  names: string[];
  issuer: string;
  validFrom: string;
  validTo: string;
  daysLeft: number;
  fingerprint256: string;
  selfSigned: boolean;
}

export interface TlsInfo {
  protocol: string | null;
  cipher: string;
  authorized: boolean;
  authorizationError?: string | undefined;
  hostnameOk: boolean;
  hostnameError?: string | undefined;
  chain: CertInfo[];
}

export interface EhloInfo {
  lines: string[];
  /** Keyword (upper case) → parameters, from the library's Capabilities (legacy AUTH= merged into AUTH). */
  features: Record<string, string>;
  authMechanisms: string[];
  /** SIZE: the limit, null when advertised without one; absent when not advertised. */
  size?: number | null;
}

export interface Finding {
  level: 'ok' | 'info' | 'warning' | 'error';
  message: string;
}

export interface ProbeReport {
  host: string;
  /** Absent for a Unix socket. */
  port?: number;
  mode: 'plaintext' | 'implicit-tls' | 'unreachable' | 'not-smtp';
  connectError?: string | undefined;
  greeting?: string | undefined;
  ehloBeforeTls?: EhloInfo | undefined;
  starttls?: { offered: boolean; ok: boolean; error?: string | undefined } | undefined;
  tls?: TlsInfo | undefined;
  ehloAfterTls?: EhloInfo | undefined;
  authMechanisms: { beforeTls: string[]; afterTls: string[] };
  size?: number | null | undefined;
  findings: Finding[];
}

/** Limits for what a probed server may send: a probe never buffers more than this. */
const PROBE_REPLY_LIMITS = { maxLineLength: 4096, maxReplyLength: 64 * 1024, maxReplyLines: 500 };

/** Reads SMTP replies off a socket with the library's bounded ReplyParser. */
class ReplyReader {
  private parser = new ReplyParser(PROBE_REPLY_LIMITS);
  private replies: Reply[] = [];
  private waiters: (() => void)[] = [];
  /** The first bytes received (at most 16), to recognise a TLS record. */
  firstBytes = Buffer.alloc(0);
  ended = false;
  error?: Error;
  constructor(public socket: net.Socket) {
    this.attach(socket);
  }
  attach(socket: net.Socket): void {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      if (this.firstBytes.length < 16) this.firstBytes = Buffer.concat([this.firstBytes, d.subarray(0, 16 - this.firstBytes.length)]);
      try {
        this.replies.push(...this.parser.push(d));
      } catch (err) {
        this.error = err as Error;
        this.ended = true;
        socket.destroy();
      }
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', (e) => {
      this.error ??= e;
      this.ended = true;
      this.wake();
    });
  }
  detach(): void {
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('end');
    this.socket.removeAllListeners('close');
    this.socket.removeAllListeners('error');
    this.socket.on('error', () => {});
  }
  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  /** One complete reply; throws on timeout, close, or what is not an SMTP reply. */
  async reply(timeoutMs: number): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const next = this.replies.shift();
      if (next) return next;
      if (this.ended) throw this.error ?? new Error(this.firstBytes.length ? 'connection closed in the middle of a reply' : 'connection closed by the server');
      const left = deadline - Date.now();
      if (left <= 0) throw Object.assign(new Error(`no reply within ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
  send(line: string): void {
    this.socket.write(line + '\r\n');
  }
}

function parseEhlo(reply: Reply): EhloInfo {
  const caps = Capabilities.fromReply(reply);
  return {
    lines: [...reply.lines],
    features: Object.fromEntries([...caps.features].map(([k, v]) => [k.toUpperCase(), v])),
    authMechanisms: caps.authMechanisms,
    ...(caps.has('size') ? { size: caps.maxSize ?? null } : {}),
  };
}

const replyText = (r: Reply): string => `${r.code} ${r.lines.join(' ')}`;

function connectTo(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = isUnixSocket(host) ? net.connect({ path: host }) : net.connect({ host, port });
    const t = setTimeout(() => {
      s.destroy();
      reject(Object.assign(new Error(`no connection within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

function tlsHandshake(opts: tls.ConnectionOptions, timeoutMs: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    // The chain is judged by Node (authorized / authorizationError); the name
    // is checked separately in tlsInfo(), so both findings can be reported.
    const s = tls.connect({ ...opts, rejectUnauthorized: false, checkServerIdentity: () => undefined });
    const t = setTimeout(() => {
      s.destroy();
      reject(Object.assign(new Error(`no TLS handshake within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    s.once('secureConnect', () => {
      clearTimeout(t);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

function certInfo(c: tls.DetailedPeerCertificate): CertInfo {
  const names = (c.subjectaltname ?? '')
    .split(/,\s*/)
    .filter(Boolean)
    .map((n) => n.replace(/^DNS:/, '').replace(/^IP Address:/, ''));
  const validTo = new Date(c.valid_to);
  const subj = (x: unknown): string => {
    if (!x || typeof x !== 'object') return '';
    const o = x as Record<string, string | string[]>;
    const cn = o.CN;
    return (Array.isArray(cn) ? cn.join(', ') : cn) ?? Object.entries(o).map(([k, v]) => `${k}=${String(v)}`).join(', ');
  };
  const sameName = JSON.stringify(c.subject) === JSON.stringify(c.issuer);
  const selfSigned = sameName && (!c.issuerCertificate || c.issuerCertificate === c || c.issuerCertificate.fingerprint256 === c.fingerprint256);
  return {
    subject: subj(c.subject),
    names,
    issuer: subj(c.issuer),
    validFrom: new Date(c.valid_from).toISOString(),
    validTo: validTo.toISOString(),
    daysLeft: Math.floor((validTo.getTime() - Date.now()) / 86_400_000),
    fingerprint256: c.fingerprint256,
    selfSigned,
  };
}

function tlsInfo(s: tls.TLSSocket, checkName: string): TlsInfo {
  const peer = s.getPeerCertificate(true);
  const chain: CertInfo[] = [];
  const seen = new Set<string>();
  let c: tls.DetailedPeerCertificate | undefined = peer && Object.keys(peer).length ? peer : undefined;
  while (c && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    chain.push(certInfo(c));
    c = c.issuerCertificate && c.issuerCertificate !== c ? c.issuerCertificate : undefined;
  }
  const idErr = peer && Object.keys(peer).length ? tls.checkServerIdentity(checkName, peer) : new Error('no certificate');
  const authErr = s.authorizationError as unknown as Error | string | null | undefined;
  return {
    protocol: s.getProtocol(),
    cipher: s.getCipher().name,
    authorized: s.authorized,
    authorizationError: authErr ? String(authErr instanceof Error ? authErr.message : authErr) : undefined,
    hostnameOk: !idErr,
    hostnameError: idErr?.message,
    chain,
  };
}

export async function probe(target: string, o: ProbeOptions = {}): Promise<ProbeReport> {
  const { host, port: givenPort } = parseServerArg(target, 'probe');
  const unix = isUnixSocket(host);
  const port = unix ? 0 : (givenPort ?? (o.lmtp ? LMTP_PORT : SMTP_PORT));
  const where = unix ? host : `${host}:${port}`;
  const timeoutMs = (o.timeout ? Number(o.timeout) : 10) * 1000;
  if (!(timeoutMs > 0)) throw new CliError(`--timeout: "${o.timeout}" should be seconds`, EX.USAGE);
  const greetWait = Math.min(timeoutMs, 5000);
  const checkName = o.servername ?? (unix ? 'localhost' : host);
  const fingerprints = (o.fingerprint ?? []).map(normalizeFingerprint);
  const servername = net.isIP(checkName) ? undefined : checkName;
  let ca: string[] | undefined;
  if (o.ca) {
    let pem: string;
    try {
      pem = readFileSync(o.ca, 'utf8');
    } catch (err) {
      throw new CliError(`--ca: cannot read ${o.ca}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EX.NOINPUT);
    }
    ca = [...tls.rootCertificates, pem];
  }
  const helo = o.helo ?? (localHostname() || 'localhost');
  const hello = o.lmtp ? 'LHLO' : 'EHLO';
  const report: ProbeReport = { host, ...(unix ? {} : { port }), mode: 'unreachable', authMechanisms: { beforeTls: [], afterTls: [] }, findings: [] };
  const find = (level: Finding['level'], message: string): void => {
    report.findings.push({ level, message });
  };

  // 1. Plain TCP, wait for a greeting.
  let sock: net.Socket;
  try {
    sock = await connectTo(host, port, timeoutMs);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    report.connectError = e.message;
    if (e.code === 'ECONNREFUSED') find('error', `nothing listens on ${where} (connection refused)`);
    else if (e.code === 'ENOENT') find('error', `there is no socket at ${host}`);
    else if (e.code === 'ENOTFOUND') find('error', `the host name ${host} does not resolve`);
    else find('error', `cannot connect to ${where}: ${e.message}`);
    return report;
  }
  let reader = new ReplyReader(sock);
  let greeting: Reply | undefined;
  let plainError: Error | undefined;
  try {
    greeting = await reader.reply(greetWait);
  } catch (err) {
    plainError = err as Error;
  }

  if (!greeting) {
    // 2. No plaintext greeting: try implicit TLS.
    const sawBytes = reader.firstBytes;
    sock.destroy();
    const tlsRecord = sawBytes.length >= 2 && (sawBytes[0] === 0x15 || sawBytes[0] === 0x16) && sawBytes[1] === 0x03;
    if (plainError instanceof SMTPProtocolError && !tlsRecord) {
      report.mode = 'not-smtp';
      find('error', `${where} does not speak SMTP: ${plainError.message}`);
      return report;
    }
    if (tlsRecord) find('info', 'the server sent TLS data first');
    if (unix) {
      report.mode = 'not-smtp';
      report.connectError = plainError?.message;
      find('error', `${where} accepts connections but sent no greeting (${plainError?.message})`);
      return report;
    }
    let tsock: tls.TLSSocket;
    try {
      tsock = await tlsHandshake({ host, port, ...(servername ? { servername } : {}), ...(ca ? { ca } : {}) }, timeoutMs);
    } catch (err) {
      report.mode = 'not-smtp';
      report.connectError = plainError?.message;
      find('error', `${where} accepts connections but sent no SMTP greeting (${plainError?.message}) and a TLS handshake failed too (${(err as Error).message})`);
      return report;
    }
    report.mode = 'implicit-tls';
    report.tls = tlsInfo(tsock, checkName);
    find('info', `${where} speaks implicit TLS (SMTPS): use --tls implicit; a client that expects plaintext or STARTTLS here waits for a greeting that never comes`);
    reader = new ReplyReader(tsock);
    try {
      greeting = await reader.reply(timeoutMs);
      report.greeting = `${greeting.code} ${greeting.lines.join('\n')}`;
      reader.send(`${hello} ${helo}`);
      const e = await reader.reply(timeoutMs);
      if (e.code === 250) report.ehloAfterTls = parseEhlo(e);
      else find('warning', `${hello} was refused: ${replyText(e)}`);
      reader.send('QUIT');
      await reader.reply(2000).catch(() => undefined);
    } catch (err) {
      find('error', `after the TLS handshake: ${(err as Error).message}`);
    }
    tsock.destroy();
  } else {
    report.mode = 'plaintext';
    report.greeting = `${greeting.code} ${greeting.lines.join('\n')}`;
    if (greeting.code !== 220) {
      find('error', `the server greets with ${greeting.code}, not 220: it does not want mail from here now`);
    }
    if (port === SMTP_SSL_PORT) find('warning', 'port 465 is normally implicit TLS (SMTPS), but this one speaks plaintext first: use STARTTLS (--tls required), not --tls implicit');
    try {
      reader.send(`${hello} ${helo}`);
      const e = await reader.reply(timeoutMs);
      if (e.code !== 250) {
        find('warning', `${hello} refused: ${replyText(e)}`);
      } else {
        report.ehloBeforeTls = parseEhlo(e);
      }
      const offered = Boolean(report.ehloBeforeTls && 'STARTTLS' in report.ehloBeforeTls.features);
      report.starttls = { offered, ok: false };
      if (offered) {
        reader.send('STARTTLS');
        const r = await reader.reply(timeoutMs);
        if (r.code !== 220) {
          report.starttls.error = replyText(r);
          find('error', `STARTTLS is offered but refused: ${report.starttls.error}`);
        } else {
          reader.detach();
          let tsock: tls.TLSSocket | undefined;
          try {
            tsock = await tlsHandshake({ socket: sock, ...(servername ? { servername } : {}), ...(ca ? { ca } : {}) }, timeoutMs);
          } catch (err) {
            report.starttls.error = (err as Error).message;
            find('error', `the TLS handshake after STARTTLS failed: ${(err as Error).message}`);
          }
          if (tsock) {
            report.starttls.ok = true;
            report.tls = tlsInfo(tsock, checkName);
            reader = new ReplyReader(tsock);
            reader.send(`${hello} ${helo}`);
            const e2 = await reader.reply(timeoutMs);
            if (e2.code === 250) report.ehloAfterTls = parseEhlo(e2);
            reader.send('QUIT');
            await reader.reply(2000).catch(() => undefined);
            tsock.destroy();
          }
        }
      } else {
        find('warning', 'STARTTLS is not offered: mail and passwords would cross the network unencrypted (smtplib send refuses with --tls required)');
        reader.send('QUIT');
        await reader.reply(2000).catch(() => undefined);
      }
    } catch (err) {
      const e = err as Error;
      if (e instanceof SMTPProtocolError) report.mode = 'not-smtp';
      find('error', e.message);
    }
    sock.destroy();
  }

  // Findings about TLS and capabilities.
  report.authMechanisms.beforeTls = report.ehloBeforeTls?.authMechanisms ?? [];
  report.authMechanisms.afterTls = report.ehloAfterTls?.authMechanisms ?? [];
  const last = report.ehloAfterTls ?? report.ehloBeforeTls;
  if (last && last.size !== undefined) report.size = last.size;
  const t = report.tls;
  const pinned = Boolean(t?.chain[0] && fingerprints.includes(normalizeFingerprint(t.chain[0].fingerprint256)));
  if (t && fingerprints.length) {
    if (pinned) find('ok', 'the certificate matches --fingerprint (trusted by its fingerprint, as `send --fingerprint` would)');
    else find('error', `the certificate's SHA-256 fingerprint ${t.chain[0]?.fingerprint256 ?? '(none)'} is not the one given with --fingerprint`);
  }
  if (t && !pinned) {
    const leaf = t.chain[0];
    if (t.authorized && t.hostnameOk) find('ok', `the certificate is trusted and valid for ${checkName}`);
    if (!t.hostnameOk) {
      find('error', `the certificate is for ${leaf ? [leaf.subject, ...leaf.names].filter((v, i, a) => v && a.indexOf(v) === i).join(', ') : 'nobody'}, not for ${checkName}${o.servername ? '' : '; connect by the name on the certificate (or check with --servername NAME)'}`);
    }
    if (!t.authorized) {
      const code = t.authorizationError ?? 'unknown';
      if (/SELF_SIGNED|DEPTH_ZERO/.test(code)) {
        find('error', `the certificate is self-signed (${code}); clients will refuse it unless told to trust it: ${o.ca ? 'it is not the one in --ca' : 'pass it with --ca FILE'}`);
      } else if (/UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY_LEAF|LOCAL_ISSUER/.test(code)) {
        find('error', `the certificate is issued by a CA this system does not trust, or the server omits the intermediate certificate (${code}); for a private CA use --ca FILE`);
      } else if (/CERT_HAS_EXPIRED/.test(code)) {
        find('error', `the certificate expired on ${leaf?.validTo ?? '?'}`);
      } else if (/NOT_YET_VALID/.test(code)) {
        find('error', `the certificate is not valid before ${leaf?.validFrom ?? '?'} (check the clocks)`);
      } else {
        find('error', `the certificate is not trusted: ${code}`);
      }
    }
    if (leaf && leaf.daysLeft >= 0 && leaf.daysLeft < 14) find('warning', `the certificate expires in ${leaf.daysLeft} day(s), on ${leaf.validTo}`);
    if (t.protocol && /^TLSv1(\.[01])?$|SSL/.test(t.protocol)) find('warning', `${t.protocol} is obsolete; TLS 1.2 or 1.3 expected`);
  }
  if (report.authMechanisms.beforeTls.length && report.mode === 'plaintext') {
    const plain = report.authMechanisms.beforeTls.filter((m) => m === 'PLAIN' || m === 'LOGIN');
    if (plain.length) find('warning', `AUTH ${plain.join(' ')} is offered before TLS: passwords could be sent in cleartext`);
  }
  if (report.mode !== 'not-smtp' && !report.authMechanisms.beforeTls.length && !report.authMechanisms.afterTls.length) {
    find('info', 'no AUTH offered: this server takes mail without login (relay by address, or inbound MX)');
  }
  return report;
}

/** Hex without colons, upper case: how fingerprints are compared. */
function normalizeFingerprint(value: string): string {
  return value.replace(/[^0-9a-f]/gi, '').toUpperCase();
}

export function formatReport(r: ProbeReport): string {
  const out: string[] = [];
  out.push(`Probe of ${r.port === undefined ? r.host : `${r.host}:${r.port}`}: ${r.mode === 'plaintext' ? 'plaintext SMTP' : r.mode === 'implicit-tls' ? 'implicit TLS (SMTPS)' : r.mode}`);
  if (r.connectError && r.mode === 'unreachable') out.push(`  connect: ${r.connectError}`);
  if (r.greeting) out.push(`Greeting: ${r.greeting.split('\n').join('\n          ')}`);
  const ehlo = (title: string, e?: EhloInfo): void => {
    if (!e) return;
    out.push(`${title}: ${e.lines[0] ?? ''}`);
    for (const l of e.lines.slice(1)) out.push(`    ${l}`);
  };
  ehlo('EHLO before TLS', r.ehloBeforeTls);
  if (r.starttls) out.push(`STARTTLS: ${r.starttls.offered ? (r.starttls.ok ? 'offered, upgraded' : `offered, failed: ${r.starttls.error ?? ''}`) : 'not offered'}`);
  if (r.tls) {
    out.push(`TLS: ${r.tls.protocol ?? '?'}, cipher ${r.tls.cipher}; chain ${r.tls.authorized ? 'trusted' : `NOT trusted (${r.tls.authorizationError ?? '?'})`}; name ${r.tls.hostnameOk ? 'matches' : 'does NOT match'}`);
    r.tls.chain.forEach((c, i) => {
      out.push(`  [${i}] subject: ${c.subject}${c.selfSigned ? ' (self-signed)' : ''}`);
      if (c.names.length) out.push(`      names:   ${c.names.join(', ')}`);
      out.push(`      issuer:  ${c.issuer}`);
      out.push(`      valid:   ${c.validFrom} .. ${c.validTo} (${c.daysLeft} days left)`);
      out.push(`      sha256:  ${c.fingerprint256}`);
    });
  }
  ehlo('EHLO after TLS', r.ehloAfterTls);
  const mech = (l: string[]): string => (l.length ? l.join(' ') : 'none');
  if (r.mode === 'plaintext') out.push(`AUTH before TLS: ${mech(r.authMechanisms.beforeTls)}`);
  if (r.tls) out.push(`AUTH after TLS: ${mech(r.authMechanisms.afterTls)}`);
  if (r.size !== undefined) out.push(`SIZE: ${r.size === null ? 'advertised, no limit given' : `${r.size} bytes (${(r.size / 1048576).toFixed(1)} MiB)`}`);
  out.push('Diagnosis:');
  for (const f of r.findings) out.push(`  ${f.level.toUpperCase().padEnd(7)} ${f.message}`);
  if (!r.findings.length) out.push('  OK      nothing to report');
  return out.join('\n');
}

export function probeExitCode(r: ProbeReport): number {
  if (r.mode === 'unreachable') return r.connectError && /ETIMEDOUT|within/.test(r.connectError) ? EX.TEMPFAIL : EX.UNAVAILABLE;
  if (r.findings.some((f) => f.level === 'error')) return EX.PROTOCOL;
  return EX.OK;
}

export async function runProbe(target: string, o: ProbeOptions): Promise<number> {
  const report = await probe(target, o);
  const { findings, ...rest } = report;
  process.stdout.write((o.json ? JSON.stringify({ ...rest, findings }, null, 2) : formatReport(report)) + '\n');
  return probeExitCode(report);
}
