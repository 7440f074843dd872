// LOGIN (draft-murchison-sasl-login-00, never an RFC): the server sends two
// challenges (usually "Username:" and "Password:", but their text is not
// standardised), the client answers with the user name, then the password.

import { BaseMechanism, hasPassword, utf8 } from './common.js';
import type { Credentials, SaslContext, SaslMechanism } from './mechanism.js';

class LoginMechanism extends BaseMechanism {
  readonly #user: string;
  readonly #password: string;
  #round = 0;

  constructor(credentials: Credentials & { password: string }) {
    super('LOGIN', true);
    this.#user = credentials.user;
    this.#password = credentials.password;
  }

  start(_context: SaslContext): undefined {
    // draft-murchison-sasl-login §2: no initial response; the client waits
    // for the server's first challenge.
    return undefined;
  }

  step(_challenge: Uint8Array): Uint8Array {
    // draft-murchison-sasl-login §2: the challenge text is advisory only
    // (servers send "Username:", "User Name", localised prompts...), so the
    // answers go by position: first the user name, then the password.
    this.#round += 1;
    if (this.#round === 1) return utf8(this.#user, 'LOGIN user name');
    if (this.#round === 2) return utf8(this.#password, 'LOGIN password');
    // The exchange has exactly two rounds; a third challenge means the server
    // is confused or fishing, and the client must cancel.
    throw this.fail('unexpected third server challenge');
  }
}

/** LOGIN (obsolete but common). Needs `user` and `password`; sends the password in the clear. */
export function loginMechanism(credentials: Credentials): SaslMechanism {
  if (!hasPassword(credentials)) throw new TypeError('LOGIN needs a password');
  return new LoginMechanism(credentials);
}
