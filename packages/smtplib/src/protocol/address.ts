// Mail addresses: reading them out of RFC 5322 headers, and writing them as
// RFC 5321 paths. Writing is strict: a path is `<` + address + `>` with
// nothing the caller controls outside the brackets, so an address can never
// carry a second command or smuggled ESMTP parameters (go-mail #495).

import { domainToASCII } from 'node:url';
import { SMTPInvalidArgumentError, SMTPNotSupportedError } from '../errors.js';
import { assertSafeArgument } from './commands.js';

export interface ParsedAddress {
  /** Display name ('' when absent). */
  name: string;
  /** The addr-spec ('' when none could be found). */
  address: string;
}

/** Characters that make an address more than a bare addr-spec. */
const SPECIALS = /[\s"(),:;<>\\]/;

// RFC 5321 §4.1.2 Mailbox, with RFC 6531's UTF-8 where atext and labels are
// allowed. A local part alone (RCPT TO:<postmaster>) is accepted.
const ATEXT = "[A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~\\u0080-\\u{10FFFF}]";
const DOT_STRING = `${ATEXT}+(?:\\.${ATEXT}+)*`;
const QUOTED_STRING = '"(?:[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e\\u0080-\\u{10FFFF}]|\\\\[\\x20-\\x7e])*"';
const LABEL_CHAR = '[A-Za-z0-9_\\u0080-\\u{10FFFF}]';
const LABEL = `${LABEL_CHAR}(?:(?:${LABEL_CHAR}|-)*${LABEL_CHAR})?`;
const DOMAIN = `${LABEL}(?:\\.${LABEL})*`;
const ADDRESS_LITERAL = '\\[[\\x21-\\x5a\\x5e-\\x7e]+\\]';
const MAILBOX = new RegExp(`^(?:${DOT_STRING}|${QUOTED_STRING})(?:@(?:${DOMAIN}|${ADDRESS_LITERAL}))?$`, 'u');

/** RFC 5321 §4.5.3.1.3 sets 256; we allow twice that before refusing. */
export const MAX_PATH_LENGTH = 512;

/**
 * Splits an address-list header value into addresses, as Python's
 * email.utils.getaddresses does: quoted strings, comments, angle addresses
 * and groups ("team: a@x, b@y;") are understood; group names are dropped.
 */
export function getaddresses(values: string | readonly string[]): ParsedAddress[] {
  const out: ParsedAddress[] = [];
  for (const value of typeof values === 'string' ? [values] : values) {
    for (const piece of splitTopLevel(value)) {
      const parsed = parseaddr(piece);
      if (parsed.address !== '' || parsed.name !== '') out.push(parsed);
    }
  }
  return out;
}

/**
 * Parses one address ("Name <a@b>", "a@b (Name)", "<a@b>"), like
 * email.utils.parseaddr in its strict form: a comment counts as white space
 * (RFC 5322 CFWS), so "user@good.example(x)evil.example" is not an address
 * ({ name: '', address: '' }), never "user@good.exampleevil.example".
 */
export function parseaddr(text: string): ParsedAddress {
  const trimmed = text.trim();
  if (trimmed === '') return { name: '', address: '' };
  // The common case, a bare addr-spec: nothing to parse.
  if (!SPECIALS.test(trimmed)) return { name: '', address: trimmed };
  const angle = findAngle(trimmed);
  if (angle) {
    const name = unquote(stripComments(trimmed.slice(0, angle.start)).trim());
    const address = stripComments(trimmed.slice(angle.start + 1, angle.end)).trim();
    if (/\s/.test(outsideQuotes(address))) return { name: '', address: '' };
    return { name, address };
  }
  const comments: string[] = [];
  const address = stripComments(trimmed, comments).trim();
  if (/\s/.test(outsideQuotes(address))) return { name: '', address: '' };
  return { name: comments.join(' ').trim(), address };
}

/**
 * The addresses of header values for an envelope: like getaddresses, but a
 * piece that has text and yields no address is SMTPInvalidArgumentError
 * instead of being dropped, so a malformed recipient is never silently lost
 * (or sent as a domain the sender did not write).
 */
export function envelopeAddresses(values: readonly string[], what: string): string[] {
  const out: string[] = [];
  for (const value of values) {
    for (const piece of splitTopLevel(value)) {
      const parsed = parseaddr(piece);
      if (parsed.address !== '') out.push(parsed.address);
      else if (stripComments(piece).trim() !== '') {
        throw new SMTPInvalidArgumentError(`the ${what} header holds ${JSON.stringify(piece.trim())}, which is not an address; nothing was sent`);
      }
    }
  }
  return out;
}

/** smtplib.quoteaddr: the address of `text` in angle brackets ("<>" for an empty one). */
export function quoteaddr(text: string): string {
  const { name, address } = parseaddr(text);
  if (name === '' && address === '') {
    return text.trim().startsWith('<') ? text : `<${text}>`;
  }
  return `<${address}>`;
}

/** smtplib's _addr_only: the bare address of "Name <a@b>", for VRFY and EXPN. */
export function addrOnly(text: string): string {
  assertSafeArgument(text, 'address');
  const { address } = parseaddr(text);
  return address === '' ? text : address;
}

/** Not global (no lastIndex state): one object for every call, as a literal in the body would make a new one per call. */
const ASCII_ONLY = /^[\x00-\x7f]*$/;

/** True when every character is 7-bit ASCII. */
export function isAscii(text: string): boolean {
  return ASCII_ONLY.test(text);
}

export interface PathOptions {
  /** The server offered SMTPUTF8 (and it will be requested for this transaction). */
  smtputf8: boolean;
  /** What the path is for, in error messages ("sender", "recipient"). */
  role: string;
}

/**
 * The address of `text` as an RFC 5321 path, "<local@domain>". Refuses
 * control characters, brackets and unquoted spaces; turns a Unicode domain
 * into A-labels when SMTPUTF8 is not in use, and refuses a Unicode local part
 * then (RFC 6531 leaves no ASCII form for it).
 */
export function toPath(text: string, options: PathOptions): string {
  // The result depends only on the text and the SMTPUTF8 mode: a bulk send
  // repeats the same sender (and often the same recipients) thousands of
  // times, so checked paths are remembered (failures never are).
  const memo = options.smtputf8 ? utf8Paths : asciiPaths;
  const known = typeof text === 'string' ? memo.get(text) : undefined;
  if (known !== undefined) return known;
  const path = checkedPath(text, options);
  if (memo.size >= PATH_MEMO_SIZE) memo.clear();
  memo.set(text, path);
  return path;
}

/** How many checked paths are remembered per mode (then forgotten all at once). */
const PATH_MEMO_SIZE = 512;
const asciiPaths = new Map<string, string>();
const utf8Paths = new Map<string, string>();

function checkedPath(text: string, options: PathOptions): string {
  assertSafeArgument(text, `${options.role} address`);
  let address = parseaddr(text).address;
  if (address === '' && text.trim() !== '' && text.trim() !== '<>') address = text.trim();
  if (address === '') return '<>';
  if (/[<>]/.test(address) || /\s/.test(outsideQuotes(address))) {
    throw new SMTPInvalidArgumentError(
      `${options.role} address ${JSON.stringify(text)} is not a single mailbox (brackets or spaces outside quotes)`,
    );
  }
  if (!MAILBOX.test(address)) {
    throw new SMTPInvalidArgumentError(
      `${options.role} address ${JSON.stringify(text)} is not an RFC 5321 mailbox (local-part@domain: a dot-string or quoted local part, ` +
        `a domain of letters, digits and hyphens or an [address literal]); refused rather than sent as something else`,
    );
  }
  if (!isAscii(address) && !options.smtputf8) {
    address = asciiAddress(address, options.role);
  }
  if (Buffer.byteLength(address) + 2 > MAX_PATH_LENGTH) {
    throw new SMTPInvalidArgumentError(`${options.role} address is longer than ${MAX_PATH_LENGTH} octets`);
  }
  return `<${address}>`;
}

/** "user@bücher.example" → "user@xn--bcher-kva.example"; a Unicode local part cannot be converted. */
export function asciiAddress(address: string, role = 'address'): string {
  const at = address.lastIndexOf('@');
  const local = at === -1 ? address : address.slice(0, at);
  const domain = at === -1 ? '' : address.slice(at + 1);
  if (!isAscii(local)) {
    throw new SMTPNotSupportedError(
      `${role} ${JSON.stringify(address)} has a non-ASCII local part and the server does not support SMTPUTF8`,
    );
  }
  if (isAscii(domain)) return address;
  const ascii = domainToASCII(domain);
  if (ascii === '') throw new SMTPInvalidArgumentError(`${role} domain ${JSON.stringify(domain)} is not a valid IDN`);
  return `${local}@${ascii}`;
}

/** A host name in A-label form (IDN → punycode), for connecting and for TLS checks. */
export function asciiHost(host: string): string {
  if (isAscii(host)) return host;
  const ascii = domainToASCII(host);
  if (ascii === '') throw new SMTPInvalidArgumentError(`host ${JSON.stringify(host)} is not a valid IDN`);
  return ascii;
}

// --- helpers -------------------------------------------------------------

function splitTopLevel(value: string): string[] {
  const parts: string[] = [];
  let depth = 0; // comment nesting
  let quoted = false;
  let angle = false;
  let current = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (quoted) {
      current += c;
      if (c === '\\' && i + 1 < value.length) current += value[++i];
      else if (c === '"') quoted = false;
      continue;
    }
    if (depth > 0) {
      current += c;
      if (c === '\\' && i + 1 < value.length) current += value[++i];
      else if (c === '(') depth++;
      else if (c === ')') depth--;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === '(') depth++;
    else if (c === '<') angle = true;
    else if (c === '>') angle = false;
    else if (!angle && (c === ',' || c === ';')) {
      parts.push(current);
      current = '';
      continue;
    } else if (!angle && c === ':') {
      // "group-name:" — drop the name, keep the members.
      current = '';
      continue;
    }
    current += c;
  }
  parts.push(current);
  return parts;
}

