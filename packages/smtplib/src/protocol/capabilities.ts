// The EHLO/LHLO reply as data (RFC 5321 §4.1.1.1, RFC 1869). Parsed once per
// successful EHLO, thrown away whenever EHLO is sent again (after STARTTLS,
// RFC 3207 §4.2). Keys are lower-cased keywords; values are the parameter
// text. The legacy "AUTH=LOGIN PLAIN" form some servers still send is merged
// into "auth" as smtplib does. Example reply:
//
//   250-mail.example.test
//   250-PIPELINING
//   250-SIZE 10485760
//   250-AUTH PLAIN LOGIN
//   250-AUTH=PLAIN LOGIN
//   250 SMTPUTF8
//
// → Map { pipelining → '', size → '10485760', auth → 'PLAIN LOGIN PLAIN LOGIN', smtputf8 → '' }

import type { Reply } from './reply.js';

const KEYWORD = /^([A-Za-z0-9][A-Za-z0-9-]*) ?/;

export class Capabilities {
  /** Keyword (lower case) → parameters, in the order the server listed them. */
  readonly features: Map<string, string>;
  /** The first line of the reply: the server's name and greeting text. */
  readonly serverName: string;

  constructor(features: Map<string, string> = new Map(), serverName = '') {
    this.features = features;
    this.serverName = serverName;
  }

  /** Parses a positive EHLO reply. Never throws: unknown or odd lines are kept or skipped. */
  static fromReply(reply: Reply): Capabilities {
    const features = new Map<string, string>();
    for (const line of reply.lines.slice(1)) {
      const legacyAuth = /^auth=(.*)$/i.exec(line);
      if (legacyAuth) {
        appendAuth(features, legacyAuth[1]!);
        continue;
      }
      const match = KEYWORD.exec(line);
      if (!match) continue;
      const keyword = match[1]!.toLowerCase();
      const params = line.slice(match[0].length).trim();
      if (keyword === 'auth') appendAuth(features, params);
      else features.set(keyword, params);
    }
    return new Capabilities(features, reply.lines[0] ?? '');
  }

  has(keyword: string): boolean {
    // Keys are lower case, and so is every keyword the library asks about:
    // lower-casing only when that misses saves a string per call (several per message).
    if (this.features.has(keyword)) return true;
    const lower = keyword.toLowerCase();
    return lower !== keyword && this.features.has(lower);
  }

  get(keyword: string): string | undefined {
    return this.features.get(keyword.toLowerCase());
  }

  /** The SASL mechanisms offered, upper case, without duplicates. */
  get authMechanisms(): string[] {
    const auth = this.features.get('auth');
    if (auth === undefined) return [];
    return [...new Set(auth.toUpperCase().split(/\s+/).filter(Boolean))];
  }

  /**
   * The declared maximum message size (RFC 1870), or undefined when there is
   * no usable limit: SIZE absent, "0", not all digits, or beyond 2^53.
   */
  get maxSize(): number | undefined {
    const value = this.features.get('size');
    // Read per message: the last answer is kept for the text it was read from
    // (features is a public Map, so the text is looked up every time).
    if (value === this.#sizeText) return this.#size;
    let size: number | undefined;
    if (value !== undefined && /^\d{1,16}$/.test(value)) {
      size = Number(value);
      if (!(size > 0 && Number.isSafeInteger(size))) size = undefined;
    }
    this.#sizeText = value;
    this.#size = size;
    return size;
  }
  #sizeText: string | undefined;
  #size: number | undefined;
}

function appendAuth(features: Map<string, string>, mechanisms: string): void {
  const previous = features.get('auth');
  features.set('auth', previous ? `${previous} ${mechanisms.trim()}` : mechanisms.trim());
}
