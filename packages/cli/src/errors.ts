// Turns any error into a message a person can act on and a sysexits.h code.
import { CliError, EX } from './exit-codes.js';

export interface DescribedError {
  message: string;
  hint?: string | undefined;
  exitCode: number;
}

interface SmtpLikeError extends Error {
  code?: string;
  smtpCode?: number;
  smtpError?: string;
  enhancedStatus?: string;
  isTransient?: boolean;
  isPermanent?: boolean;
  deliveryStatus?: string;
  recipients?: Record<string, { code: number; message: string; enhancedStatus?: string }>;
}

const NET_TEMP = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED']);

export function describeError(err: unknown): DescribedError {
  if (err instanceof CliError) return { message: err.message, hint: err.hint, exitCode: err.exitCode };
  const e = err as SmtpLikeError;
  const code = typeof e?.code === 'string' ? e.code : '';
  const msg = e?.message ?? String(err);
  const reply = (e?.smtpCode ?? 0) > 0 ? ` (server said: ${withStatus(e.smtpCode!, e.enhancedStatus, e.smtpError ?? '')})` : '';
  const unknownDelivery = e?.deliveryStatus === 'unknown'
    ? 'the message may have been delivered anyway (the connection failed after the data was sent); check before resending'
    : undefined;

  switch (code) {
    case 'ERR_SMTP_RECIPIENTS_REFUSED': {
      const list = Object.entries(e.recipients ?? {});
      const transient = list.length > 0 && list.every(([, r]) => r.code >= 400 && r.code < 500);
      return {
        message: 'all recipients were refused:\n' + list.map(([a, r]) => `  ${a}: ${withStatus(r.code, r.enhancedStatus, r.message)}`).join('\n'),
        hint: transient ? 'temporary refusals: try again later' : undefined,
        exitCode: transient ? EX.TEMPFAIL : EX.UNAVAILABLE,
      };
    }
    case 'ERR_SMTP_AUTH':
      if (e.isTransient) return { message: `authentication failed temporarily${reply}`, hint: 'try again later', exitCode: EX.TEMPFAIL };
      return { message: `authentication failed${reply}`, hint: 'check the user name and password (an app password may be needed)', exitCode: EX.NOPERM };
    case 'ERR_SMTP_CONNECT': {
      if (e.smtpCode && e.smtpCode > 0) break;
      // The library's hints name its classes (SMTP_SSL); say it in command-line terms.
      const tlsHint = /SMTP_SSL|implicit TLS|TLS-only/.test(msg);
      const causeCode = (e.cause as { code?: string } | undefined)?.code;
      const notFound = causeCode === 'ENOTFOUND' || /ENOTFOUND|could not be resolved/.test(msg) && causeCode !== 'EAI_AGAIN';
      const clean = msg.replace(/\.? ?(The port probably expects|If this port expects|If it speaks TLS).*$/, '').replace(/ \(a TLS-only port closes on plaintext: try SMTP_SSL\)/, '');
      return {
        message: `could not connect: ${clean}`,
        hint: notFound
          ? 'check the host name'
          : tlsHint
          ? 'if this port expects implicit TLS (SMTPS, usually port 465) use --tls implicit; `smtplib probe HOST:PORT` tells which it is'
          : 'check the host and port; is the server running and reachable?',
        exitCode: notFound ? EX.UNAVAILABLE : EX.TEMPFAIL,
      };
    }
    case 'ERR_SMTP_TIMEOUT':
      return { message: `timed out: ${msg}`, hint: unknownDelivery ?? 'the server is slow or unreachable; try again later or raise --timeout', exitCode: EX.TEMPFAIL };
    case 'ERR_SMTP_ABORTED':
      return { message: msg, exitCode: EX.TEMPFAIL };
    case 'ERR_SMTP_INVALID_ARGUMENT':
      return { message: `invalid input: ${msg}`, exitCode: EX.DATAERR };
    case 'ERR_SMTP_PROTOCOL':
      return { message: `protocol error: ${msg}`, hint: 'the server sent something that is not SMTP; is this the right port and TLS mode?', exitCode: EX.PROTOCOL };
    case 'ERR_SMTP_DISCONNECTED':
      return { message: `the server closed the connection: ${msg}`, hint: unknownDelivery ?? 'try again later; with --tls implicit on a plaintext port (or the reverse) servers hang up like this', exitCode: EX.TEMPFAIL };
    case 'ERR_SMTP_TLS': {
      const noStarttls = /does not offer STARTTLS/.test(msg);
      return {
        message: `TLS failed: ${msg.replace(/ If the server expects implicit TLS.*$/, '').replace(/;? ?to send in plaintext on purpose.*$/, '')}`,
        hint: noStarttls
          ? 'for an SMTPS port (465) use --tls implicit; to send without encryption on purpose (test servers only) use --tls none'
          : 'run `smtplib probe HOST:PORT` for a diagnosis; --ca FILE trusts a private CA',
        exitCode: EX.PROTOCOL,
      };
    }
    case 'ERR_SMTP_NOT_SUPPORTED':
      return { message: `not supported by the server: ${msg}`, exitCode: EX.UNAVAILABLE };
  }
  if (e?.smtpCode && e.smtpCode > 0) {
    const transient = e.isTransient ?? (e.smtpCode >= 400 && e.smtpCode < 500);
    let what = 'the server refused';
    let permCode: number = EX.UNAVAILABLE;
    if (code === 'ERR_SMTP_SENDER_REFUSED') what = 'the sender was refused';
    else if (code === 'ERR_SMTP_CONNECT') what = 'the server refused the connection';
    else if (code === 'ERR_SMTP_HELO') what = 'the server refused EHLO/HELO';
    else if (code === 'ERR_SMTP_DATA') {
      what = 'the message was refused';
      permCode = EX.DATAERR;
    }
    return {
      message: `${what}: ${withStatus(e.smtpCode, e.enhancedStatus, e.smtpError ?? msg)}`,
      hint: transient ? 'a temporary failure: try again later' : undefined,
      exitCode: transient ? EX.TEMPFAIL : permCode,
    };
  }
  if (code.startsWith('ERR_SMTP')) return { message: msg, exitCode: EX.PROTOCOL };
  if (NET_TEMP.has(code) || code === 'ECONNREFUSED') return { message: msg, hint: 'check the host and port; try again later', exitCode: EX.TEMPFAIL };
  if (code === 'ENOTFOUND') return { message: msg, hint: 'check the host name', exitCode: EX.UNAVAILABLE };
  if (code === 'ENOENT' || code === 'EACCES') return { message: msg, exitCode: EX.NOINPUT };
  return { message: `internal error: ${e?.stack ?? msg}`, exitCode: EX.SOFTWARE };
}

function withStatus(code: number, status: string | undefined, text: string): string {
  const t = firstLine(text);
  return `${code}${status && !t.startsWith(status) ? ' ' + status : ''} ${t}`.trim();
}

function firstLine(s: string): string {
  return s.split(/\r?\n/).join(' / ').trim();
}
