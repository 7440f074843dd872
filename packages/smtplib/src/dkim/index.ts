// DKIM signing (RFC 6376, RFC 8463): the public face of this directory.

import { createPublicKey, KeyObject } from 'node:crypto';
import { SMTPInvalidArgumentError } from '../errors.js';
import { toMessageSource, type MessageInput, type MessageSource } from '../message/source.js';
import type { EncoderMode } from '../protocol/data-encoder.js';
import { resolveDkim, type DkimOption, type ResolvedSignature } from './options.js';
import { MessageHasher } from './signature.js';
import { signBytes, signStream } from './source.js';

export { DKIM_SPOOL_THRESHOLD } from './source.js';
export { DEFAULT_SIGNED_HEADERS, OVERSIGNED_HEADERS, type DkimOptions, type DkimOption, type DkimAlgorithm, type DkimCanonicalization } from './options.js';

const resolved = new WeakMap<DkimSigner, readonly ResolvedSignature[]>();

/**
 * One or more DKIM signatures, checked once (keys parsed, names validated)
 * and reusable for any number of messages. The `dkim` option of SMTP, LMTP,
 * SMTPPool and their send calls takes this or the plain options.
 */
export class DkimSigner {
  constructor(option: DkimOption) {
    resolved.set(this, Object.freeze(resolveDkim(option)));
  }

  /** What each signature is, without its key. */
  get signatures(): { domain: string; selector: string; algorithm: string; canonicalization: string }[] {
    return resolved.get(this)!.map((s) => s.describe());
  }

  /**
   * The DKIM-Signature header fields (CRLF-terminated) for a message, as
   * they would be put in front of it when sent. The message is read as the
   * send would read it (a one-shot stream is consumed).
   */
  async sign(message: MessageInput): Promise<Buffer> {
    const hasher = new MessageHasher(resolved.get(this)!);
    const source = toMessageSource(message);
    if (source.kind === 'bytes') hasher.update(source.bytes);
    else for await (const chunk of source.chunks) hasher.update(chunk);
    return hasher.signatures();
  }

  toJSON(): unknown {
    return { signatures: this.signatures };
  }

  // util.inspect.custom without importing node:util (about 0.3 ms of every
  // import of smtplib, Node 20): the registered symbol is the same, and Node
  // hands the inspect function to the method.
  [Symbol.for('nodejs.util.inspect.custom')](_depth: number, _options: unknown, inspect: (value: unknown) => string): string {
    return `DkimSigner ${inspect(this.signatures)}`;
  }
}

/** Resolves the `dkim` option (plain options or a DkimSigner); throws SMTPInvalidArgumentError when it is malformed. */
export function toDkimSigner(option: DkimOption | DkimSigner): DkimSigner {
  return option instanceof DkimSigner ? option : new DkimSigner(option);
}

/**
 * What a send needs to carry its signatures: bytes in memory are signed at
 * once (`source`); a stream is signed by `prepare`, which the transaction
 * runs when its turn comes, and whose `release` frees a spool file at its end.
 */
export type DkimPlan =
  | { source: MessageSource; prepare?: undefined }
  | { source?: undefined; prepare: () => Promise<{ source: MessageSource; release: () => Promise<void> }> };

export function planDkim(signer: DkimSigner, source: MessageSource, mode: EncoderMode): DkimPlan {
  const signatures = resolved.get(signer)!;
  if (source.kind === 'bytes') return { source: signBytes(source, signatures, mode) };
  return {
    prepare: async () => {
      const signed = await signStream(source, signatures, mode);
      return { source: signed.source, release: signed.cleanup };
    },
  };
}

/**
 * The TXT record to publish at `<selector>._domainkey.<domain>` for a key
 * (private or public; only the public half is written): SubjectPublicKeyInfo
 * for RSA (RFC 6376 §3.6.1), the raw 32-byte key for Ed25519 (RFC 8463 §4).
 */
export function dkimDnsRecord(key: string | Buffer | KeyObject): string {
  let publicKey: KeyObject;
  try {
    publicKey = key instanceof KeyObject && key.type === 'public' ? key : createPublicKey(key);
  } catch {
    throw new SMTPInvalidArgumentError('DKIM: the key could not be read as a PEM key or KeyObject');
  }
  if (publicKey.asymmetricKeyType === 'rsa') {
    return `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`;
  }
  if (publicKey.asymmetricKeyType === 'ed25519') {
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    return `v=DKIM1; k=ed25519; p=${spki.subarray(spki.length - 32).toString('base64')}`;
  }
  throw new SMTPInvalidArgumentError(`DKIM: a ${publicKey.asymmetricKeyType ?? 'symmetric'} key has no DKIM record; use RSA or Ed25519`);
}
