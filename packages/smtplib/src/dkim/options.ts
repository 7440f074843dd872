// The `dkim` option: what a caller writes, and its checked, resolved form.
// Everything is checked when the option is given (the SMTP constructor, or
// the send call), so a bad key or name fails before anything is sent.

import { createHash, createPrivateKey, KeyObject, sign as cryptoSign } from 'node:crypto';
import { domainToASCII } from 'node:url';
import { SMTPInvalidArgumentError } from '../errors.js';
import type { Canonicalization } from './canonicalize.js';

export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';
export type DkimCanonicalization = 'relaxed/relaxed' | 'relaxed/simple' | 'simple/simple' | 'simple/relaxed';

export interface DkimOptions {
  /** The signing domain (d=). A Unicode name is converted to its A-label form. */
  domain: string;
  /** The selector (s=): the key is published at `<selector>._domainkey.<domain>`. */
  selector: string;
  /** PKCS#8 / PKCS#1 / SEC1 PEM (string or Buffer), or a private KeyObject. Never logged or serialized. */
  privateKey: string | Buffer | KeyObject;
  /** Default: from the key type (RSA → rsa-sha256, Ed25519 → ed25519-sha256, RFC 8463). */
  algorithm?: DkimAlgorithm;
  /** header/body canonicalization (c=). Default 'relaxed/relaxed'. */
  canonicalization?: DkimCanonicalization;
  /**
   * Header field names to sign (h=). Default: RFC 6376 §5.4.1's list plus the
   * MIME fields and Message-ID. Every instance present is signed, and From,
   * To, Subject and Date, when present, get one entry more than they have
   * (oversigning), so a second one cannot be added after signing.
   */
  headers?: readonly string[];
  /** Seconds the signature stays valid (x= = t= + expireAfter). Default: no expiry. */
  expireAfter?: number;
}

/** What the `dkim` option accepts: one signature or several (e.g. RSA and Ed25519, RFC 8463 §1). */
export type DkimOption = DkimOptions | readonly DkimOptions[];

/** RFC 6376 §5.4.1's recommended fields, and the MIME fields whose change would alter the message. */
export const DEFAULT_SIGNED_HEADERS: readonly string[] = Object.freeze([
  'from', 'reply-to', 'subject', 'date', 'to', 'cc',
  'resent-date', 'resent-from', 'resent-to', 'resent-cc',
  'in-reply-to', 'references',
  'list-id', 'list-help', 'list-unsubscribe', 'list-subscribe', 'list-post', 'list-owner', 'list-archive',
  'sender', 'message-id', 'mime-version', 'content-type', 'content-transfer-encoding',
]);

/** Signed once more than present (when present), so a second instance cannot be added. */
export const OVERSIGNED_HEADERS: readonly string[] = Object.freeze(['from', 'to', 'subject', 'date']);

/** A checked signature specification; the key lives in a private field only. */
export class ResolvedSignature {
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: DkimAlgorithm;
  readonly headerCanonicalization: Canonicalization;
  readonly bodyCanonicalization: Canonicalization;
  readonly headers: readonly string[];
  readonly expireAfter: number | undefined;
  readonly #key: KeyObject;

