// EmailMessage: Python's email.message.EmailMessage, camelCased. A message
// is a list of header fields and a body: nothing, bytes, a nested message,
// or a list of parts (multipart). Parts made by parseMessage keep the bytes
// they came from and are written back unchanged until they are modified.

import { createHash, randomUUID } from 'node:crypto';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import type { Defect } from './defects.js';
import { ContentUnavailableError, MessageStructureError } from './errors.js';
import { Address, Group, parseAddressList } from './headers/address.js';
import { decodeCharset, isAscii } from './headers/charset.js';
import { formatDate } from './headers/date.js';
import { checkName, type HeaderField, type HeaderValue, renderField, toField } from './headers/fields.js';
import { paramsText, parseParams } from './headers/params.js';
import { guessType } from './content/mime-types.js';
import { type BinarySource, type BinarySourceInput, isBinarySourceInput, readSource, readSourceReusing, sourceBytesSync, toBinarySource } from './content/sources.js';
import { Base64LineWriter, base64LinesBuffer, CHUNK_BYTES, FILE_READ_BYTES } from './content/base64-lines.js';
import { FileRegion, hasHighBit, type ParseFile, type Region, regionBytes, regionChunks, regionHasHighBit } from './content/parse-file.js';
import { decodeBase64Chunks, decodeQuotedPrintableChunks } from './content/decode-stream.js';
import {
  chooseTextEncoding,
  decodeBase64,
  decodeQuotedPrintable,
  encodeQuotedPrintableLines,
  textLines,
  type TransferEncoding,
} from './content/transfer-encoding.js';
import { type Policy, policy as policies } from './policy.js';

/** A body, in one of the forms a message can hold. */
export type Body =
  | { kind: 'empty' }
  /** Already in its transfer encoding (made by setContent), CRLF line ends. */
  | { kind: 'encoded'; data: Buffer }
  /** As parsed: written back byte for byte (a range of a file for a large input). */
  | { kind: 'raw'; data: Region }
  /** Binary content, base64-encoded while it is written. */
  | { kind: 'base64'; source: BinarySource }
  | { kind: 'message'; message: EmailMessage }
  | { kind: 'multipart'; parts: EmailMessage[]; preamble: Region | null; epilogue: Region | null };

export interface ContentOptions {
  /** For text: the subtype ('plain', 'html', ...). For bytes: with maintype. */
  subtype?: string;
  /** For bytes and streams; guessed from `filename` when absent. */
  maintype?: string;
  /** Text is written as UTF-8 ('utf-8', or 'us-ascii' for ASCII text). */
  charset?: string;
  /** Force a transfer encoding ('7bit', '8bit', 'quoted-printable', 'base64'). */
  cte?: TransferEncoding;
  disposition?: 'inline' | 'attachment';
  filename?: string;
  /** Content-ID, with or without angle brackets. */
  cid?: string;
  /** Extra Content-Type parameters. */
  params?: Record<string, string>;
  /** Extra header fields for the part. */
  headers?: Record<string, HeaderValue> | readonly [string, HeaderValue][];
}

export type Content = string | BinarySourceInput | EmailMessage;

export interface MessageOptions {
  policy?: Policy;
  /** Multipart boundaries derived from this seed (deterministic output); random otherwise. */
  boundarySeed?: string;
}

export interface SerializeOptions {
  /** Write with this policy instead of the message's own. */
  policy?: Policy;
}

/** What a message needs from an SMTP server, from what it contains. */
export interface SmtpRequirements {
  /** Raw UTF-8 in the header (RFC 6531/6532). */
  smtputf8: boolean;
  /** 8-bit body bytes (RFC 6152). */
  eightBitMime: boolean;
}

type Piece = string | Buffer | { source: BinarySource } | { region: FileRegion };

/** getContent() reads a body kept in a file into memory only up to this size; above it, getContent({ stream: true }). */
const MAX_CONTENT_IN_MEMORY = 256 * 1024 * 1024;

const BODY_TYPES = new Set(['text/plain', 'text/html', 'multipart/related', 'multipart/alternative']);

/** Shared between the parts of one message: the boundary seed and a counter. */
interface Ids { seed: string | undefined; next: number }

