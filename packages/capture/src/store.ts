// The captured messages: held in memory up to a bound (the oldest is dropped
// first, never unbounded), optionally persisted as a Maildir or as .eml files
// and read back on start. Each message file has a JSON sidecar with the SMTP
// envelope and session transcript (Maildir: DIR/smtplib-capture/NAME.json,
// which Maildir readers ignore; .eml: NAME.json next to NAME.eml).
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';

export interface EnvelopeAddress {
  address: string;
  /** ESMTP parameters, upper-case keys; `true` for a keyword without a value. */
  args: Record<string, string | true>;
}

export interface CapturedMessage {
  /** Stable id (sortable by arrival). */
  id: string;
  /** The SMTP session (connection) it came in. */
  sessionId: string;
  receivedAt: string;
  remoteAddress: string;
  /** HELO/EHLO/LHLO name the client gave. */
  clientName: string;
  /** SMTP, ESMTP, ESMTPS, ESMTPSA, LMTP, ... */
  transmissionType: string;
  tls: { protocol?: string | undefined; cipher?: string | undefined } | null;
  /** Who authenticated, if anyone. */
  user: string | null;
  mailFrom: EnvelopeAddress;
  rcptTo: EnvelopeAddress[];
  /** Recipients the server accepted the message for (all of them for SMTP; LMTP may refuse some). */
  accepted: string[];
  size: number;
  /** Decoded headers for the list. */
  subject: string;
  from: string;
  to: string[];
  /** Start of the text body, for the list and search. */
  snippet: string;
  hasAttachments: boolean;
  /** The session opening and this message's transaction up to its final reply (S:/C: lines); the data is a DATA_MARKER line that expandTranscript fills in from `raw`. */
  transcript: string;
  /** Where the message is saved, if persisted. */
  file?: string | undefined;
}

export interface StoredMessage extends CapturedMessage {
  raw: Buffer;
  /** The decoded text (its first 32 KiB), searched by `q`. */
  searchText: string;
}

export type Persistence = { kind: 'maildir'; dir: string } | { kind: 'eml'; dir: string };

export interface StoreOptions {
  maxMessages?: number;
  persist?: Persistence[];
}

export const DEFAULT_MAX_MESSAGES = 1000;
const SEARCH_TEXT_CAP = 32 * 1024;

let counter = 0;
/** Time-ordered, unique within a process and across restarts. */
export function newId(at = Date.now()): string {
  return `${at.toString(36).padStart(9, '0')}${(++counter % 1296).toString(36).padStart(2, '0')}${randomBytes(3).toString('hex')}`;
}

export class MessageStore extends EventEmitter {
  readonly maxMessages: number;
  private readonly persist: Persistence[];
  private readonly byId = new Map<string, StoredMessage>();
  /** Files of each message (all persistence targets), for delete. */
  private readonly files = new Map<string, string[]>();

  constructor(options: StoreOptions = {}) {
    super();
    this.maxMessages = Math.max(1, options.maxMessages ?? DEFAULT_MAX_MESSAGES);
    this.persist = options.persist ?? [];
  }

  get size(): number {
    return this.byId.size;
  }

  /** Oldest first. */
  all(): StoredMessage[] {
    return [...this.byId.values()];
  }

  get(id: string): StoredMessage | undefined {
    return this.byId.get(id);
  }

  /** Saves (if persisting), keeps in memory, drops the oldest beyond the bound, emits 'message'. */
  add(message: StoredMessage): void {
    const files: string[] = [];
    for (const p of this.persist) files.push(...saveMessage(p, message));
    if (files.length) {
      message.file = files[0];
      this.files.set(message.id, files);
    }
    this.keep(message);
    this.emit('message', message);
  }

  private keep(message: StoredMessage): void {
    this.byId.set(message.id, message);
    while (this.byId.size > this.maxMessages) {
      const oldest = this.byId.keys().next().value as string;
      // Dropped from memory only: persisted files stay (the archive).
      this.byId.delete(oldest);
      this.files.delete(oldest);
      this.emit('drop', oldest);
    }
  }

  delete(id: string): boolean {
    if (!this.byId.delete(id)) return false;
    for (const f of this.files.get(id) ?? []) rmSync(f, { force: true });
    this.files.delete(id);
    this.emit('delete', id);
    return true;
  }

