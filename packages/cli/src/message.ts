// Message handling shared by `send`, `sendmail` and the batch mode: reading
// header fields, taking recipients from them, removing Bcc, adding missing
// From/Date/Message-ID, and building MIME messages with smtplib-email.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { basename } from 'node:path';
import { EmailError, EmailMessage, formatDate, makeMsgid, parseAddresses, SMTP, SMTPUTF8 } from 'smtplib-email';
import { CliError, EX } from './exit-codes.js';

/** Mailboxes of an address list ("Name <a@b>, c@d", groups flattened), as { name, address }. */
function mailboxes(value: string): { name: string; address: string }[] {
  return parseAddresses(value).map((a) => ({ name: a.displayName, address: a.addrSpec }));
}

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
    for (const a of mailboxes(v)) {
      if (a.address) out.push(a.address);
    }
  }
  return out;
}

/** Parses a command-line address ("Name <a@b>" or "a@b", comma lists allowed). */
export function parseAddressArg(value: string, what: string): string[] {
  const list = mailboxes(value).map((a) => a.address).filter(Boolean);
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

/** `--inline CID=FILE` (or `--inline FILE`, whose cid is its file name). */
export function parseInlineArg(value: string): { path: string; cid: string } {
  const eq = value.indexOf('=');
  const cid = eq > 0 ? value.slice(0, eq) : basename(value);
  const path = eq > 0 ? value.slice(eq + 1) : value;
  if (!/^[^\s<>"]+$/.test(cid) || path === '') throw new CliError(`--inline: "${value}" should look like CID=FILE`, EX.USAGE);
  return { path, cid };
}

/** An attachment: a file path, or a path with the name and type to give it. */
export type AttachmentInput = string | { path: string; filename?: string | undefined; contentType?: string | undefined };

export interface ComposeInput {
  from: string;
  to?: string[] | undefined;
  cc?: string[] | undefined;
  bcc?: string[] | undefined;
  subject?: string | undefined;
  text?: string | Buffer | undefined;
  /** An HTML body: the alternative to `text` when both are given. */
  html?: string | undefined;
  /** Images shown inside the HTML (`<img src="cid:NAME">`): files, each with the cid the HTML uses. */
  inline?: { path: string; cid: string }[] | undefined;
  attachments?: AttachmentInput[] | undefined;
  headers?: string[] | undefined;
  replyTo?: string | undefined;
}

/**
 * Builds a MIME message with smtplib-email: text, or text and HTML as
 * alternatives, inline images related to the HTML, files attached (read
 * while the message is written). Bcc is left out of the header. Non-ASCII
 * addresses make it an SMTPUTF8 message; everything else is 7-bit.
 */
export async function composeMessage(input: ComposeInput): Promise<Buffer> {
  const addresses = [input.from, ...(input.to ?? []), ...(input.cc ?? []), ...(input.replyTo ? [input.replyTo] : [])];
  const international = addresses.some((a) => parseAddresses(a).some((m) => /[^\x00-\x7f]/.test(m.username)));
  const msg = new EmailMessage({ policy: international ? SMTPUTF8 : SMTP });
  try {
    msg.set('From', input.from);
    if (input.to?.length) msg.set('To', input.to.join(', '));
    if (input.cc?.length) msg.set('Cc', input.cc.join(', '));
    if (input.replyTo) msg.set('Reply-To', input.replyTo);
    msg.set('Subject', input.subject ?? '');
    msg.set('Date', formatDate(new Date(), { localtime: true }));
    const domain = parseAddresses(input.from)[0]?.domain;
    msg.set('Message-ID', makeMsgid(undefined, domain || hostname() || 'localhost'));
    for (const h of input.headers ?? []) {
      const colon = h.indexOf(':');
      if (colon <= 0 || !/^[!-9;-~]+$/.test(h.slice(0, colon))) {
        throw new CliError(`--header: "${h}" should look like "Name: value"`, EX.USAGE);
      }
      msg.add(h.slice(0, colon), h.slice(colon + 1).trim());
    }
    let text = input.text === undefined ? undefined : Buffer.isBuffer(input.text) ? input.text.toString('utf8') : input.text;
    if (text === '' && input.html !== undefined) text = undefined; // an empty stdin beside --html is no text part
    if (input.html !== undefined) {
      if (text !== undefined) {
        msg.setContent(text);
        msg.addAlternative(input.html, { subtype: 'html' });
      } else {
        msg.setContent(input.html, { subtype: 'html' });
      }
      const htmlPart = msg.getBody(['html'])!;
      for (const image of input.inline ?? []) htmlPart.addRelated({ path: image.path }, { cid: image.cid, filename: basename(image.path) });
    } else {
      if (input.inline?.length) throw new CliError('--inline images need an HTML body (--html)', EX.USAGE);
      msg.setContent(text ?? '');
    }
    for (const a of input.attachments ?? []) {
      const spec = typeof a === 'string' ? { path: a } : a;
      const [maintype, subtype] = spec.contentType?.split('/') ?? [];
      msg.addAttachment({ path: spec.path }, {
        filename: spec.filename ?? basename(spec.path),
        ...(maintype && subtype ? { maintype, subtype } : {}),
      });
    }
    return await msg.asBytes();
  } catch (err) {
    if (err instanceof CliError) throw err;
    if (err instanceof EmailError) throw new CliError(err.message, EX.USAGE);
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' || e.code === 'EACCES' || e.code === 'EISDIR') {
      throw new CliError(`cannot read attachment: ${e.message}`, EX.NOINPUT);
    }
    throw err;
  }
}
