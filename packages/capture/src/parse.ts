// Reading a received message for the inbox and the API: decoded headers,
// text, HTML, attachments and the MIME structure. The decoding is
// postal-mime's (a well-kept, dependency-free MIME parser); the rest of the
// package sees only the ParsedMail shape below, so the parser can be swapped.
import PostalMime from 'postal-mime';

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
  /** Bytes of the part's body as transmitted (still encoded). */
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

type Address = { name: string; address?: string | undefined; group?: { name: string; address: string }[] | undefined };

function formatAddress(a: Address): string[] {
  if (a.group) return a.group.flatMap((m) => formatAddress(m));
  if (!a.address) return a.name ? [a.name] : [];
  return [a.name ? `${a.name} <${a.address}>` : a.address];
}

/** Parses a raw message. Never throws on malformed mail: what cannot be read is left out. */
export async function parseMail(raw: Uint8Array, options: { structure?: boolean } = {}): Promise<ParsedMail> {
  const email = await PostalMime.parse(raw, { attachmentEncoding: 'arraybuffer' });
  const attachments: ParsedAttachment[] = email.attachments.map((a, index) => {
    const content = a.content instanceof ArrayBuffer ? new Uint8Array(a.content) : typeof a.content === 'string' ? Buffer.from(a.content) : a.content;
    return { index, filename: a.filename, contentType: a.mimeType, disposition: a.disposition, contentId: a.contentId, size: content.byteLength, content };
  });
  const mime: MimeNode = options.structure === false ? { path: '1', contentType: '', size: 0 } : mimeTree(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength));
  if (options.structure !== false) linkAttachments(mime, attachments);
  return {
    subject: email.subject ?? '',
    from: email.from ? formatAddress(email.from as Address).join(', ') : '',
    to: (email.to ?? []).flatMap((a) => formatAddress(a as Address)),
    cc: (email.cc ?? []).flatMap((a) => formatAddress(a as Address)),
    date: email.date,
    messageId: email.messageId,
    headers: email.headers.map((h) => [h.originalKey, h.value]),
    text: email.text,
    html: email.html,
    attachments,
    mime,
  };
}

// ------------------------------------------------------- cheap reads on arrival
// A full parse costs about 1.5 ms per KB (postal-mime), too much to do for
// every large message as it arrives. The list and search need only the
// decoded headers and the start of the text, so arrival parses the header
// block and the first TEXT_PREVIEW bytes of the first text part; the full
// parse happens when a message is opened.

const TEXT_PREVIEW = 4 * 1024;

function headEnd(raw: Buffer): number {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  if (crlf < 0 && lf < 0) return raw.length;
  if (crlf < 0) return lf + 2;
  if (lf < 0) return crlf + 4;
  return Math.min(crlf + 4, lf + 2);
}

/** The bytes (headers and body) of the first text/plain part, else the first text/html one. */
function firstTextPart(raw: Buffer, depth = 0): Buffer | undefined {
  const { head, body } = splitHead(raw);
  const type = headerValue(head, 'content-type') ?? 'text/plain';
  const contentType = type.split(';')[0]!.trim().toLowerCase();
  const boundary = param(type, 'boundary');
  if (contentType.startsWith('multipart/') && boundary && depth < 32) {
    const parts = splitMultipart(body, boundary);
    let html: Buffer | undefined;
    for (const p of parts) {
      const found = firstTextPart(p, depth + 1);
      if (!found) continue;
      if (/^content-type:[ \t]*text\/html/im.test(splitHead(found).head)) html ??= found;
      else return found;
    }
    return html;
  }
  const disposition = headerValue(head, 'content-disposition') ?? '';
  if ((contentType === 'text/plain' || contentType === 'text/html') && !/^attachment/i.test(disposition)) return raw;
  return undefined;
}

export interface MessageGist {
  subject: string;
  from: string;
  to: string[];
  cc: string[];
  /** Decoded start of the text (HTML tags removed). */
  text: string;
  hasAttachments: boolean;
}

