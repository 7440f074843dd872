// How a TLS session is set up and checked, for implicit TLS and STARTTLS alike.
//
// - The name checked is the one the caller connected to (or `servername`),
//   never a name derived from the socket: tls.connect({ socket }) without a
//   host falls back to checking "localhost" (nodejs/node #1489, #27943).
// - SNI carries that name unless it is an IP address (RFC 6066 §3).
// - TLS 1.2 is the floor (RFC 8996, RFC 8314 §4.1).
// - A certificate can be trusted by its SHA-256 fingerprint instead of a CA:
//   the pin replaces chain and name checks for this one connection only.

import { isIP } from 'node:net';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { SMTPInvalidArgumentError, SMTPTLSError } from '../errors.js';

export interface TlsSettings {
  /** Node TLS options from the caller (ca, cert, key, pfx, servername, minVersion, ...). */
  options: ConnectionOptions;
  /** SHA-256 fingerprints (hex, colons optional) any one of which the server certificate must match. */
  fingerprints: string[];
}

/** The tls.connect options for a connection to `host`. */
export function tlsConnectOptions(host: string, settings: TlsSettings): ConnectionOptions {
  const user = settings.options;
  const name = user.servername ?? host;
  // minVersion below 1.2 only reaches here with allowLegacyTls (see assertModernTls).
  const options: ConnectionOptions = {
    minVersion: 'TLSv1.2',
    ...user,
    // The identity check uses `host`; set it to the name, not to whatever
    // address the socket happens to be connected to.
    host: name,
  };
  if (!options.minVersion) options.minVersion = 'TLSv1.2';
  if (isIP(name) === 0) options.servername = name;
  else delete options.servername;
  if (settings.fingerprints.length > 0) options.rejectUnauthorized = false;
  return options;
}

/** TLS sockets whose certificate was verified (chain and name, or the pin). */
const verifiedSockets = new WeakSet<object>();

/** Whether `stream` is a TLS socket this library verified; false after rejectUnauthorized: false let a bad certificate through. */
export function isVerifiedTls(stream: object): boolean {
  return verifiedSockets.has(stream);
}

/** After the handshake: enforce pins, or make sure verification really happened. */
export function checkPeer(socket: TLSSocket, host: string, settings: TlsSettings): void {
  if (settings.fingerprints.length > 0) {
    const cert = socket.getPeerCertificate();
    const actual = normalizeFingerprint(cert?.fingerprint256 ?? '');
    const wanted = settings.fingerprints.map(normalizeFingerprint);
    if (!actual || !wanted.includes(actual)) {
      throw new SMTPTLSError(
        `certificate pin mismatch for ${host}: the server's SHA-256 fingerprint ${formatFingerprint(actual)} is not one of the pinned fingerprints`,
        { diagnosis: 'fingerprint-mismatch' },
      );
    }
    verifiedSockets.add(socket);
    return;
  }
  if (!socket.authorized && settings.options.rejectUnauthorized !== false) {
    throw describeTlsFailure(socket.authorizationError ?? new Error('certificate not verified'), host);
  }
  if (socket.authorized) verifiedSockets.add(socket);
}

/**
 * The caller's TLS options that weaken the secure defaults. They are honoured
 * (people depend on them) but never silently: the client reports them
 * (debug line, `smtplib:connect` event, `isVerified`). Node's checkServerIdentity
 * replaces the name check; rejectUnauthorized: false lets any certificate in.
 */
export function weakenedTlsOptions(options: ConnectionOptions): string[] {
  const weakened: string[] = [];
  if (options.rejectUnauthorized === false) weakened.push('rejectUnauthorized: false');
  if (options.checkServerIdentity) weakened.push('checkServerIdentity');
  if (options.minVersion && LEGACY.has(options.minVersion)) weakened.push(`minVersion: '${options.minVersion}'`);
  if (options.secureProtocol) weakened.push(`secureProtocol: '${options.secureProtocol}'`);
  return weakened;
}

const LEGACY = new Set(['TLSv1', 'TLSv1.1', 'SSLv3']);

