// Message handling shared by `send`, `sendmail` and the batch mode: reading
// header fields, taking recipients from them, removing Bcc, adding missing
// From/Date/Message-ID, and building MIME messages with nodemailer's MailComposer.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { basename } from 'node:path';
import addressparser from 'nodemailer/lib/addressparser';
import MailComposer from 'nodemailer/lib/mail-composer';
import { CliError, EX } from './exit-codes.js';

/** Converts bare LF / CR line ends to CRLF. */
export function toCRLF(text: string): string {
  return text.replace(/\r\n|\r|\n/g, '\r\n');
}

export interface SplitMessage {
  /** Header section including its final line end, without the empty line. */
  head: string;
  /** Everything after the empty line (may be empty). */
  body: Buffer;
  /** The line end that separated head and body ('' when there was no body). */
  separator: string;
}

/** Splits a raw message at the first empty line. Bytes of the body are kept as they are. */
export function splitMessage(raw: Buffer): SplitMessage {
  // Header sections are ASCII (or UTF-8); find the first empty line in bytes.
  let i = 0;
  while (i < raw.length) {
    const nl = raw.indexOf(0x0a, i);
    if (nl < 0) break;
    const lineLen = nl - i - (nl > i && raw[nl - 1] === 0x0d ? 1 : 0);
    if (lineLen === 0) {
      return {
        head: raw.subarray(0, i).toString('utf8'),
        separator: raw.subarray(i, nl + 1).toString('latin1'),
        body: raw.subarray(nl + 1),
      };
    }
    i = nl + 1;
  }
  // No empty line: all header (or a body-less message).
  return { head: raw.toString('utf8'), separator: '', body: Buffer.alloc(0) };
}

export interface HeaderField {
  name: string;
  /** Unfolded value, trimmed. */
  value: string;
  /** The field as it appeared, with folding and line ends. */
  raw: string;
}

/** Header fields of a header section, in order. Lines that are not fields are kept as name ''. */
export function parseHeaderFields(head: string): HeaderField[] {
  const fields: HeaderField[] = [];
  const lines = head.split(/(?<=\n)/);
  for (const line of lines) {
    if (/^[ \t]/.test(line) && fields.length > 0) {
      const last = fields[fields.length - 1]!;
      last.raw += line;
      last.value = (last.value + ' ' + line.trim()).trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon > 0 && /^[!-9;-~]+$/.test(line.slice(0, colon))) {
      fields.push({ name: line.slice(0, colon), value: line.slice(colon + 1).trim(), raw: line });
    } else {
      fields.push({ name: '', value: line.trim(), raw: line });
    }
  }
  return fields;
}

export function getHeader(fields: HeaderField[], name: string): string[] {
  const lower = name.toLowerCase();
  return fields.filter((f) => f.name.toLowerCase() === lower).map((f) => f.value);
}

/** Bare addresses from address header values (groups flattened). */
export function addressesFrom(values: string[]): string[] {
  const out: string[] = [];
  for (const v of values) {
    for (const a of addressparser(v, { flatten: true })) {
      if (a.address) out.push(a.address);
    }
  }
  return out;
}

/** Parses a command-line address ("Name <a@b>" or "a@b", comma lists allowed). */
export function parseAddressArg(value: string, what: string): string[] {
  const list = addressparser(value, { flatten: true }).map((a) => a.address).filter(Boolean);
  if (list.length === 0) throw new CliError(`${what}: "${value}" is not an e-mail address`, EX.USAGE);
  for (const a of list) {
    if (!/^[^@\s]+@[^@\s]+$/.test(a) && !/^[^@\s]+$/.test(a)) {
      throw new CliError(`${what}: "${a}" is not an e-mail address`, EX.USAGE);
    }
  }
  return list;
}

export interface PreparedMessage {
  data: Buffer;
  /** Recipients found in To/Cc/Bcc (filled when asked for). */
  headerRecipients: string[];
  /** The address in the From header, if any. */
  headerFrom?: string | undefined;
  /** Whether a Bcc header was removed. */
  removedBcc: boolean;
}

export interface PrepareOptions {
  /** Add From when missing: this address (and `fullName`). */
  envelopeFrom?: string | undefined;
  fullName?: string | undefined;
  /** Add Date and Message-ID when missing. */
  addMissing?: boolean;
}

/**
 * Normalises a raw message for sending: CRLF line ends in the header section,
 * Bcc fields removed, missing From / Date / Message-ID added (when asked).
 */
