// The AUTH exchange (RFC 4954 §4) around a SASL mechanism: the client owns
// the wire, the mechanism owns the bytes. Rules that make a hostile server
// harmless:
// - cleartext mechanisms are refused, before anything is written, on a
//   connection that is not TLS with a verified certificate, to a peer that is
//   not on this machine, unless the caller opted in (Go net/smtp's rule; "on
//   this machine" is decided by the name the caller connected to, never by a
//   socket that may be a proxy's or a tunnel's: see Transport.peerIsLocal);
// - at most MAX_CHALLENGES 334 rounds; a mechanism error or bad base64
//   cancels the exchange with "*" (RFC 4954 §4);
// - only 235 is success (smtplib also accepts 503; we do not);
// - one mechanism per login(): after a refusal the password is not offered
//   again in another form;
// - the debug log and errors see "****", never the exchange.

import type { TLSSocket } from 'node:tls';
import { createHash } from 'node:crypto';
import { endPointHashOf } from '../wire/cert-signature-hash.js';
import type { SaslContext, SaslMechanism } from '../auth/mechanism.js';
import { SMTPAuthenticationError, SMTPException, SMTPInvalidArgumentError, SMTPNotSupportedError } from '../errors.js';
import { commandLine, MAX_AUTH_COMMAND, MAX_SASL_RESPONSE_LINE } from '../protocol/commands.js';
import type { Reply } from '../protocol/reply.js';
import type { Session } from '../session/session.js';

export const MAX_CHALLENGES = 5;

/** Mechanisms that reveal the secret to anyone who can read the connection. */
export const CLEARTEXT_MECHANISMS = new Set(['PLAIN', 'LOGIN', 'XOAUTH2', 'OAUTHBEARER']);

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface AuthRun {
  session: Session;
  host: string;
  port: number | undefined;
  timeout: number;
  initialResponseOk: boolean;
  signal?: AbortSignal | undefined;
}

/** Refuses a cleartext mechanism where it would expose the secret. */
export function assertMechanismAllowed(name: string, sendsCleartext: boolean, session: Session, host: string, allowCleartext: boolean): void {
  if (!sendsCleartext) return;
  const transport = session.transport;
  if (cleartextAllowed(session, allowCleartext)) return;
  if (transport.secure) {
    const hint = 'verify the certificate (tls.ca or fingerprint instead of tls.rejectUnauthorized: false), or set allowCleartextAuth if this link is otherwise protected';
    throw new SMTPNotSupportedError(
      `refusing to send credentials with ${name} to ${host}: the TLS certificate was not verified, so the session may be with anyone; ${hint}`,
      { diagnosis: 'unverified-tls', hint },
    );
  }
  const hint = `use TLS (tlsPolicy 'required', STARTTLS, or SMTP_SSL on port 465), or set allowCleartextAuth if this link is otherwise protected`;
  throw new SMTPNotSupportedError(`refusing to send credentials with ${name} over an unencrypted connection to ${host}: ${hint}`, {
    diagnosis: 'cleartext-auth-refused',
    hint,
  });
}

/** Whether a mechanism that reveals the secret may run: verified TLS, a peer on this machine, or the caller's opt-in. */
export function cleartextAllowed(session: Session, allowCleartext: boolean): boolean {
  const transport = session.transport;
  return transport.verified || transport.peerIsLocal || allowCleartext;
}

export function saslContext(session: Session, host: string, port: number | undefined): SaslContext {
  const stream = session.transport.stream as TLSSocket;
  const secure = session.transport.secure;
  const tlsVersion = secure ? (stream.getProtocol?.() ?? undefined) : undefined;
  return {
    host,
    ...(port !== undefined ? { port } : {}),
    secure,
    ...(tlsVersion ? { tlsVersion } : {}),
    channelBinding(type) {
      if (!secure) return undefined;
      try {
        if (type === 'tls-exporter') {
          // RFC 9266 §2: 32 bytes, label "EXPORTER-Channel-Binding", no context. Defined for TLS 1.3.
          if (stream.getProtocol?.() !== 'TLSv1.3') return undefined;
          return stream.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
        }
        if (type === 'tls-unique') {
          // RFC 5929 §3.1: the first Finished of the latest handshake; undefined for TLS 1.3.
          if (stream.getProtocol?.() === 'TLSv1.3') return undefined;
          return (stream.isSessionReused() ? stream.getPeerFinished() : stream.getFinished()) ?? undefined;
        }
        const cert = stream.getPeerCertificate(false);
        if (!cert?.raw) return undefined;
        // RFC 5929 §4.1: the certificate hashed with its own signature's hash (SHA-256 for MD5/SHA-1).
        const hash = endPointHashOf(cert.raw);
        return hash === undefined ? undefined : createHash(hash).update(cert.raw).digest();
      } catch {
        return undefined;
      }
    },
  };
}