export class EmailMessage {
  policy: Policy;
  /** Problems the parser met in this part (Python's msg.defects). */
  readonly defects: Defect[] = [];
  #headers: HeaderField[] = [];
  #body: Body = { kind: 'empty' };
  #parent: EmailMessage | undefined;
  /** Parsed parts: the bytes they came from, valid while #dirty is false. */
  #raw: Region | undefined;
  /** The root of a parse that used a file: the file, closed by dispose(). */
  #file: ParseFile | undefined;
  #dirty = true;
  #ids: Ids;

  constructor(options: MessageOptions = {}) {
    this.policy = options.policy ?? policies.default;
    this.#ids = { seed: options.boundarySeed, next: 0 };
  }

  // --- headers -------------------------------------------------------------------

  /** The first value of a header (Python: msg[name] / msg.get(name)), or undefined. */
  get(name: string): string | undefined;
  get<T>(name: string, fallback: T): string | T;
  get<T>(name: string, fallback?: T): string | T | undefined {
    const lower = name.toLowerCase();
    return this.#headers.find((f) => f.name.toLowerCase() === lower)?.value ?? fallback;
  }

  /** Every value of a header, in order (Python: get_all), or undefined when there is none. */
  getAll(name: string): string[] | undefined {
    const lower = name.toLowerCase();
    const values = this.#headers.filter((f) => f.name.toLowerCase() === lower).map((f) => f.value);
    return values.length > 0 ? values : undefined;
  }

