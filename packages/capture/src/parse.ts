// Reading a received message for the inbox and the API: decoded headers,
// text, HTML, attachments and the MIME structure, all read by the project's
// own parser (smtplib-email's parseMessage); the rest of the package sees
// only the ParsedMail shape below.
import { parseMessage, type EmailMessage } from 'smtplib-email';

export interface ParsedAttachment {
  index: number;
  filename: string | null;
  contentType: string;
  disposition: string | null;
  contentId?: string | undefined;
  size: number;
  content: Uint8Array;
}

export interface MimeNode {
  /** "1", "1.2", ...: the part's place in the tree (IMAP numbering). */
  path: string;
  contentType: string;
  filename?: string | undefined;
  /** Bytes of the part's decoded body (for a multipart: of its parts). */
  size: number;
  encoding?: string | undefined;
  /** Index into `attachments`, when this part is one. */
  attachment?: number | undefined;
  children?: MimeNode[] | undefined;
}

export interface ParsedMail {
  subject: string;
  from: string;
  to: string[];
  cc: string[];
  date?: string | undefined;
  messageId?: string | undefined;
  headers: [string, string][];
  text?: string | undefined;
  html?: string | undefined;
  attachments: ParsedAttachment[];
  mime: MimeNode;
}

function addresses(msg: EmailMessage, name: string): string[] {
  try {
    return msg.getAddresses(name).map((a) => {
      const x = a as unknown as { displayName?: string; addrSpec?: string };
      return x.addrSpec ? (x.displayName ? `${x.displayName} <${x.addrSpec}>` : x.addrSpec) : String(x.displayName ?? '');
    });
  } catch {
    const raw = msg.get(name);
    return raw ? [raw] : [];
  }
}

function content(part: EmailMessage | undefined): string | undefined {
  if (!part) return undefined;
  try {
    const c = part.getContent();
    return typeof c === 'string' ? c : Buffer.isBuffer(c) ? c.toString('utf8') : undefined;
  } catch {
    return undefined;
  }
}

function decoded(part: EmailMessage): Buffer {
  try {
    return part.getDecodedPayload();
  } catch {
    return Buffer.alloc(0);
  }
}

/** The MIME tree of a parsed message; leaves that are attachments are collected in order. */
function tree(part: EmailMessage, path: string, attachments: ParsedAttachment[], depth = 0): MimeNode {
  const contentType = part.getContentType();
  const filename = part.getFilename();
  const encoding = part.get('content-transfer-encoding')?.trim().toLowerCase();
  const node: MimeNode = { path, contentType, size: 0, ...(filename ? { filename } : {}), ...(encoding ? { encoding } : {}) };
  const children = depth < 32 ? [...part.iterParts()] : [];
  if (part.getContentMaintype() === 'multipart') {
    node.children = children.map((c, i) => tree(c, `${path}.${i + 1}`, attachments, depth + 1));
    node.size = node.children.reduce((n, c) => n + c.size, 0);
    return node;
  }
  const body = decoded(part);
  node.size = body.length;
  if (part.isAttachment() || filename || !(contentType.startsWith('text/') || contentType.startsWith('multipart/'))) {
    node.attachment = attachments.length;
    attachments.push({
      index: attachments.length,
      filename: filename ?? null,
      contentType,
      disposition: part.getContentDisposition() ?? null,
      contentId: part.get('content-id')?.trim(),
      size: body.length,
      content: body,
    });
  }
  return node;
}

/** Parses a raw message. Never throws on malformed mail: what cannot be read is left out. */
export async function parseMail(raw: Uint8Array): Promise<ParsedMail> {
  const msg = parseMessage(raw);
  const attachments: ParsedAttachment[] = [];
  const mime = tree(msg, '1', attachments);
  return {
    subject: msg.get('subject') ?? '',
    from: addresses(msg, 'from').join(', '),
    to: addresses(msg, 'to'),
    cc: addresses(msg, 'cc'),
    date: msg.get('date'),
    messageId: msg.get('message-id'),
    headers: msg.items(),
    text: content(msg.getBody(['plain'])),
    html: content(msg.getBody(['html'])),
    attachments,
    mime,
  };
}

export interface MessageGist {
  subject: string;
  from: string;
  to: string[];
  cc: string[];
  /** Decoded text (HTML tags removed when there is only HTML). */
  text: string;
  hasAttachments: boolean;
}

/** What the list and search need on arrival. */
export async function gistOf(raw: Buffer): Promise<MessageGist> {
  const p = await parseMail(raw);
  const text = p.text ?? (p.html ? p.html.replace(/<style[\s\S]*?<\/style>|<[^>]*>/gi, ' ') : '');
  return { subject: p.subject, from: p.from, to: p.to, cc: p.cc, text, hasAttachments: p.attachments.some((a) => a.disposition !== 'inline' || a.filename) };
}
