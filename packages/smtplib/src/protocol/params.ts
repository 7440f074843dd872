// ESMTP parameters for MAIL FROM and RCPT TO: typed options, the smtplib
// list-of-strings form, validation against the RFC 5321 §4.1.2 grammar, and
// xtext (RFC 3461 §4) for the DSN values that need it.
//
// What the caller wrote explicitly (`extra`, and every parameter given in
// smtplib's list-of-strings form) is sent as written, advertised or not, as
// smtplib does: the caller asked for it. What the library adds on its own
// (SIZE=, BODY=7BIT) and the typed DSN options (RFC 3461, advisory) are sent
// only when the extension is advertised. The parameters whose absence changes
// what the message means throw instead: REQUIRETLS (RFC 8689), SMTPUTF8
// (RFC 6531), BODY=8BITMIME/BINARYMIME.

import { SMTPInvalidArgumentError, SMTPNotSupportedError } from '../errors.js';
import type { Capabilities } from './capabilities.js';
import { assertSafeArgument } from './commands.js';
import { assertKnownKeys } from '../known-keys.js';

/** Keywords the caller wrote in smtplib's string form: sent whether advertised or not. */
const WRITTEN = Symbol('smtplib.params.written');
type Written = { [WRITTEN]?: ReadonlySet<string> };

const MAIL_OPTION_KEYS = ['size', 'body', 'smtputf8', 'ret', 'envid', 'requireTls', 'extra'];
const RCPT_OPTION_KEYS = ['notify', 'orcpt', 'extra'];

export type BodyType = '7BIT' | '8BITMIME' | 'BINARYMIME';
export type NotifyType = 'NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY';

/** Typed MAIL FROM parameters. */
export interface MailOptions {
  /** SIZE= (RFC 1870). sendmail() fills this in itself when it knows the size. */
  size?: number;
  /** BODY= (RFC 6152, RFC 3030). */
  body?: BodyType;
  /** SMTPUTF8 (RFC 6531). Added automatically when an address is not ASCII. */
  smtputf8?: boolean;
  /** RET= (RFC 3461): return the full message or only headers in a DSN. */
  ret?: 'FULL' | 'HDRS';
  /** ENVID= (RFC 3461), xtext-encoded on the wire. */
  envid?: string;
  /** REQUIRETLS (RFC 8689): refused unless the session is TLS and the server offers it. */
  requireTls?: boolean;
  /** Any other parameter: keyword → value (true for a bare keyword). Sent as written, advertised or not. */
  extra?: Record<string, string | true>;
}

/** Typed RCPT TO parameters. */
export interface RcptOptions {
  /** NOTIFY= (RFC 3461): NEVER alone, or any of SUCCESS, FAILURE, DELAY. */
  notify?: NotifyType | readonly NotifyType[];
  /** ORCPT= (RFC 3461): the original recipient; "rfc822;" is added when no type is given. */
  orcpt?: string;
  /** Any other parameter: keyword → value (true for a bare keyword). Sent as written, advertised or not. */
  extra?: Record<string, string | true>;
}

const KEYWORD = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
// esmtp-value: any char except "=", SP and controls (UTF-8 allowed, RFC 6531 §3.3).
const VALUE = /^[^=\s\x00-\x1f\x7f]+$/;

/** Turns smtplib-style option strings ("NOTIFY=SUCCESS", "SMTPUTF8") into a keyword map. */
export function parseOptionStrings(options: readonly string[], what: string): Map<string, string | true> {
  const map = new Map<string, string | true>();
  for (const option of options) {
    assertSafeArgument(option, what);
    for (const word of option.split(' ').filter(Boolean)) {
      const eq = word.indexOf('=');
      const keyword = eq === -1 ? word : word.slice(0, eq);
      const value = eq === -1 ? true : word.slice(eq + 1);
      checkParameter(keyword, value, what);
      map.set(keyword.toUpperCase(), value);
    }
  }
  return map;
}

function checkParameter(keyword: string, value: string | true, what: string): void {
  if (!KEYWORD.test(keyword)) {
    throw new SMTPInvalidArgumentError(`${what}: ${JSON.stringify(keyword)} is not a valid ESMTP keyword`);
  }
  if (value !== true) {
    assertSafeArgument(value, what);
    if (!VALUE.test(value)) {
      throw new SMTPInvalidArgumentError(`${what}: value of ${keyword} must not contain "=", spaces or controls`);
    }
  }
}

/** RFC 3461 §4: xtext. "+" and "=" and anything outside "!".."~" become "+HH". */
export function encodeXtext(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += byte < 33 || byte > 126 || byte === 0x2b || byte === 0x3d
      ? `+${byte.toString(16).toUpperCase().padStart(2, '0')}`
      : String.fromCharCode(byte);
  }
  return out;
}

