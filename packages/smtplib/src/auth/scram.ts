// SCRAM (RFC 5802) with SHA-1 and SHA-256 (RFC 7677), with and without
// channel binding (-PLUS; tls-unique RFC 5929, tls-exporter RFC 9266).
//
// Exchange over SMTP (RFC 4954):
//   start()  -> client-first-message          (sent with AUTH as initial response)
//   step(1)  <- server-first-message          -> client-final-message
//   step(2)  <- server-final-message (v=...)  -> empty response
//   235, then verify() insists that step(2) checked the server signature.
//
// GS2 channel-binding flag (RFC 5802 §6, §7 gs2-cbind-flag), our choice:
//   * -PLUS: "p=<type>" with the binding data from the TLS session; if the
//     context cannot supply it, start() throws (never silently downgrade).
//   * non-PLUS: "y" ("I could bind, but I think you cannot") only when we
//     KNOW the server's AUTH list (options.advertised) and it holds no -PLUS
//     mechanism at all, and the TLS session can give binding data; a server
//     that does support binding then detects a stripped -PLUS and fails the
//     login. In every other case "n" (no TLS, no binding data, or the list is
//     unknown: sending "y" to a server that can bind would fail a legitimate
//     login when the caller merely preferred the non-PLUS variant).

import { Buffer } from 'node:buffer';
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { BaseMechanism, SaslMechanismError, decodeUtf8, empty, hasPassword, rejectControls, utf8 } from './common.js';
import type { Credentials, SaslContext, SaslMechanism } from './mechanism.js';
import { saslprep } from './saslprep.js';

export type ScramMechanismName = 'SCRAM-SHA-1' | 'SCRAM-SHA-256' | 'SCRAM-SHA-1-PLUS' | 'SCRAM-SHA-256-PLUS';
export type ChannelBindingType = 'tls-exporter' | 'tls-unique' | 'tls-server-end-point';

export interface ScramOptions {
  /** Fixed client nonce (printable ASCII, no ","). For tests only: the default is 24 random bytes, base64. */
  clientNonce?: string;
  /** Lowest acceptable iteration count (RFC 7677 §4: at least 4096). Default 4096. */
  minIterations?: number;
  /** Highest acceptable iteration count, against a server that makes us burn CPU. Default 10,000,000. */
  maxIterations?: number;
  /** The mechanisms the server advertised, used only to decide the "y" GS2 flag (see above). */
  advertised?: readonly string[];
  /** Channel-binding type for -PLUS; default tls-exporter on TLS 1.3, tls-unique on TLS 1.2. */
  channelBindingType?: ChannelBindingType;
}

export const SCRAM_DEFAULT_MIN_ITERATIONS = 4096;
export const SCRAM_DEFAULT_MAX_ITERATIONS = 10_000_000;

const HASHES = {
  'SCRAM-SHA-1': { hash: 'sha1', size: 20, plus: false },
  'SCRAM-SHA-256': { hash: 'sha256', size: 32, plus: false },
  'SCRAM-SHA-1-PLUS': { hash: 'sha1', size: 20, plus: true },
  'SCRAM-SHA-256-PLUS': { hash: 'sha256', size: 32, plus: true },
} as const;