  constructor(options: DkimOptions) {
    if (!options || typeof options !== 'object') throw invalid('each dkim option must be an object with domain, selector and privateKey');
    this.domain = checkDomain(options.domain);
    this.selector = checkSelector(options.selector);
    this.#key = toPrivateKey(options.privateKey);
    this.algorithm = checkAlgorithm(options.algorithm, this.#key);
    const [header, body] = checkCanonicalization(options.canonicalization);
    this.headerCanonicalization = header;
    this.bodyCanonicalization = body;
    this.headers = checkHeaders(options.headers);
    this.expireAfter = checkExpiry(options.expireAfter);
  }

  /**
   * Signs the header hash input (RFC 6376 §3.7): RSASSA-PKCS1-v1_5 over
   * SHA-256, or Ed25519 over the SHA-256 digest (RFC 8463 §3). The key never
   * leaves this object.
   */
  sign(data: Buffer): string {
    const signature = this.algorithm === 'rsa-sha256'
      ? cryptoSign('sha256', data, this.#key)
      : cryptoSign(null, createHash('sha256').update(data).digest(), this.#key);
    return signature.toString('base64');
  }

  get canonicalization(): string {
    return `${this.headerCanonicalization}/${this.bodyCanonicalization}`;
  }

  /** What inspect and JSON show: everything but the key. */
  describe(): { domain: string; selector: string; algorithm: DkimAlgorithm; canonicalization: string } {
    return { domain: this.domain, selector: this.selector, algorithm: this.algorithm, canonicalization: this.canonicalization };
  }

  toJSON(): unknown {
    return this.describe();
  }

  [Symbol.for('nodejs.util.inspect.custom')](): unknown {
    return { ...this.describe(), privateKey: '[hidden]' };
  }
}

/** Checks a `dkim` option and resolves it to one or more signatures. */
export function resolveDkim(option: DkimOption): ResolvedSignature[] {
  const list: readonly DkimOptions[] = Array.isArray(option) ? option : [option as DkimOptions];
  if (list.length === 0) throw invalid('the dkim option is an empty list; give at least one signature or leave it out');
  return list.map((one) => new ResolvedSignature(one));
}

function invalid(message: string): SMTPInvalidArgumentError {
  return new SMTPInvalidArgumentError(`DKIM: ${message}`, { deliveryStatus: 'not-delivered' });
}

// RFC 6376 §3.5: d= and s= are domain names; every label is letters, digits and inner hyphens.
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function checkDomain(domain: unknown): string {
  if (typeof domain !== 'string' || domain === '') throw invalid('domain must be a non-empty string (the d= signing domain)');
  // domainToASCII would quietly drop a trailing CRLF or space: refuse them first.
  const ascii = /[\x00-\x20\x7f]/.test(domain) ? '' : /^[\x21-\x7e]+$/.test(domain) ? domain : domainToASCII(domain);
  const name = ascii.endsWith('.') ? ascii.slice(0, -1) : ascii;
  if (!name || name.length > 253 || !name.split('.').every((label) => LABEL.test(label))) {
    throw invalid(`domain ${JSON.stringify(domain)} is not a valid domain name (labels of letters, digits and inner hyphens)`);
  }
  return name.toLowerCase();
}

function checkSelector(selector: unknown): string {
  if (typeof selector !== 'string' || selector === '') throw invalid('selector must be a non-empty string (the s= selector)');
  if (!selector.split('.').every((label) => LABEL.test(label))) {
    throw invalid(`selector ${JSON.stringify(selector)} has a character DNS labels cannot hold; use letters, digits, inner hyphens and dots`);
  }
  return selector;
}

function toPrivateKey(key: unknown): KeyObject {
  if (key instanceof KeyObject) {
    if (key.type !== 'private') throw invalid(`privateKey is a ${key.type} KeyObject; signing needs the private key`);
    return key;
  }
  if (typeof key !== 'string' && !Buffer.isBuffer(key)) {
    throw invalid('privateKey must be a PEM string, a PEM Buffer or a private KeyObject');
  }
  try {
    return createPrivateKey({ key, format: 'pem' });
  } catch {
    // OpenSSL's reason is left out on purpose: the key text must not reach an error.
    throw invalid('privateKey could not be read as a PEM private key (PKCS#8 or PKCS#1, unencrypted; check that the file holds the whole private key)');
  }
}

function checkAlgorithm(algorithm: unknown, key: KeyObject): DkimAlgorithm {
  const type = key.asymmetricKeyType;
  const fromKey: DkimAlgorithm | undefined = type === 'rsa' ? 'rsa-sha256' : type === 'ed25519' ? 'ed25519-sha256' : undefined;
  if (!fromKey) throw invalid(`a ${type ?? 'symmetric'} key cannot sign DKIM; use an RSA (rsa-sha256) or Ed25519 (ed25519-sha256) key`);
  if (algorithm !== undefined && algorithm !== 'rsa-sha256' && algorithm !== 'ed25519-sha256') {
    throw invalid(`algorithm ${JSON.stringify(algorithm)} is not supported; use 'rsa-sha256' or 'ed25519-sha256'`);
  }
  if (algorithm !== undefined && algorithm !== fromKey) throw invalid(`algorithm '${algorithm}' needs a ${algorithm === 'rsa-sha256' ? 'RSA' : 'Ed25519'} key, but the key is ${type}`);
  if (type === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    // RFC 8301 §3.2: verifiers reject keys under 1024 bits.
    if (bits < 1024) throw invalid(`the RSA key has ${bits} bits; RFC 8301 requires at least 1024 (2048 recommended)`);
  }
  return fromKey;
}

function checkCanonicalization(value: unknown): [Canonicalization, Canonicalization] {
  const text = value ?? 'relaxed/relaxed';
  const match = typeof text === 'string' ? /^(simple|relaxed)\/(simple|relaxed)$/.exec(text) : null;
  if (!match) throw invalid(`canonicalization ${JSON.stringify(value)} must be 'relaxed/relaxed', 'relaxed/simple', 'simple/relaxed' or 'simple/simple'`);
  return [match[1] as Canonicalization, match[2] as Canonicalization];
}

function checkHeaders(headers: unknown): readonly string[] {
  if (headers === undefined) return DEFAULT_SIGNED_HEADERS;
  if (!Array.isArray(headers) || headers.length === 0) throw invalid('headers must be a non-empty list of header field names');
  const names = headers.map((name: unknown) => {
    // RFC 5322 ftext: printable ASCII except the colon.
    if (typeof name !== 'string' || !/^[\x21-\x39\x3b-\x7e]+$/.test(name)) throw invalid(`${JSON.stringify(name)} is not a header field name`);
    return name.toLowerCase();
  });
  if (!names.includes('from')) throw invalid('headers must include From (RFC 6376 §5.4)');
  if (names.includes('dkim-signature')) throw invalid('headers cannot include DKIM-Signature');
  return Object.freeze([...new Set(names)]);
}

function checkExpiry(seconds: unknown): number | undefined {
  if (seconds === undefined) return undefined;
  if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds <= 0) throw invalid('expireAfter must be a positive whole number of seconds');
  return seconds;
}
