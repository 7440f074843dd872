// The refresh token grant (RFC 6749 §6) for delegated access: a person signed
// in once (device code or authorization code, see the CLI), and the refresh
// token obtained then buys access tokens until it expires or is revoked.
// Servers that rotate refresh tokens (Microsoft does; OAuth 2.1 recommends it
// for public clients) send a new one with each access token, and the old one
// stops working: the new one is handed to the caller's store before the
// access token is used, so a crash cannot lose it.

import { OAuthError } from './errors.js';
import { CachedTokenProvider, clientSecretAuth, httpOptions, requestToken, scopeString, tokenEndpoint, type CommonProviderOptions, type IssuedToken } from './provider.js';
import type { OAuthHttpOptions } from './http.js';

/** Where a rotating refresh token is kept between runs. */
export interface RefreshTokenStore {
  /** The saved refresh token, if any (it wins over the `refreshToken` option, which may be stale). */
  load?(): string | undefined | Promise<string | undefined>;
  /** Saves a new refresh token; called before the access token that came with it is used. */
  save(refreshToken: string): void | Promise<void>;
}

export interface RefreshTokenProviderOptions extends CommonProviderOptions {
  clientId: string;
  /** Confidential clients only; public clients (CLI apps) have none. */
  clientSecret?: string;
  /** How the secret is sent (RFC 6749 §2.3.1). Default 'post'. */
  clientAuth?: 'post' | 'basic';
  /** The refresh token; may be omitted when `store.load()` returns one. */
  refreshToken?: string;
  store?: RefreshTokenStore;
  /** What the person should run to sign in again, for the invalid_grant message. Default: `smtplib auth login`. */
  reauthorizeHint?: string;
}

class RefreshTokenProvider extends CachedTokenProvider {
  readonly kind = 'refresh-token';
  readonly #url: URL;
  readonly #clientId: string;
  readonly #clientSecret: string | undefined;
  readonly #clientAuth: 'post' | 'basic';
  readonly #scope: string | undefined;
  readonly #store: RefreshTokenStore | undefined;
  readonly #hint: string;
  readonly #http: OAuthHttpOptions;
  #refreshToken: string | undefined;
  #loaded = false;

  constructor(options: RefreshTokenProviderOptions) {
    super(options);
    this.#url = tokenEndpoint(options);
    if (!options.clientId) throw new OAuthError('clientId is required', { kind: 'config' });
    if (!options.refreshToken && !options.store?.load) throw new OAuthError('a refreshToken, or a store that can load one, is required', { kind: 'config' });
    this.#clientId = options.clientId;
    this.#clientSecret = options.clientSecret;
    this.#clientAuth = options.clientAuth ?? 'post';
    this.#scope = scopeString(options.scope);
    this.#store = options.store;
    this.#refreshToken = options.refreshToken;
    this.#hint = options.reauthorizeHint ?? 'smtplib auth login';
    this.#http = httpOptions(options);
  }

  protected async fetchToken(): Promise<IssuedToken> {
    if (!this.#loaded) {
      this.#loaded = true;
      const saved = await this.#store?.load?.();
      if (saved) this.#refreshToken = saved;
    }
    const refreshToken = this.#refreshToken;
    if (!refreshToken) {
      throw new OAuthError(`there is no refresh token: run ${this.#hint} to sign in`, { kind: 'reauthorize', endpoint: this.#url.href });
    }
    const auth = clientSecretAuth(this.#clientId, this.#clientSecret, this.#clientAuth);
    const issued = await requestToken(
      this.#url,
      { grant_type: 'refresh_token', refresh_token: refreshToken, ...(this.#scope ? { scope: this.#scope } : {}), ...auth.form },
      this.#http,
      {
        headers: auth.headers,
        explain: (error, description) =>
          error === 'invalid_grant'
            ? new OAuthError(`the refresh token expired or was revoked (invalid_grant${description ? `: ${description}` : ''}): run ${this.#hint} again to sign in`, {
                kind: 'reauthorize',
                error,
                errorDescription: description,
                endpoint: `${this.#url.protocol}//${this.#url.host}${this.#url.pathname}`,
              })
            : undefined,
      },
    );
    const rotated = issued.body.refresh_token;
    if (typeof rotated === 'string' && rotated.length > 0 && rotated !== refreshToken) {
      this.#refreshToken = rotated;
      // Saved before use: with rotation the old token is already dead.
      await this.#store?.save(rotated);
    }
    return issued;
  }
}

/** Access tokens from a refresh token (delegated: the mailbox of the person who signed in). */
export function refreshTokenProvider(options: RefreshTokenProviderOptions): CachedTokenProvider {
  return new RefreshTokenProvider(options);
}
