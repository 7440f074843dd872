// The token provider contract and the cache every provider shares: a token is
// reused until shortly before it expires, concurrent callers share one
// request to the token endpoint, and a token the mail server rejected can be
// dropped so the next caller gets a new one. Secrets live in #private fields;
// util.inspect, JSON.stringify and String() show only the provider's kind.

import { OAuthError, clean, showEndpoint } from './errors.js';
import { checkEndpoint, postForm, type OAuthHttpOptions } from './http.js';

const INSPECT_CUSTOM: unique symbol = Symbol.for('nodejs.util.inspect.custom') as never;

/** Something that hands out OAuth 2 access tokens for XOAUTH2 / OAUTHBEARER. */
export interface TokenProvider {
  /** A valid access token: the cached one, or a new one from the token endpoint. */
  getToken(options?: { signal?: AbortSignal }): Promise<string>;
  /**
   * The mail server rejected `token`: forget it (if it is still the cached
   * one) so the next getToken() fetches a new one.
   */
  invalidate(token: string): void;
  /** When `token` (issued by this provider) expires, in ms since the epoch; undefined if unknown. */
  expiresAt?(token: string): number | undefined;
}

/** One answer of a token endpoint, reduced to what the cache needs. */
export interface IssuedToken {
  accessToken: string;
  /** Lifetime in seconds (RFC 6749 §5.1 expires_in). */
  expiresIn?: number | undefined;
  scope?: string | undefined;
}

/** What a provider reports each time it obtained a token (no token in it). */
export interface TokenEvent {
  /** Why it asked: nothing cached, the cached one was about to expire, or the mail server rejected it. */
  reason: 'initial' | 'expiring' | 'rejected';
  /** ms since the epoch; undefined when the endpoint gave no lifetime. */
  expiresAt: number | undefined;
  scope: string | undefined;
  /** Token endpoint requests this provider has made so far, this one included. */
  requests: number;
}

export interface CacheOptions {
  /**
   * Refresh this long before the token expires. Default: a tenth of the
   * token's lifetime, at most 60 s (a one-hour token is renewed after 59 min).
   */
  refreshBeforeExpiryMs?: number;
  /** Called after each token endpoint request that produced a token. */
  onToken?: (event: TokenEvent) => void;
}

export interface CommonProviderOptions extends CacheOptions, OAuthHttpOptions {
  /** The token endpoint (https; http only to loopback or with allowInsecureHttp). */
  tokenUrl: string | URL;
  /** Space-separated string or list of scopes. */
  scope?: string | readonly string[];
}

interface Cached {
  token: string;
  expiresAt: number | undefined;
  refreshAt: number | undefined;
}