/** Decoded headers, the start of the text, and whether there are attachments, without a full parse. */
export async function gistOf(raw: Buffer): Promise<MessageGist> {
  const head = await parseMail(raw.subarray(0, headEnd(raw)), { structure: false });
  let text = '';
  const part = firstTextPart(raw);
  if (part) {
    // Cut at a line end so a base64 or quoted-printable line is never split.
    let slice = part.subarray(0, TEXT_PREVIEW);
    if (part.length > TEXT_PREVIEW) slice = slice.subarray(0, slice.lastIndexOf(0x0a) + 1);
    const preview = await parseMail(slice, { structure: false });
    text = preview.text ?? (preview.html ? preview.html.replace(/<style[\s\S]*?<\/style>|<[^>]*>/gi, ' ') : '');
  }
  const hasAttachment = (n: MimeNode): boolean =>
    n.children ? n.children.some(hasAttachment) : Boolean(n.filename) || !(n.contentType.startsWith('text/') || n.contentType.startsWith('multipart/'));
  const tree = mimeTree(raw);
  return { subject: head.subject, from: head.from, to: head.to, cc: head.cc, text, hasAttachments: tree.children ? hasAttachment(tree) : Boolean(tree.filename) };
}

// ------------------------------------------------------------ MIME structure

function splitHead(part: Buffer): { head: string; body: Buffer } {
  const end = headEnd(part);
  return { head: part.subarray(0, end).toString('latin1').replace(/\r?\n\r?\n$/, ''), body: part.subarray(end) };
}

function headerValue(head: string, name: string): string | undefined {
  const unfolded = head.replace(/\r?\n[ \t]+/g, ' ');
  const re = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im');
  return re.exec(unfolded)?.[1]?.trim();
}

function param(value: string | undefined, name: string): string | undefined {
  if (!value) return undefined;
  const re = new RegExp(`;\\s*${name}\\*?=\\s*("([^"]*)"|[^;\\s]+)`, 'i');
  const m = re.exec(value);
  if (!m) return undefined;
  const v = m[2] ?? m[1]!;
  // RFC 2231 charset''value form: keep the value readable.
  const ext = /^[\w-]*'[\w-]*'(.*)$/.exec(v);
  if (ext) {
    try {
      return decodeURIComponent(ext[1]!);
    } catch {
      return ext[1];
    }
  }
  return v;
}

/** The MIME tree of a message, read from its structure (headers and boundaries only). */
export function mimeTree(raw: Buffer, path = '1', depth = 0): MimeNode {
  const { head, body } = splitHead(raw);
  const type = headerValue(head, 'content-type') ?? 'text/plain';
  const contentType = type.split(';')[0]!.trim().toLowerCase();
  const disposition = headerValue(head, 'content-disposition');
  const filename = param(disposition, 'filename') ?? param(type, 'name');
  const encoding = headerValue(head, 'content-transfer-encoding')?.toLowerCase();
  const node: MimeNode = { path, contentType, size: body.length, ...(filename ? { filename } : {}), ...(encoding ? { encoding } : {}) };
  const boundary = param(type, 'boundary');
  if (contentType.startsWith('multipart/') && boundary && depth < 32) {
    node.children = splitMultipart(body, boundary).map((part, i) => mimeTree(part, `${path}.${i + 1}`, depth + 1));
  }
  return node;
}

function splitMultipart(body: Buffer, boundary: string): Buffer[] {
  const delimiter = Buffer.from(`--${boundary}`, 'latin1');
  const parts: Buffer[] = [];
  let start = -1;
  let pos = 0;
  while (pos <= body.length) {
    const at = body.indexOf(delimiter, pos);
    if (at < 0) break;
    if (at !== 0 && body[at - 1] !== 0x0a) {
      pos = at + delimiter.length;
      continue;
    }
    if (start >= 0) {
      let end = at;
      if (body[end - 1] === 0x0a) end--;
      if (body[end - 1] === 0x0d) end--;
      parts.push(body.subarray(start, Math.max(start, end)));
    }
    if (body[at + delimiter.length] === 0x2d && body[at + delimiter.length + 1] === 0x2d) break;
    const eol = body.indexOf(0x0a, at);
    if (eol < 0) break;
    start = eol + 1;
    pos = start;
  }
  return parts;
}

/** Marks the leaves that postal-mime reported as attachments (same file name, in order). */
function linkAttachments(root: MimeNode, attachments: ParsedAttachment[]): void {
  const unused = [...attachments];
  const visit = (n: MimeNode): void => {
    if (n.children) return n.children.forEach(visit);
    const i = unused.findIndex((a) => (a.filename ?? undefined) === n.filename && a.contentType === n.contentType);
    if (i >= 0 && (n.filename || !n.contentType.startsWith('text/'))) {
      n.attachment = unused[i]!.index;
      unused.splice(i, 1);
    }
  };
  visit(root);
}