function findAngle(text: string): { start: number; end: number } | undefined {
  let quoted = false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') { i++; continue; }
    if (quoted) { if (c === '"') quoted = false; continue; }
    if (depth > 0) { if (c === '(') depth++; else if (c === ')') depth--; continue; }
    if (c === '"') quoted = true;
    else if (c === '(') depth++;
    else if (c === '<') {
      const end = text.indexOf('>', i + 1);
      if (end !== -1) return { start: i, end };
    }
  }
  return undefined;
}

function stripComments(text: string, comments?: string[]): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  let comment = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && (quoted || depth > 0) && i + 1 < text.length) {
      // A quoted-pair: the next character is literal (an escaped quote or parenthesis ends nothing).
      const pair = c + text[++i]!;
      if (depth > 0) comment += pair.slice(1);
      else out += pair;
      continue;
    }
    if (depth === 0 && c === '"') quoted = !quoted;
    if (!quoted && c === '(') {
      if (depth > 0) comment += c;
      depth++;
      continue;
    }
    if (!quoted && depth > 0 && c === ')') {
      depth--;
      if (depth === 0) {
        comments?.push(comment);
        comment = '';
        // A comment separates what is around it, as white space does (RFC 5322 §3.2.2).
        out += ' ';
      } else comment += c;
      continue;
    }
    if (depth > 0) comment += c;
    else out += c;
  }
  return out;
}

function unquote(text: string): string {
  if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) {
    return text.slice(1, -1).replace(/\\(.)/g, '$1');
  }
  return text;
}

function outsideQuotes(text: string): string {
  return text.replace(/"(?:[^"\\]|\\.)*"/g, '');
}
