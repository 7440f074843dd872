// OAUTHBEARER (RFC 7628): a GS2 header followed by \x01-separated key/value
// pairs carrying an OAuth 2.0 bearer token (RFC 6750).

import { BaseMechanism, hasToken, rejectControls, resolveToken, utf8, type TokenSource } from './common.js';
import type { Credentials, SaslContext, SaslMechanism } from './mechanism.js';

/** RFC 5801 §4 saslname: "," and "=" are written as "=2C" and "=3D". */
function gs2Escape(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

class OAuthBearerMechanism extends BaseMechanism {
  readonly #identity: string;
  readonly #token: TokenSource;
  #started = false;
  #answeredError = false;

  constructor(identity: string, token: TokenSource) {
    super('OAUTHBEARER', true);
    this.#identity = identity;
    this.#token = token;
  }

  async start(context: SaslContext): Promise<Uint8Array> {
    // Control characters (\x01 above all) would inject key/value pairs.
    rejectControls(this.#identity, 'OAUTHBEARER authzid');
    rejectControls(context.host ?? '', 'OAUTHBEARER host');
    const token = await resolveToken(this.#token, 'OAUTHBEARER');
    // RFC 7628 §3.1: gs2-header = gs2-cb-flag "," [gs2-authzid] ",". This
    // mechanism never does channel binding, so the flag is "n"; the authzid
    // ("a=" saslname, RFC 5801 §4) is optional.
    const gs2 = this.#identity.length > 0 ? `n,a=${gs2Escape(this.#identity)},` : 'n,,';
    // RFC 7628 §3.1: kvpairs, each "key=value" followed by kvsep (\x01);
    // "host" and "port" SHOULD be sent when known; the "auth" value is the
    // HTTP Authorization header value "Bearer <token>" (RFC 6750 §2.1).
    // RFC 7628 §3.1: client-resp = gs2-header kvsep *kvpair kvsep.
    let kv = '';
    if (context.host) kv += `host=${context.host}\x01`;
    if (context.port !== undefined) kv += `port=${context.port}\x01`;
    kv += `auth=Bearer ${token}\x01`;
    this.#started = true;
    return utf8(`${gs2}\x01${kv}\x01`, 'OAUTHBEARER initial response');
  }

  step(_challenge: Uint8Array): Uint8Array {
    if (!this.#started) throw this.fail('start() was not called');
    // RFC 7628 §3.2.2: on failure the server sends a JSON error as a
    // challenge. §3.2.3: the client then MUST send a response of a single
    // %x01 (kvsep), after which the server ends with a failure reply.
    if (this.#answeredError) throw this.fail('unexpected second server challenge');
    this.#answeredError = true;
    return Uint8Array.of(0x01);
  }
}

/**
 * OAUTHBEARER (RFC 7628). Needs `token` (string or function); the GS2
 * authzid is `authzid`, or `user` when no authzid is given.
 */
export function oauthBearerMechanism(credentials: Credentials): SaslMechanism {
  if (!hasToken(credentials) || credentials.token === undefined) throw new TypeError('OAUTHBEARER needs a token');
  return new OAuthBearerMechanism(credentials.authzid || credentials.user || '', credentials.token);
}