/** Inverse of encodeXtext; throws on malformed input. */
export function decodeXtext(xtext: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < xtext.length; i++) {
    const c = xtext.charCodeAt(i);
    if (c === 0x2b) {
      const hex = xtext.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) throw new SMTPInvalidArgumentError(`malformed xtext ${JSON.stringify(xtext)}`);
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c < 33 || c > 126 || c === 0x3d) {
      throw new SMTPInvalidArgumentError(`malformed xtext ${JSON.stringify(xtext)}`);
    } else bytes.push(c);
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Normalizes the two accepted shapes of MAIL options into the typed form. */
export function toMailOptions(options: MailOptions | readonly string[] | undefined): MailOptions {
  if (!options) return {};
  if (!Array.isArray(options)) return { ...checkOptionObject(options as MailOptions, MAIL_OPTION_KEYS, 'MAIL option') };
  const map = parseOptionStrings(options as readonly string[], 'mail option');
  const typed: MailOptions & Written = { [WRITTEN]: new Set(map.keys()) };
  const extra: Record<string, string | true> = {};
  for (const [keyword, value] of map) {
    switch (keyword) {
      case 'SIZE': typed.size = Number(value); break;
      case 'BODY': typed.body = String(value).toUpperCase() as BodyType; break;
      case 'SMTPUTF8': typed.smtputf8 = true; break;
      case 'RET': typed.ret = String(value).toUpperCase() as 'FULL' | 'HDRS'; break;
      case 'ENVID': typed.envid = decodeXtext(String(value)); break;
      case 'REQUIRETLS': typed.requireTls = true; break;
      // smtplib users pass "8bitmime" to mean BODY=8BITMIME.
      case '8BITMIME': typed.body = '8BITMIME'; break;
      default: extra[keyword] = value;
    }
  }
  if (Object.keys(extra).length) typed.extra = extra;
  return typed;
}

/** Normalizes the two accepted shapes of RCPT options into the typed form. */
export function toRcptOptions(options: RcptOptions | readonly string[] | undefined): RcptOptions {
  if (!options) return {};
  if (!Array.isArray(options)) return { ...checkOptionObject(options as RcptOptions, RCPT_OPTION_KEYS, 'RCPT option') };
  const map = parseOptionStrings(options as readonly string[], 'rcpt option');
  const typed: RcptOptions & Written = { [WRITTEN]: new Set(map.keys()) };
  const extra: Record<string, string | true> = {};
  for (const [keyword, value] of map) {
    if (keyword === 'NOTIFY') typed.notify = String(value).toUpperCase().split(',') as NotifyType[];
    else if (keyword === 'ORCPT') typed.orcpt = decodeOrcpt(String(value));
    else extra[keyword] = value;
  }
  if (Object.keys(extra).length) typed.extra = extra;
  return typed;
}

/** An options object: known keys only (a misplaced { signal } or a typo is an error, not a no-op). */
function checkOptionObject<T extends object>(options: T, known: readonly string[], what: string): T {
  if (typeof options !== 'object' || options === null) {
    throw new SMTPInvalidArgumentError(`${what}s must be an object or a list of strings, got ${typeof options}`);
  }
  assertKnownKeys(options as Record<string, unknown>, known, `${what}${Object.keys(options).length > 1 ? 's' : ''}`);
  const extra = (options as { extra?: unknown }).extra;
  if (extra !== undefined && (typeof extra !== 'object' || extra === null || Array.isArray(extra))) {
    throw new SMTPInvalidArgumentError(`${what} extra must be an object of keyword → value (true for a bare keyword)`);
  }
  return options;
}

function decodeOrcpt(value: string): string {
  const semi = value.indexOf(';');
  return semi === -1 ? value : `${value.slice(0, semi)};${decodeXtext(value.slice(semi + 1))}`;
}

export interface RenderContext {
  capabilities: Capabilities;
  /** The session is protected by TLS. */
  secure: boolean;
  /** ...and its certificate was verified (default: as `secure`). */
  verified?: boolean;
}