/** Runs one SASL exchange; resolves with the 235 reply. */
export async function runExchange(mechanism: SaslMechanism, run: AuthRun): Promise<Reply> {
  const { session, timeout, signal } = run;
  const name = mechanism.name.toUpperCase();
  let initial: Uint8Array | undefined;
  try {
    initial = await mechanism.start(saslContext(session, run.host, run.port));
  } catch (error) {
    // A TypeError is the mechanism refusing the caller's input (NUL in a PLAIN field, a bad token).
    if (error instanceof TypeError) {
      throw new SMTPInvalidArgumentError(`${name}: ${error.message}; nothing was sent`, { cause: error });
    }
    throw new SMTPAuthenticationError(-1, `the ${name} mechanism could not start: ${(error as Error).message}`, name, { cause: error });
  }
  let pendingInitial: Uint8Array | undefined;
  let line = commandLine(`AUTH ${name}`);
  if (initial !== undefined && run.initialResponseOk) {
    const encoded = initial.length === 0 ? '=' : Buffer.from(initial).toString('base64');
    if (line.length + 1 + encoded.length + 2 <= MAX_AUTH_COMMAND) line = `${line} ${encoded}`;
    else pendingInitial = initial; // RFC 4954 §4: too long for the command line: send it after an empty 334.
  } else if (initial !== undefined) {
    pendingInitial = initial;
  }
  const shown = line === `AUTH ${name}` ? line : `AUTH ${name} ****`;
  let reply = await session.command(line, { phase: 'command', timeout, logAs: shown, maskReply: true, signal });
  let rounds = 0;
  while (reply.code === 334) {
    if (++rounds > MAX_CHALLENGES) {
      await cancel(run, name);
      throw new SMTPAuthenticationError(334, `the server sent more than ${MAX_CHALLENGES} AUTH challenges; the exchange was cancelled`, name, { reply, command: shown });
    }
    const text = reply.lines[0]?.trim() ?? '';
    let response: Uint8Array;
    try {
      if (!BASE64.test(text)) throw new Error('the server challenge is not valid base64');
      const challenge = Buffer.from(text, 'base64');
      if (pendingInitial !== undefined && challenge.length === 0) {
        response = pendingInitial;
        pendingInitial = undefined;
      } else {
        response = await mechanism.step(challenge);
      }
    } catch (error) {
      await cancel(run, name);
      throw new SMTPAuthenticationError(-1, `AUTH ${name} cancelled: ${(error as Error).message}`, name, { cause: error, command: shown });
    }
    const encoded = response.length === 0 ? '' : Buffer.from(response).toString('base64');
    if (encoded.length + 2 > MAX_SASL_RESPONSE_LINE) {
      await cancel(run, name);
      throw new SMTPAuthenticationError(-1, `AUTH ${name} cancelled: the response would be ${encoded.length + 2} octets, over the ${MAX_SASL_RESPONSE_LINE}-octet limit of RFC 4954 §4`, name, { command: shown });
    }
    reply = await session.command(encoded, { phase: 'command', timeout, logAs: '****', maskReply: true, signal, midExchange: true });
  }
  if (reply.code !== 235) {
    throw new SMTPAuthenticationError(reply.code, reply.message, name, { reply, command: shown });
  }
  try {
    mechanism.verify?.();
  } catch (error) {
    // The server claims success without proving it knows the password: do not trust this connection.
    session.destroy(error as Error);
    throw new SMTPAuthenticationError(235, `the server accepted ${name} but failed mutual authentication: ${(error as Error).message}`, name, {
      cause: error,
      reply,
      command: shown,
    });
  }
  return reply;
}

/** Sends "*" to abandon an exchange and reads the server's answer (RFC 4954 §4: 501). */
async function cancel(run: AuthRun, name: string): Promise<void> {
  try {
    await run.session.command('*', { phase: 'command', timeout: run.timeout, logAs: '*', signal: run.signal, midExchange: true });
  } catch (error) {
    if (!(error instanceof SMTPException)) throw error;
    void name;
  }
}
