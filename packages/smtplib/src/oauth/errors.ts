// Errors of the OAuth 2 token providers. They extend SMTPException so
// `isSMTPError()` and `instanceof SMTPException` hold, carry a stable code,
// the OAuth `error` / `error_description` (RFC 6749 §5.2) and a sentence a
// person can act on. They never carry a token, a secret or a request body.

import { SMTPException } from '../errors.js';

const NAME = Symbol.for('smtplib.error.class');

/** What went wrong, as a stable string. */
export type OAuthErrorKind =
  /** The authorization server refused the grant (RFC 6749 §5.2 error in the body). */
  | 'grant-refused'
  /** The refresh token is no longer valid (invalid_grant on a refresh): sign in again. */
  | 'reauthorize'
  /** The client credentials are wrong (invalid_client, unauthorized_client). */
  | 'client'
  /** The endpoint could not be reached, TLS failed, or the reply was not OAuth JSON. */
  | 'transport'
  /** The caller's configuration is unusable (missing field, http:// to a remote host). */
  | 'config';

export interface OAuthErrorFields {
  kind: OAuthErrorKind;
  /** RFC 6749 §5.2 `error`, when the server sent one. */
  error?: string | undefined;
  /** RFC 6749 §5.2 `error_description`, when the server sent one. */
  errorDescription?: string | undefined;
  /** The HTTP status of the token endpoint's reply, when there was one. */
  httpStatus?: number | undefined;
  /** The token endpoint (no query string, no user info). */
  endpoint?: string | undefined;
  cause?: unknown;
}

/** A token could not be obtained. `code` is `ERR_SMTP_OAUTH`. */
export class OAuthError extends SMTPException {
  readonly kind: OAuthErrorKind;
  readonly error?: string;
  readonly errorDescription?: string;
  readonly httpStatus?: number;
  readonly endpoint?: string;

  constructor(message: string, fields: OAuthErrorFields) {
    super(message, fields.cause === undefined ? {} : { cause: fields.cause });
    this.kind = fields.kind;
    if (fields.error !== undefined) this.error = fields.error;
    if (fields.errorDescription !== undefined) this.errorDescription = fields.errorDescription;
    if (fields.httpStatus !== undefined) this.httpStatus = fields.httpStatus;
    if (fields.endpoint !== undefined) this.endpoint = fields.endpoint;
  }
}
Object.defineProperty(OAuthError, NAME, { value: 'OAuthError' });
Object.defineProperty(OAuthError.prototype, 'name', { get: () => 'OAuthError', configurable: true });
Object.defineProperty(OAuthError.prototype, 'code', { value: 'ERR_SMTP_OAUTH', writable: false, configurable: true });

/** The endpoint as shown in messages: scheme, host and path only. */
export function showEndpoint(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

// Server-supplied text goes into messages: keep it to one short printable line.
export function clean(text: unknown, max = 300): string | undefined {
  if (typeof text !== 'string') return undefined;
  const line = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max)}…` : line;
}
