// Attribute values: addresses without their local part unless asked for,
// and a low-cardinality error.type (MailKit's values where one fits).

/** "ann@example.org" -> "example.org" (the local part identifies a person). */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

const ERRNO_TYPES: Record<string, string> = {
  ECONNREFUSED: 'connection_refused',
  ENOTFOUND: 'host_not_found',
  EAI_AGAIN: 'host_not_found',
  EHOSTUNREACH: 'host_unreachable',
  ENETUNREACH: 'network_unreachable',
  ECONNRESET: 'connection_reset',
  ECONNABORTED: 'connection_aborted',
  EPIPE: 'connection_reset',
  ETIMEDOUT: 'timed_out',
  EMFILE: 'too_many_open_sockets',
};

const CLASS_TYPES: Record<string, string> = {
  SMTPTimeoutError: 'timed_out',
  SMTPAbortError: 'cancelled',
  SMTPTLSError: 'secure_connection_error',
  SMTPProtocolError: 'protocol_error',
  SMTPServerDisconnected: 'connection_reset',
};

/**
 * `error.type`: a network cause along the `cause` chain (connection_refused,
 * host_not_found, ...), else the library's error class for timeouts, aborts,
 * TLS and protocol errors, else the error's class name (SMTPSenderRefused,
 * SMTPDataError, ...): a short, fixed set either way.
 */
export function errorType(error: unknown): string {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && ERRNO_TYPES[code]) return ERRNO_TYPES[code]!;
  }
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const type = CLASS_TYPES[e.name];
    if (type) return type;
  }
  return error instanceof Error ? error.name : '_OTHER';
}

/** The SMTP reply code an error carries (smtplib's `smtpCode`), if any. */
export function statusOf(error: unknown): { code?: number; enhanced?: string } {
  const e = error as { smtpCode?: unknown; reply?: { enhancedStatus?: unknown } } | undefined;
  const out: { code?: number; enhanced?: string } = {};
  if (typeof e?.smtpCode === 'number' && e.smtpCode > 0) out.code = e.smtpCode;
  if (typeof e?.reply?.enhancedStatus === 'string') out.enhanced = e.reply.enhancedStatus;
  return out;
}

/** "TLSv1.3" -> "1.3" (semantic conventions' tls.protocol.version). */
export function tlsVersion(protocol: string | null): string | undefined {
  if (!protocol) return undefined;
  const m = /^TLSv(\d(?:\.\d)?)$/.exec(protocol);
  return m ? (m[1]!.includes('.') ? m[1] : `${m[1]}.0`) : protocol;
}
