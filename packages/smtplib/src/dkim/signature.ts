// Computing DKIM-Signature header fields (RFC 6376 §3.5, §3.7, §5) from the
// message as it goes on the wire: CRLF line ends, before dot-stuffing.
// MessageHasher takes the message in chunks: the header block is kept (it is
// bounded), the body only passes through the body hashers.

import { SMTPInvalidArgumentError } from '../errors.js';
import { findHeaderEnd, MAX_HEADER_BLOCK, parseHeaderFields, type HeaderField } from '../message/headers.js';
import { DataEncoder, type EncoderMode } from '../protocol/data-encoder.js';
import { canonicalHeader, createBodyHasher, type BodyHasher, type Canonicalization } from './canonicalize.js';
import { OVERSIGNED_HEADERS, type ResolvedSignature } from './options.js';

const EMPTY = Buffer.alloc(0);

/**
 * Hashes one message for a set of signatures. Feed it raw message chunks with
 * `update`; `signatures()` then returns the DKIM-Signature fields to put in
 * front of the message. The wire normalization (bare CR/LF to CRLF, a final
 * CRLF) is the one the transaction applies, so the hashed bytes are the sent
 * ones.
 */
export class MessageHasher {
  readonly #signatures: readonly ResolvedSignature[];
  readonly #encoder: DataEncoder;
  readonly #bodies = new Map<Canonicalization, BodyHasher>();
  #head: Buffer = EMPTY;
  #headerBlock: Buffer | undefined;