  clear(): number {
    const n = this.byId.size;
    for (const id of [...this.byId.keys()]) {
      for (const f of this.files.get(id) ?? []) rmSync(f, { force: true });
    }
    this.byId.clear();
    this.files.clear();
    this.emit('clear');
    return n;
  }

  /** Reads persisted messages back (newest `maxMessages`), oldest first. */
  load(describe: (raw: Buffer, meta: Partial<CapturedMessage>, file: string) => Promise<StoredMessage>): Promise<number> {
    return (async () => {
      const found: { file: string; sidecar: string; mtime: number; target: Persistence }[] = [];
      for (const p of this.persist) found.push(...listPersisted(p));
      // The same message may be in a Maildir and an .eml dir: keep the first by id.
      found.sort((a, b) => a.mtime - b.mtime || a.file.localeCompare(b.file));
      const seen = new Map<string, StoredMessage>();
      for (const f of found.slice(-this.maxMessages * this.persist.length)) {
        let meta: Partial<CapturedMessage> = {};
        if (existsSync(f.sidecar)) {
          try {
            meta = JSON.parse(readFileSync(f.sidecar, 'utf8')) as Partial<CapturedMessage>;
          } catch {
            meta = {};
          }
        }
        const id = meta.id ?? newId(f.mtime);
        const known = seen.get(id);
        if (known) {
          this.files.get(id)?.push(f.file, f.sidecar);
          continue;
        }
        const message = await describe(readFileSync(f.file), { ...meta, id, receivedAt: meta.receivedAt ?? new Date(f.mtime).toISOString() }, f.file);
        message.file = f.file;
        seen.set(id, message);
        this.files.set(id, [f.file, f.sidecar]);
        this.keep(message);
      }
      return this.byId.size;
    })();
  }
}

/** The JSON a sidecar holds: everything but the raw bytes. */
export function metadataOf(m: StoredMessage): CapturedMessage {
  const { raw: _raw, searchText: _s, file: _f, ...meta } = m;
  return meta;
}

export function capSearchText(text: string): string {
  return text.length > SEARCH_TEXT_CAP ? text.slice(0, SEARCH_TEXT_CAP) : text;
}

function saveMessage(p: Persistence, m: StoredMessage): string[] {
  const meta = JSON.stringify(metadataOf(m), null, 1);
  if (p.kind === 'maildir') {
    for (const sub of ['tmp', 'new', 'cur', 'smtplib-capture']) mkdirSync(join(p.dir, sub), { recursive: true });
    const now = Date.now();
    const name = `${Math.floor(now / 1000)}.M${(now % 1000) * 1000}P${process.pid}Q${m.id}.${hostname().replace(/[/:]/g, '_')}`;
    const tmp = join(p.dir, 'tmp', name);
    writeFileSync(tmp, m.raw, { flag: 'wx' });
    const dest = join(p.dir, 'new', name);
    renameSync(tmp, dest);
    const sidecar = join(p.dir, 'smtplib-capture', `${name}.json`);
    writeFileSync(sidecar, meta);
    return [dest, sidecar];
  }
  mkdirSync(p.dir, { recursive: true });
  const stamp = m.receivedAt.replace(/[:.]/g, '-');
  const file = join(p.dir, `${stamp}-${m.id}.eml`);
  writeFileSync(file, m.raw, { flag: 'wx' });
  const sidecar = file.replace(/\.eml$/, '.json');
  writeFileSync(sidecar, meta);
  return [file, sidecar];
}

function listPersisted(p: Persistence): { file: string; sidecar: string; mtime: number; target: Persistence }[] {
  const out: { file: string; sidecar: string; mtime: number; target: Persistence }[] = [];
  if (p.kind === 'maildir') {
    for (const sub of ['new', 'cur']) {
      const dir = join(p.dir, sub);
      if (!existsSync(dir)) continue;
      for (const name of readdirSync(dir)) {
        const file = join(dir, name);
        const base = basename(name).split(':')[0]!;
        out.push({ file, sidecar: join(p.dir, 'smtplib-capture', `${base}.json`), mtime: statSync(file).mtimeMs, target: p });
      }
    }
  } else if (existsSync(p.dir)) {
    for (const name of readdirSync(p.dir)) {
      if (!name.endsWith('.eml')) continue;
      const file = join(p.dir, name);
      out.push({ file, sidecar: file.replace(/\.eml$/, '.json'), mtime: statSync(file).mtimeMs, target: p });
    }
  }
  return out;
}
