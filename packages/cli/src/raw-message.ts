// A whole RFC 5322 message given to `send -m`, `send` on stdin, `sendmail`
// or a batch line's "raw": line ends made CRLF, the envelope taken from its
// headers by the library's rule (envelopeFromHeaders: Sender/From and
// To/Cc/Bcc, or the one Resent-* block), Bcc removed by the library
// (removeBccHeaders), and the header fields sendmail adds when missing
// (From, Date, Message-ID), as msmtp's set_*_header settings say.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { envelopeFromHeaders, removeBccHeaders } from 'smtplib';

export interface HeaderPolicy {
  /** msmtp set_from_header: add when missing (auto, the default), always replace (on), never (off). */
  fromHeader?: 'auto' | 'on' | 'off' | undefined;
  /** msmtp set_date_header. */
  dateHeader?: 'auto' | 'off' | undefined;
  /** msmtp set_msgid_header. */
  messageIdHeader?: 'auto' | 'off' | undefined;
  /** msmtp set_to_header undisclosed_recipients: To/Cc/Bcc replaced by "To: undisclosed-recipients:;". */
  undisclosedRecipients?: boolean | undefined;
  /** msmtp remove_bcc_headers (default on). */
  removeBcc?: boolean | undefined;
}

export interface PrepareOptions extends HeaderPolicy {
  /** Whether to add (or replace) header fields at all; false sends the message as given (apart from Bcc and line ends). */
  addMissing: boolean;
  /** The envelope sender, for an added From and the Message-ID's domain. */
  envelopeFrom?: string | undefined;
  /** Display name for an added From (sendmail -F, msmtp from_full_name). */
  fullName?: string | undefined;
  /** Domain for the Message-ID (msmtp domain), else the sender's, else this host. */
  domain?: string | undefined;
}

/** Converts bare LF / CR line ends to CRLF; bytes stay bytes (latin1 round trip). */
export function toCRLF(raw: Buffer): Buffer {
  return Buffer.from(raw.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
}

/** Offset of the empty line ending the header block (CRLF message), or the length when there is none. */
function headerEnd(data: Buffer): number {
  if (data.subarray(0, 2).toString('latin1') === '\r\n') return 0;
  const at = data.indexOf('\r\n\r\n');
  return at === -1 ? data.length : at + 2;
}

/** The header block without the fields whose (lower-case) name `drop` says yes to, continuation lines included. */
function dropFields(head: string, drop: (name: string) => boolean): string {
  const out: string[] = [];
  let dropping = false;
  for (const line of head.split(/(?<=\r\n)/)) {
    if (/^[ \t]/.test(line)) {
      if (!dropping) out.push(line);
      continue;
    }
    const colon = line.indexOf(':');
    dropping = colon > 0 && drop(line.slice(0, colon).trim().toLowerCase());
    if (!dropping) out.push(line);
  }
  return out.join('');
}

function hasField(head: string, name: string): boolean {
  return new RegExp(`^${name}[ \\t]*:`, 'im').test(head);
}

/** The envelope the message's headers give (the library's rule), with the header sender for account choice. */
export function headerEnvelope(raw: Buffer): { from: string | undefined; to: string[] } {
  const envelope = envelopeFromHeaders(toCRLF(raw));
  return { from: envelope.from || undefined, to: envelope.to };
}

export function prepareRawMessage(raw: Buffer, options: PrepareOptions): Buffer {
  let data = toCRLF(raw);
  if (options.removeBcc !== false) data = removeBccHeaders(data);
  if (!options.addMissing && !options.undisclosedRecipients) return data;
  const end = headerEnd(data);
  let head = data.subarray(0, end).toString('latin1');
  const body = data.subarray(end);
  const added: string[] = [];
  if (options.undisclosedRecipients) {
    head = dropFields(head, (n) => n === 'to' || n === 'cc' || n === 'bcc');
    added.push('To: undisclosed-recipients:;');
  }
  if (options.addMissing) {
    const fromPolicy = options.fromHeader ?? 'auto';
    if (fromPolicy === 'on' && options.envelopeFrom) head = dropFields(head, (n) => n === 'from');
    if (fromPolicy !== 'off' && options.envelopeFrom && !hasField(head, 'from')) {
      added.push(`From: ${options.fullName ? `${quoteName(options.fullName)} <${options.envelopeFrom}>` : options.envelopeFrom}`);
    }
    if (options.dateHeader !== 'off' && !hasField(head, 'date')) added.push(`Date: ${rfc5322Date(new Date())}`);
    if (options.messageIdHeader !== 'off' && !hasField(head, 'message-id')) {
      const domain = options.domain || options.envelopeFrom?.split('@')[1] || hostname() || 'localhost';
      added.push(`Message-ID: <${randomUUID()}@${domain}>`);
    }
  }
  const prefix = Buffer.from(added.map((l) => `${l}\r\n`).join(''), 'utf8');
  // A message with no header block at all gets the empty line that separates the added fields from its body.
  const separator = end === 0 && body.subarray(0, 2).toString('latin1') !== '\r\n' ? Buffer.from('\r\n') : Buffer.alloc(0);
  return Buffer.concat([prefix, Buffer.from(head, 'latin1'), separator, body]);
}

function quoteName(name: string): string {
  return /^[\w !#$%&'*+\-/=?^`{|}~]*$/.test(name) ? name : `"${name.replace(/(["\\])/g, '\\$1')}"`;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 §3.3 date-time in local time, e.g. "Sat, 5 Dec 2026 22:03:33 +0000". */
export function rfc5322Date(d: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const abs = Math.abs(off);
  return `${DAYS[d.getDay()]}, ${d.getDate()} ${MONTHS[d.getMonth()]} ${d.getFullYear()} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${off >= 0 ? '+' : '-'}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`;
}
