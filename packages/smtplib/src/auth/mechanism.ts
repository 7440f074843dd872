// The SASL mechanism plug-in contract (RFC 4954 over RFC 4422).
//
// A mechanism is pure: it turns challenges into responses. The client owns the
// wire: it writes `AUTH <name> [initial]`, base64-decodes each 334 challenge,
// calls `step`, base64-encodes the answer, caps the number of rounds, and
// cancels with `*` if the mechanism throws. Only a 235 reply counts as success,
// and then `verify()` lets mutual-auth mechanisms (SCRAM) insist that they saw
// and checked the server's final message.

/** What a mechanism may know about the connection it runs on. */
export interface SaslContext {
  /** The name the caller connected to (used by OAUTHBEARER's `host=` and for logs). */
  readonly host: string;
  /** The TCP port, when known. */
  readonly port?: number;
  /** True when the connection is protected by verified TLS. */
  readonly secure: boolean;
  /** The negotiated TLS version ("TLSv1.3"), when secure. */
  readonly tlsVersion?: string;
  /**
   * Returns channel-binding data of the given type for the current TLS
   * session, or undefined when it cannot be had (no TLS, or TLS 1.3 for
   * tls-unique). RFC 5929 (tls-unique), RFC 9266 (tls-exporter).
   */
  channelBinding(type: 'tls-exporter' | 'tls-unique' | 'tls-server-end-point'): Buffer | undefined;
}

/** One authentication exchange; make a fresh one per attempt. */
export interface SaslMechanism {
  /** The IANA name as written after AUTH, upper case ("SCRAM-SHA-256-PLUS"). */
  readonly name: string;
  /**
   * True when the exchange reveals the secret to anyone who can read the
   * connection (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER). The client refuses such
   * mechanisms on an unencrypted, non-loopback connection unless told otherwise.
   */
  readonly sendsCleartext: boolean;
  /**
   * The initial response to send with the AUTH command, or undefined if the
   * mechanism waits for the server's first challenge. An empty buffer is sent
   * as "=" (RFC 4954 §4).
   */
  start(context: SaslContext): Promise<Uint8Array | undefined> | Uint8Array | undefined;
  /** Answers one decoded 334 challenge. Throw to cancel the exchange with "*". */
  step(challenge: Uint8Array): Promise<Uint8Array> | Uint8Array;
  /**
   * Called after the server replied 235. Mechanisms with mutual
   * authentication throw here if they did not verify the server.
   */
  verify?(): void;
}

/** A factory is how callers hand mechanisms to `auth()`: fresh state per attempt. */
export type SaslMechanismFactory = () => SaslMechanism;

/** Credentials for `login()`: a password, or an OAuth 2 token source. */
export interface Credentials {
  readonly user: string;
  readonly password?: string;
  /** For XOAUTH2 / OAUTHBEARER: returns a (fresh) access token. */
  readonly token?: string | (() => string | Promise<string>);
  /** Authorization identity (authzid), when different from `user`. */
  readonly authzid?: string;
}
