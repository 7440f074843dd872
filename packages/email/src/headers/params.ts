// Parameterized headers (Content-Type, Content-Disposition): reading
// `value; name=token; name="quoted"; name*=utf-8''%E2%82%AC;
// name*0*=...; name*1*=...` (RFC 2045, RFC 2231 with continuations, and the
// common RFC 2047 words inside quotes), and writing them back: quoted when
// needed, RFC 2231 for non-ASCII (unless the policy allows UTF-8), split
// into numbered continuations when a value would not fit a line.

import type { Policy } from '../policy.js';
import { decodeCharset, isAscii } from './charset.js';
import { decodeEncodedWords } from './encoded-words.js';

export interface ParamValue {
  /** The value before the first ';', lower-cased for Content-Type. */
  value: string;
  /** Parameters in order, names lower-cased, values decoded. */
  params: Map<string, string>;
}

// Written unquoted only when no reader could take it for RFC 2231 (' * %).
const SAFE_TOKEN = /^[!#$&+\-.^_`|~0-9A-Za-z]+$/;

/** Splits at ';' outside quoted strings. */
function splitParams(text: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted && ch === '\\' && i + 1 < text.length) { current += ch + text[++i]; continue; }
    if (ch === '"') quoted = !quoted;
    if (ch === ';' && !quoted) { out.push(current); current = ''; continue; }
    current += ch;
  }
  out.push(current);
  return out;
}

function unquoteValue(raw: string): string {
  const v = raw.trim();
  if (v.startsWith('"')) {
    const end = v.endsWith('"') && v.length > 1 ? v.length - 1 : v.length;
    return v.slice(1, end).replace(/\\(.)/gs, '$1');
  }
  return v;
}

function percentDecode(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '%' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      for (const b of Buffer.from(text[i]!, 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes);
}

/** Parses `value; a=b; ...`, never throwing. */
export function parseParams(text: string): ParamValue {
  const [head = '', ...rest] = splitParams(text);
  const simple = new Map<string, string>();
  const sections = new Map<string, { index: number; encoded: boolean; raw: string }[]>();
  for (const piece of rest) {
    const eq = piece.indexOf('=');
    if (eq === -1) continue;
    const name = piece.slice(0, eq).trim().toLowerCase();
    const raw = piece.slice(eq + 1).trim();
    if (name === '') continue;
    const m = /^([^*]+)\*(?:(\d+)(\*)?|)$/.exec(name);
    if (m) {
      const base = m[1]!;
      const index = m[2] === undefined ? 0 : Number(m[2]);
      const encoded = m[2] === undefined ? true : m[3] === '*';
      const list = sections.get(base) ?? [];
      if (list.length < 1000 && !list.some((s) => s.index === index)) list.push({ index, encoded, raw });
      sections.set(base, list);
    } else if (!simple.has(name)) {
      const value = unquoteValue(raw);
      simple.set(name, value.includes('=?') ? decodeEncodedWords(value).text : value);
    }
  }
  const params = new Map(simple);
  for (const [name, list] of sections) {
    list.sort((a, b) => a.index - b.index);
    let charset = '';
    const bytes: Buffer[] = [];
    for (const [i, section] of list.entries()) {
      let raw = unquoteValue(section.raw);
      if (section.encoded) {
        if (i === 0) {
          const m = /^([^']*)'[^']*'(.*)$/s.exec(raw);
          if (m) { charset = m[1]!; raw = m[2]!; }
        }
        bytes.push(percentDecode(raw));
      } else {
        bytes.push(Buffer.from(raw, 'utf8'));
      }
    }
    params.set(name, decodeCharset(Buffer.concat(bytes), charset || 'utf-8').text);
  }
  return { value: head.trim(), params };
}

function quoteIfNeeded(value: string): string {
  return SAFE_TOKEN.test(value) ? value : `"${value.replace(/(["\\])/g, '\\$1')}"`;
}

// A continuation section's text stays under this many characters so each
// `; name*N*=...` piece fits a folded line.
const SECTION = 60;

/** Writes `value; name=...` pieces, separated by "; " (folding happens at the spaces). */
export function formatParams(value: string, params: ReadonlyMap<string, string>, policy: Policy): string {
  let out = value;
  for (const [name, v] of params) {
    // eslint-disable-next-line no-control-regex
    // Control characters, and text a reader would decode as RFC 2047 words, go as RFC 2231 too.
    const needs2231 = (!isAscii(v) && !policy.utf8) || /[\x00-\x1f\x7f]/.test(v) || /=\?.*\?=/.test(v);
    if (!needs2231) {
      const quoted = quoteIfNeeded(v);
      if (name.length + quoted.length + 3 <= policy.maxLineLength - 1) {
        out += `; ${name}=${quoted}`;
        continue;
      }
      if (isAscii(v)) {
        // Long ASCII value: numbered, unencoded continuations (RFC 2231 §3).
        const parts = v.match(new RegExp(`[^]{1,${SECTION}}`, 'g')) ?? [''];
        parts.forEach((part, i) => { out += `; ${name}*${i}=${quoteIfNeeded(part)}`; });
        continue;
      }
    }
    const encoded = percentEncode(v);
    const first = `utf-8''`;
    if (name.length + first.length + encoded.join('').length + 3 <= policy.maxLineLength - 1) {
      out += `; ${name}*=${first}${encoded.join('')}`;
      continue;
    }
    // Split between encoded characters, never inside one.
    const sections: string[] = [];
    let current = first;
    for (const piece of encoded) {
      if (current.length + piece.length > SECTION && current !== first && current !== '') {
        sections.push(current);
        current = '';
      }
      current += piece;
    }
    sections.push(current);
    sections.forEach((section, i) => { out += `; ${name}*${i}*=${section}`; });
  }
  return out;
}

// attr-char of RFC 2231 / RFC 5987: what may stand for itself.
const ATTR_CHAR = /[A-Za-z0-9!#$&+\-.^_`|~]/;

/** Percent-encodes each character (its UTF-8 bytes) as one piece. */
function percentEncode(text: string): string[] {
  const pieces: string[] = [];
  for (const ch of text) {
    if (ATTR_CHAR.test(ch) && ch.length === 1) pieces.push(ch);
    else pieces.push([...Buffer.from(ch, 'utf8')].map((b) => '%' + b.toString(16).toUpperCase().padStart(2, '0')).join(''));
  }
  return pieces;
}

const VALUE_POLICY = { utf8: true, maxLineLength: Number.POSITIVE_INFINITY } as Policy;

/** The text form of a parameterized value (what get() returns): Unicode, quoted where needed, never split. */
export function paramsText(value: string, params: ReadonlyMap<string, string>): string {
  return formatParams(value, params, VALUE_POLICY);
}
