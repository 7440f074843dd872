// The client credentials grant (RFC 6749 §4.4): an app acting as itself.
// Microsoft 365 "app-only" SMTP works this way: the app has the
// SMTP.SendAsApp permission and an Exchange service principal, and the
// mailbox is named in the SASL user field. The client proves who it is with a
// secret, or with a certificate: a JWT signed by its private key
// (private_key_jwt, RFC 7523 §2.2), which Microsoft recommends over secrets.

import { OAuthError } from './errors.js';
import { certificateThumbprints, signingKey, signJwt, type SigningKey } from './jwt.js';
import type { OAuthHttpOptions } from './http.js';
import type { KeyObject } from 'node:crypto';
import { CachedTokenProvider, clientSecretAuth, httpOptions, requestToken, scopeString, tokenEndpoint, type CommonProviderOptions, type IssuedToken } from './provider.js';

export interface ClientCertificate {
  /** The private key (PEM or KeyObject), RSA or EC P-256. */
  privateKey: string | Buffer | KeyObject;
  /** The certificate (PEM) registered with the app: its thumbprint goes in the JWT header (x5t, x5t#S256). */
  certificate?: string | Buffer;
  /** A key id (kid) to put in the header instead of, or besides, the thumbprint. */
  keyId?: string;
}

export interface ClientCredentialsProviderOptions extends CommonProviderOptions {
  clientId: string;
  clientSecret?: string;
  clientAuth?: 'post' | 'basic';
  certificate?: ClientCertificate;
  /** The assertion's `aud`. Default: the token endpoint URL (what Microsoft expects). */
  assertionAudience?: string;
}

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

class ClientCredentialsProvider extends CachedTokenProvider {
  readonly kind = 'client-credentials';
  readonly #url: URL;
  readonly #clientId: string;
  readonly #clientSecret: string | undefined;
  readonly #clientAuth: 'post' | 'basic';
  readonly #signing: SigningKey | undefined;
  readonly #header: Record<string, string>;
  readonly #audience: string;
  readonly #scope: string | undefined;
  readonly #http: OAuthHttpOptions;

  constructor(options: ClientCredentialsProviderOptions) {
    super(options);
    this.#url = tokenEndpoint(options);
    if (!options.clientId) throw new OAuthError('clientId is required', { kind: 'config' });
    if ((options.clientSecret === undefined) === (options.certificate === undefined)) {
      throw new OAuthError('give exactly one of clientSecret and certificate', { kind: 'config' });
    }
    this.#clientId = options.clientId;
    this.#clientSecret = options.clientSecret;
    this.#clientAuth = options.clientAuth ?? 'post';
    this.#signing = options.certificate ? signingKey(options.certificate.privateKey, 'certificate private key') : undefined;
    this.#header = {
      ...(options.certificate?.certificate ? certificateThumbprints(options.certificate.certificate) : {}),
      ...(options.certificate?.keyId ? { kid: options.certificate.keyId } : {}),
    };
    this.#audience = options.assertionAudience ?? this.#url.href;
    this.#scope = scopeString(options.scope);
    this.#http = httpOptions(options);
  }

  protected fetchToken(): Promise<IssuedToken> {
    const grant = { grant_type: 'client_credentials', ...(this.#scope ? { scope: this.#scope } : {}) };
    if (this.#signing) {
      // RFC 7523 §3: iss and sub are the client id, aud the authorization server.
      const assertion = signJwt(this.#signing, this.#header, { iss: this.#clientId, sub: this.#clientId, aud: this.#audience });
      return requestToken(this.#url, { ...grant, client_id: this.#clientId, client_assertion_type: ASSERTION_TYPE, client_assertion: assertion }, this.#http);
    }
    const auth = clientSecretAuth(this.#clientId, this.#clientSecret, this.#clientAuth);
    return requestToken(this.#url, { ...grant, ...auth.form }, this.#http, { headers: auth.headers });
  }
}

/** Access tokens for an app acting as itself (Microsoft 365 app-only SMTP). */
export function clientCredentialsProvider(options: ClientCredentialsProviderOptions): CachedTokenProvider {
  return new ClientCredentialsProvider(options);
}
