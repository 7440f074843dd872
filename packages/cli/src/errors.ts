// Turns any error into a message a person can act on, a hint in terms of
// this command's flags, and a sysexits.h code. Decisions are made on the
// library's error classes and fields (diagnosis, smtpCode, phase,
// deliveryStatus, cause), never on the wording of its messages. Where the
// library's message carries advice in its own terms (SMTP_SSL, tlsPolicy),
// the CLI says the same in its own sentence and flags instead.
import {
  type Diagnosis,
  isSMTPError,
  SMTPAbortError,
  SMTPAuthenticationError,
  SMTPConnectError,
  SMTPDataError,
  SMTPHeloError,
  SMTPInvalidArgumentError,
  SMTPNotSupportedError,
  SMTPProtocolError,
  SMTPRecipientsRefused,
  SMTPResponseException,
  SMTPSenderRefused,
  SMTPServerDisconnected,
  SMTPTimeoutError,
  SMTPTLSError,
} from 'smtplib';
import { CliError, EX } from './exit-codes.js';

export interface DescribedError {
  message: string;
  hint?: string | undefined;
  exitCode: number;
}

const NET_TEMP = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED', 'ECONNREFUSED']);

/** The CLI's words for what the library diagnosed: a sentence (when the library's names its options) and a hint naming flags. */
const DIAGNOSES: Partial<Record<Diagnosis, { message?: string; hint: string; exitCode?: number }>> = {
  'connection-refused': { hint: 'is a server listening on that host and port?', exitCode: EX.TEMPFAIL },
  'host-not-found': { hint: 'check the host name', exitCode: EX.UNAVAILABLE },
  'host-unreachable': { hint: 'check the network; try again later', exitCode: EX.TEMPFAIL },
  'no-such-socket': { hint: 'check the socket path given with --server and that the server is running', exitCode: EX.UNAVAILABLE },
  'implicit-tls-expected': {
    message: 'no SMTP greeting: the port seems to expect implicit TLS',
    hint: 'use --tls implicit (SMTPS, usually port 465); `smtplib probe HOST:PORT` tells which it is',
    exitCode: EX.PROTOCOL,
  },
  'plaintext-expected': {
    message: 'the port speaks plaintext first, not implicit TLS',
    hint: 'use --tls required (STARTTLS, usually port 587) instead of --tls implicit',
  },
  'starttls-not-offered': {
    message: 'TLS is required but the server does not offer STARTTLS; nothing was sent in plaintext',
    hint: 'for an SMTPS port (465) use --tls implicit; to send without encryption on purpose (test servers only) use --tls none',
  },
  'starttls-refused': { hint: 'the server refused STARTTLS; try again later, or ask its operator' },
  'starttls-injection': { hint: 'something on the path tampered with STARTTLS; do not fall back to plaintext' },
  certificate: { hint: 'to trust a private CA use --ca FILE; to pin a self-signed certificate use --fingerprint SHA256; `smtplib probe HOST:PORT` shows the chain' },
  'fingerprint-mismatch': { hint: 'the certificate is not the one given with --fingerprint (or tls_fingerprint); `smtplib probe HOST:PORT` prints its fingerprint' },
  'tls-version': { hint: 'the server offers only TLS versions below the minimum (TLS 1.2, or tls_min_proto)' },
  'cleartext-auth-refused': {
    message: 'the password was not sent: the connection to this (non-local) server is not encrypted',
    hint: 'use --tls required (STARTTLS) or --tls implicit; --insecure-auth allows it (test servers only)',
  },
  'auth-requires-starttls': {
    message: 'the server offers AUTH only after STARTTLS, and this connection is plaintext',
    hint: 'add --tls required (loopback servers and Unix sockets default to --tls none), with --ca FILE or --fingerprint SHA256 for a private certificate',
  },
  'auth-not-offered': { hint: 'the server does not offer AUTH: drop --user, or use its submission port (587)' },
  'no-suitable-mechanism': { hint: '`smtplib probe HOST:PORT` lists the mechanisms the server offers' },
};

const MAYBE_DELIVERED = 'the message may have been delivered anyway (the connection failed after the data was sent); check before resending';
const WRONG_TLS_MODE = 'if this port expects implicit TLS (SMTPS, usually 465) use --tls implicit; `smtplib probe HOST:PORT` tells which it is';

/** The errno-style code of an error or of its cause chain. */
function systemCode(err: unknown): string {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && !e.code.startsWith('ERR_SMTP')) return e.code;
  }
  return '';
}

/** "550 5.1.1 No such user" from a reply code, enhanced status and text. */
function withStatus(code: number, status: string | undefined, text: string): string {
  const t = text.split(/\r?\n/).join(' / ').trim();
  return `${code}${status && !t.startsWith(status) ? ` ${status}` : ''} ${t}`.trim();
}

