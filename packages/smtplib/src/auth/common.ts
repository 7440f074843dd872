// Shared pieces for the SASL mechanisms: a base class that keeps secrets out
// of logs, the mechanism error type, and small encoding/validation helpers.
// Nothing here touches the network or timers.

import { Buffer, isUtf8 } from 'node:buffer';
import type { Credentials, SaslContext, SaslMechanism } from './mechanism.js';

/** The symbol `util.inspect` looks for; registered, so no import of node:util. */
const INSPECT_CUSTOM: unique symbol = Symbol.for('nodejs.util.inspect.custom') as never;

/**
 * Thrown by a mechanism when the server's challenge is malformed, fails a
 * check (nonce, iteration count, server signature) or reports an error.
 * The message never contains a secret. The client answers it with "*".
 */
export class SaslMechanismError extends Error {
  /** The mechanism that failed ("SCRAM-SHA-256"). */
  readonly mechanism: string;

  constructor(mechanism: string, message: string) {
    super(`${mechanism}: ${message}`);
    this.name = 'SaslMechanismError';
    this.mechanism = mechanism;
  }
}

/**
 * Base of every built-in mechanism. Subclasses keep credentials and derived
 * keys in `#private` fields (invisible to `util.inspect`, `JSON.stringify`,
 * `Object.keys`, spread and structuredClone); this class makes the remaining
 * textual forms print only the mechanism name.
 */
export abstract class BaseMechanism implements SaslMechanism {
  readonly name: string;
  readonly sendsCleartext: boolean;

  protected constructor(name: string, sendsCleartext: boolean) {
    this.name = name;
    this.sendsCleartext = sendsCleartext;
  }

  abstract start(context: SaslContext): Promise<Uint8Array | undefined> | Uint8Array | undefined;
  abstract step(challenge: Uint8Array): Promise<Uint8Array> | Uint8Array;

  /** Shape for JSON.stringify: the name only. */
  toJSON(): { name: string } {
    return { name: this.name };
  }

  toString(): string {
    return `[SaslMechanism ${this.name}]`;
  }

  [INSPECT_CUSTOM](): string {
    return `SaslMechanism(${this.name})`;
  }

  /** Builds an error for this mechanism (the message must not carry secrets). */
  protected fail(message: string): SaslMechanismError {
    return new SaslMechanismError(this.name, message);
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * UTF-8 bytes of a string. Throws on lone surrogates, which Buffer would
 * silently turn into U+FFFD (changing a password without telling anyone).
 */
export function utf8(value: string, what: string): Buffer {
  if (LONE_SURROGATE.test(value)) {
    throw new TypeError(`${what} is not well-formed Unicode (lone surrogate)`);
  }
  return Buffer.from(value, 'utf8');
}

/** Decodes a server challenge that the mechanism requires to be UTF-8 text. */
export function decodeUtf8(mechanism: BaseMechanism, challenge: Uint8Array): string {
  if (!isUtf8(challenge)) {
    throw new SaslMechanismError(mechanism.name, 'server challenge is not valid UTF-8');
  }
  return Buffer.from(challenge.buffer, challenge.byteOffset, challenge.byteLength).toString('utf8');
}

// C0 controls and DEL.
const ASCII_CONTROL = /[\u0000-\u001f\u007f]/;

/** Throws a TypeError when `value` contains a C0 control character or DEL. */
export function rejectControls(value: string, what: string): void {
  if (ASCII_CONTROL.test(value)) {
    throw new TypeError(`${what} must not contain control characters`);
  }
}

/** Token source of the credentials (string or function); undefined if none. */
export type TokenSource = NonNullable<Credentials['token']>;

/** True when the credentials carry a usable password. */
export function hasPassword(credentials: Credentials): credentials is Credentials & { password: string } {
  return typeof credentials.password === 'string' && credentials.password.length > 0;
}

/** True when the credentials carry an OAuth 2 token source. */
export function hasToken(credentials: Credentials): boolean {
  const t = credentials.token;
  return (typeof t === 'string' && t.length > 0) || typeof t === 'function';
}

/**
 * Gets the bearer token: calls a function source once (the caller makes one
 * mechanism object per exchange, so once per exchange) and checks the result.
 * RFC 6750 §2.1 b64token has no spaces or controls; we reject controls
 * (they would break the \x01-separated key/value list) and whitespace.
 */
export async function resolveToken(source: TokenSource, mechanism: string): Promise<string> {
  const token = typeof source === 'function' ? await source() : source;
  if (typeof token !== 'string' || token.length === 0) {
    throw new TypeError(`${mechanism}: the token source did not return a non-empty string`);
  }
  if (/[\u0000-\u0020\u007f]/.test(token)) {
    throw new TypeError(`${mechanism}: the token must not contain spaces or control characters`);
  }
  return token;
}

/** An empty response (sent by the client as "=" or an empty line). */
export function empty(): Uint8Array {
  return new Uint8Array(0);
}
