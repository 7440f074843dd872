// Google service accounts (RFC 7523 §2.1, the JWT bearer grant): the account
// signs a JWT naming the scope and, with domain-wide delegation, the mailbox
// to act for (`sub`); Google answers with an access token (no refresh token:
// a new JWT is signed when the token runs out).

import { readFileSync } from 'node:fs';
import { OAuthError } from './errors.js';
import { signingKey, signJwt, type SigningKey } from './jwt.js';
import type { OAuthHttpOptions } from './http.js';
import { CachedTokenProvider, httpOptions, requestToken, scopeString, tokenEndpoint, type CacheOptions, type IssuedToken } from './provider.js';

/** The fields of a Google service account key file this provider reads. */
export interface ServiceAccountKey {
  client_email: string;
  private_key: string;
  private_key_id?: string;
  token_uri?: string;
}

export interface GoogleServiceAccountProviderOptions extends CacheOptions, OAuthHttpOptions {
  /** Path of the JSON key file downloaded from the Google Cloud console. */
  keyFile?: string;
  /** Or the parsed key itself. */
  key?: ServiceAccountKey;
  /** The mailbox to act for (domain-wide delegation); the SASL user must be the same address. */
  subject?: string;
  /** Default: https://mail.google.com/ (the only scope Gmail SMTP accepts). */
  scope?: string | readonly string[];
  /** Default: the key's token_uri, else https://oauth2.googleapis.com/token. */
  tokenUrl?: string | URL;
}

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

function readKey(options: GoogleServiceAccountProviderOptions): ServiceAccountKey {
  if (options.key) return options.key;
  if (!options.keyFile) throw new OAuthError('give keyFile or key', { kind: 'config' });
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(options.keyFile, 'utf8'));
  } catch (error) {
    throw new OAuthError(`the service account key file ${options.keyFile} could not be read as JSON: ${(error as NodeJS.ErrnoException).code ?? 'invalid JSON'}`, { kind: 'config' });
  }
  const key = parsed as Partial<ServiceAccountKey>;
  if (typeof key.client_email !== 'string' || typeof key.private_key !== 'string') {
    throw new OAuthError(`${options.keyFile} is not a service account key (no client_email / private_key)`, { kind: 'config' });
  }
  return key as ServiceAccountKey;
}

class GoogleServiceAccountProvider extends CachedTokenProvider {
  readonly kind = 'google-service-account';
  readonly #url: URL;
  readonly #issuer: string;
  readonly #keyId: string | undefined;
  readonly #signing: SigningKey;
  readonly #subject: string | undefined;
  readonly #scope: string;
  readonly #http: OAuthHttpOptions;

  constructor(options: GoogleServiceAccountProviderOptions) {
    super(options);
    const key = readKey(options);
    this.#url = tokenEndpoint({ ...options, tokenUrl: options.tokenUrl ?? key.token_uri ?? 'https://oauth2.googleapis.com/token' });
    this.#issuer = key.client_email;
    this.#keyId = key.private_key_id;
    this.#signing = signingKey(key.private_key, 'service account private key');
    this.#subject = options.subject;
    this.#scope = scopeString(options.scope) ?? 'https://mail.google.com/';
    this.#http = httpOptions(options);
  }

  protected fetchToken(): Promise<IssuedToken> {
    // Google: iss = service account, scope, aud = token URI, lifetime ≤ 1 h; sub = the user to impersonate.
    const assertion = signJwt(
      this.#signing,
      this.#keyId ? { kid: this.#keyId } : {},
      { iss: this.#issuer, scope: this.#scope, aud: this.#url.href, ...(this.#subject ? { sub: this.#subject } : {}) },
      3600,
    );
    return requestToken(this.#url, { grant_type: JWT_BEARER, assertion }, this.#http, {
      explain: (error, description) =>
        error === 'unauthorized_client'
          ? new OAuthError(
              `the service account may not act for ${this.#subject ?? 'this user'} (unauthorized_client${description ? `: ${description}` : ''}): ` +
                `grant its client id the scope ${this.#scope} under domain-wide delegation in the Google Admin console`,
              { kind: 'client', error, errorDescription: description, endpoint: this.#url.href },
            )
          : undefined,
    });
  }
}

/** Access tokens for a Google Workspace mailbox through a service account with domain-wide delegation. */
export function googleServiceAccountProvider(options: GoogleServiceAccountProviderOptions): CachedTokenProvider {
  return new GoogleServiceAccountProvider(options);
}