/** TLS versions below 1.2 (or a fixed legacy protocol) are refused unless `allowLegacyTls` is set. */
export function assertModernTls(options: ConnectionOptions, allowLegacyTls: boolean): void {
  if (allowLegacyTls) return;
  const legacy =
    (options.minVersion && LEGACY.has(options.minVersion) && `tls.minVersion '${options.minVersion}'`) ||
    (options.maxVersion && LEGACY.has(options.maxVersion) && `tls.maxVersion '${options.maxVersion}'`) ||
    (options.secureProtocol && /^(SSLv|TLSv1_method|TLSv1_1_method|TLSv1_client|TLSv1_1_client)/.test(options.secureProtocol) && `tls.secureProtocol '${options.secureProtocol}'`);
  if (legacy) {
    throw new SMTPInvalidArgumentError(
      `${legacy} would allow TLS older than 1.2 (RFC 8996 deprecates it); set allowLegacyTls: true to allow it on purpose`,
    );
  }
}

export function normalizeFingerprint(value: string): string {
  return value.replace(/:/g, '').toLowerCase();
}

function formatFingerprint(hex: string): string {
  return hex.toUpperCase().replace(/(..)(?!$)/g, '$1:');
}

const CERT_REASONS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the certificate is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'the certificate chain ends in an untrusted self-signed root',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the certificate was issued by an unknown authority',
  UNABLE_TO_GET_ISSUER_CERT: 'the certificate was issued by an unknown authority',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the certificate chain could not be verified (unknown authority or missing intermediate)',
  CERT_SIGNATURE_FAILURE: 'the certificate signature is invalid',
  CERT_HAS_EXPIRED: 'the certificate has expired',
  CERT_NOT_YET_VALID: 'the certificate is not valid yet',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the certificate is for another name',
  CERT_REVOKED: 'the certificate was revoked',
};

const TRUST_HINT = 'pass the issuing CA as tls.ca, or pin the certificate with `fingerprint`; do not turn verification off';

/** Turns a Node TLS error into an SMTPTLSError that says which check failed and what to do. */
export function describeTlsFailure(error: unknown, host: string, port?: number, afterStarttls = false): SMTPTLSError {
  const err = error as NodeJS.ErrnoException & { reason?: string };
  const code = err?.code ?? '';
  const where = port === undefined ? host : `${host}:${port}`;
  if (CERT_REASONS[code]) {
    return new SMTPTLSError(`TLS certificate check failed for ${where}: ${CERT_REASONS[code]} (${code}); ${TRUST_HINT}`, {
      cause: error,
      diagnosis: 'certificate',
      hint: TRUST_HINT,
    });
  }
  const text = String(err?.message ?? err);
  if (/wrong version number|packet length too long|unknown protocol|record layer failure|http request/i.test(text)) {
    if (afterStarttls) {
      // After a STARTTLS 220 the server must speak TLS: non-TLS bytes here are injected plaintext or a broken server.
      return new SMTPTLSError(
        `TLS handshake with ${where} failed after STARTTLS: the server answered the ClientHello with data that is not TLS ` +
          `(plaintext injected after its 220 reply, or a broken server); the connection was closed`,
        { cause: error, diagnosis: 'starttls-injection' },
      );
    }
    return new SMTPTLSError(
      `TLS handshake with ${where} failed: the server did not answer in TLS (it probably expects plaintext first). ` +
        `Use SMTP with STARTTLS (usually port 587) instead of implicit TLS (SMTP_SSL, port 465)`,
      { cause: error, diagnosis: 'plaintext-expected', hint: 'use SMTP with STARTTLS (usually port 587) instead of implicit TLS' },
    );
  }
  if (/protocol version|unsupported protocol|no protocols available/i.test(text)) {
    return new SMTPTLSError(
      `TLS handshake with ${where} failed: the server only offers TLS versions older than 1.2, which are refused (RFC 8996)`,
      { cause: error, diagnosis: 'tls-version' },
    );
  }
  if (code === 'ECONNRESET' || /socket disconnected|ECONNRESET/i.test(text)) {
    return new SMTPTLSError(`TLS handshake with ${where} failed: the server closed the connection during the handshake`, { cause: error });
  }
  return new SMTPTLSError(`TLS handshake with ${where} failed: ${text}`, { cause: error });
}

