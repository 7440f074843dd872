// One connection of an SMTPPool: an SMTP client plus what the pool needs to
// decide whether to reuse it (age, messages carried, messages in flight, last
// use) and to notice when it is gone (the socket's 'close').

import type { TLSSocket } from 'node:tls';
import { SMTP, type LoginOptions } from '../client/smtp.js';
import { SMTP_SSL } from '../client/smtp-ssl.js';
import type { SMTPOptions } from '../client/options.js';
import type { DeliveryResult } from '../client/transaction.js';
import type { Reply } from '../protocol/reply.js';

export interface PoolAuth extends Omit<LoginOptions, 'signal' | 'mechanism'> {
  user: string;
  /** The password; omit it when `provider` (OAuth 2) or `token` is given. */
  pass?: string;
  /** Use exactly this SASL mechanism (default: the strongest both sides support). */
  mechanism?: string;
}

export interface OpenConnectionOptions {
  id: number;
  smtp: SMTPOptions;
  implicitTls: boolean;
  auth?: PoolAuth | undefined;
  /** Receives every TLS session the server hands out (for resumption). */
  onTlsSession?: ((session: Buffer) => void) | undefined;
  signal?: AbortSignal | undefined;
}

let nextId = 1;

/** Why a connection left the pool. */
export type DisconnectReason = 'idle' | 'ttl' | 'max-messages' | 'closed' | 'lost' | 'noop-failed';

export class PoolConnection {
  readonly id: number;
  readonly smtp: SMTP;
  /** performance.now() when the connection became usable. */
  readonly createdAt: number;
  /** Milliseconds from the start of connect() to a usable session (TCP, TLS, greeting, EHLO, AUTH). */
  readonly connectMs: number;
  /** The TLS session was resumed (abbreviated handshake). */
  readonly tlsResumed: boolean;
  /** Sends started on this connection. */
  messages = 0;
  /** Sends started and not finished. */
  inFlight = 0;
  /** performance.now() when the last send finished (or when the connection opened). */
  lastUsed: number;
  /** No new sends: closes (QUIT) once the last in-flight one ends. */
  retiring = false;
  /** Why it is being retired. */
  retireReason: DisconnectReason | undefined;
  /** Sends after which it retires (the pool's limit, staggered per connection). */
  messageLimit = Infinity;
  /** Age in ms after which it retires (staggered per connection). */
  ageLimit = Infinity;
  /** A NOOP is checking the connection; not available meanwhile. */
  checking = false;
  #closed = false;
  #onClose: (() => void)[] = [];
  idleTimer: NodeJS.Timeout | undefined;

  private constructor(id: number, smtp: SMTP, connectMs: number, tlsResumed: boolean) {
    this.id = id;
    this.smtp = smtp;
    this.connectMs = connectMs;
    this.tlsResumed = tlsResumed;
    this.createdAt = performance.now();
    this.lastUsed = this.createdAt;
    const socket = smtp.socket;
    if (socket) {
      socket.once('close', () => this.#markClosed());
    } else {
      this.#closed = true;
    }
  }

  static newId(): number {
    return nextId++;
  }

  /** Connects, applies the TLS policy, says EHLO and logs in. Closes the client on any failure. */
  static async open(options: OpenConnectionOptions): Promise<PoolConnection> {
    const started = performance.now();
    const Client = options.implicitTls ? SMTP_SSL : SMTP;
    const smtp = new Client(options.smtp);
    try {
      await smtp.connect(undefined, undefined, { signal: options.signal });
      if (options.auth) {
        const { user, pass, mechanism, ...rest } = options.auth;
        await smtp.login(user, pass, { ...rest, ...(mechanism ? { mechanism } : {}), signal: options.signal });
      } else {
        await smtp.ehloOrHeloIfNeeded({ signal: options.signal });
      }
    } catch (error) {
      smtp.close();
      throw error;
    }
    const socket = smtp.socket as Partial<TLSSocket> | undefined;
    let resumed = false;
    if (socket && typeof socket.isSessionReused === 'function' && smtp.isSecure) {
      resumed = socket.isSessionReused();
      const keep = options.onTlsSession;
      if (keep) {
        const current = socket.getSession?.();
        if (current) keep(current);
        // TLS 1.3 tickets arrive after the handshake.
        (socket as TLSSocket).on('session', keep);
      }
    }
    return new PoolConnection(options.id, smtp, performance.now() - started, resumed);
  }

  /** Connected, not closed, and not being retired. */
  get alive(): boolean {
    return !this.#closed && this.smtp.isConnected;
  }

  get ageMs(): number {
    return performance.now() - this.createdAt;
  }

  get idleMs(): number {
    return this.inFlight === 0 ? performance.now() - this.lastUsed : 0;
  }

  /** Calls `listener` once the connection is gone (socket closed), whatever the reason. */
  onClose(listener: () => void): void {
    if (this.#closed) queueMicrotask(listener);
    else this.#onClose.push(listener);
  }

  deliver(run: (smtp: SMTP) => Promise<DeliveryResult>): Promise<DeliveryResult> {
    return run(this.smtp);
  }

  /** NOOP; true if the server answered 250 and the connection is still up. */
  async check(signal?: AbortSignal): Promise<boolean> {
    try {
      const reply: Reply = await this.smtp.noop({ ...(signal ? { signal } : {}) });
      return reply.code === 250 && this.alive;
    } catch {
      return false;
    }
  }

  /** QUIT and close; never throws. */
  async quit(): Promise<void> {
    clearTimeout(this.idleTimer);
    if (!this.alive) {
      this.close();
      return;
    }
    try {
      await this.smtp.quit();
    } catch {
      // QUIT's outcome changes nothing.
    } finally {
      this.close();
    }
  }

  /** Closes without QUIT. */
  close(): void {
    clearTimeout(this.idleTimer);
    this.smtp.close();
    // A stream that was already gone emits no further 'close'.
    if (!this.smtp.socket || this.smtp.socket.destroyed) queueMicrotask(() => this.#markClosed());
  }

  #markClosed(): void {
    if (this.#closed && this.#onClose.length === 0) return;
    this.#closed = true;
    clearTimeout(this.idleTimer);
    const listeners = this.#onClose;
    this.#onClose = [];
    for (const listener of listeners) listener();
  }
}
