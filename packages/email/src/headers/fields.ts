// One header field: how a value set by the caller is checked and written
// under a policy, and how a parsed field's value is read. The kind of a
// field comes from its name, as in Python's email.headerregistry.

import { HeaderInjectionError, InvalidHeaderNameError, PolicyError } from '../errors.js';
import type { Policy } from '../policy.js';
import { Address, formatAddressList, formatMailbox, Group, parseAddressList } from './address.js';
import { isAscii } from './charset.js';
import { decodeEncodedWords, encodeWords } from './encoded-words.js';
import { foldField, splitAtWhitespace } from './fold.js';
import { formatParams, paramsText, parseParams } from './params.js';

export interface HeaderField {
  name: string;
  /** The value as text: unfolded, encoded words decoded. */
  value: string;
  /** Parsed fields: the bytes as read (with line ends), written back unchanged. */
  raw?: Buffer;
  /** Address values given as objects, written from them rather than re-parsed. */
  items?: readonly (Address | Group)[];
}

export type FieldKind = 'address' | 'params' | 'identifier' | 'unstructured';

const ADDRESS = new Set(['from', 'to', 'cc', 'bcc', 'reply-to', 'sender', 'resent-from', 'resent-to', 'resent-cc', 'resent-bcc', 'resent-sender', 'disposition-notification-to']);
const PARAMS = new Set(['content-type', 'content-disposition']);
const IDENTIFIER = new Set(['message-id', 'in-reply-to', 'references', 'content-id', 'resent-message-id', 'date', 'resent-date', 'mime-version', 'content-transfer-encoding']);

export function fieldKind(name: string): FieldKind {
  const lower = name.toLowerCase();
  if (ADDRESS.has(lower)) return 'address';
  if (PARAMS.has(lower)) return 'params';
  if (IDENTIFIER.has(lower)) return 'identifier';
  return 'unstructured';
}

// eslint-disable-next-line no-control-regex
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

export function checkName(name: string): void {
  if (!FIELD_NAME.test(name) || name.length > 200) throw new InvalidHeaderNameError(name);
}

export function checkValue(name: string, value: string): void {
  // eslint-disable-next-line no-control-regex
  if (/[\r\n\0]/.test(value)) throw new HeaderInjectionError(name);
}

export type HeaderValue = string | number | Date | Address | Group | readonly (Address | Group)[];

/** The text form of a value (Unicode, unfolded); address objects are kept too. */
export function toField(name: string, value: HeaderValue, formatDate: (d: Date) => string): HeaderField {
  checkName(name);
  if (value instanceof Date) return { name, value: formatDate(value) };
  if (value instanceof Address || value instanceof Group || Array.isArray(value)) {
    const items = (Array.isArray(value) ? value : [value]) as (Address | Group)[];
    const text = items.map(String).join(', ');
    checkValue(name, text);
    return { name, value: text, items };
  }
  const text = String(value);
  checkValue(name, text);
  return { name, value: text };
}

/** Writes a field (folded, encoded as the policy says), ending with the policy's line end. */
export function renderField(field: HeaderField, policy: Policy): string {
  const { name } = field;
  switch (fieldKind(name)) {
    case 'address': {
      const items = field.items ?? parseAddressList(field.value);
      const text = items.length > 0 ? formatAddressList(items, policy) : field.value;
      return foldField(name, text, policy);
    }
    case 'params': {
      const parsed = parseParams(field.value);
      return foldField(name, formatParams(parsed.value, parsed.params, policy), policy);
    }
    case 'identifier':
      if (!policy.utf8 && !isAscii(field.value)) {
        throw new PolicyError(`the ${name} header has non-ASCII text, which only the SMTPUTF8 policy allows`);
      }
      return foldField(name, field.value, policy);
    default:
      return foldField(name, encodeUnstructured(name, field.value, policy), policy);
  }
}

/**
 * Unstructured text (RFC 5322 §3.2.5 with RFC 2047): runs of words that are
 * non-ASCII (without the UTF-8 policy), that look like encoded words, or that
 * are too long for one line become encoded words; the rest stays as written.
 */
export function encodeUnstructured(name: string, value: string, policy: Policy): string {
  const room = 998 - name.length - 2;
  const pieces = splitAtWhitespace(value);
  const needs = (word: string): boolean =>
    (!policy.utf8 && !isAscii(word)) || /=\?.*\?=/.test(word) || Buffer.byteLength(word) > room;
  if (!pieces.some((p) => needs(p.trim()))) return value;
  const out: string[] = [];
  let run: string[] = [];
  const flush = (): void => {
    if (run.length === 0) return;
    // The run's leading white space stays outside; inner white space is encoded.
    const first = run[0]!;
    const lead = /^[ \t]*/.exec(first)![0];
    const text = first.slice(lead.length) + run.slice(1).join('');
    out.push(lead + encodeWords(text).join(' '));
    run = [];
  };
  for (const piece of pieces) {
    if (needs(piece.trim())) run.push(piece);
    else {
      flush();
      out.push(piece);
    }
  }
  flush();
  return out.join('');
}

/** The text of a parsed field's value (unfolded, encoded words decoded where the kind allows). */
export function decodeValue(name: string, unfolded: string): { value: string; problems: string[] } {
  const trimmed = unfolded.replace(/^[ \t]+/, '').replace(/[ \t]+$/, '');
  switch (fieldKind(name)) {
    case 'address': {
      const items = parseAddressList(trimmed);
      if (items.length === 0) return { value: decodeEncodedWords(trimmed).text, problems: [] };
      return { value: items.map((item) => (item instanceof Address ? formatMailbox(item, null) : String(item))).join(', '), problems: [] };
    }
    case 'params': {
      const parsed = parseParams(trimmed);
      return { value: paramsText(parsed.value, parsed.params), problems: [] };
    }
    case 'identifier':
      return { value: trimmed, problems: [] };
    default: {
      const decoded = decodeEncodedWords(trimmed);
      return { value: decoded.text, problems: decoded.problems };
    }
  }
}