  /** The addresses of an address header (Python: msg[name].addresses). */
  getAddresses(name: string): Address[] {
    const lower = name.toLowerCase();
    return this.#headers
      .filter((f) => f.name.toLowerCase() === lower)
      .flatMap((f) => f.items ?? parseAddressList(f.value))
      .flatMap((item) => (item instanceof Group ? [...item.addresses] : [item]));
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /**
   * Sets a header: replaces every field of that name (in place of the first),
   * or appends. Throws HeaderInjectionError if the value holds CR, LF or NUL.
   */
  set(name: string, value: HeaderValue): this {
    const field = toField(name, value, (d) => formatDate(d, { localtime: true }));
    const lower = name.toLowerCase();
    const first = this.#headers.findIndex((f) => f.name.toLowerCase() === lower);
    if (first === -1) this.#headers.push(field);
    else {
      this.#headers[first] = field;
      this.#headers = this.#headers.filter((f, i) => i === first || f.name.toLowerCase() !== lower);
    }
    this.#touch();
    return this;
  }

  /** Appends a field even if one of that name exists (Python: msg[name] = value / add_header). */
  add(name: string, value: HeaderValue, params?: Record<string, string>): this {
    const field = toField(name, value, (d) => formatDate(d, { localtime: true }));
    if (params) field.value = paramsText(field.value, new Map(Object.entries(params)));
    this.#headers.push(field);
    this.#touch();
    return this;
  }

  /** Removes every field of that name (Python: del msg[name]); true if there was one. */
  delete(name: string): boolean {
    const lower = name.toLowerCase();
    const before = this.#headers.length;
    this.#headers = this.#headers.filter((f) => f.name.toLowerCase() !== lower);
    if (this.#headers.length === before) return false;
    this.#touch();
    return true;
  }

  /** Header names in order, repeated names included (Python: keys()). */
  keys(): string[] {
    return this.#headers.map((f) => f.name);
  }

  /** [name, value] pairs in order (Python: items()). */
  items(): [string, string][] {
    return this.#headers.map((f) => [f.name, f.value]);
  }

  // --- content type and parameters ---------------------------------------------------

  /** "maintype/subtype", lower case; text/plain when absent or invalid (message/rfc822 inside multipart/digest). */
  getContentType(): string {
    const field = this.#headers.find((f) => f.name.toLowerCase() === 'content-type');
    if (field === undefined) return this.getDefaultType();
    // Fields are replaced, never edited, once stored: the field object is the cache key.
    if (this.#typeCache?.field !== field) {
      const value = parseParams(field.value).value.toLowerCase();
      this.#typeCache = { field, type: /^[!#$%&'*+\-.^_`|~0-9a-z]+\/[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(value) ? value : 'text/plain' };
    }
    return this.#typeCache.type;
  }

  #typeCache: { field: HeaderField; type: string } | undefined;

  getContentMaintype(): string {
    return this.getContentType().split('/')[0]!;
  }

  getContentSubtype(): string {
    return this.getContentType().split('/')[1]!;
  }

  getDefaultType(): string {
    return this.#parent?.getContentType() === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
  }

  /** A parameter of a parameterized header (Python: get_param), decoded. */
  getParam(param: string, header = 'content-type'): string | undefined {
    const value = this.get(header);
    return value === undefined ? undefined : parseParams(value).params.get(param.toLowerCase());
  }

  /** Sets a parameter of Content-Type (or another parameterized header). */
  setParam(param: string, value: string, header = 'content-type'): void {
    const current = this.get(header) ?? 'text/plain';
    const parsed = parseParams(current);
    parsed.params.set(param.toLowerCase(), value);
    this.set(header, paramsText(parsed.value, parsed.params));
  }

  getBoundary(): string | undefined {
    return this.getParam('boundary');
  }

  getContentCharset(fallback?: string): string | undefined {
    return this.getParam('charset')?.toLowerCase() ?? fallback;
  }

  /** The filename of Content-Disposition, else the name of Content-Type (RFC 2231 decoded). */
  getFilename(): string | undefined {
    return this.getParam('filename', 'content-disposition') ?? this.getParam('name');
  }

  /** 'inline', 'attachment', or undefined. */
  getContentDisposition(): string | undefined {
    const value = this.get('content-disposition');
    return value === undefined ? undefined : parseParams(value).value.toLowerCase() || undefined;
  }

  isAttachment(): boolean {
    return this.getContentDisposition() === 'attachment';
  }

  isMultipart(): boolean {
    return this.#body.kind === 'multipart' || this.#body.kind === 'message';
  }

  // --- structure -----------------------------------------------------------------

  /** The subparts of a multipart (Python: iter_parts). */
  *iterParts(): Generator<EmailMessage> {
    if (this.getContentMaintype() === 'multipart' && this.#body.kind === 'multipart') yield* this.#body.parts;
  }

  /** This part and every part below it, depth first (Python: walk). */
  *walk(): Generator<EmailMessage> {
    yield this;
    if (this.#body.kind === 'multipart') for (const part of this.#body.parts) yield* part.walk();
    else if (this.#body.kind === 'message') yield* this.#body.message.walk();
  }

  /**
   * The best body part (Python: get_body): the first of `preferencelist`
   * ('related', 'html', 'plain') found, following multipart/related's start.
   */
  getBody(preferencelist: readonly string[] = ['related', 'html', 'plain']): EmailMessage | undefined {
    let best = preferencelist.length;
    let body: EmailMessage | undefined;
    for (const [priority, part] of findBody(this, preferencelist)) {
      if (priority < best) {
        best = priority;
        body = part;
        if (priority === 0) break;
      }
    }
    return body;
  }

  /** The parts that are not the message body (Python: iter_attachments). */
  *iterAttachments(): Generator<EmailMessage> {
    const [maintype, subtype] = this.getContentType().split('/');
    if (maintype !== 'multipart' || subtype === 'alternative' || this.#body.kind !== 'multipart') return;
    const parts = [...this.#body.parts];
    if (subtype === 'related') {
      const start = this.getParam('start');
      if (start) {
        const index = parts.findIndex((p) => p.get('content-id') === start);
        if (index !== -1) parts.splice(index, 1);
      } else {
        parts.shift();
      }
      yield* parts;
      return;
    }
    const seen = new Set<string>();
    for (const part of parts) {
      const type = part.getContentType();
      const sub = part.getContentSubtype();
      if (BODY_TYPES.has(type) && !part.isAttachment() && !seen.has(sub)) {
        seen.add(sub);
        continue;
      }
      yield part;
    }
  }

  /** Python's get_payload(): the parts of a multipart, the message of message/*, or the body text as written. */
  getPayload(): EmailMessage[] | string {
    const body = this.#body;
    if (body.kind === 'multipart') return [...body.parts];
    if (body.kind === 'message') return [body.message];
    if (body.kind === 'encoded' || body.kind === 'raw') return regionBytes(body.data).toString('latin1');
    if (body.kind === 'base64') return base64LinesBuffer(sourceBytesSync(body.source), '\n').toString('latin1');
    return '';
  }

  /** Adds a part to a multipart (Python: attach). */
  attach(part: EmailMessage): void {
    if (this.#body.kind === 'empty' && this.getContentMaintype() !== 'multipart') {
      throw new MessageStructureError('attach() needs a multipart message; call makeMixed() first');
    }
    if (this.#body.kind !== 'multipart') {
      if (this.getContentMaintype() !== 'multipart') throw new MessageStructureError(`attach() needs a multipart message, this is ${this.getContentType()}`);
      this.#body = { kind: 'multipart', parts: [], preamble: null, epilogue: null };
    }
    part.#adopt(this);
    this.#body.parts.push(part);
    this.#touch();
  }

  // --- content -------------------------------------------------------------------

  /**
   * Sets the content (Python: set_content). A string is text (UTF-8, 7bit /
   * 8bit / quoted-printable / base64 chosen from it); bytes, a file
   * ({ path }), a Readable or { stream: () => Readable } are binary, written
   * as base64 while the message is written; an EmailMessage is message/rfc822.
   */
  setContent(content: Content, options: ContentOptions = {}): void {
    this.clearContent();
    if (typeof content === 'string') this.#setText(content, options);
    else if (content instanceof EmailMessage) {
      this.#headers.push({ name: 'Content-Type', value: 'message/rfc822' });
      content.#adopt(this);
      this.#body = { kind: 'message', message: content };
    } else if (isBinarySourceInput(content)) this.#setBinary(content, options);
    else throw new TypeError('setContent: content must be a string, bytes, { path }, a Readable, { stream }, or an EmailMessage');
    if (options.disposition || options.filename !== undefined) {
      const params = new Map<string, string>();
      if (options.filename !== undefined) params.set('filename', options.filename);
      this.#pushField('Content-Disposition', paramsText(options.disposition ?? 'attachment', params));
    }
    if (options.cid !== undefined) {
      this.#pushField('Content-ID', options.cid.startsWith('<') ? options.cid : `<${options.cid}>`);
    }
    const extra = options.headers ? (Array.isArray(options.headers) ? options.headers : Object.entries(options.headers)) : [];
    for (const [name, value] of extra as [string, HeaderValue][]) this.add(name, value);
    if (this.#parent === undefined && !this.has('mime-version')) this.#headers.push({ name: 'MIME-Version', value: '1.0' });
    this.#touch();
  }

  #pushField(name: string, value: string): void {
    this.#headers.push(toField(name, value, String));
  }

  #setText(text: string, options: ContentOptions): void {
    const subtype = (options.subtype ?? 'plain').toLowerCase();
    const lines = textLines(text).map((line) => Buffer.from(line, 'utf8'));
    const cte = options.cte ?? chooseTextEncoding(lines, this.policy);
    const charset = (options.charset ?? 'utf-8').toLowerCase() === 'us-ascii' && isAscii(text) ? 'us-ascii' : 'utf-8';
    const params = new Map<string, string>([['charset', charset], ...Object.entries(options.params ?? {})]);
    this.#pushField('Content-Type', paramsText(`text/${subtype}`, params));
    this.#pushField('Content-Transfer-Encoding', cte);
    let data: Buffer;
    if (cte === 'quoted-printable') data = Buffer.from(encodeQuotedPrintableLines(lines, '\r\n'), 'latin1');
    else if (cte === 'base64') data = base64LinesBuffer(Buffer.from(lines.map((l) => l.toString('utf8')).join('\r\n') + '\r\n', 'utf8'), '\r\n');
    else {
      for (const line of lines) if (line.length > 998) throw new MessageStructureError(`a line of ${line.length} octets cannot be sent as ${cte}; use quoted-printable or base64`);
      data = Buffer.concat(lines.flatMap((l) => [l, CRLF]));
    }
    this.#body = { kind: 'encoded', data };
  }

  #setBinary(content: BinarySourceInput, options: ContentOptions): void {
    const source = toBinarySource(content);
    let filename = options.filename;
    if (filename === undefined && source.kind === 'file') filename = basename(source.path);
    const [guessedMain, guessedSub] = guessType(filename);
    const maintype = (options.maintype ?? (options.subtype ? 'application' : guessedMain)).toLowerCase();
    const subtype = (options.subtype ?? (options.maintype ? 'octet-stream' : guessedSub)).toLowerCase();
    if (maintype === 'multipart') throw new MessageStructureError('multipart content is built with makeMixed/addAttachment, not setContent');
    const params = new Map(Object.entries(options.params ?? {}));
    this.#pushField('Content-Type', paramsText(`${maintype}/${subtype}`, params));
    const cte = options.cte ?? 'base64';
    this.#pushField('Content-Transfer-Encoding', cte);
    if (cte === 'base64') this.#body = { kind: 'base64', source };
    else if (cte === 'quoted-printable') {
      const bytes = sourceBytesSync(source);
      const lines = textLines(bytes.toString('latin1')).map((l) => Buffer.from(l, 'latin1'));
      this.#body = { kind: 'encoded', data: Buffer.from(encodeQuotedPrintableLines(lines, '\r\n'), 'latin1') };
    } else this.#body = { kind: 'encoded', data: sourceBytesSync(source) };
  }

  /** Adds an alternative (Python: add_alternative); makes the message multipart/alternative first. */
  addAlternative(content: Content, options: ContentOptions = {}): EmailMessage {
    return this.#addMultipart('alternative', content, options, undefined);
  }

  /** Adds a related part, e.g. an inline image referenced by cid (Python: add_related). */
  addRelated(content: Content, options: ContentOptions = {}): EmailMessage {
    return this.#addMultipart('related', content, options, 'inline');
  }

  /** Adds an attachment (Python: add_attachment); a { path } attachment is named after its file. */
  addAttachment(content: Content, options: ContentOptions = {}): EmailMessage {
    return this.#addMultipart('mixed', content, options, 'attachment');
  }

  #addMultipart(subtype: 'alternative' | 'related' | 'mixed', content: Content, options: ContentOptions, disposition: 'inline' | 'attachment' | undefined): EmailMessage {
    if (this.getContentType() !== `multipart/${subtype}`) this.#makeMultipart(subtype, undefined);
    const part = new EmailMessage({ policy: this.policy });
    part.#parent = this; // so setContent does not add MIME-Version
    let opts = options;
    if (opts.filename === undefined && typeof content === 'object' && content !== null && 'path' in content && typeof content.path === 'string') {
      opts = { ...opts, filename: basename(content.path) };
    }
    if (disposition && !opts.disposition && (opts.filename !== undefined || disposition === 'attachment' || disposition === 'inline')) opts = { ...opts, disposition };
    part.setContent(content, opts);
    this.attach(part);
    return part;
  }

  makeMixed(boundary?: string): void {
    this.#makeMultipart('mixed', boundary);
  }

  makeAlternative(boundary?: string): void {
    this.#makeMultipart('alternative', boundary);
  }

  makeRelated(boundary?: string): void {
    this.#makeMultipart('related', boundary);
  }

  /** Python's _make_multipart: existing content moves into a first subpart. */
  #makeMultipart(subtype: 'mixed' | 'alternative' | 'related', boundary: string | undefined): void {
    const disallowed = { mixed: [] as string[], alternative: ['mixed'], related: ['alternative', 'mixed'] }[subtype];
    if (this.getContentMaintype() === 'multipart') {
      const existing = this.getContentSubtype();
      if ([...disallowed, subtype].includes(existing)) throw new MessageStructureError(`cannot convert multipart/${existing} to multipart/${subtype}`);
    }
    const keep: HeaderField[] = [];
    const contentHeaders: HeaderField[] = [];
    for (const field of this.#headers) (field.name.toLowerCase().startsWith('content-') ? contentHeaders : keep).push(field);
    const parts: EmailMessage[] = [];
    if (contentHeaders.length > 0) {
      const part = new EmailMessage({ policy: this.policy });
      part.#headers = contentHeaders;
      part.#body = this.#body;
      if (this.#body.kind === 'multipart') for (const p of this.#body.parts) p.#parent = part;
      if (this.#body.kind === 'message') this.#body.message.#parent = part;
      part.#adopt(this);
      parts.push(part);
    }
    this.#headers = keep;
    this.#body = { kind: 'multipart', parts, preamble: null, epilogue: null };
    this.#headers.push({ name: 'Content-Type', value: `multipart/${subtype}` });
    if (boundary !== undefined) this.setParam('boundary', boundary);
    this.#touch();
  }

  /** Removes every header and the body (Python: clear). */
  clear(): void {
    this.#headers = [];
    this.#body = { kind: 'empty' };
    this.#touch();
  }

  /** Removes the Content-* headers and the body (Python: clear_content). */
  clearContent(): void {
    this.#headers = this.#headers.filter((f) => !f.name.toLowerCase().startsWith('content-'));
    this.#body = { kind: 'empty' };
    this.#touch();
  }

  /**
   * The content, decoded (Python: get_content): a string for text/*, the
   * EmailMessage for message/rfc822, a Buffer otherwise. Multiparts have none.
   */
  getContent(): string | Buffer | EmailMessage;
  /** The decoded bytes as a stream (transfer encoding undone while it is read; text is not charset-decoded). */
  getContent(options: { stream: true }): Readable;
  getContent(options?: { stream?: boolean }): string | Buffer | EmailMessage | Readable {
    if (options?.stream) return this.contentStream();
    const body = this.#body;
    if (body.kind === 'multipart') throw new MessageStructureError('a multipart has no content of its own; use iterParts(), getBody() or iterAttachments()');
    if (body.kind === 'message') return body.message;
    if (this.getContentMaintype() === 'multipart') throw new MessageStructureError(`this ${this.getContentType()} part could not be split into parts (see its defects); read its bytes with getDecodedPayload()`);
    const bytes = this.getDecodedPayload();
    if (this.getContentMaintype() !== 'text') return bytes;
    const decoded = decodeCharset(bytes, this.getContentCharset('us-ascii')!);
    if (decoded.unknownCharset) this.#recordDefect({ kind: 'UndecodableBytesDefect', message: `unknown charset ${JSON.stringify(this.getContentCharset())}; decoded as UTF-8` });
    return decoded.text.replace(/\r\n/g, '\n');
  }

  /** The body bytes with the transfer encoding undone (Python: get_payload(decode=True)). */
  getDecodedPayload(): Buffer {
    const body = this.#body;
    if (body.kind === 'empty') return Buffer.alloc(0);
    if (body.kind === 'base64') return sourceBytesSync(body.source);
    if (body.kind === 'multipart' || body.kind === 'message') throw new MessageStructureError('a multipart or message/* part has no payload bytes of its own');
    if (body.data instanceof FileRegion && body.data.length > MAX_CONTENT_IN_MEMORY) {
      throw new ContentUnavailableError(`this body is ${body.data.length} bytes, kept in a file; read it with getContent({ stream: true })`);
    }
    const data = regionBytes(body.data);
    const cte = (this.get('content-transfer-encoding') ?? '7bit').trim().toLowerCase();
    if (cte === 'base64') {
      const { bytes, defects } = decodeBase64(data);
      for (const d of defects) this.#recordDefect(d);
      return bytes;
    }
    if (cte === 'quoted-printable') return decodeQuotedPrintable(data);
    return data;
  }

  /** The decoded content as a stream (large attachments without holding them whole). */
  contentStream(): Readable {
    const body = this.#body;
    if (body.kind === 'base64') return Readable.from(readSource(body.source));
    if (body.kind !== 'raw' && body.kind !== 'encoded') return Readable.from([this.getDecodedPayload()]);
    const cte = (this.get('content-transfer-encoding') ?? '7bit').trim().toLowerCase();
    const chunks = regionChunks(body.data);
    if (cte === 'base64') return Readable.from(decodeBase64Chunks(chunks, (d) => this.#recordDefect(d)));
    if (cte === 'quoted-printable') return Readable.from(decodeQuotedPrintableChunks(chunks));
    return Readable.from(chunks);
  }

  /**
   * Releases the file a large parse reads from (a nameless temporary file for
   * a stream, or the caller's { path }): its bodies are unreadable afterwards.
   * Nothing to do for messages parsed in memory or composed. Also run by
   * `await using`, and when the message is garbage-collected.
   */
  dispose(): void {
    this.#root().#file?.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  #recordDefect(d: Defect): void {
    if (!this.defects.some((x) => x.kind === d.kind && x.message === d.message)) this.defects.push(d);
  }

  // --- writing -------------------------------------------------------------------

  /** The message as bytes (Python: as_bytes). Reads file and stream attachments. */
  async asBytes(options: SerializeOptions = {}): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.#chunks(options.policy ?? this.policy)) chunks.push(chunk);
    return Buffer.concat(chunks);
  }

  /** The serialized bytes as a stream, attachments read as it is consumed (bounded memory). */
  stream(options: SerializeOptions = {}): Readable {
    return Readable.from(this.#chunks(options.policy ?? this.policy), { objectMode: false, highWaterMark: 64 * 1024 });
  }

  /** What the written message needs from the server: SMTPUTF8 for UTF-8 headers, 8BITMIME for 8-bit bodies. */
  smtpRequirements(options: SerializeOptions = {}): SmtpRequirements {
    const policy = options.policy ?? this.policy;
    let smtputf8 = false;
    let eightBitMime = false;
    for (const part of this.walk()) {
      for (const field of part.#headers) {
        if (field.raw && !part.#dirty ? hasHighBit(field.raw) : policy.utf8 && !isAscii(field.value)) smtputf8 = true;
      }
      const body = part.#body;
      if ((body.kind === 'encoded' || body.kind === 'raw') && regionHasHighBit(body.data)) eightBitMime = true;
      if (body.kind === 'multipart' && ((body.preamble && regionHasHighBit(body.preamble)) || (body.epilogue && regionHasHighBit(body.epilogue)))) eightBitMime = true;
    }
    if (smtputf8) eightBitMime = true;
    return { smtputf8, eightBitMime };
  }

  async *#chunks(policy: Policy): AsyncGenerator<Buffer> {
    // Text is gathered into chunks of about 64 KiB; binary sources stream through.
    let pending: (string | Buffer)[] = [];
    let size = 0;
    const flush = (): Buffer => {
      const out = Buffer.concat(pending.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)));
      pending = [];
      size = 0;
      return out;
    };
    for (const piece of this.#pieces(policy, [])) {
      if (typeof piece === 'string' || Buffer.isBuffer(piece)) {
        pending.push(piece);
        size += piece.length;
        if (size >= 64 * 1024) yield flush();
        continue;
      }
      if (size > 0) yield flush();
      if ('region' in piece) {
        yield* piece.region.chunks();
        continue;
      }
      // A file is read into two reused Buffers (safe: the writer is done with
      // a chunk, or has copied what it keeps, before the next is read).
      const writer = new Base64LineWriter(policy.linesep);
      for await (const chunk of readSourceReusing(piece.source, FILE_READ_BYTES)) yield* writer.write(chunk);
      const tail = writer.end();
      if (tail) yield tail;
    }
    if (size > 0) yield flush();
  }

  *#pieces(policy: Policy, path: number[]): Generator<Piece> {
    if (this.#raw && !this.#dirty) {
      yield piece(this.#raw);
      return;
    }
    const nl = policy.linesep;
    const body = this.#body;
    if (body.kind === 'multipart' && !this.getBoundary()) {
      const boundary = this.#newBoundary(path);
      const parsed = parseParams(this.get('content-type') ?? 'multipart/mixed');
      parsed.params.set('boundary', boundary);
      const index = this.#headers.findIndex((f) => f.name.toLowerCase() === 'content-type');
      const field = { name: 'Content-Type', value: paramsText(parsed.value, parsed.params) };
      if (index === -1) this.#headers.push(field);
      else this.#headers[index] = field;
    }
    let head = '';
    for (const field of this.#headers) {
      if (field.raw) {
        if (head) { yield head; head = ''; }
        yield field.raw;
      } else head += renderField(field, policy);
    }
    yield head + nl;
    switch (body.kind) {
      case 'empty':
        return;
      case 'encoded':
        yield nl === '\r\n' ? body.data : Buffer.from(body.data.toString('latin1').replace(/\r\n/g, nl), 'latin1');
        return;
      case 'raw':
        yield piece(body.data);
        return;
      case 'base64':
        if (body.source.kind === 'bytes' && body.source.bytes.length <= CHUNK_BYTES) yield base64LinesBuffer(body.source.bytes, nl);
        else yield { source: body.source };
        return;
      case 'message':
        yield* body.message.#pieces(policy, [...path, 0]);
        return;
      case 'multipart': {
        const boundary = this.getBoundary()!;
        if (body.preamble !== null) yield piece(body.preamble);
        for (const [i, part] of body.parts.entries()) {
          yield (i === 0 && body.preamble === null ? '' : nl) + `--${boundary}${nl}`;
          yield* part.#pieces(policy, [...path, i]);
        }
        if (body.parts.length === 0) yield `--${boundary}${nl}`;
        // A parsed epilogue starts with the close delimiter's own line end.
        yield `${nl}--${boundary}--`;
        yield body.epilogue === null ? nl : piece(body.epilogue);
      }
    }
  }

  #newBoundary(path: number[]): string {
    const ids = this.#root().#ids;
    // randomUUID draws from a cached pool: far cheaper per message than randomBytes.
    if (ids.seed === undefined) return `===============${randomUUID().replace(/-/g, '')}==`;
    const digest = createHash('sha256').update(`${ids.seed}/${path.join('.')}/${ids.next++}`).digest('hex').slice(0, 24);
    return `=_${digest}`;
  }

  #root(): EmailMessage {
    let node: EmailMessage = this;
    while (node.#parent) node = node.#parent;
    return node;
  }

  #adopt(parent: EmailMessage): void {
    this.#parent = parent;
  }

  /** Marks this part and its ancestors modified: they are written from their fields, not their source bytes. */
  #touch(): void {
    for (let node: EmailMessage | undefined = this; node; node = node.#parent) node.#dirty = true;
  }

  // --- used by the parser ----------------------------------------------------------

  /** @internal The parser's way to build a part from its source bytes. */
  static fromParsed(init: { policy: Policy; headers: HeaderField[]; body: Body; raw: Region; defects: Defect[]; file?: ParseFile }): EmailMessage {
    const message = new EmailMessage({ policy: init.policy });
    message.#file = init.file;
    message.#headers = init.headers;
    message.#body = init.body;
    message.#raw = init.raw;
    message.#dirty = false;
    message.defects.push(...init.defects);
    if (init.body.kind === 'multipart') for (const part of init.body.parts) part.#parent = message;
    if (init.body.kind === 'message') init.body.message.#parent = message;
    return message;
  }

  /** Python's as_string-ish debugging view: the headers as name: value lines. */
  toString(): string {
    return this.#headers.map((f) => `${f.name}: ${f.value}`).join('\n');
  }
}

const CRLF = Buffer.from('\r\n');

function piece(region: Region): Piece {
  return Buffer.isBuffer(region) ? region : { region };
}

function* findBody(part: EmailMessage, preferencelist: readonly string[]): Generator<[number, EmailMessage]> {
  if (part.isAttachment()) return;
  const [maintype, subtype] = part.getContentType().split('/') as [string, string];
  if (maintype === 'text') {
    const index = preferencelist.indexOf(subtype);
    if (index !== -1) yield [index, part];
    return;
  }
  if (maintype !== 'multipart' || !part.isMultipart()) return;
  if (subtype !== 'related') {
    for (const sub of part.iterParts()) yield* findBody(sub, preferencelist);
    return;
  }
  const relatedIndex = preferencelist.indexOf('related');
  if (relatedIndex !== -1) yield [relatedIndex, part];
  const parts = [...part.iterParts()];
  const start = part.getParam('start');
  const candidate = (start ? parts.find((p) => p.get('content-id') === start) : undefined) ?? parts[0];
  if (candidate) yield* findBody(candidate, preferencelist);
}

export { checkName };