/** The MAIL FROM parameter string (leading space included when non-empty). */
export function renderMailParameters(options: MailOptions, context: RenderContext): string {
  const caps = context.capabilities;
  const written = (options as Written)[WRITTEN];
  // Built as one string, each parameter with its leading space: no array to
  // grow and join for the one or two words of every message.
  let line = '';
  if (options.size !== undefined && (caps.has('size') || written?.has('SIZE'))) {
    if (!Number.isSafeInteger(options.size) || options.size < 0) {
      throw new SMTPInvalidArgumentError(`SIZE must be a non-negative integer, got ${options.size}`);
    }
    line += ` SIZE=${options.size}`;
  }
  if (options.body && options.body !== '7BIT') {
    if (options.body !== '8BITMIME' && options.body !== 'BINARYMIME') {
      throw new SMTPInvalidArgumentError(`BODY must be 7BIT, 8BITMIME or BINARYMIME, got ${options.body}`);
    }
    if (!caps.has(options.body.toLowerCase())) {
      throw new SMTPNotSupportedError(`the message needs BODY=${options.body} but the server does not offer ${options.body}`);
    }
    line += ` BODY=${options.body}`;
  } else if (options.body === '7BIT' && (caps.has('8bitmime') || written?.has('BODY'))) {
    line += ' BODY=7BIT';
  }
  if (options.smtputf8) {
    if (!caps.has('smtputf8')) {
      throw new SMTPNotSupportedError('the message needs SMTPUTF8 (non-ASCII addresses or UTF-8 header fields) but the server does not offer it; nothing was sent. Send through a server that offers SMTPUTF8, or use ASCII addresses and write the message with encoded headers (smtplib-email: the SMTP policy)');
    }
    line += ' SMTPUTF8';
  }
  if (caps.has('dsn') || written?.has('RET') || written?.has('ENVID')) {
    if (options.ret) {
      const ret = options.ret.toUpperCase();
      if (ret !== 'FULL' && ret !== 'HDRS') throw new SMTPInvalidArgumentError(`RET must be FULL or HDRS, got ${options.ret}`);
      line += ` RET=${ret}`;
    }
    if (options.envid !== undefined) {
      assertSafeArgument(options.envid, 'ENVID');
      if (Buffer.byteLength(options.envid) > 100) throw new SMTPInvalidArgumentError('ENVID is longer than 100 octets (RFC 3461 §4.4)');
      if (options.envid === '') throw new SMTPInvalidArgumentError('ENVID must not be empty (an ESMTP value has at least one character)');
      line += ` ENVID=${encodeXtext(options.envid)}`;
    }
  } else if (options.ret) {
    validateRet(options.ret);
  }
  if (options.requireTls) {
    if (!context.secure) {
      throw new SMTPNotSupportedError('REQUIRETLS needs a TLS-protected session (RFC 8689 §4.1); this one is not');
    }
    if (context.verified === false) {
      throw new SMTPNotSupportedError(
        'REQUIRETLS needs a TLS session with a verified certificate (RFC 8689 §4.1); this one was not verified (tls.rejectUnauthorized: false)',
        { diagnosis: 'unverified-tls' },
      );
    }
    if (!caps.has('requiretls')) {
      throw new SMTPNotSupportedError('REQUIRETLS was asked for but the server does not offer it (RFC 8689)');
    }
    line += ' REQUIRETLS';
  }
  if (options.extra) for (const word of renderExtra(options.extra, 'mail option')) line += ` ${word}`;
  return line;
}

function validateRet(ret: string): void {
  if (!/^(FULL|HDRS)$/i.test(ret)) throw new SMTPInvalidArgumentError(`RET must be FULL or HDRS, got ${ret}`);
}

/** The RCPT TO parameter string (leading space included when non-empty). */
export function renderRcptParameters(options: RcptOptions, context: RenderContext): string {
  // No parameters asked for (the common send): nothing to render or check.
  if (options.notify === undefined && options.orcpt === undefined && options.extra === undefined) return '';
  const caps = context.capabilities;
  const written = (options as Written)[WRITTEN];
  const words: string[] = [];
  const notify = options.notify === undefined ? undefined : normalizeNotify(options.notify);
  if (caps.has('dsn') || written?.has('NOTIFY') || written?.has('ORCPT')) {
    if (notify) words.push(`NOTIFY=${notify.join(',')}`);
    if (options.orcpt !== undefined) {
      assertSafeArgument(options.orcpt, 'ORCPT');
      const semi = options.orcpt.indexOf(';');
      const type = semi === -1 ? 'rfc822' : options.orcpt.slice(0, semi);
      const addr = semi === -1 ? options.orcpt : options.orcpt.slice(semi + 1);
      if (!KEYWORD.test(type)) throw new SMTPInvalidArgumentError(`ORCPT address type ${JSON.stringify(type)} is invalid`);
      words.push(`ORCPT=${type};${encodeXtext(addr)}`);
    }
  }
  words.push(...renderExtra(options.extra, 'rcpt option'));
  return words.length ? ` ${words.join(' ')}` : '';
}

function normalizeNotify(notify: NotifyType | readonly NotifyType[]): string[] {
  const list = (typeof notify === 'string' ? notify.split(',') : [...notify]).map((n) => String(n).trim().toUpperCase());
  const allowed = new Set(['NEVER', 'SUCCESS', 'FAILURE', 'DELAY']);
  if (list.length === 0 || list.some((n) => !allowed.has(n))) {
    throw new SMTPInvalidArgumentError(`NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY; got ${JSON.stringify(notify)}`);
  }
  if (list.includes('NEVER') && list.length > 1) {
    throw new SMTPInvalidArgumentError('NOTIFY=NEVER cannot be combined with other values (RFC 3461 §4.1)');
  }
  return [...new Set(list)];
}

function renderExtra(extra: Record<string, string | true> | undefined, what: string): string[] {
  if (!extra) return [];
  const words: string[] = [];
  for (const [keyword, value] of Object.entries(extra)) {
    checkParameter(keyword, value, what);
    // The caller asked for it: sent as written, whether advertised or not (smtplib does the same).
    words.push(value === true ? keyword.toUpperCase() : `${keyword.toUpperCase()}=${value}`);
  }
  return words;
}