  /** `mode`: 'binary' for BODY=BINARYMIME (sent unchanged), else the CRLF normalization of DATA and BDAT. */
  constructor(signatures: readonly ResolvedSignature[], mode: EncoderMode = 'bdat') {
    this.#signatures = signatures;
    this.#encoder = new DataEncoder(mode === 'binary' ? 'binary' : 'bdat');
    for (const signature of signatures) {
      if (!this.#bodies.has(signature.bodyCanonicalization)) this.#bodies.set(signature.bodyCanonicalization, createBodyHasher(signature.bodyCanonicalization));
    }
  }

  update(chunk: Uint8Array): void {
    for (const piece of this.#encoder.encode(chunk)) this.#take(piece);
  }

  /** Ends the message and signs it; returns the DKIM-Signature fields, CRLF-terminated, in signing order. */
  signatures(now: Date = new Date()): Buffer {
    this.#take(this.#encoder.end());
    if (this.#headerBlock === undefined) {
      // No blank line: the whole message is header fields and the body is empty.
      this.#headerBlock = this.#head;
      this.#head = EMPTY;
    }
    const fields = parseHeaderFields(this.#headerBlock);
    if (!fields.some((f) => f.name.toLowerCase() === 'from')) {
      throw new SMTPInvalidArgumentError('DKIM: the message has no From header field, which every DKIM signature must cover (RFC 6376 §5.4); it was not sent', {
        deliveryStatus: 'not-delivered',
      });
    }
    const bodyHashes = new Map<Canonicalization, string>();
    for (const [canonicalization, hasher] of this.#bodies) bodyHashes.set(canonicalization, hasher.digest());
    const timestamp = Math.floor(now.getTime() / 1000);
    const out = this.#signatures.map((signature) =>
      signatureField(signature, this.#headerBlock!, fields, bodyHashes.get(signature.bodyCanonicalization)!, timestamp));
    return Buffer.from(out.join(''), 'latin1');
  }

  #take(piece: Buffer): void {
    if (piece.length === 0) return;
    if (this.#headerBlock !== undefined) {
      for (const hasher of this.#bodies.values()) hasher.update(piece);
      return;
    }
    this.#head = this.#head.length ? Buffer.concat([this.#head, piece]) : piece;
    const end = findHeaderEnd(this.#head);
    if (end === -1) {
      if (this.#head.length > MAX_HEADER_BLOCK) {
        throw new SMTPInvalidArgumentError(`DKIM: the message header block is larger than ${MAX_HEADER_BLOCK} bytes`, { deliveryStatus: 'not-delivered' });
      }
      return;
    }
    // The blank line that ends the header block belongs to neither side.
    this.#headerBlock = this.#head.subarray(0, end);
    const body = this.#head.subarray(end);
    this.#head = EMPTY;
    if (body.length) for (const hasher of this.#bodies.values()) hasher.update(body);
  }
}

/** Signs every message-dependent part and returns the folded DKIM-Signature field. */
function signatureField(signature: ResolvedSignature, block: Buffer, fields: readonly HeaderField[], bodyHash: string, timestamp: number): string {
  const { names, selected } = selectHeaders(signature.headers, fields);
  const tags = [
    'v=1',
    `a=${signature.algorithm}`,
    `c=${signature.canonicalization}`,
    `d=${signature.domain}`,
    `s=${signature.selector}`,
    `t=${timestamp}`,
    ...(signature.expireAfter !== undefined ? [`x=${timestamp + signature.expireAfter}`] : []),
    headerList(names),
    `bh=${bodyHash}`,
  ];
  const prefix = `${fold('DKIM-Signature:', atoms(tags))}\r\n b=`;
  const canonical = selected.map((field) => canonicalHeader(block.subarray(field.start, field.end), signature.headerCanonicalization));
  // The signature field itself with an empty b=, without its final CRLF (§3.7).
  const own = canonicalHeader(Buffer.from(`${prefix}\r\n`, 'latin1'), signature.headerCanonicalization);
  canonical.push(own.subarray(0, own.length - 2));
  const b = signature.sign(Buffer.concat(canonical));
  return `${prefix}${(b.match(/.{1,72}/g) ?? []).join('\r\n  ')}\r\n`;
}

/**
 * The h= list and the fields it covers, bottom-up per name (§5.4.2). A name
 * signs every instance present; From/To/Subject/Date, when present, get one
 * entry more, which covers a field that does not exist, so adding a second
 * one breaks the signature.
 */
function selectHeaders(wanted: readonly string[], fields: readonly HeaderField[]): { names: string[]; selected: HeaderField[] } {
  const names: string[] = [];
  const selected: HeaderField[] = [];
  for (const name of wanted) {
    const instances = fields.filter((f) => f.name.toLowerCase() === name);
    for (let i = instances.length - 1; i >= 0; i--) {
      names.push(name);
      selected.push(instances[i]!);
    }
    // Only over fields present: MTAs add a missing Date (Postfix does for
    // local clients), which a null-signed Date would turn into a failure.
    if (instances.length > 0 && OVERSIGNED_HEADERS.includes(name)) names.push(name);
  }
  return { names, selected };
}

/** A piece of the field that a fold may precede; `space`: joined to the previous one by a space. */
interface Atom {
  text: string;
  space: boolean;
}

/** Tag atoms: "k=v;" each, and the h= list split after each colon so it can fold there (FWS is allowed, §3.5). */
function atoms(tags: readonly (string | readonly string[])[]): Atom[] {
  const out: Atom[] = [];
  for (const tag of tags) {
    if (typeof tag === 'string') {
      out.push({ text: `${tag};`, space: true });
      continue;
    }
    tag.forEach((piece, i) => out.push({ text: piece + (i === tag.length - 1 ? ';' : ''), space: i === 0 }));
  }
  return out;
}

/** "h=" and the names, as pieces ending in ":" except the last. */
function headerList(names: readonly string[]): string[] {
  return names.map((name, i) => `${i === 0 ? 'h=' : ''}${name}${i === names.length - 1 ? '' : ':'}`);
}

/** Joins the atoms, starting a continuation line before a line would pass 78 characters. */
function fold(start: string, pieces: readonly Atom[]): string {
  let out = start;
  let line = start.length;
  for (const { text, space } of pieces) {
    const sep = space ? ' ' : '';
    if (line + sep.length + text.length > 78) {
      out += `\r\n ${text}`;
      line = 1 + text.length;
    } else {
      out += sep + text;
      line += sep.length + text.length;
    }
  }
  return out;
}