export function scopeString(scope: string | readonly string[] | undefined): string | undefined {
  if (scope === undefined) return undefined;
  const text = typeof scope === 'string' ? scope : scope.join(' ');
  return text.trim() === '' ? undefined : text.trim();
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Base of the built-in providers: caching, sharing one refresh, hiding secrets. */
export abstract class CachedTokenProvider implements TokenProvider {
  /** What kind of provider this is ("refresh-token"), for messages and util.inspect. */
  abstract readonly kind: string;
  #cached: Cached | undefined;
  #inflight: Promise<string> | undefined;
  #rejected = false;
  #requests = 0;
  readonly #expiries = new Map<string, number>();
  readonly #cacheOptions: CacheOptions;

  protected constructor(cacheOptions: CacheOptions) {
    this.#cacheOptions = cacheOptions;
  }

  /** Token endpoint requests made so far (each refresh counts one). */
  get requests(): number {
    return this.#requests;
  }

  /** Asks the endpoint for a new token. Subclasses implement the grant. */
  protected abstract fetchToken(): Promise<IssuedToken>;

  getToken(options: { signal?: AbortSignal } = {}): Promise<string> {
    const now = Date.now();
    const cached = this.#cached;
    if (cached && (cached.refreshAt === undefined || now < cached.refreshAt)) return Promise.resolve(cached.token);
    // Everyone who asks while a request is out waits for that request.
    if (this.#inflight) return options.signal ? untilAborted(this.#inflight, options.signal) : this.#inflight;
    const reason: TokenEvent['reason'] = this.#rejected ? 'rejected' : cached ? 'expiring' : 'initial';
    // The shared request is not tied to the first caller's signal: one
    // caller giving up must not fail the others. It has its own timeout.
    const run = this.#refresh(reason).finally(() => {
      if (this.#inflight === run) this.#inflight = undefined;
    });
    this.#inflight = run;
    return options.signal ? untilAborted(run, options.signal) : run;
  }

  invalidate(token: string): void {
    if (this.#cached?.token === token) {
      this.#cached = undefined;
      this.#rejected = true;
    }
  }

  expiresAt(token: string): number | undefined {
    return this.#expiries.get(token);
  }

  async #refresh(reason: TokenEvent['reason']): Promise<string> {
    this.#requests++;
    const issued = await this.fetchToken();
    const now = Date.now();
    const lifetimeMs = issued.expiresIn !== undefined && issued.expiresIn > 0 ? issued.expiresIn * 1000 : undefined;
    const expiresAt = lifetimeMs !== undefined ? now + lifetimeMs : undefined;
    const margin = lifetimeMs === undefined ? 0 : (this.#cacheOptions.refreshBeforeExpiryMs ?? Math.min(60_000, lifetimeMs / 10));
    this.#cached = { token: issued.accessToken, expiresAt, refreshAt: expiresAt === undefined ? undefined : expiresAt - margin };
    this.#rejected = false;
    // Remember a few expiries so a rejected token can be told "expired" from "revoked".
    if (expiresAt !== undefined) {
      this.#expiries.set(issued.accessToken, expiresAt);
      if (this.#expiries.size > 8) this.#expiries.delete(this.#expiries.keys().next().value as string);
    }
    this.#cacheOptions.onToken?.({ reason, expiresAt, scope: issued.scope, requests: this.#requests });
    return issued.accessToken;
  }

  toJSON(): { provider: string } {
    return { provider: this.kind };
  }

  toString(): string {
    return `[TokenProvider ${this.kind}]`;
  }

  [INSPECT_CUSTOM](): string {
    return `TokenProvider(${this.kind})`;
  }
}

/**
 * Sends a token request and turns the answer into an IssuedToken, or an
 * OAuthError carrying the server's error and error_description.
 * `onError` may turn a specific OAuth error into a better sentence.
 */
export async function requestToken(
  tokenUrl: URL,
  form: Record<string, string>,
  http: OAuthHttpOptions,
  options: { headers?: Record<string, string>; explain?: (error: string, description: string | undefined) => OAuthError | undefined } = {},
): Promise<IssuedToken & { body: Record<string, unknown> }> {
  const endpoint = showEndpoint(tokenUrl);
  const { status, body } = await postForm(tokenUrl, form, http, options.headers);
  if (status >= 200 && status < 300 && typeof body.access_token === 'string') {
    const type = typeof body.token_type === 'string' ? body.token_type.toLowerCase() : 'bearer';
    if (type !== 'bearer') {
      throw new OAuthError(`${endpoint} issued a ${clean(body.token_type)} token; SMTP needs a bearer token`, { kind: 'grant-refused', endpoint, httpStatus: status });
    }
    if (/[\u0000-\u0020\u007f]/.test(body.access_token) || body.access_token.length === 0) {
      throw new OAuthError(`${endpoint} issued an access token with spaces or control characters`, { kind: 'transport', endpoint, httpStatus: status });
    }
    const expiresIn = Number(body.expires_in);
    return {
      accessToken: body.access_token,
      expiresIn: Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : undefined,
      scope: typeof body.scope === 'string' ? body.scope : undefined,
      body,
    };
  }
  const error = clean(body.error, 80);
  const description = clean(body.error_description);
  if (error) {
    const explained = options.explain?.(error, description);
    if (explained) throw explained;
    const kind = error === 'invalid_client' || error === 'unauthorized_client' ? 'client' : 'grant-refused';
    const hint =
      kind === 'client'
        ? ': check the client id and its secret or certificate, and that this grant is enabled for the app'
        : error === 'invalid_scope'
          ? ': the app is not allowed the requested scope'
          : '';
    throw new OAuthError(`${endpoint} refused the token request: ${error}${description ? ` (${description})` : ''}${hint}`, {
      kind,
      error,
      errorDescription: description,
      httpStatus: status,
      endpoint,
    });
  }
  throw new OAuthError(`${endpoint} answered HTTP ${status} without an access token or an OAuth error`, { kind: 'transport', endpoint, httpStatus: status });
}

/** Validates the token URL once, at construction. */
export function tokenEndpoint(options: CommonProviderOptions): URL {
  if (!options.tokenUrl) throw new OAuthError('tokenUrl is required', { kind: 'config' });
  return checkEndpoint(options.tokenUrl, 'token endpoint', options);
}

/** The subset of options that says how to reach endpoints. */
export function httpOptions(options: OAuthHttpOptions): OAuthHttpOptions {
  const { ca, allowInsecureHttp, proxy, connect, timeout } = options;
  return {
    ...(ca !== undefined ? { ca } : {}),
    ...(allowInsecureHttp !== undefined ? { allowInsecureHttp } : {}),
    ...(proxy !== undefined ? { proxy } : {}),
    ...(connect !== undefined ? { connect } : {}),
    ...(timeout !== undefined ? { timeout } : {}),
  };
}

/** Client authentication at the token endpoint (RFC 6749 §2.3.1). */
export function clientSecretAuth(
  clientId: string,
  clientSecret: string | undefined,
  method: 'post' | 'basic',
): { form: Record<string, string>; headers: Record<string, string> } {
  if (clientSecret === undefined) return { form: { client_id: clientId }, headers: {} };
  if (method === 'post') return { form: { client_id: clientId, client_secret: clientSecret }, headers: {} };
  // §2.3.1: id and secret are form-urlencoded before they are joined for Basic.
  const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
  return { form: {}, headers: { authorization: `Basic ${Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`).toString('base64')}` } };
}
