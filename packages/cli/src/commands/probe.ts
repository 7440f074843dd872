// `smtplib probe host[:port]`: what does this server say, which TLS does it
// speak, which certificate does it show, and what is wrong with the setup.
//
// The probe speaks the few commands it needs itself (greeting, EHLO,
// STARTTLS, QUIT) over node:net / node:tls rather than through the library:
// it has to look at servers the library would rightly refuse to talk to
// (wrong TLS mode, untrusted or mismatched certificates) and report on them.
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { hostname as localHostname } from 'node:os';
import { parseServerArg } from '../connection.js';
import { CliError, EX } from '../exit-codes.js';

export interface ProbeOptions {
  json?: boolean;
  ca?: string;
  timeout?: string;
  servername?: string;
  helo?: string;
  lmtp?: boolean;
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
  features: Record<string, string>;
}

export interface Finding {
  level: 'ok' | 'info' | 'warning' | 'error';
  message: string;
}

export interface ProbeReport {
  host: string;
  port: number;
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

/** Reads SMTP replies off a socket. */
class ReplyReader {
  private buf = '';
  private waiters: (() => void)[] = [];
  ended = false;
  error?: Error;
  constructor(public socket: net.Socket) {
    this.attach(socket);
  }
  attach(socket: net.Socket): void {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buf += d;
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
      this.error = e;
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
  get pending(): string {
    return this.buf;
  }
  /** One complete reply: { code, lines }; throws on timeout or close. */
  async reply(timeoutMs: number): Promise<{ code: number; lines: string[] }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const parsed = this.tryParse();
      if (parsed) return parsed;
      if (this.ended) throw this.error ?? new Error(this.buf ? `connection closed after "${this.buf.slice(0, 60).trim()}"` : 'connection closed by the server');
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
  private tryParse(): { code: number; lines: string[] } | undefined {
    const lines: string[] = [];
    let pos = 0;
    for (;;) {
      const nl = this.buf.indexOf('\n', pos);
      if (nl < 0) return undefined;
      const line = this.buf.slice(pos, nl).replace(/\r$/, '');
      pos = nl + 1;
      const m = /^(\d{3})([ -]?)(.*)$/.exec(line);
      if (!m) throw Object.assign(new Error(`not an SMTP reply: ${JSON.stringify(line.slice(0, 80))}`), { code: 'ENOTSMTP' });
      lines.push(m[3]!);
      if (m[2] !== '-') {
        this.buf = this.buf.slice(pos);
        return { code: Number(m[1]), lines };
      }
    }
  }
  send(line: string): void {
    this.socket.write(line + '\r\n');
  }
}

function parseEhlo(lines: string[]): EhloInfo {
  const features: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const [k, ...rest] = l.trim().split(/\s+/);
    if (k) features[k.toUpperCase()] = rest.join(' ');
  }
  return { lines, features };
}

function authOf(e?: EhloInfo): string[] {
  if (!e) return [];
  const v = e.features.AUTH ?? e.features['AUTH='] ?? '';
  return v.split(/\s+/).filter(Boolean).map((m) => m.toUpperCase());
}

function connectTcp(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const t = setTimeout(() => {
      s.destroy();
      reject(Object.assign(new Error(`no TCP connection within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
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
  const { host, port: givenPort } = parseServerArg(target);
  const port = givenPort ?? (o.lmtp ? 24 : 25);
  const timeoutMs = (o.timeout ? Number(o.timeout) : 10) * 1000;
  if (!(timeoutMs > 0)) throw new CliError(`--timeout: "${o.timeout}" should be seconds`, EX.USAGE);
  const greetWait = Math.min(timeoutMs, 5000);
  const checkName = o.servername ?? host;
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
  const report: ProbeReport = { host, port, mode: 'unreachable', authMechanisms: { beforeTls: [], afterTls: [] }, findings: [] };
  const find = (level: Finding['level'], message: string): void => {
    report.findings.push({ level, message });
  };

  // 1. Plain TCP, wait for a greeting.
  let sock: net.Socket;
  try {
    sock = await connectTcp(host, port, timeoutMs);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    report.connectError = e.message;
    if (e.code === 'ECONNREFUSED') find('error', `nothing listens on ${host}:${port} (connection refused)`);
    else if (e.code === 'ENOTFOUND') find('error', `the host name ${host} does not resolve`);
    else find('error', `cannot connect to ${host}:${port}: ${e.message}`);
    return report;
  }
  let reader = new ReplyReader(sock);
  let greeting: { code: number; lines: string[] } | undefined;
  let plainError: Error | undefined;
  try {
    greeting = await reader.reply(greetWait);
  } catch (err) {
    plainError = err as Error;
  }

  if (!greeting) {
    // 2. No plaintext greeting: try implicit TLS.
    const sawBytes = reader.pending;
    sock.destroy();
    if (sawBytes && /^\x15\x03|^\x16\x03/.test(sawBytes)) {
      find('info', 'the server sent TLS data first');
    }
    let tsock: tls.TLSSocket;
    try {
      tsock = await tlsHandshake({ host, port, ...(servername ? { servername } : {}), ...(ca ? { ca } : {}) }, timeoutMs);
    } catch (err) {
      report.mode = 'not-smtp';
      report.connectError = plainError?.message;
      find('error', `${host}:${port} accepts connections but sent no SMTP greeting (${plainError?.message}) and a TLS handshake failed too (${(err as Error).message})`);
      return report;
    }
    report.mode = 'implicit-tls';
    report.tls = tlsInfo(tsock, checkName);
    find('info', `${host}:${port} speaks implicit TLS (SMTPS): use --tls implicit; a client that expects plaintext or STARTTLS here waits for a greeting that never comes`);
    reader = new ReplyReader(tsock);
    try {
      greeting = await reader.reply(timeoutMs);
      report.greeting = `${greeting.code} ${greeting.lines.join('\n')}`;
      reader.send(`${hello} ${helo}`);
      const e = await reader.reply(timeoutMs);
      if (e.code === 250) report.ehloAfterTls = parseEhlo(e.lines);
      else find('warning', `${hello} was refused: ${e.code} ${e.lines.join(' ')}`);
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
    if (port === 465) find('warning', 'port 465 is normally implicit TLS (SMTPS), but this one speaks plaintext first: use STARTTLS (--tls required), not --tls implicit');
    try {
      reader.send(`${hello} ${helo}`);
      const e = await reader.reply(timeoutMs);
      if (e.code !== 250) {
        find('warning', `${hello} refused: ${e.code} ${e.lines.join(' ')}`);
      } else {
        report.ehloBeforeTls = parseEhlo(e.lines);
      }
      const offered = Boolean(report.ehloBeforeTls && 'STARTTLS' in report.ehloBeforeTls.features);
      report.starttls = { offered, ok: false };
      if (offered) {
        reader.send('STARTTLS');
        const r = await reader.reply(timeoutMs);
        if (r.code !== 220) {
          report.starttls.error = `${r.code} ${r.lines.join(' ')}`;
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
            if (e2.code === 250) report.ehloAfterTls = parseEhlo(e2.lines);
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
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOTSMTP') report.mode = 'not-smtp';
      find('error', e.message);
    }
    sock.destroy();
  }

  // Findings about TLS and capabilities.
  report.authMechanisms.beforeTls = authOf(report.ehloBeforeTls);
  report.authMechanisms.afterTls = authOf(report.ehloAfterTls);
  const features = report.ehloAfterTls?.features ?? report.ehloBeforeTls?.features;
  if (features && 'SIZE' in features) report.size = features.SIZE ? Number(features.SIZE) : null;
  const t = report.tls;
  if (t) {
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

export function formatReport(r: ProbeReport): string {
  const out: string[] = [];
  out.push(`Probe of ${r.host}:${r.port}: ${r.mode === 'plaintext' ? 'plaintext SMTP' : r.mode === 'implicit-tls' ? 'implicit TLS (SMTPS)' : r.mode}`);
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
