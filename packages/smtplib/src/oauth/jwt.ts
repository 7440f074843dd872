// Signed JWTs for client assertions (RFC 7523 §2.2, "private_key_jwt") and
// the JWT bearer grant (RFC 7523 §2.1), with node:crypto only. RSA keys sign
// RS256, EC P-256 keys ES256 (JWS signatures are raw r||s, RFC 7518 §3.4).

import { createHash, createPrivateKey, randomUUID, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { OAuthError } from './errors.js';

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

export interface SigningKey {
  key: KeyObject;
  alg: 'RS256' | 'ES256';
}

export function signingKey(pem: string | Buffer | KeyObject, what: string): SigningKey {
  let key: KeyObject;
  try {
    key = typeof pem === 'object' && 'asymmetricKeyType' in pem ? pem : createPrivateKey(pem as string | Buffer);
  } catch {
    // No cause: keep anything derived from key material out of the error.
    throw new OAuthError(`the ${what} is not a PEM private key`, { kind: 'config' });
  }
  if (key.type !== 'private') throw new OAuthError(`the ${what} must be a private key`, { kind: 'config' });
  if (key.asymmetricKeyType === 'rsa') return { key, alg: 'RS256' };
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return { key, alg: 'ES256' };
  throw new OAuthError(`the ${what} must be an RSA or EC P-256 key (got ${key.asymmetricKeyType})`, { kind: 'config' });
}

/** The x5t / x5t#S256 header values of a PEM certificate (RFC 7515 §4.1.7–8). */
export function certificateThumbprints(certificatePem: string | Buffer): { x5t: string; 'x5t#S256': string } {
  let raw: Buffer;
  try {
    raw = new X509Certificate(certificatePem).raw;
  } catch (cause) {
    throw new OAuthError('the certificate is not a PEM X.509 certificate', { kind: 'config', cause });
  }
  return { x5t: createHash('sha1').update(raw).digest('base64url'), 'x5t#S256': createHash('sha256').update(raw).digest('base64url') };
}

/** Signs a JWT with the standard iat/exp/jti claims added (lifetime in seconds). */
export function signJwt(signing: SigningKey, header: Record<string, string>, claims: Record<string, unknown>, lifetime = 300): string {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: signing.alg, typ: 'JWT', ...header }));
  const body = b64url(JSON.stringify({ jti: randomUUID(), iat: now, nbf: now - 5, exp: now + lifetime, ...claims }));
  const input = `${head}.${body}`;
  const signature =
    signing.alg === 'RS256'
      ? sign('sha256', Buffer.from(input), signing.key)
      : sign('sha256', Buffer.from(input), { key: signing.key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(signature)}`;
}
