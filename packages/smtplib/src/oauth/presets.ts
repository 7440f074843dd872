import { OAuthError } from './errors.js';
import { checkEndpoint, getJson, type OAuthHttpOptions } from './http.js';

// Endpoints and scopes of the two big mail providers, so a caller writes
// `refreshTokenProvider({ ...microsoft365('contoso.onmicrosoft.com'), clientId, refreshToken })`.

export interface OAuthPreset {
  /** RFC 6749 token endpoint. */
  tokenUrl: string;
  /** RFC 8628 device authorization endpoint (absent where the provider does not allow device flow for mail). */
  deviceAuthorizationUrl?: string;
  /** RFC 6749 authorization endpoint (authorization code + PKCE). */
  authorizationUrl: string;
  /** The delegated scope for SMTP (a person's mailbox), with what is needed to get a refresh token. */
  scope: string;
  /** The SMTP submission server and port. */
  smtpHost: string;
  smtpPort: number;
}

/**
 * Microsoft 365 (Entra ID). `tenant` is the directory id or domain;
 * 'organizations' (the default) lets any work account sign in. Delegated
 * scope SMTP.Send; app-only tokens use `microsoft365AppOnlyScope`.
 */
export function microsoft365(tenant = 'organizations'): OAuthPreset {
  const base = `https://login.microsoftonline.com/${encodeURIComponent(tenant)}/oauth2/v2.0`;
  return {
    tokenUrl: `${base}/token`,
    deviceAuthorizationUrl: `${base}/devicecode`,
    authorizationUrl: `${base}/authorize`,
    scope: 'https://outlook.office.com/SMTP.Send offline_access',
    smtpHost: 'smtp.office365.com',
    smtpPort: 587,
  };
}

/** The client credentials scope for Exchange Online SMTP (app-only, needs SMTP.SendAsApp). */
export const microsoft365AppOnlyScope = 'https://outlook.office365.com/.default';

/**
 * Google (Gmail and Workspace). Google does not allow the mail scope on the
 * device flow, so there is no device endpoint here: sign in with the
 * authorization code + PKCE flow on a loopback redirect.
 */
export function google(): OAuthPreset {
  return {
    tokenUrl: 'https://oauth2.googleapis.com/token',
    authorizationUrl: 'https://accounts.google.com/o/oauth2/v2/auth',
    scope: 'https://mail.google.com/',
    smtpHost: 'smtp.gmail.com',
    smtpPort: 587,
  };
}

/**
 * Endpoints of any OpenID Connect / RFC 8414 server from its discovery
 * document (`<issuer>/.well-known/openid-configuration`).
 */
export async function discoverEndpoints(issuer: string, http: OAuthHttpOptions = {}): Promise<Omit<OAuthPreset, 'smtpHost' | 'smtpPort' | 'scope'> & { issuer: string }> {
  const base = checkEndpoint(issuer, 'issuer', http);
  const url = new URL(`${base.href.replace(/\/$/, '')}/.well-known/openid-configuration`);
  const { status, body } = await getJson(url, http);
  const pick = (key: string) => (typeof body[key] === 'string' ? (body[key] as string) : undefined);
  const tokenUrl = pick('token_endpoint');
  if (status !== 200 || !tokenUrl) {
    throw new OAuthError(`${url.href} is not an OpenID Connect discovery document (HTTP ${status}, no token_endpoint)`, { kind: 'config', httpStatus: status });
  }
  const device = pick('device_authorization_endpoint');
  return {
    issuer: pick('issuer') ?? issuer,
    tokenUrl,
    authorizationUrl: pick('authorization_endpoint') ?? '',
    ...(device ? { deviceAuthorizationUrl: device } : {}),
  };
}
