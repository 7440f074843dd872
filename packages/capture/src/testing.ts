// For an app's test suite: a client for the capture server's HTTP API, and
// in-process servers (capture and replay) that need nothing running outside.
//
//   import { Inbox } from 'smtplib-capture/testing';
//   const inbox = await Inbox.start();            // SMTP on inbox.smtp.port
//   ... let the app send to 127.0.0.1:inbox.smtp.port ...
//   const mail = await inbox.waitFor({ to: 'bob@example.test' });
//   expect(mail.subject).toBe('Welcome');
//   await inbox.close();
//
// Or against a running `npx smtplib serve`: new Inbox('http://127.0.0.1:8025').
import { startCapture, type CaptureOptions, type CaptureServer } from './capture.js';
import { startReplay, ReplayMismatchError, type ReplayOptions, type ReplayServer } from './replay.js';

export { startReplay, ReplayMismatchError, type ReplayOptions, type ReplayServer };

export interface WaitOptions {
  to?: string;
  from?: string;
  subject?: string;
  /** Search terms, as the inbox's search box takes them. */
  q?: string;
  /** Milliseconds (default 10 000). */
  timeout?: number;
  /** Only messages that arrived after the one with this id. */
  since?: string;
}

export interface InboxAttachment {
  index: number;
  filename: string | null;
  contentType: string;
  disposition: string | null;
  contentId?: string;
  size: number;
  url: string;
}

export interface InboxMessage {
  id: string;
  receivedAt: string;
  from: string;
  to: string[];
  cc?: string[];
  subject: string;
  size: number;
  snippet: string;
  mailFrom: { address: string; args: Record<string, string | true> };
  rcptTo: { address: string; args: Record<string, string | true> }[];
  accepted: string[];
  tls: { protocol?: string; cipher?: string } | null;
  user: string | null;
  headers?: [string, string][];
  text?: string | null;
  html?: string | null;
  attachments?: InboxAttachment[];
}

export class InboxError extends Error {
  readonly code = 'ERR_CAPTURE_INBOX';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'InboxError';
  }
}

export class Inbox {
  /** Set when the inbox was started in-process by Inbox.start(). */
  server: CaptureServer | undefined;

  constructor(readonly baseUrl = 'http://127.0.0.1:8025') {}

  /** Starts a capture server in this process (SMTP and HTTP on free loopback ports unless given). */
  static async start(options: CaptureOptions = {}): Promise<Inbox> {
    const server = await startCapture({ port: 0, ...options, http: { port: 0, ...(options.http || {}) } });
    const inbox = new Inbox(server.http!.url);
    inbox.server = server;
    return inbox;
  }

  /** Where the app should send mail (in-process servers only). */
  get smtp(): { host: string; port: number } {
    if (!this.server) throw new Error('smtp is known only for an inbox started with Inbox.start()');
    return { host: this.server.smtp.host, port: this.server.smtp.port };
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(this.baseUrl + path, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    const value = (await res.json()) as T & { error?: string };
    if (!res.ok) throw new InboxError(res.status, value.error ?? `${method} ${path}: HTTP ${res.status}`);
    return value;
  }

  async list(q = ''): Promise<InboxMessage[]> {
    const r = await this.call<{ messages: InboxMessage[] }>('GET', `/api/v1/messages?limit=1000${q ? `&q=${encodeURIComponent(q)}` : ''}`);
    return r.messages;
  }

  get(id: string): Promise<InboxMessage> {
    return this.call('GET', `/api/v1/messages/${encodeURIComponent(id)}`);
  }

  async raw(id: string): Promise<Buffer> {
    const res = await fetch(`${this.baseUrl}/api/v1/messages/${encodeURIComponent(id)}/raw`);
    if (!res.ok) throw new InboxError(res.status, `no message ${id}`);
    return Buffer.from(await res.arrayBuffer());
  }

  async transcript(id: string): Promise<string> {
    const res = await fetch(`${this.baseUrl}/api/v1/messages/${encodeURIComponent(id)}/transcript`);
    if (!res.ok) throw new InboxError(res.status, `no message ${id}`);
    return res.text();
  }

  /** The first message matching (one already there, or the next to arrive); throws InboxError 408 on timeout. */
  waitFor(match: WaitOptions = {}): Promise<InboxMessage> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(match)) if (v !== undefined) params.set(k, String(v));
    return this.call('GET', `/api/v1/messages/wait?${params}`);
  }

  async delete(id: string): Promise<void> {
    await this.call('DELETE', `/api/v1/messages/${encodeURIComponent(id)}`);
  }

  async clear(): Promise<number> {
    return (await this.call<{ deleted: number }>('DELETE', '/api/v1/messages')).deleted;
  }

  /** Replaces the scripted failures (see the grammar in docs/capture.md). */
  async setFailures(rules: string[]): Promise<void> {
    await this.call('PUT', '/api/v1/failures', { rules });
  }

  async clearFailures(): Promise<void> {
    await this.call('DELETE', '/api/v1/failures');
  }

  async close(): Promise<void> {
    await this.server?.close();
  }
}