export function prepareRawMessage(raw: Buffer, options: PrepareOptions = {}): PreparedMessage {
  const { head, body, separator } = splitMessage(raw);
  const fields = parseHeaderFields(head);
  // A resent message (any Resent-* field) goes to Resent-To/Cc/Bcc, not to the
  // original To/Cc/Bcc, as sendmail -t does (Postfix cleanup(8), Exim, Sendmail).
  const p = fields.some((f) => /^resent-/i.test(f.name)) ? 'resent-' : '';
  const headerRecipients = addressesFrom([
    ...getHeader(fields, `${p}to`),
    ...getHeader(fields, `${p}cc`),
    ...getHeader(fields, `${p}bcc`),
  ]);
  const headerFrom = addressesFrom(getHeader(fields, 'from'))[0];
  const kept = fields.filter((f) => !/^(resent-)?bcc$/i.test(f.name));
  const removedBcc = kept.length !== fields.length;
  const added: string[] = [];
  const hasField = (n: string): boolean => kept.some((f) => f.name.toLowerCase() === n);
  if (options.addMissing) {
    if (!hasField('from') && options.envelopeFrom) {
      added.push(`From: ${options.fullName ? `${quoteName(options.fullName)} <${options.envelopeFrom}>` : options.envelopeFrom}`);
    }
    if (!hasField('date')) added.push(`Date: ${rfc2822Date(new Date())}`);
    if (!hasField('message-id')) added.push(`Message-ID: ${messageId(options.envelopeFrom)}`);
  }
  let newHead = kept.map((f) => toCRLF(f.raw)).join('');
  if (newHead.length > 0 && !newHead.endsWith('\r\n')) newHead += '\r\n';
  newHead = added.map((l) => l + '\r\n').join('') + newHead;
  void separator;
  const bodyCRLF = Buffer.from(toCRLF(body.toString('latin1')), 'latin1');
  return {
    data: Buffer.concat([Buffer.from(newHead, 'utf8'), Buffer.from('\r\n'), bodyCRLF]),
    headerRecipients,
    headerFrom,
    removedBcc,
  };
}

function quoteName(name: string): string {
  return /^[\w !#$%&'*+\-/=?^`{|}~]*$/.test(name) && !/["\\]/.test(name) ? name : `"${name.replace(/(["\\])/g, '\\$1')}"`;
}

export function messageId(from?: string): string {
  const domain = from?.split('@')[1] || hostname() || 'localhost';
  return `<${randomUUID()}@${domain}>`;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
export function rfc2822Date(d: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const abs = Math.abs(off);
  return `${DAYS[d.getDay()]}, ${d.getDate()} ${MONTHS[d.getMonth()]} ${d.getFullYear()} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`;
}

export interface ComposeInput {
  from: string;
  to?: string[] | undefined;
  cc?: string[] | undefined;
  bcc?: string[] | undefined;
  subject?: string | undefined;
  text?: string | Buffer | undefined;
  html?: string | undefined;
  attachments?: string[] | undefined;
  headers?: string[] | undefined;
  replyTo?: string | undefined;
}

/** Builds a MIME message with nodemailer's MailComposer. Bcc is left out of the header. */
export async function composeMessage(input: ComposeInput): Promise<Buffer> {
  const headers: Record<string, string[]> = {};
  for (const h of input.headers ?? []) {
    const colon = h.indexOf(':');
    if (colon <= 0 || !/^[!-9;-~]+$/.test(h.slice(0, colon))) {
      throw new CliError(`--header: "${h}" should look like "Name: value"`, EX.USAGE);
    }
    const name = h.slice(0, colon);
    (headers[name] ??= []).push(h.slice(colon + 1).trim());
  }
  const composer = new MailComposer({
    from: input.from,
    ...(input.to?.length ? { to: input.to } : {}),
    ...(input.cc?.length ? { cc: input.cc } : {}),
    ...(input.bcc?.length ? { bcc: input.bcc } : {}),
    ...(input.replyTo ? { replyTo: input.replyTo } : {}),
    subject: input.subject ?? '',
    ...(input.text !== undefined ? { text: input.text } : {}),
    ...(input.html !== undefined ? { html: input.html } : {}),
    attachments: (input.attachments ?? []).map((path) => ({ path, filename: basename(path) })),
    headers,
  });
  try {
    return await composer.compile().build();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' || e.code === 'EACCES' || e.code === 'EISDIR') {
      throw new CliError(`cannot read attachment: ${e.message}`, EX.NOINPUT);
    }
    throw err;
  }
}
