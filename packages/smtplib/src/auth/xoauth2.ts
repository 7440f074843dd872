// XOAUTH2 (Google, "OAuth 2.0 Mechanism", developers.google.com/gmail/imap/xoauth2-protocol;
// Microsoft Exchange Online uses the same format). Not an RFC; OAUTHBEARER
// (RFC 7628) is its standard successor.

import { BaseMechanism, empty, hasToken, rejectControls, resolveToken, utf8, type TokenSource } from './common.js';
import type { Credentials, SaslContext, SaslMechanism } from './mechanism.js';

class Xoauth2Mechanism extends BaseMechanism {
  readonly #user: string;
  readonly #token: TokenSource;
  #started = false;
  #answeredError = false;

  constructor(user: string, token: TokenSource) {
    super('XOAUTH2', true);
    this.#user = user;
    this.#token = token;
  }

  async start(_context: SaslContext): Promise<Uint8Array> {
    // The fields are separated by \x01 (^A): a control character in the user
    // name would inject fields, so refuse it before anything is sent.
    rejectControls(this.#user, 'XOAUTH2 user name');
    // The token source is called once per exchange (one object per attempt).
    const token = await resolveToken(this.#token, 'XOAUTH2');
    this.#started = true;
    // Google XOAUTH2 protocol, "The SASL XOAUTH2 Mechanism": the initial
    // client response is "user=" {User} "^Aauth=Bearer " {Access Token} "^A^A".
    return utf8(`user=${this.#user}\x01auth=Bearer ${token}\x01\x01`, 'XOAUTH2 initial response');
  }

  step(_challenge: Uint8Array): Uint8Array {
    if (!this.#started) throw this.fail('start() was not called');
    // Google XOAUTH2 protocol, "Error response": on failure the server sends
    // a 334 challenge holding a base64 JSON error ({"status":"401",...}); the
    // client must send an empty response, after which the server sends the
    // final error reply (5xx) that the client reports.
    if (this.#answeredError) throw this.fail('unexpected second server challenge');
    this.#answeredError = true;
    return empty();
  }
}

/** XOAUTH2 (Google/Microsoft). Needs `user` and `token` (string or function). */
export function xoauth2Mechanism(credentials: Credentials): SaslMechanism {
  if (!hasToken(credentials) || credentials.token === undefined) throw new TypeError('XOAUTH2 needs a token');
  return new Xoauth2Mechanism(credentials.user, credentials.token);
}
