// EXTERNAL (RFC 4422 Appendix A): authentication comes from outside SASL
// (here: the TLS client certificate); the client only names the
// authorization identity it wants, or nothing to get the one derived from
// the external credentials.

import { BaseMechanism, utf8 } from './common.js';
import type { Credentials, SaslContext, SaslMechanism } from './mechanism.js';

class ExternalMechanism extends BaseMechanism {
  readonly #authzid: string;
  #started = false;

  constructor(credentials: Partial<Credentials>) {
    // No secret crosses the wire.
    super('EXTERNAL', false);
    this.#authzid = credentials.authzid ?? '';
  }

  start(_context: SaslContext): Uint8Array {
    // RFC 4422 §A.1: message = [authz-id]; an empty message asks for the
    // identity derived from the external credentials. RFC 4954 §4 sends an
    // empty initial response as "=" (the client does that for empty bytes).
    // RFC 4422 §A.1 authz-id is UTF8-encoded and contains no NUL.
    if (this.#authzid.includes('\0')) throw new TypeError('EXTERNAL: the authzid must not contain NUL');
    this.#started = true;
    return utf8(this.#authzid, 'EXTERNAL authzid');
  }

  step(_challenge: Uint8Array): Uint8Array {
    // RFC 4422 §A.1: the only challenge is the empty one a server sends when
    // the client gave no initial response; we always give one.
    throw this.fail(this.#started ? 'unexpected server challenge after the initial response' : 'start() was not called');
  }
}

/** EXTERNAL (RFC 4422 App. A). Uses only `authzid` (optional). */
export function externalMechanism(credentials: Partial<Credentials> = {}): SaslMechanism {
  return new ExternalMechanism(credentials);
}
