// PLAIN (RFC 4616): one message, `[authzid] NUL authcid NUL passwd`, UTF-8.

import { Buffer } from 'node:buffer';
import { BaseMechanism, hasPassword, utf8 } from './common.js';
import type { Credentials, SaslContext, SaslMechanism } from './mechanism.js';

class PlainMechanism extends BaseMechanism {
  readonly #authzid: string;
  readonly #user: string;
  readonly #password: string;
  #started = false;

  constructor(credentials: Credentials & { password: string }) {
    super('PLAIN', true);
    this.#authzid = credentials.authzid ?? '';
    this.#user = credentials.user;
    this.#password = credentials.password;
  }

  start(_context: SaslContext): Uint8Array {
    // RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd, where
    // each field is 1*SAFE / *SAFE and SAFE excludes NUL. A NUL inside a field
    // would move the field boundaries (e.g. turn part of the user name into
    // the authzid), so refuse before anything is sent.
    for (const [what, value] of [
      ['authzid', this.#authzid],
      ['user name', this.#user],
      ['password', this.#password],
    ] as const) {
      if (value.includes('\0')) throw new TypeError(`PLAIN: the ${what} must not contain NUL`);
    }
    // RFC 4616 §2: authcid and passwd are 1*SAFE (non-empty).
    if (this.#user.length === 0) throw new TypeError('PLAIN: the user name must not be empty');
    if (this.#password.length === 0) throw new TypeError('PLAIN: the password must not be empty');
    this.#started = true;
    const nul = Buffer.from([0]);
    return Buffer.concat([
      utf8(this.#authzid, 'PLAIN authzid'),
      nul,
      utf8(this.#user, 'PLAIN user name'),
      nul,
      utf8(this.#password, 'PLAIN password'),
    ]);
  }

  step(_challenge: Uint8Array): Uint8Array {
    // RFC 4616 §2: the mechanism consists of a single message from the client;
    // the initial response already carried it, so any challenge is a protocol
    // error (and answering would hand the password out a second time).
    throw this.fail(this.#started ? 'unexpected server challenge after the initial response' : 'start() was not called');
  }
}

/** PLAIN (RFC 4616). Needs `user` and `password`; sends the password in the clear. */
export function plainMechanism(credentials: Credentials): SaslMechanism {
  if (!hasPassword(credentials)) throw new TypeError('PLAIN needs a password');
  return new PlainMechanism(credentials);
}
