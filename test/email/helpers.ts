// Shared by the message tests: a fast-check model of a message (what a
// caller composes), the composer that builds it with our API, and the views
// of a parsed message from three parsers (ours, Python's email, postal-mime)
// reduced to the same shape so they can be compared with the model.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import PostalMime from 'postal-mime';
import { Address, EmailMessage, parseMessage, type Policy } from 'smtplib-email';

export const PYTHON = '/usr/bin/python3';
const TREE_SCRIPT = fileURLToPath(new URL('./py/email_tree.py', import.meta.url));

/** Fails under CI when Debian's python3 is missing; outside CI the caller skips with this reason. */
export function pythonMissing(): string | undefined {
  if (existsSync(PYTHON)) return undefined;
  const reason = `${PYTHON} is not installed (apt-get install python3)`;
  if (process.env.CI === 'true') throw new Error(reason);
  console.warn(`skipping Python differential: ${reason}`);
  return reason;
}

// --- the model -------------------------------------------------------------------

export interface AttachmentSpec {
  filename: string;
  bytes: Uint8Array;
  inline: boolean;
}

export interface MessageSpec {
  subject: string;
  from: [string, string];
  to: [string, string][];
  text: string;
  html?: string;
  attachments: AttachmentSpec[];
}

// Words from scripts a mail client meets: ASCII (with specials), Latin-1,
// Greek, CJK, emoji; plus encoded-word look-alikes and long unbroken words.
const asciiWord = fc.stringMatching(/^[A-Za-z0-9.,;:'"()<>@!?&%$#\\/=_-]{1,12}$/);
const unicodeWord = fc.constantFrom('é', 'Grüße', 'naïve', 'Ωμέγα', '日本語', '中文字符', '🙂', 'résumé', 'Žluťoučký', 'ß', 'ﬁ');
const trickyWord = fc.constantFrom('=?utf-8?q?x?=', '=?', '?=', 'From', '.', '"quoted"', 'x'.repeat(90), 'é'.repeat(40));
const word = fc.oneof({ weight: 6, arbitrary: asciiWord }, { weight: 3, arbitrary: unicodeWord }, { weight: 1, arbitrary: trickyWord });
export const phrase = (max: number): fc.Arbitrary<string> => fc.array(word, { minLength: 1, maxLength: max }).map((w) => w.join(' '));

const localPart = fc.stringMatching(/^[a-z0-9][a-z0-9._+-]{0,14}[a-z0-9]$/).filter((s) => !s.includes('..'));
const domain = fc.constantFrom('example.com', 'mail.example.org', 'bücher.example', 'xn--bcher-kva.example', 'sub.test');
const displayName = fc.oneof(fc.constant(''), phrase(4));
export const mailbox: fc.Arbitrary<[string, string]> = fc.tuple(displayName, localPart, domain).map(([n, l, d]) => [n, `${l}@${d}`]);

const textLine = fc.oneof(
  { weight: 5, arbitrary: phrase(12) },
  { weight: 1, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: fc.constantFrom('.', '..leading dots', 'From the start', 'trailing space ', 'tab\tinside', '=3D literally') },
  { weight: 1, arbitrary: phrase(400) }, // far past 998 octets
);
const text = fc.array(textLine, { minLength: 0, maxLength: 8 }).map((lines) => lines.join('\n') + '\n');
const filename = fc.oneof(
  fc.stringMatching(/^[a-z0-9_-]{1,20}\.(pdf|txt|png|bin)$/),
  phrase(3).map((p) => `${p.replace(/[\\/"]/g, '_')}.pdf`),
  fc.constant('très long nom de fichier avec des accents éèêë et des espaces, pour les continuations RFC 2231.pdf'),
);
const attachment: fc.Arbitrary<AttachmentSpec> = fc.record({
  filename,
  bytes: fc.uint8Array({ minLength: 0, maxLength: 300 }),
  inline: fc.boolean(),
});

export const messageSpec: fc.Arbitrary<MessageSpec> = fc.record({
  subject: phrase(14),
  from: mailbox,
  to: fc.array(mailbox, { minLength: 1, maxLength: 3 }),
  text,
  html: fc.option(text.map((t) => `<html><body><p>${t.replace(/</g, '&lt;')}</p></body></html>`), { nil: undefined }),
  attachments: fc.array(attachment, { maxLength: 3 }),
}, { requiredKeys: ['subject', 'from', 'to', 'text', 'attachments'] });

/** Builds the model with our API: text, optional HTML alternative with inline images, attachments. */
export function compose(spec: MessageSpec, options: { policy?: Policy; seed?: string } = {}): EmailMessage {
  const msg = new EmailMessage({ ...(options.policy ? { policy: options.policy } : {}), boundarySeed: options.seed ?? 'seed' });
  msg.set('Subject', spec.subject);
  msg.set('From', new Address({ displayName: spec.from[0], addrSpec: spec.from[1] }));
  msg.set('To', spec.to.map(([n, a]) => new Address({ displayName: n, addrSpec: a })));
  msg.set('Message-ID', '<fixed.1@example.com>');
  msg.set('Date', 'Sat, 05 Dec 2026 21:52:26 +0000');
  msg.setContent(spec.text);
  let htmlPart: EmailMessage | undefined;
  if (spec.html !== undefined) {
    msg.addAlternative(spec.html, { subtype: 'html' });
    htmlPart = msg.getBody(['html']);
  }
  for (const [i, a] of spec.attachments.entries()) {
    if (a.inline && htmlPart) htmlPart.addRelated(Buffer.from(a.bytes), { maintype: 'image', subtype: 'png', cid: `img${i}@example.com`, filename: a.filename });
    else msg.addAttachment(Buffer.from(a.bytes), { maintype: 'application', subtype: 'octet-stream', filename: a.filename });
  }
  return msg;
}

// --- one shape for every parser ----------------------------------------------------

export interface PartView {
  type: string;
  filename: string | null;
  disposition: string | null;
  charset: string | null;
  cid: string | null;
  text?: string;
  bytes?: string;
  /** getContent() threw (Python: an exception class name). */
  error?: string;
  /** Defect kinds, after the content was read (decoding records some). */
  defects?: string[];
}

export interface TreeView {
  headers: { name: string; value?: string; addresses?: [string, string][] }[];
  parts: PartView[];
}

const ADDRESS_HEADERS = new Set(['from', 'to', 'cc', 'bcc', 'reply-to', 'sender']);

export function ourTree(bytes: Buffer): TreeView {
  return treeViewOf(parseMessage(bytes));
}

/** The comparable view of a parsed message (contents read, so decoding defects are in). */
export function treeViewOf(msg: EmailMessage): TreeView {
  const parts: PartView[] = [];
  for (const part of msg.walk()) {
    const view: PartView = {
      type: part.getContentType(),
      filename: part.getFilename() ?? null,
      disposition: part.getContentDisposition() ?? null,
      charset: part.getContentCharset() ?? null,
      cid: part.get('content-id') ?? null,
    };
    if (!part.isMultipart()) {
      try {
        const content = part.getContent();
        if (typeof content === 'string') view.text = content;
        else if (Buffer.isBuffer(content)) view.bytes = content.toString('base64');
      } catch (error) {
        view.error = (error as Error).name;
      }
    }
    view.defects = part.defects.map((d) => d.kind).sort();
    parts.push(view);
  }
  const headers = msg.items().map(([name, value]) => (ADDRESS_HEADERS.has(name.toLowerCase())
    ? { name, addresses: msg.getAddresses(name).length ? addressPairs(msg, name) : [] }
    : { name, value }));
  return { headers, parts };
}

function addressPairs(msg: EmailMessage, name: string): [string, string][] {
  return msg.getAddresses(name).map((a) => [a.displayName, a.addrSpec]);
}

/** Python's view of each message (one python3 process for the whole list). */
export async function pythonTrees(messages: readonly Buffer[]): Promise<(TreeView & { crash?: string; defects: string[] })[]> {
  const child = spawn(PYTHON, [TREE_SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  const done = new Promise<number>((resolve) => child.on('close', resolve));
  child.stdin.end(messages.map((m) => m.toString('base64')).join('\n') + '\n');
  const code = await done;
  if (code !== 0) throw new Error(`python3 email_tree.py exited with ${code}`);
  return out.trim().split('\n').map((line) => JSON.parse(line));
}

export interface PostalView {
  subject: string | undefined;
  from: [string, string] | undefined;
  to: [string, string][];
  text: string | undefined;
  html: string | undefined;
  attachments: { filename: string | null; mimeType: string; bytes: string; contentId: string | undefined; disposition: string | null }[];
}

export async function postalView(bytes: Buffer): Promise<PostalView> {
  const email = await PostalMime.parse(bytes);
  return {
    subject: email.subject,
    from: email.from ? [email.from.name, (email.from as { address?: string }).address ?? ''] : undefined,
    to: (email.to ?? []).map((a) => [a.name, (a as { address?: string }).address ?? '']),
    text: email.text,
    html: email.html,
    attachments: email.attachments.map((a) => ({
      filename: a.filename,
      mimeType: a.mimeType,
      bytes: Buffer.from(a.content as ArrayBuffer).toString('base64'),
      contentId: a.contentId,
      disposition: a.disposition,
    })),
  };
}

/** Text as every parser returns it: "\n" line ends, one final line end. */
export function normalText(text: string): string {
  const t = text.replace(/\r\n|\r/g, '\n');
  return t.endsWith('\n') ? t : t + '\n';
}
