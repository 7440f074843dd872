// CRAM-MD5 (RFC 2195): the server sends a unique challenge; the client answers
// `user SP hex(HMAC-MD5(password, challenge))`. Listed as LIMITED in the IANA
// SASL registry, so it is never chosen automatically (opt-in by name only).

import { createHmac } from 'node:crypto';
import { BaseMechanism, hasPassword, utf8 } from './common.js';
import type { Credentials, SaslContext, SaslMechanism } from './mechanism.js';

class CramMd5Mechanism extends BaseMechanism {
  readonly #user: string;
  readonly #password: string;
  #answered = false;

  constructor(credentials: Credentials & { password: string }) {
    // The password is not sent, only a keyed digest of the challenge.
    super('CRAM-MD5', false);
    this.#user = credentials.user;
    this.#password = credentials.password;
  }

  start(_context: SaslContext): undefined {
    // RFC 2195 §2: the server speaks first (its challenge is a msg-id), so
    // there is no initial response.
    return undefined;
  }

  step(challenge: Uint8Array): Uint8Array {
    // RFC 2195 §2: one challenge, one response.
    if (this.#answered) throw this.fail('unexpected second server challenge');
    // RFC 2195 §2: the challenge is a msg-id style string; an empty one is
    // useless (no freshness) and suggests a broken or hostile server.
    if (challenge.length === 0) throw this.fail('empty server challenge');
    // RFC 2195 §2: response = user SP digest. Servers split at the last
    // space, so spaces in the user name are tolerated; control characters
    // have no place in a user name and are refused.
    if (/[\u0000-\u001f\u007f]/.test(this.#user)) {
      throw new TypeError('CRAM-MD5: the user name must not contain control characters');
    }
    let digest: string;
    try {
      // RFC 2195 §2: digest = HMAC-MD5 (RFC 2104) keyed with the shared
      // secret over the challenge, written as 32 lower-case hex digits.
      digest = createHmac('md5', utf8(this.#password, 'CRAM-MD5 password')).update(challenge).digest('hex');
    } catch (error) {
      if (error instanceof TypeError) throw error;
      // FIPS builds of OpenSSL refuse MD5.
      throw this.fail('HMAC-MD5 is not available in this Node.js build');
    }
    this.#answered = true;
    return utf8(`${this.#user} ${digest}`, 'CRAM-MD5 user name');
  }
}

/** CRAM-MD5 (RFC 2195). Needs `user` and `password`. Off in automatic selection. */
export function cramMd5Mechanism(credentials: Credentials): SaslMechanism {
  if (!hasPassword(credentials)) throw new TypeError('CRAM-MD5 needs a password');
  return new CramMd5Mechanism(credentials);
}
