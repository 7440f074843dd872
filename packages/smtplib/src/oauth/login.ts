// login() with a TokenProvider: get a token, run XOAUTH2 or OAUTHBEARER, and
// when the server says the token is no good (a 334 challenge carrying a JSON
// error, RFC 7628 §3.2.2 and Google's XOAUTH2 error response, or a bare 535),
// drop that token, get a new one once, and try once more. A second refusal,
// or a refresh the token endpoint refuses, is an SMTPAuthenticationError whose
// `oauth` field and message say which: expired, revoked or wrong scope.

import type { SaslContext, SaslMechanism } from '../auth/mechanism.js';
import { SMTPAuthenticationError, SMTPException } from '../errors.js';
import type { Reply } from '../protocol/reply.js';
import { clean, OAuthError } from './errors.js';
import type { TokenProvider } from './provider.js';

const INSPECT_CUSTOM: unique symbol = Symbol.for('nodejs.util.inspect.custom') as never;

/** The JSON error a server sends as a 334 challenge when it refuses a bearer token. */
export interface OAuthServerError {
  /** RFC 7628: "invalid_token", "insufficient_scope", ...; Google XOAUTH2: an HTTP status ("401", "400"). */
  status?: string;
  /** The scope the server wants. */
  scope?: string;
  schemes?: string;
}

/** Why a token was not accepted, as far as client and server can tell. */
export type OAuthRejectionReason =
  /** The token had passed its expiry time. */
  | 'expired'
  /** A token the server should have accepted was refused, or the refresh token is no longer valid: sign in again. */
  | 'revoked'
  /** The token lacks the scope the mail server needs. */
  | 'scope'
  /** Refused for another reason (wrong user for the token, mail server misconfigured). */
  | 'rejected';

/** Added to SMTPAuthenticationError as `oauth` when the login used a TokenProvider. */
export interface OAuthFailure {
  reason: OAuthRejectionReason;
  /** The server's JSON error, if it sent one. */
  serverError?: OAuthServerError;
  /** Tokens tried in this login (1 or 2). */
  attempts: number;
}

/** Wraps a mechanism to keep the JSON error challenge the server sent, if any. */
function recording(mechanism: SaslMechanism): { mechanism: SaslMechanism; serverError: () => OAuthServerError | undefined } {
  let seen: OAuthServerError | undefined;
  const wrapper: SaslMechanism & { [INSPECT_CUSTOM](): string; toJSON(): unknown } = {
    name: mechanism.name,
    sendsCleartext: mechanism.sendsCleartext,
    start: (context: SaslContext) => mechanism.start(context),
    step(challenge: Uint8Array) {
      seen = parseServerError(challenge);
      return mechanism.step(challenge);
    },
    [INSPECT_CUSTOM]: () => `SaslMechanism(${mechanism.name})`,
    toJSON: () => ({ name: mechanism.name }),
  };
  return { mechanism: wrapper, serverError: () => seen };
}

/** Parses an RFC 7628 / XOAUTH2 error challenge; undefined when it is not one. */
export function parseServerError(challenge: Uint8Array): OAuthServerError | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(challenge).toString('utf8'));
    if (!value || typeof value !== 'object') return undefined;
    const record = value as Record<string, unknown>;
    const pick = (key: string) => clean(typeof record[key] === 'number' ? String(record[key]) : record[key], 200);
    const status = pick('status');
    const scope = pick('scope');
    const schemes = pick('schemes');
    return { ...(status ? { status } : {}), ...(scope ? { scope } : {}), ...(schemes ? { schemes } : {}) };
  } catch {
    return { status: 'unparsable' };
  }
}

function isScopeError(serverError: OAuthServerError | undefined): boolean {
  return serverError?.status === 'insufficient_scope' || serverError?.status === '403';
}

/** True when a new token might succeed where this one failed. */
function worthRetrying(error: SMTPAuthenticationError, serverError: OAuthServerError | undefined): boolean {
  if (serverError) return !isScopeError(serverError) && serverError.status !== 'invalid_request' && serverError.status !== '400';
  // Microsoft 365 answers an expired or revoked token with a bare 535 5.7.3.
  return error.smtpCode === 535;
}