// RFC 5802 §7: printable = %x21-2B / %x2D-7E (printable ASCII except ",").
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;
// RFC 5802 §7: base64 = *(4base64-char) [base64-3 / base64-2] (strict, padded).
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** RFC 5802 §5.1: in saslname, "=" becomes "=3D" and "," becomes "=2C". */
function escapeSaslname(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

function pbkdf2Async(password: Buffer, salt: Buffer, iterations: number, size: number, hash: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    pbkdf2(password, salt, iterations, size, hash, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Splits "k=v,k=v" into pairs (RFC 5802 §7 attr-val); throws on bad syntax. */
function parseAttributes(mechanism: string, message: string): Array<[string, string]> {
  return message.split(',').map((part) => {
    const m = /^([A-Za-z])=(.*)$/s.exec(part);
    if (!m) throw new SaslMechanismError(mechanism, 'malformed server message');
    return [m[1]!, m[2]!];
  });
}

/** Server-supplied error text, made safe to put in an error message. */
function cleanServerText(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 100);
}

type State = 'new' | 'sent-first' | 'computing' | 'sent-final' | 'verified' | 'failed';

class ScramMechanism extends BaseMechanism {
  readonly #algo: (typeof HASHES)[ScramMechanismName];
  readonly #options: ScramOptions;
  readonly #user: string;
  readonly #authzid: string | undefined;
  #password: string;
  #state: State = 'new';
  #clientNonce = '';
  #clientFirstBare = '';
  #cbindInput: Buffer = Buffer.alloc(0);
  #serverSignature: Buffer | undefined;

  constructor(name: ScramMechanismName, credentials: Credentials & { password: string }, options: ScramOptions) {
    super(name, false);
    this.#algo = HASHES[name];
    this.#options = options;
    this.#user = credentials.user;
    this.#authzid = credentials.authzid || undefined;
    this.#password = credentials.password;
  }

  start(context: SaslContext): Uint8Array {
    if (this.#state !== 'new') throw this.fail('start() called twice; use a fresh mechanism per attempt');
    // RFC 5802 §5.1 "n": the user name is prepared with SASLprep; if that
    // fails or gives an empty string the client SHOULD abort. Then "=" and
    // "," are escaped.
    const user = saslprep(this.#user, `${this.name} user name`);
    if (user.length === 0) throw new TypeError(`${this.name}: the user name is empty after SASLprep`);
    // RFC 5802 §2.2 Hi(Normalize(password), ...): Normalize is SASLprep.
    // Check now, before anything is sent.
    const password = saslprep(this.#password, `${this.name} password`);
    if (password.length === 0) throw new TypeError(`${this.name}: the password is empty after SASLprep`);
    this.#password = password;

    // RFC 5802 §7 gs2-header = gs2-cbind-flag "," [authzid] ",";
    // authzid = "a=" saslname.
    let authz = '';
    if (this.#authzid !== undefined) {
      rejectControls(this.#authzid, `${this.name} authzid`);
      authz = `a=${escapeSaslname(this.#authzid)}`;
    }
    let flag: string;
    let cbData: Buffer = Buffer.alloc(0);
    if (this.#algo.plus) {
      // RFC 5802 §6: the -PLUS variant MUST use channel binding; the GS2
      // flag "p=" names the type and the data go into "c=" below.
      const bound = this.#bindingData(context);
      if (!bound) {
        throw this.fail('channel binding is not available on this connection (needs TLS with tls-exporter or tls-unique)');
      }
      flag = `p=${bound.type}`;
      cbData = bound.data;
    } else {
      // RFC 5802 §6: "y" if the client supports channel binding but thinks
      // the server does not; "n" if the client does not support it. See the
      // header comment for when we say "y".
      const advertised = this.#options.advertised;
      const serverPlus = advertised?.some((m) => /^SCRAM-.*-PLUS$/i.test(m));
      flag = serverPlus === false && this.#bindingData(context) ? 'y' : 'n';
    }
    const gs2Header = `${flag},${authz},`;

    // RFC 5802 §5.1 "r": a random, printable nonce; §7 c-nonce = printable.
    const nonce = this.#options.clientNonce ?? randomBytes(24).toString('base64');
    if (!PRINTABLE.test(nonce)) throw new TypeError(`${this.name}: the client nonce must be printable ASCII without ","`);
    this.#clientNonce = nonce;

    // RFC 5802 §7 client-first-message-bare = [reserved-mext ","] username "," nonce.
    this.#clientFirstBare = `n=${escapeSaslname(user)},r=${nonce}`;
    // RFC 5802 §7 cbind-input = gs2-header [cbind-data], sent base64 in "c=".
    this.#cbindInput = Buffer.concat([Buffer.from(gs2Header, 'utf8'), cbData]);
    this.#state = 'sent-first';
    // RFC 5802 §7 client-first-message = gs2-header client-first-message-bare.
    return utf8(gs2Header + this.#clientFirstBare, `${this.name} client-first-message`);
  }

  /** Channel-binding data for this TLS session, or undefined (RFC 9266 §3, RFC 5929 §3). */
  #bindingData(context: SaslContext): { type: ChannelBindingType; data: Buffer } | undefined {
    if (!context.secure) return undefined;
    let types: ChannelBindingType[];
    if (this.#options.channelBindingType) types = [this.#options.channelBindingType];
    // RFC 9266 §3: tls-exporter is the binding for TLS 1.3 (tls-unique is
    // undefined there, RFC 9266 §1).
    else if (context.tlsVersion === 'TLSv1.3') types = ['tls-exporter'];
    // RFC 5929 §3: tls-unique for TLS 1.2 and earlier.
    else if (context.tlsVersion && /^TLSv1(\.[012])?$/.test(context.tlsVersion)) types = ['tls-unique'];
    else types = ['tls-exporter', 'tls-unique'];
    for (const type of types) {
      const data = context.channelBinding(type);
      if (data && data.length > 0) return { type, data: Buffer.from(data) };
    }
    return undefined;
  }

  // Always asynchronous (PBKDF2 runs on the thread pool), so every failure
  // arrives as a rejected promise.
  async step(challenge: Uint8Array): Promise<Uint8Array> {
    const state = this.#state;
    try {
      if (state === 'sent-first') {
        this.#state = 'computing';
        return await this.#clientFinal(challenge);
      }
      if (state === 'sent-final') return this.#checkServerFinal(challenge);
      if (state === 'new') throw this.fail('start() was not called');
      throw this.fail('unexpected server challenge');
    } catch (error) {
      this.#state = 'failed';
      throw error;
    }
  }

  async #clientFinal(challenge: Uint8Array): Promise<Uint8Array> {
    const serverFirst = decodeUtf8(this, challenge);
    const attrs = parseAttributes(this.name, serverFirst);
    // RFC 5802 §7 server-first-message = [reserved-mext ","] nonce "," salt ","
    // iteration-count ["," extensions]. §5.1 "m": a client that does not
    // understand a mandatory extension MUST fail the exchange.
    if (attrs[0]?.[0] === 'm') throw this.fail('server requires an unsupported mandatory extension');
    if (attrs[0]?.[0] === 'e') throw this.fail(`server error: ${cleanServerText(attrs[0][1])}`);
    if (attrs.length < 3 || attrs[0]![0] !== 'r' || attrs[1]![0] !== 's' || attrs[2]![0] !== 'i') {
      throw this.fail('malformed server-first-message');
    }
    const [, nonce] = attrs[0]!;
    const [, saltB64] = attrs[1]!;
    const [, iterText] = attrs[2]!;

    // RFC 5802 §5.1 "r": the server's nonce is the client nonce with the
    // server's own part appended; the client MUST check that it starts with
    // its own nonce (otherwise the server is replaying another session).
    if (!nonce.startsWith(this.#clientNonce) || nonce.length <= this.#clientNonce.length || !PRINTABLE.test(nonce)) {
      throw this.fail('server nonce does not extend the client nonce');
    }
    // RFC 5802 §5.1 "s": base64-encoded salt.
    if (saltB64.length === 0 || !BASE64.test(saltB64)) throw this.fail('server salt is not valid base64');
    const salt = Buffer.from(saltB64, 'base64');
    if (salt.length === 0) throw this.fail('server salt is empty');
    // RFC 5802 §5.1 "i": iteration count, a positive number. RFC 7677 §4 /
    // RFC 5802 §9: at least 4096 to make offline guessing expensive; an
    // enormous count would make us spend minutes of CPU.
    if (!/^[1-9][0-9]{0,15}$/.test(iterText)) throw this.fail('server iteration count is not a positive integer');
    const iterations = Number(iterText);
    const min = this.#options.minIterations ?? SCRAM_DEFAULT_MIN_ITERATIONS;
    const max = this.#options.maxIterations ?? SCRAM_DEFAULT_MAX_ITERATIONS;
    if (iterations < min) throw this.fail(`server iteration count ${iterations} is below the minimum ${min}`);
    if (iterations > max) throw this.fail(`server iteration count ${iterations} is above the maximum ${max}`);

    const { hash, size } = this.#algo;
    const hmac = (key: Buffer, data: string | Buffer): Buffer => createHmac(hash, key).update(data).digest();
    // RFC 5802 §3: SaltedPassword := Hi(Normalize(password), salt, i), and
    // Hi is PBKDF2 (RFC 2898) with HMAC as the PRF and dkLen = hash size.
    const saltedPassword = await pbkdf2Async(Buffer.from(this.#password, 'utf8'), salt, iterations, size, hash);
    this.#password = '';
    // RFC 5802 §3: ClientKey := HMAC(SaltedPassword, "Client Key");
    // StoredKey := H(ClientKey).
    const clientKey = hmac(saltedPassword, 'Client Key');
    const storedKey = createHash(hash).update(clientKey).digest();
    // RFC 5802 §7: channel-binding = "c=" base64(cbind-input);
    // client-final-message-without-proof = channel-binding "," nonce.
    const withoutProof = `c=${this.#cbindInput.toString('base64')},r=${nonce}`;
    // RFC 5802 §3: AuthMessage := client-first-message-bare + "," +
    // server-first-message + "," + client-final-message-without-proof.
    const authMessage = `${this.#clientFirstBare},${serverFirst},${withoutProof}`;
    // RFC 5802 §3: ClientSignature := HMAC(StoredKey, AuthMessage);
    // ClientProof := ClientKey XOR ClientSignature.
    const clientProof = xor(clientKey, hmac(storedKey, authMessage));
    // RFC 5802 §3: ServerKey := HMAC(SaltedPassword, "Server Key");
    // ServerSignature := HMAC(ServerKey, AuthMessage), checked in step 2.
    this.#serverSignature = hmac(hmac(saltedPassword, 'Server Key'), authMessage);
    saltedPassword.fill(0);
    clientKey.fill(0);
    // A challenge that arrived while PBKDF2 ran has already failed the exchange.
    if (this.#state !== 'computing') throw this.fail('the exchange was aborted');
    this.#state = 'sent-final';
    // RFC 5802 §7 client-final-message = client-final-message-without-proof "," proof.
    return utf8(`${withoutProof},p=${clientProof.toString('base64')}`, `${this.name} client-final-message`);
  }

  #checkServerFinal(challenge: Uint8Array): Uint8Array {
    const serverFinal = decodeUtf8(this, challenge);
    const attrs = parseAttributes(this.name, serverFinal);
    const [key, value] = attrs[0]!;
    // RFC 5802 §7 server-final-message = (server-error / verifier) ["," extensions];
    // server-error = "e=" server-error-value.
    if (key === 'e') throw this.fail(`server error: ${cleanServerText(value)}`);
    if (key !== 'v') throw this.fail('malformed server-final-message');
    // RFC 5802 §7 verifier = "v=" base64 (the ServerSignature).
    if (value.length === 0 || !BASE64.test(value)) throw this.fail('server signature is not valid base64');
    const received = Buffer.from(value, 'base64');
    const expected = this.#serverSignature!;
    // RFC 5802 §5.1 "v": the client verifies the ServerSignature, proving the
    // server knows the (salted) password. Constant-time comparison.
    if (received.length !== expected.length || !timingSafeEqual(received, expected)) {
      throw this.fail('server signature does not match (the server does not know the password, or a man in the middle)');
    }
    this.#serverSignature = undefined;
    this.#state = 'verified';
    // RFC 4954 §4: the server sends the server-final-message as a 334
    // challenge; the client answers with an empty response, then gets 235.
    return empty();
  }

  verify(): void {
    // RFC 5802 §5.1 "v" / §9: authentication is mutual; a 235 without a
    // verified server signature means the server skipped the proof that it
    // knows the password, so the client MUST treat it as a failure.
    if (this.#state !== 'verified') throw this.fail('the server signature was never verified');
  }
}

/**
 * SCRAM-SHA-1, SCRAM-SHA-256 and their -PLUS variants (RFC 5802, RFC 7677).
 * Needs `user` and `password`. Never sends the password; verifies the server.
 */
export function scramMechanism(name: ScramMechanismName, credentials: Credentials, options: ScramOptions = {}): SaslMechanism {
  const upper = name.toUpperCase() as ScramMechanismName;
  if (!Object.hasOwn(HASHES, upper)) throw new TypeError(`unknown SCRAM mechanism ${JSON.stringify(name)}`);
  if (!hasPassword(credentials)) throw new TypeError(`${upper} needs a password`);
  return new ScramMechanism(upper, credentials, options);
}
