// Addresses (RFC 5322 §3.4): the Address and Group values of From/To/Cc/...
// headers, a tolerant parser for address lists (quoted strings, comments,
// angle addresses, groups, encoded words in display names), and the writer,
// which quotes or encodes display names and converts IDN domains to
// punycode unless the policy allows UTF-8.

import { domainToASCII, domainToUnicode } from 'node:url';
import { AddressError, PolicyError } from '../errors.js';
import type { Policy } from '../policy.js';
import { isAscii } from './charset.js';
import { decodeEncodedWords, encodeWords } from './encoded-words.js';

const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10ffff}]+$/u;
const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10ffff}]+(\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10ffff}]+)*$/u;
// A display name that can be written as a phrase of atoms without quotes.
const PLAIN_PHRASE = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ \u0080-\u{10ffff}]*$/u;

export interface AddressInit {
  displayName?: string;
  username?: string;
  domain?: string;
  /** "user@example.com"; overrides username and domain. */
  addrSpec?: string;
}

/** One mailbox: Python's email.headerregistry.Address. */
export class Address {
  readonly displayName: string;
  /** The local part, unquoted. */
  readonly username: string;
  /** The domain, as given (Unicode for IDN). */
  readonly domain: string;

  constructor(init: AddressInit);
  constructor(displayName?: string, username?: string, domain?: string, addrSpec?: string);
  constructor(a: AddressInit | string = '', username = '', domain = '', addrSpec?: string) {
    const init: AddressInit = typeof a === 'object' ? a : { displayName: a, username, domain, ...(addrSpec === undefined ? {} : { addrSpec }) };
    this.displayName = init.displayName ?? '';
    if (init.addrSpec !== undefined) {
      const spec = splitAddrSpec(init.addrSpec);
      this.username = spec.username;
      this.domain = spec.domain;
    } else {
      this.username = init.username ?? '';
      this.domain = init.domain ?? '';
    }
    for (const [what, value] of [['display name', this.displayName], ['username', this.username], ['domain', this.domain]] as const) {
      // eslint-disable-next-line no-control-regex
      if (/[\r\n\0]/.test(value)) throw new AddressError(`the ${what} ${JSON.stringify(value)} contains CR, LF or NUL`);
    }
    Object.freeze(this);
  }

  /** "user@example.com", with the local part quoted when it must be. */
  get addrSpec(): string {
    const local = DOT_ATOM.test(this.username) || this.username === '' ? this.username : quoteString(this.username);
    return this.domain === '' ? local : `${local}@${this.domain}`;
  }

  /** Python's str(Address): `Name <user@example.com>` with Unicode kept. */
  toString(): string {
    return formatMailbox(this, null);
  }

  toJSON(): { displayName: string; addrSpec: string } {
    return { displayName: this.displayName, addrSpec: this.addrSpec };
  }
}

/** A named group of addresses ("Team: a@x, b@y;"): Python's email.headerregistry.Group. */
export class Group {
  readonly displayName: string | null;
  readonly addresses: readonly Address[];
  constructor(displayName: string | null = null, addresses: readonly Address[] = []) {
    this.displayName = displayName;
    this.addresses = Object.freeze([...addresses]);
    Object.freeze(this);
  }
  toString(): string {
    return this.displayName === null
      ? this.addresses.map(String).join(', ')
      : `${formatPhrase(this.displayName, null)}: ${this.addresses.map(String).join(', ')};`;
  }
}

function splitAddrSpec(spec: string): { username: string; domain: string } {
  const at = spec.lastIndexOf('@');
  const local = at === -1 ? spec : spec.slice(0, at);
  return { username: unquote(local), domain: at === -1 ? '' : spec.slice(at + 1) };
}

function unquote(text: string): string {
  return text.startsWith('"') && text.endsWith('"') && text.length >= 2 ? text.slice(1, -1).replace(/\\(.)/gs, '$1') : text;
}

function quoteString(text: string): string {
  return `"${text.replace(/(["\\])/g, '\\$1')}"`;
}

/** A display name as it appears in a header: atoms, a quoted string, or (policy without UTF-8) encoded words. */
function formatPhrase(name: string, policy: Policy | null): string {
  // A name that looks like an encoded word is encoded itself, or a reader would decode it.
  if ((policy && !policy.utf8 && !isAscii(name)) || /=\?.*\?=/.test(name)) return encodeWords(name).join(' ');
  if (PLAIN_PHRASE.test(name) && !/^ | $|  /.test(name) && !/=\?/.test(name)) return name;
  return quoteString(name);
}

/** Writes a mailbox; with a policy, the domain and name follow its 7-bit or UTF-8 rules. */
export function formatMailbox(address: Address, policy: Policy | null): string {
  let spec = address.addrSpec;
  if (policy && !policy.utf8) {
    if (!isAscii(address.username)) {
      throw new PolicyError(`the address ${JSON.stringify(address.addrSpec)} has a non-ASCII local part; it can only be sent with the SMTPUTF8 policy`);
    }
    if (!isAscii(address.domain)) {
      const ascii = domainToASCII(address.domain);
      if (ascii === '') throw new AddressError(`${JSON.stringify(address.domain)} is not a valid domain name`);
      spec = new Address({ username: address.username, domain: ascii }).addrSpec;
    }
  }
  if (address.displayName === '') return spec === '' ? '<>' : spec;
  return `${formatPhrase(address.displayName, policy)} <${spec}>`;
}

/**
 * Python's email.utils.formataddr: `"Name" <addr>`, with the name quoted or,
 * when `ascii` is set (the default), encoded as RFC 2047 words if non-ASCII.
 */