function reasonFor(token: string, provider: TokenProvider, serverError: OAuthServerError | undefined, fresh: boolean): OAuthRejectionReason {
  if (isScopeError(serverError)) return 'scope';
  const expiresAt = provider.expiresAt?.(token);
  if (expiresAt !== undefined && expiresAt <= Date.now()) return 'expired';
  // A token refused before its expiry time, or a brand-new one refused: withdrawn at the provider.
  if (fresh || expiresAt !== undefined) return 'revoked';
  return 'rejected';
}

function advice(reason: OAuthRejectionReason, fresh: boolean, serverError: OAuthServerError | undefined): string {
  switch (reason) {
    case 'expired':
      return 'the access token had expired';
    case 'revoked':
      return fresh
        ? 'the server refused a freshly issued token: the grant was revoked, or the token was issued for another user, client or audience; sign in again'
        : 'the server refused an access token that had not expired yet: it was revoked';
    case 'scope':
      return `the token lacks the scope the mail server needs${describeScope(serverError)}`;
    default:
      return 'the server refused the token';
  }
}

function describeScope(serverError: OAuthServerError | undefined): string {
  return serverError?.scope ? ` (the server asks for scope "${serverError.scope}")` : '';
}

function annotate(error: SMTPAuthenticationError, failure: OAuthFailure, advice: string): SMTPAuthenticationError {
  const status = failure.serverError?.status ? `; server status ${failure.serverError.status}` : '';
  const annotated = new SMTPAuthenticationError(error.smtpCode, error.smtpError, error.mechanism, {
    ...(error.reply ? { reply: error.reply } : {}),
    ...(error.command !== undefined ? { command: error.command } : {}),
    cause: error,
  });
  Object.defineProperty(annotated, 'message', { value: `${error.message} — ${advice}${status}`, enumerable: false, writable: true, configurable: true });
  Object.defineProperty(annotated, 'oauth', { value: failure, enumerable: true });
  return annotated;
}

/**
 * Runs login with tokens from `provider`. `select` builds the mechanism for a
 * token (XOAUTH2 or OAUTHBEARER, as offered); `run` performs the exchange.
 */
export async function loginWithProvider(
  provider: TokenProvider,
  select: (token: string) => SaslMechanism,
  run: (mechanism: SaslMechanism) => Promise<Reply>,
  signal?: AbortSignal,
): Promise<Reply> {
  // No token request when the server offers neither XOAUTH2 nor OAUTHBEARER:
  // choosing is pure, so choose once with a stand-in first (throws SMTPNotSupportedError).
  select('placeholder');
  // A provider that cannot produce a first token throws its OAuthError: nothing was sent.
  let token = await provider.getToken(signal ? { signal } : {});
  for (let attempt = 1; ; attempt++) {
    const { mechanism, serverError } = recording(select(token));
    try {
      return await run(mechanism);
    } catch (error) {
      if (!(error instanceof SMTPAuthenticationError) || error.smtpCode < 500) throw error;
      const seen = serverError();
      const reason = reasonFor(token, provider, seen, attempt > 1);
      const failure: OAuthFailure = { reason, attempts: attempt, ...(seen ? { serverError: seen } : {}) };
      provider.invalidate(token);
      if (attempt > 1 || !worthRetrying(error, seen)) {
        throw annotate(error, failure, advice(reason, attempt > 1, seen));
      }
      try {
        token = await provider.getToken(signal ? { signal } : {});
      } catch (refreshError) {
        if (!(refreshError instanceof SMTPException)) throw refreshError;
        // The refresh token itself is dead (invalid_grant): the grant was revoked or ran out.
        const dead = refreshError instanceof OAuthError && refreshError.kind === 'reauthorize';
        const failed = annotate(error, { ...failure, reason: dead ? 'revoked' : reason }, `${advice(reason, false, seen)}, and no new token could be had: ${refreshError.message}`);
        Object.defineProperty(failed, 'cause', { value: refreshError, enumerable: false, configurable: true, writable: true });
        throw failed;
      }
    }
  }
}