export function describeError(err: unknown): DescribedError {
  if (err instanceof CliError) return { message: err.message, hint: err.hint, exitCode: err.exitCode };
  if (!isSMTPError(err)) return describeSystemError(err);
  const unknownDelivery = err.deliveryStatus === 'unknown' ? MAYBE_DELIVERED : undefined;
  const known = err.diagnosis ? DIAGNOSES[err.diagnosis] : undefined;
  if (known && !(err instanceof SMTPResponseException && err.smtpCode > 0 && !known.message)) {
    const exitCode = known.exitCode ?? (err instanceof SMTPTimeoutError ? EX.TEMPFAIL : err instanceof SMTPAuthenticationError || err.diagnosis?.startsWith('auth') || err.diagnosis === 'cleartext-auth-refused' || err.diagnosis === 'no-suitable-mechanism' ? EX.NOPERM : EX.PROTOCOL);
    const what = err instanceof SMTPConnectError ? 'could not connect' : err instanceof SMTPTLSError ? 'TLS failed' : err instanceof SMTPTimeoutError ? `timed out (${err.phase})` : undefined;
    const text = known.message ?? err.message;
    return { message: what ? `${what}: ${text}` : text, hint: unknownDelivery ?? known.hint, exitCode };
  }

  if (err instanceof SMTPRecipientsRefused) {
    const list = [...err.recipients];
    const transient = list.length > 0 && list.every(([, r]) => r.code >= 400 && r.code < 500);
    return {
      message: 'all recipients were refused:\n' + list.map(([a, r]) => `  ${a}: ${withStatus(r.code, r.enhancedStatus, r.message)}`).join('\n'),
      hint: transient ? 'temporary refusals: try again later' : undefined,
      exitCode: transient ? EX.TEMPFAIL : EX.UNAVAILABLE,
    };
  }
  if (err instanceof SMTPAuthenticationError) {
    const reply = err.smtpCode > 0 ? ` (server said: ${withStatus(err.smtpCode, err.enhancedStatus, err.smtpError)})` : '';
    if (err.isTransient) return { message: `authentication failed temporarily${reply}`, hint: 'try again later', exitCode: EX.TEMPFAIL };
    if (err.smtpCode <= 0) {
      // Not a refusal by the server: the library refused to send the secret (no mechanism, no TLS, ...).
      return { message: `authentication not attempted: ${err.message}`, hint: 'check --tls and the server\'s AUTH mechanisms with `smtplib probe HOST:PORT`', exitCode: EX.NOPERM };
    }
    if (err.smtpCode === 538) {
      // RFC 4954 §6: "Encryption required for requested authentication mechanism".
      return { message: `authentication refused on a plaintext connection${reply}`, hint: DIAGNOSES['auth-requires-starttls']!.hint, exitCode: EX.NOPERM };
    }
    return { message: `authentication failed${reply}`, hint: 'check the user name and password (an app password may be needed)', exitCode: EX.NOPERM };
  }
  if (err instanceof SMTPTimeoutError) {
    return {
      message: `timed out (${err.phase}): ${err.message}`,
      hint: unknownDelivery ?? (err.phase === 'greeting' ? WRONG_TLS_MODE : 'the server is slow or unreachable; try again later or raise --timeout'),
      exitCode: EX.TEMPFAIL,
    };
  }
  if (err instanceof SMTPTLSError) {
    return {
      message: `TLS failed: ${err.message}`,
      hint: 'for an SMTPS port (465) use --tls implicit; to trust a private certificate use --ca FILE or --fingerprint SHA256; to send without encryption on purpose (test servers only) use --tls none; `smtplib probe HOST:PORT` diagnoses',
      exitCode: EX.PROTOCOL,
    };
  }
  if (err instanceof SMTPConnectError && err.smtpCode <= 0) {
    const sys = systemCode(err);
    if (sys === 'ENOTFOUND') return { message: `could not connect: ${err.message}`, hint: 'check the host name', exitCode: EX.UNAVAILABLE };
    return {
      message: `could not connect: ${err.message}`,
      hint: sys === 'ECONNREFUSED' ? 'check the host and port; is the server running and reachable?' : WRONG_TLS_MODE,
      exitCode: EX.TEMPFAIL,
    };
  }
  if (err instanceof SMTPServerDisconnected) {
    return { message: `the server closed the connection: ${err.message}`, hint: unknownDelivery ?? `try again later; ${WRONG_TLS_MODE}`, exitCode: EX.TEMPFAIL };
  }
  if (err instanceof SMTPAbortError) return { message: err.message, exitCode: EX.TEMPFAIL };
  if (err instanceof SMTPInvalidArgumentError) return { message: `invalid input: ${err.message}`, exitCode: EX.DATAERR };
  if (err instanceof SMTPProtocolError) {
    return { message: `protocol error: ${err.message}`, hint: `the server sent something that is not SMTP; ${WRONG_TLS_MODE}`, exitCode: EX.PROTOCOL };
  }
  if (err instanceof SMTPNotSupportedError) return { message: `not supported by the server: ${err.message}`, exitCode: EX.UNAVAILABLE };
  if (err instanceof SMTPResponseException && err.smtpCode > 0) {
    let what = 'the server refused';
    let permanent: number = EX.UNAVAILABLE;
    if (err instanceof SMTPSenderRefused) what = 'the sender was refused';
    else if (err instanceof SMTPConnectError) what = 'the server refused the connection';
    else if (err instanceof SMTPHeloError) what = 'the server refused EHLO/HELO';
    else if (err instanceof SMTPDataError) {
      what = 'the message was refused';
      permanent = EX.DATAERR;
    }
    return {
      message: `${what}: ${withStatus(err.smtpCode, err.enhancedStatus, err.smtpError)}`,
      hint: err.isTransient ? 'a temporary failure: try again later' : undefined,
      exitCode: err.isTransient ? EX.TEMPFAIL : permanent,
    };
  }
  return { message: err.message, hint: unknownDelivery, exitCode: EX.PROTOCOL };
}

function describeSystemError(err: unknown): DescribedError {
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : '';
  const msg = e?.message ?? String(err);
  if (NET_TEMP.has(code)) return { message: msg, hint: 'check the host and port; try again later', exitCode: EX.TEMPFAIL };
  if (code === 'ENOTFOUND') return { message: msg, hint: 'check the host name', exitCode: EX.UNAVAILABLE };
  if (code === 'ENOENT' || code === 'EACCES') return { message: msg, exitCode: EX.NOINPUT };
  return { message: `internal error: ${e?.stack ?? msg}`, exitCode: EX.SOFTWARE };
}