export function formatAddress(pair: readonly [string, string] | Address, options: { ascii?: boolean } = {}): string {
  const address = pair instanceof Address ? pair : new Address({ displayName: pair[0], addrSpec: pair[1] });
  return formatMailbox(address, options.ascii === false ? null : ASCII_ONLY);
}

const ASCII_ONLY = { utf8: false } as Policy;

/** Writes a whole address header value (mailboxes and groups, comma separated). */
export function formatAddressList(items: readonly (Address | Group)[], policy: Policy): string {
  return items.map((item) => {
    if (item instanceof Address) return formatMailbox(item, policy);
    const members = item.addresses.map((a) => formatMailbox(a, policy)).join(', ');
    return item.displayName === null ? members : `${formatPhrase(item.displayName, policy)}: ${members};`;
  }).join(', ');
}

// --- parsing -------------------------------------------------------------------

interface Token {
  kind: 'atom' | 'quoted' | 'comment' | 'angle' | 'special';
  text: string;
  /** White space came before it. */
  space: boolean;
}

function tokenize(value: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let space = false;
  const push = (kind: Token['kind'], text: string): void => {
    tokens.push({ kind, text, space });
    space = false;
  };
  while (i < value.length) {
    const ch = value[i]!;
    if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n') { i++; space = true; continue; }
    if (ch === '"') {
      let j = i + 1;
      let text = '';
      while (j < value.length && value[j] !== '"') {
        if (value[j] === '\\' && j + 1 < value.length) j++;
        text += value[j];
        j++;
      }
      push('quoted', text);
      i = j + 1;
    } else if (ch === '(') {
      let depth = 0;
      let j = i;
      let text = '';
      for (; j < value.length; j++) {
        const c = value[j]!;
        if (c === '\\' && j + 1 < value.length) { text += value[++j]; continue; }
        if (c === '(') { depth++; if (depth === 1) continue; }
        if (c === ')') { depth--; if (depth === 0) break; }
        text += c;
      }
      push('comment', text);
      i = j + 1;
    } else if (ch === '<') {
      const end = value.indexOf('>', i);
      const stop = end === -1 ? value.length : end;
      push('angle', value.slice(i + 1, stop));
      i = stop + 1;
    } else if (ch === ',' || ch === ';' || ch === ':' || ch === '@' || ch === '.' || ch === '>') {
      push('special', ch);
      i++;
    } else {
      let j = i;
      while (j < value.length && !/[ \t\r\n"(),;:<>@.]/.test(value[j]!)) j++;
      if (j === i) j++;
      push('atom', value.slice(i, j));
      i = j;
    }
  }
  return tokens;
}

function phraseText(tokens: Token[]): string {
  let out = '';
  for (const t of tokens) {
    if (t.kind === 'comment' || t.kind === 'angle' || (t.kind === 'special' && t.text !== '.')) continue;
    out += (out !== '' && t.space ? ' ' : '') + t.text;
  }
  return decodeEncodedWords(out).text;
}

function mailboxFrom(tokens: Token[]): Address | null {
  const angleIndex = tokens.findIndex((t) => t.kind === 'angle');
  if (angleIndex !== -1) {
    const inner = tokens[angleIndex]!.text.replace(/^\s*(@[^:]*:)/, ''); // obsolete route
    const spec = tokenize(inner).filter((t) => t.kind !== 'comment');
    return makeAddress(phraseText(tokens.slice(0, angleIndex)), spec);
  }
  const parts = tokens.filter((t) => t.kind !== 'comment');
  if (parts.length === 0) return null;
  return makeAddress('', parts);
}

function makeAddress(displayName: string, spec: Token[]): Address {
  const at = spec.map((t) => t.text).lastIndexOf('@');
  const render = (ts: Token[]): string => ts.map((t) => (t.kind === 'quoted' ? quoteString(t.text) : t.text)).join('');
  const localTokens = at === -1 ? spec : spec.slice(0, at);
  const local = localTokens.length === 1 && localTokens[0]!.kind === 'quoted' ? localTokens[0]!.text : unquote(render(localTokens));
  return new Address({ displayName, username: local, domain: at === -1 ? '' : render(spec.slice(at + 1)) });
}

/** Parses an address-list value into addresses and groups, never throwing. */
export function parseAddressList(value: string): (Address | Group)[] {
  const tokens = tokenize(value);
  const out: (Address | Group)[] = [];
  let current: Token[] = [];
  let group: { name: string; members: Address[] } | null = null;
  const endMailbox = (): void => {
    const mailbox = current.length > 0 ? safe(() => mailboxFrom(current)) : null;
    if (mailbox) (group ? group.members : out).push(mailbox);
    current = [];
  };
  for (const token of tokens) {
    if (token.kind === 'special' && token.text === ',') endMailbox();
    else if (token.kind === 'special' && token.text === ':' && group === null && !current.some((t) => t.kind === 'angle')) {
      group = { name: phraseText(current), members: [] };
      current = [];
    } else if (token.kind === 'special' && token.text === ';') {
      endMailbox();
      if (group) out.push(new Group(group.name, group.members));
      group = null;
    } else current.push(token);
  }
  endMailbox();
  if (group) out.push(new Group(group.name, group.members));
  return out;
}

function safe<T>(f: () => T): T | null {
  try { return f(); } catch { return null; }
}

/** Every mailbox in an address-list value, groups flattened. */
export function parseAddresses(value: string): Address[] {
  return parseAddressList(value).flatMap((item) => (item instanceof Group ? [...item.addresses] : [item]));
}

/** The Unicode form of a domain (IDN): "xn--bcher-kva.example" → "bücher.example". */
export function unicodeDomain(domain: string): string {
  return /(^|\.)xn--/i.test(domain) ? domainToUnicode(domain) || domain : domain;
}

export { ATEXT };
