// class SMTP: Python smtplib's SMTP object in TypeScript, secure by default.
//
// It composes the layers below it and owns the policy: which TLS mode a
// port gets, when EHLO happens, when STARTTLS is required, which SASL
// mechanism may be used, and what state the connection is in after an error
// (see README "Recovery"). Every network operation runs through one queue,
// so concurrent calls never interleave on the wire, and queued sendmail()
// calls are pipelined into each other.

import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import type { Credentials, SaslMechanism, SaslMechanismFactory } from '../auth/mechanism.js';
import {
  SMTPAbortError,
  SMTPDataError,
  SMTPException,
  SMTPHeloError,
  SMTPInvalidArgumentError,
  SMTPNotSupportedError,
  SMTPResponseException,
  SMTPServerDisconnected,
} from '../errors.js';
import { addrOnly, asciiHost, isAscii, toPath } from '../protocol/address.js';
import { Capabilities } from '../protocol/capabilities.js';
import { assertClientName, assertSafeArgument, commandLine, maskSecret } from '../protocol/commands.js';
import { DataEncoder, ENCODE_WINDOW } from '../protocol/data-encoder.js';
import {
  renderMailParameters,
  renderRcptParameters,
  toMailOptions,
  toRcptOptions,
  type MailOptions,
  type RcptOptions,
} from '../protocol/params.js';
import type { Reply } from '../protocol/reply.js';
import { DebugLog, type DebugOutput } from '../session/debug-log.js';
import { Session } from '../session/session.js';
import { openSocket, startTls } from '../wire/connect.js';
import { assertModernTls, weakenedTlsOptions, type TlsSettings } from '../wire/tls-options.js';
import { Transport } from '../wire/transport.js';
import { assertMechanismAllowed, CLEARTEXT_MECHANISMS, runExchange } from './authenticate.js';
import { readGreeting } from './greeting.js';
import { defaultLocalHostname, isLoopbackHost } from './local-name.js';
import { selectLoginMechanism, toMechanism, type AuthObject } from './sasl-selection.js';
import type { TokenProvider } from '../oauth/provider.js';
import { applyTlsPolicy } from './tls-policy.js';
import { envelopeFromHeaders, splitBytes, splitMessage, type SplitMessage } from '../message/headers.js';
import { checkCallOptions, isCallOptions, sendmailArguments, type CallOptions } from './call-options.js';
import { toMessageSource, type MessageInput } from '../message/source.js';
import { OperationQueue } from './operation-queue.js';
import {
  resolveTimeouts,
  SMTP_PORT,
  SMTP_SSL_PORT,
  splitHostPort,
  positionalOptions,
  validateOptions,
  type SMTPOptions,
  type Timeouts,
  type TlsPolicy,
} from './options.js';
import type { RefusedRecipients } from '../protocol/refused-recipients.js';
import type { SendmailCallOptions } from './call-options.js';
import { Transaction, type DeliveryResult, type TransactionContext, type TransactionRequest } from './transaction.js';
import { publishAuth, publishConnect, publishError, publishSend } from '../diagnostics.js';
import { planDkim, toDkimSigner, type DkimOption, type DkimSigner } from '../dkim/index.js';
import type { MessageSource } from '../message/source.js';

export type { AuthObject, CallOptions };

export interface LoginOptions extends CallOptions {
  /** Send the first response with the AUTH command (RFC 4954). Default true. */
  initialResponseOk?: boolean;
  /** Use exactly this mechanism (it must be advertised). */
  mechanism?: string;
  /** Preference order to choose from (strongest first). CRAM-MD5 is used only if listed here or named. */
  mechanisms?: readonly string[];
  /** OAuth 2 access token (or a function returning one) for XOAUTH2 / OAUTHBEARER. */
  token?: string | (() => string | Promise<string>);
  /** Authorization identity, if different from the user. */
  authzid?: string;
  /**
   * OAuth 2 token provider (see refreshTokenProvider & co.): XOAUTH2 or
   * OAUTHBEARER as offered; a token the server refuses is replaced once.
   */
  provider?: TokenProvider;
}

export interface SendOptions extends CallOptions {
  mailOptions?: MailOptions | readonly string[];
  rcptOptions?: RcptOptions | readonly string[];
  /**
   * Awaited just before the end of data (the final dot, or BDAT LAST) is
   * written, after the server accepted the envelope (and DATA). A durable
   * queue records here that the message may be delivered from now on. If it
   * throws, nothing more is written and the connection is closed: the send
   * fails with deliveryStatus 'not-delivered'.
   */
  beforeCommit?: () => unknown;
  /**
   * Called synchronously just before the write that carries the end of data
   * (after beforeCommit, if both are given). Unlike beforeCommit it does not
   * stop a small message from riding whole (MAIL, RCPT, BDAT LAST and the
   * body in one write): it then runs before that write, so before any of the
   * message leaves. A durable queue notes here, without waiting for a disk,
   * which attempts a crash may have left delivered: one that never called it
   * certainly was not. If it throws, the end of data is not written and the
   * send fails with deliveryStatus 'not-delivered' (the connection is closed
   * when part of the message had been written).
   */
  beforeCommitSync?: () => void;
  /** DKIM-sign this message (replaces the connection's `dkim` option); `false`: do not sign it. */
  dkim?: DkimOption | DkimSigner | false;
}

export interface SendMessageOptions extends SendOptions {
  /** Envelope sender; default: the message's Sender/From (or Resent-Sender/Resent-From). */
  from?: string;
  /** Envelope recipients; default: To, Cc and Bcc (or the Resent- ones). */
  to?: string | readonly string[];
}

interface Target {
  host: string;
  port: number;
  path?: string;
}

export class SMTP {
  /** The port connect() uses when none is given. */
  static readonly defaultPort: number = SMTP_PORT;

  /** Creates a client, connects and checks the greeting (SMTPConnectError unless 220). `signal` cancels the connect. */
  static async connect<T extends SMTP>(this: new (options?: SMTPOptions) => T, options: SMTPOptions & CallOptions = {}): Promise<T> {
    const { signal, ...rest } = options ?? {};
    const client = new this(rest);
    await client.connect(undefined, undefined, checkCallOptions(signal === undefined ? undefined : { signal }, 'SMTP.connect'));
    return client;
  }

  /** Replies and features of the last successful EHLO: keyword (lower case) → parameters. */
  esmtpFeatures: Map<string, string> = new Map();
  /** The server answered EHLO positively. */
  doesEsmtp = false;
  /** Text of the last EHLO reply, or null. */
  ehloResp: string | null = null;
  /** Text of the last HELO reply, or null. */
  heloResp: string | null = null;
  /** Timeout in ms as given (per-phase values are in `timeouts`). */
  timeout: number | undefined;

  protected readonly options: SMTPOptions;
  protected readonly ehloVerb: string = 'EHLO';
  readonly #debug: DebugLog;
  readonly #ops = new OperationQueue();
  readonly #dkim: DkimSigner | undefined;
  #timeouts: Timeouts;
  #localHostname: string | undefined;
  #session: Session | undefined;
  #target: Target | undefined;
  #capabilities = new Capabilities();
  #implicitTls = false;
  #greeting: Reply | undefined;
  #authenticated = false;
  /** Recipients accepted since the last MAIL (for LMTP's per-recipient DATA replies). */
  protected acceptedSinceMail = 0;

  /**
   * No I/O happens here. `new SMTP(host, port, localHostname, timeout)` is
   * smtplib's positional form: it records them but, unlike Python, does not
   * connect (a constructor cannot wait): call connect() or use SMTP.connect().
   */
  constructor(options?: SMTPOptions);
  constructor(host: string, port?: number, localHostname?: string, timeout?: number);
  constructor(...args: [SMTPOptions?] | [string, number?, string?, number?]) {
    const options: SMTPOptions = typeof args[0] === 'string' ? positionalOptions(args) : (args[0] ?? {});
    if (args.length > 1 && typeof args[0] !== 'string') {
      throw new SMTPInvalidArgumentError('new SMTP(options) takes one options object, or smtplib\'s positional (host, port, localHostname, timeout)');
    }
    validateOptions(options);
    this.options = { ...options };
    // The options can hold secrets (tls.key, tls.pfx, tls.passphrase): keep them out of util.inspect and JSON.stringify.
    Object.defineProperty(this, 'options', { enumerable: false });
    if (options.localHostname !== undefined) assertClientName(options.localHostname);
    this.#localHostname = options.localHostname;
    this.timeout = options.timeout;
    this.#timeouts = resolveTimeouts(options);
    this.#debug = new DebugLog(options.debugLevel ?? 0, options.debugOutput);
    // Keys are parsed here, so a bad one fails before any connection is made;
    // the stored options keep the signer, which hides its keys, not the caller's PEM.
    this.#dkim = options.dkim ? toDkimSigner(options.dkim) : undefined;
    if (this.#dkim) this.options.dkim = this.#dkim;
  }

  // --- attributes -----------------------------------------------------------

  get debugLevel(): number {
    return this.#debug.level;
  }
  set debugLevel(level: number) {
    this.#debug.level = Number(level) || 0;
  }

  /** 1: every line sent and received; 2: the same with timestamps. */
  setDebugLevel(level: number | boolean): void {
    this.debugLevel = level === true ? 1 : Number(level) || 0;
  }

  /** Where debug lines go. */
  set debugOutput(output: DebugOutput) {
    this.#debug.output = output;
  }

  /** Per-phase deadlines in milliseconds. */
  get timeouts(): Readonly<Timeouts> {
    return this.#timeouts;
  }

  /** The name sent in EHLO/HELO/LHLO. */
  get localHostname(): string {
    return this.#localHostname ?? defaultLocalHostname(undefined);
  }
  set localHostname(name: string) {
    assertClientName(name);
    this.#localHostname = name;
  }

  /** The greeting the server sent on connect. */
  get greeting(): Reply | undefined {
    return this.#greeting;
  }

  /** Connected and usable. */
  get isConnected(): boolean {
    return this.#session?.isOpen ?? false;
  }

  /** TLS is up (implicit or after STARTTLS). */
  get isSecure(): boolean {
    return this.#session?.transport.secure ?? false;
  }

  /**
   * TLS is up and the certificate was verified (chain and host name, or the
   * pinned fingerprint). False without TLS, and false on TLS that
   * `tls.rejectUnauthorized: false` let through with a certificate that
   * failed: such a session is encrypted but not authenticated, and the
   * client treats it as cleartext for credentials and REQUIRETLS.
   */
  get isVerified(): boolean {
    return this.#session?.transport.verified ?? false;
  }

  /** The caller's TLS options that weaken verification (reported, never silent). */
  get #weakened(): string[] {
    return weakenedTlsOptions(this.options.tls ?? {});
  }

  /** A debug line when TLS is up without verification, or with the caller's weakening options. */
  #reportTls(transport: Transport): void {
    if (!transport.secure) return;
    const weakened = this.#weakened;
    if (!transport.verified) {
      this.#debug.print(`tls: the server certificate was NOT verified (${weakened.join(', ') || 'no check'}); credentials and REQUIRETLS are treated as over cleartext`);
    } else if (weakened.length) {
      this.#debug.print(`tls: verification weakened by the caller's options: ${weakened.join(', ')}`);
    }
  }

  /** A successful AUTH happened on this connection (reset by STARTTLS). */
  get isAuthenticated(): boolean {
    return this.#authenticated;
  }

  /** The underlying stream: a net.Socket, or a tls.TLSSocket once TLS is up. */
  get socket(): Duplex | undefined {
    return this.#session?.transport.stream;
  }

  /** The parsed capabilities of the last EHLO. */
  get capabilities(): Capabilities {
    return this.#capabilities;
  }

  /** The TLS policy in force for the current (or next) connection. */
  get tlsPolicy(): TlsPolicy | 'implicit' {
    const target = this.#target ?? this.#resolveTarget(undefined, undefined);
    if (this.#target ? this.#implicitTls : this.useImplicitTls(target.port)) return 'implicit';
    return this.#effectivePolicy(target);
  }

  // --- connection -----------------------------------------------------------

  /**
   * Connects to `host` (default: the constructor's, else "localhost") on
   * `port` (default: the class's port; "host:port" is split), reads the
   * greeting (SMTPConnectError unless 220) and applies the TLS policy.
   * Resolves with the greeting.
   */
  async connect(host?: string, port?: number, options: CallOptions = {}): Promise<Reply> {
    const startedAt = performance.now();
    const previous = this.#session;
    try {
      return await this.#connect(host, port, options, startedAt);
    } catch (error) {
      publishError(this.#session === previous ? undefined : this.#session, error, 'connect', undefined, { ...(this.#target ?? { host: host ?? this.options.host ?? 'localhost', port: 0 }), startedAt });
      throw error;
    }
  }

  async #connect(host: string | undefined, port: number | undefined, options: CallOptions, startedAt: number): Promise<Reply> {
    if (this.#session?.isOpen) this.close();
    const target = this.#resolveTarget(host, port);
    this.#target = target;
    this.#implicitTls = this.useImplicitTls(target.port);
    this.#resetEhlo();
    this.#authenticated = false;
    const where = target.path ?? `('${target.host}', ${target.port})`;
    this.#debug.connect(where);
    const source = typeof this.options.sourceAddress === 'string' ? { address: this.options.sourceAddress } : this.options.sourceAddress;
    let stream = await openSocket({
      target,
      timeout: this.#timeouts.connect,
      signal: options.signal,
      sourceAddress: source?.address,
      sourcePort: source?.port,
      lookup: this.options.lookup,
      family: this.options.family,
      autoSelectFamily: this.options.autoSelectFamily,
      connect: this.options.connect,
    });
    if (this.#implicitTls) {
      stream = await startTls(stream, target.host, target.port, this.#tlsSettings(), this.#timeouts.tls, options.signal);
    }
    const transport = new Transport(stream, {
      secure: this.#implicitTls,
      unix: target.path !== undefined,
      namedLoopback: isLoopbackHost(target.host),
      viaHook: this.options.connect !== undefined,
    });
    this.#reportTls(transport);
    const session = new Session(transport, this.#debug, this.options.replyLimits);
    this.#session = session;
    if (this.#localHostname === undefined) this.#localHostname = defaultLocalHostname(target.path ? undefined : (stream as net.Socket).localAddress);
    const greeting = await this.#readGreeting(session, target, options.signal);
    this.#greeting = greeting;
    await this.#ops.run(() => this.#applyTlsPolicy(target, options.signal));
    publishConnect(session, {
      host: target.host,
      port: target.port,
      ...(target.path ? { path: target.path } : {}),
      secure: this.isSecure,
      verified: this.isVerified,
      ...(this.isSecure && this.#weakened.length ? { tlsWeakenedBy: [...this.#weakened] } : {}),
      greeting: { code: greeting.code, message: greeting.message },
    }, startedAt, this.#session?.transport.stream);
    return greeting;
  }

  /** Whether `port` gets implicit TLS (SMTP_SSL always; SMTP on 465). */
  protected useImplicitTls(port: number): boolean {
    // An explicit 'required' (or 'opportunistic') on 465 still means implicit TLS: STARTTLS on a TLS port cannot work.
    return port === SMTP_SSL_PORT && this.options.tlsPolicy !== 'none';
  }

  /** The port used when none is given. */
  protected get defaultPort(): number {
    return (this.constructor as typeof SMTP).defaultPort;
  }

  #resolveTarget(host: string | undefined, port: number | undefined): Target {
    const split = splitHostPort(host ?? this.options.host ?? 'localhost', port ?? (host === undefined ? this.options.port : undefined));
    const name = split.host;
    if (name.startsWith('/')) return { host: 'localhost', port: 0, path: name };
    const finalPort = split.port ?? this.defaultPort;
    if (!Number.isInteger(finalPort) || finalPort <= 0 || finalPort > 65535) {
      throw new SMTPInvalidArgumentError(`port must be an integer from 1 to 65535, got ${finalPort}`);
    }
    assertSafeArgument(name, 'host');
    return { host: asciiHost(name), port: finalPort };
  }

  #effectivePolicy(target: Target): TlsPolicy {
    if (this.options.tlsPolicy) return this.options.tlsPolicy;
    if (target.path || isLoopbackHost(target.host)) return 'none';
    return 'required';
  }

  #tlsSettings(): TlsSettings {
    const pins = this.options.fingerprint;
    return {
      options: this.options.tls ?? {},
      fingerprints: pins === undefined ? [] : typeof pins === 'string' ? [pins] : [...pins],
    };
  }

  async #readGreeting(session: Session, target: Target, signal?: AbortSignal): Promise<Reply> {
    return readGreeting(session, {
      where: target.path ?? `${target.host}:${target.port}`,
      port: target.port,
      implicitTls: this.#implicitTls,
      timeouts: this.#timeouts,
      signal,
    });
  }

  /** STARTTLS as the policy demands, right after the greeting (see tls-policy.ts). */
  async #applyTlsPolicy(target: Target, signal?: AbortSignal): Promise<void> {
    if (this.#implicitTls) return;
    const session = this.#requireSession();
    await applyTlsPolicy(this.#effectivePolicy(target), target, {
      ehlo: () => this.#ehlo(undefined, signal),
      helo: () => this.#helo(undefined, signal),
      starttls: () => this.#starttls(undefined, signal),
      capabilities: () => this.#capabilities,
      close: () => session.close(),
      ehloVerb: this.ehloVerb,
    });
  }

  #requireSession(): Session {
    const session = this.#session;
    if (!session) throw new SMTPServerDisconnected('please run connect() first');
    session.assertOpen();
    return session;
  }

  // --- raw commands -----------------------------------------------------------

  /** Writes raw bytes (smtplib's send()). No reply is read; use getreply(). */
  async send(data: string | Uint8Array, options: CallOptions = {}): Promise<void> {
    assertNotAborted(checkCallOptions(options, 'send').signal, 'send');
    const session = this.#requireSession();
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
    session.sendRaw(bytes, bytes.toString('utf8').replace(/\r\n$/, ''), false);
  }

  /** Writes one command line (checked for CR, LF and controls); its reply is read by getreply(). */
  async putcmd(cmd: string, args: string | CallOptions = '', options: CallOptions = {}): Promise<void> {
    if (isCallOptions(args)) [args, options] = ['', args];
    assertNotAborted(checkCallOptions(options, 'putcmd').signal, 'putcmd');
    const line = commandLine(cmd, args);
    const session = this.#requireSession();
    session.sendRaw(Buffer.from(`${line}\r\n`, 'utf8'), maskSecret(line), true);
  }

  /** Reads the next reply not claimed by a command. */
  async getreply(options: CallOptions = {}): Promise<Reply> {
    return this.#requireSession().getReply(this.#timeouts.command, options.signal);
  }

  /** Sends a command and returns its reply (smtplib's docmd). */
  async docmd(cmd: string, args: string | CallOptions = '', options: CallOptions = {}): Promise<Reply> {
    if (isCallOptions(args)) [args, options] = ['', args];
    const line = commandLine(cmd, args);
    return this.#ops.run(() => this.#command(line, options.signal));
  }

  #command(line: string, signal?: AbortSignal, phase: 'command' | 'quit' = 'command'): Promise<Reply> {
    const session = this.#requireSession();
    const timeout = phase === 'quit' ? this.#timeouts.quit : this.#timeouts.command;
    return session.command(line, { phase, timeout, logAs: maskSecret(line), signal });
  }

  // --- greeting commands ------------------------------------------------------

  /** HELO: identifies the client to a non-ESMTP server. */
  async helo(name?: string | CallOptions, options: CallOptions = {}): Promise<Reply> {
    if (isCallOptions(name)) [name, options] = [undefined, name];
    return this.#ops.run(() => this.#helo(name, options.signal));
  }

  async #helo(name?: string, signal?: AbortSignal): Promise<Reply> {
    const hostname = name ?? this.localHostname;
    assertClientName(hostname);
    const reply = await this.#command(commandLine('HELO', hostname), signal);
    this.heloResp = reply.message;
    return reply;
  }

  /** EHLO (LHLO for LMTP): identifies the client and reads the server's extensions. */
  async ehlo(name?: string | CallOptions, options: CallOptions = {}): Promise<Reply> {
    if (isCallOptions(name)) [name, options] = [undefined, name];
    return this.#ops.run(() => this.#ehlo(name, options.signal));
  }

  async #ehlo(name?: string, signal?: AbortSignal): Promise<Reply> {
    const hostname = name ?? this.localHostname;
    assertClientName(hostname);
    this.#resetEhlo();
    const reply = await this.#command(commandLine(this.ehloVerb, hostname), signal);
    this.ehloResp = reply.message;
    if (reply.code !== 250) {
      // A refused EHLO says nothing about extensions, whatever its text looks like.
      return reply;
    }
    this.doesEsmtp = true;
    this.#capabilities = Capabilities.fromReply(reply);
    this.esmtpFeatures = this.#capabilities.features;
    return reply;
  }

  /** EHLO, or HELO if EHLO is refused, unless either was already done. */
  async ehloOrHeloIfNeeded(options: CallOptions = {}): Promise<void> {
    return this.#ops.run(() => this.#ehloOrHeloIfNeeded(options.signal));
  }

  async #ehloOrHeloIfNeeded(signal?: AbortSignal): Promise<void> {
    if (this.heloResp !== null || this.ehloResp !== null) return;
    const ehlo = await this.#ehlo(undefined, signal);
    if (ehlo.isPositive) return;
    if (!this.allowsHeloFallback()) {
      throw new SMTPHeloError(ehlo.code, ehlo.message, undefined, { reply: ehlo, command: this.ehloVerb });
    }
    const helo = await this.#helo(undefined, signal);
    if (!helo.isPositive) throw new SMTPHeloError(helo.code, helo.message, undefined, { reply: helo, command: 'HELO' });
  }

  /** LMTP has no HELO (RFC 2033 §4.1). */
  protected allowsHeloFallback(): boolean {
    return true;
  }

  #resetEhlo(): void {
    this.ehloResp = null;
    this.heloResp = null;
    this.doesEsmtp = false;
    this.#capabilities = new Capabilities();
    this.esmtpFeatures = this.#capabilities.features;
  }

  /** Whether the server advertised extension `name` (case-insensitive). */
  hasExtn(name: string): boolean {
    return this.#capabilities.has(name);
  }

  // --- simple commands --------------------------------------------------------

  /** HELP: returns the text of the reply. */
  async help(args: string | CallOptions = '', options: CallOptions = {}): Promise<string> {
    if (isCallOptions(args)) [args, options] = ['', args];
    const topic = args;
    const reply = await this.#ops.run(async () => {
      await this.#ehloOrHeloIfNeeded(options.signal);
      return this.#command(commandLine('HELP', topic), options.signal);
    });
    return reply.message;
  }

  /** RSET: aborts the current mail transaction. */
  async rset(options: CallOptions = {}): Promise<Reply> {
    return this.#ops.run(() => this.#command('RSET', options.signal));
  }

  /** NOOP: checks the connection. */
  async noop(options: CallOptions = {}): Promise<Reply> {
    return this.#ops.run(() => this.#command('NOOP', options.signal));
  }

  /** VRFY: asks whether an address is valid here. */
  async verify(address: string, options: CallOptions = {}): Promise<Reply> {
    const arg = addrOnly(address);
    return this.#ops.run(async () => {
      await this.#ehloOrHeloIfNeeded(options.signal);
      return this.#command(commandLine('VRFY', arg), options.signal);
    });
  }

  /** Alias of verify(). */
  vrfy(address: string, options: CallOptions = {}): Promise<Reply> {
    return this.verify(address, options);
  }

  /** EXPN: asks the server to expand a mailing list. */
  async expn(address: string, options: CallOptions = {}): Promise<Reply> {
    const arg = addrOnly(address);
    return this.#ops.run(async () => {
      await this.#ehloOrHeloIfNeeded(options.signal);
      return this.#command(commandLine('EXPN', arg), options.signal);
    });
  }

  // --- low-level transaction --------------------------------------------------

  /** MAIL FROM with parameters (rendered only for advertised extensions). */
  async mail(sender: string, options?: MailOptions | readonly string[] | CallOptions, call: CallOptions = {}): Promise<Reply> {
    if (isCallOptions(options)) [options, call] = [undefined, options];
    const mail = toMailOptions(options as MailOptions | readonly string[] | undefined);
    return this.#ops.run(async () => {
      await this.#ehloOrHeloIfNeeded(call.signal);
      if (!isAscii(sender) && this.#capabilities.has('smtputf8') && mail.smtputf8 === undefined) mail.smtputf8 = true;
      const params = this.doesEsmtp ? renderMailParameters(mail, { capabilities: this.#capabilities, secure: this.isSecure, verified: this.isVerified }) : '';
      const line = commandLine(`MAIL FROM:${toPath(sender, { smtputf8: Boolean(mail.smtputf8), role: 'sender' })}${params}`);
      this.acceptedSinceMail = 0;
      return this.#command(line, call.signal);
    });
  }

  /** RCPT TO with parameters. */
  async rcpt(recipient: string, options?: RcptOptions | readonly string[] | CallOptions, call: CallOptions = {}): Promise<Reply> {
    if (isCallOptions(options)) [options, call] = [undefined, options];
    const rcpt = toRcptOptions(options as RcptOptions | readonly string[] | undefined);
    return this.#ops.run(async () => {
      const params = this.doesEsmtp ? renderRcptParameters(rcpt, { capabilities: this.#capabilities, secure: this.isSecure, verified: this.isVerified }) : '';
      const utf8 = !isAscii(recipient) && this.#capabilities.has('smtputf8');
      const line = commandLine(`RCPT TO:${toPath(recipient, { smtputf8: utf8, role: 'recipient' })}${params}`);
      const reply = await this.#command(line, call.signal);
      if (reply.isPositive) this.acceptedSinceMail++;
      return reply;
    });
  }

  /**
   * DATA: sends the message (any input type; line ends normalized to CRLF,
   * leading dots doubled) and returns the final reply. SMTPDataError if the
   * server does not answer DATA with 354.
   */
  async data(message: MessageInput, options: CallOptions = {}): Promise<Reply> {
    const source = toMessageSource(message);
    return this.#ops.run(async () => {
      const session = this.#requireSession();
      const start = await this.#command('DATA', options.signal);
      if (start.code !== 354) {
        throw new SMTPDataError(start.code, start.message, undefined, { reply: start, command: 'DATA' });
      }
      const encoder = new DataEncoder('data');
      const write = async (pieces: Buffer[]) => {
        session.write(pieces);
        if (session.debug.enabled) session.debug.data(pieces);
        await session.transport.drain(this.#timeouts.dataWrite, options.signal);
      };
      if (source.kind === 'bytes') {
        for (let i = 0; i < source.bytes.length; i += ENCODE_WINDOW) await write(encoder.encode(source.bytes, i, Math.min(source.bytes.length, i + ENCODE_WINDOW)));
      }
      else for await (const chunk of source.chunks) await write(encoder.encode(chunk));
      const count = this.dataReplyCount();
      const waiters = Array.from({ length: count }, () =>
        session.expect({ command: 'end of data', phase: 'data-end', timeout: this.#timeouts.dataEnd, afterDataEnd: true }),
      );
      const tail = encoder.end();
      if (session.debug.enabled) session.debug.data([tail]);
      session.write(tail);
      const replies: Reply[] = [];
      for (const waiter of waiters) replies.push(await session.await(waiter, options.signal));
      return this.summarizeDataReplies(replies);
    });
  }

  /** LMTP reads one reply per accepted recipient after the data. */
  protected isLmtp(): boolean {
    return false;
  }

  /** Replies owed after the end of data: one for SMTP. */
  protected dataReplyCount(): number {
    return 1;
  }

  /** The reply data() returns when several were read (LMTP). */
  protected summarizeDataReplies(replies: Reply[]): Reply {
    return replies[0]!;
  }

  // --- TLS and AUTH -----------------------------------------------------------

  /**
   * STARTTLS (RFC 3207): requires the extension, verifies the certificate
   * and the host name, fails closed if the server sends anything between its
   * 220 and the handshake, and forgets everything learned before TLS (call
   * ehlo() again, or let the next command do it).
   */
  async starttls(tlsOptions?: ConnectionOptions | CallOptions, options: CallOptions = {}): Promise<Reply> {
    if (isCallOptions(tlsOptions)) [tlsOptions, options] = [undefined, tlsOptions];
    return this.#ops.run(() => this.#starttls(tlsOptions as ConnectionOptions | undefined, options.signal));
  }

  async #starttls(tlsOptions?: ConnectionOptions, signal?: AbortSignal): Promise<Reply> {
    if (tlsOptions) assertModernTls(tlsOptions, Boolean(this.options.allowLegacyTls));
    await this.#ehloOrHeloIfNeeded(signal);
    const session = this.#requireSession();
    if (session.transport.secure) {
      throw new SMTPNotSupportedError('already using TLS: STARTTLS cannot be nested');
    }
    if (!this.hasExtn('starttls')) {
      throw new SMTPNotSupportedError('STARTTLS extension not supported by server');
    }
    const reply = await session.command('STARTTLS', { phase: 'command', timeout: this.#timeouts.command, startsTls: true, signal });
    if (reply.code !== 220) {
      throw new SMTPResponseException(reply.code, reply.message, undefined, { reply, command: 'STARTTLS' });
    }
    const target = this.#target!;
    const settings = this.#tlsSettings();
    if (tlsOptions) settings.options = { ...settings.options, ...tlsOptions };
    await session.upgrade((stream) => startTls(stream, target.host, target.port || undefined, settings, this.#timeouts.tls, signal, true));
    this.#reportTls(session.transport);
    this.#resetEhlo();
    this.#authenticated = false;
    return reply;
  }

  /**
   * Logs in. Picks the strongest mechanism both sides support (SCRAM, then
   * PLAIN/LOGIN over TLS or to a local peer; CRAM-MD5 only when named), makes
   * one attempt, and never sends a password in cleartext over an unencrypted
   * link to another machine unless `allowCleartextAuth` is set.
   */
  async login(user: string, password: string | undefined, options?: LoginOptions): Promise<Reply>;
  /** Logs in with `{ provider }` (OAuth 2) or `{ token }` instead of a password. */
  async login(user: string, options: LoginOptions): Promise<Reply>;
  async login(user: string, passwordOrOptions: string | LoginOptions | undefined, maybeOptions: LoginOptions = {}): Promise<Reply> {
    const password = typeof passwordOrOptions === 'object' ? undefined : passwordOrOptions;
    const options = typeof passwordOrOptions === 'object' ? passwordOrOptions : maybeOptions;
    return this.#ops.run(async () => {
      await this.#ehloOrHeloIfNeeded(options.signal);
      if (!this.hasExtn('auth')) throw this.#authNotOffered();
      const session = this.#requireSession();
      const credentials: Credentials = {
        user,
        ...(password !== undefined ? { password } : {}),
        ...(options.token !== undefined ? { token: options.token } : {}),
        ...(options.authzid !== undefined ? { authzid: options.authzid } : {}),
      };
      const select = (withToken: Credentials) =>
        selectLoginMechanism({
          advertised: this.#capabilities.authMechanisms,
          credentials: withToken,
          options,
          session,
          host: this.#target!.host,
          allowCleartextAuth: Boolean(this.options.allowCleartextAuth),
        });
      if (options.provider) {
        // Token, mechanism choice, and one retry with a new token: oauth/login.ts.
        const provider = options.provider;
        // Loaded with the first OAuth login, not with smtplib.
        const { loginWithProvider } = await import('../oauth/login.js');
        return loginWithProvider(provider, (token) => select({ ...credentials, token }), (mechanism) => this.#authenticate(mechanism, options), options.signal);
      }
      return this.#authenticate(select(credentials), options);
    });
  }

  /** Why AUTH is missing, and what to set: usually a plaintext session to a server that offers AUTH only after STARTTLS. */
  #authNotOffered(): SMTPNotSupportedError {
    if (this.isSecure || !this.hasExtn('starttls')) {
      return new SMTPNotSupportedError('SMTP AUTH extension not supported by server', { diagnosis: 'auth-not-offered' });
    }
    const target = this.#target!;
    const defaulted = this.options.tlsPolicy === undefined && (target.path !== undefined || isLoopbackHost(target.host));
    const hint = defaulted
      ? `connections to loopback${target.path ? ' and Unix sockets' : ''} default to tlsPolicy: 'none'; set tlsPolicy: 'required' (with tls.ca or fingerprint for a private certificate), or call starttls() before login()`
      : `set tlsPolicy: 'required', or call starttls() before login()`;
    return new SMTPNotSupportedError(
      `the server offers AUTH only after STARTTLS (it advertises STARTTLS but no AUTH on this plaintext connection); ${hint}`,
      { diagnosis: 'auth-requires-starttls', hint },
    );
  }

  /**
   * AUTH with a given mechanism. `authobject` is a SaslMechanism, a factory
   * of one, or smtplib's callable: called with null for the initial response
   * and then with each decoded challenge, returning the response.
   */
  async auth(mechanism: string, authobject: SaslMechanism | SaslMechanismFactory | AuthObject, options: LoginOptions = {}): Promise<Reply> {
    return this.#ops.run(async () => {
      await this.#ehloOrHeloIfNeeded(options.signal);
      return this.#authenticate(toMechanism(mechanism, authobject, options.initialResponseOk ?? true), options);
    });
  }

  async #authenticate(mechanism: SaslMechanism, options: LoginOptions): Promise<Reply> {
    const session = this.#requireSession();
    const name = mechanism.name.toUpperCase();
    const cleartext = mechanism.sendsCleartext || CLEARTEXT_MECHANISMS.has(name);
    assertMechanismAllowed(name, cleartext, session, this.#target!.host, Boolean(this.options.allowCleartextAuth));
    const startedAt = performance.now();
    const reply = await runExchange(mechanism, {
      session,
      host: this.#target!.host,
      port: this.#target!.port || undefined,
      timeout: this.#timeouts.command,
      initialResponseOk: options.initialResponseOk ?? true,
      signal: options.signal,
    }).catch((error: unknown) => {
      publishAuth(session, name, { error }, startedAt);
      throw error;
    });
    publishAuth(session, name, { reply }, startedAt);
    this.#authenticated = true;
    return reply;
  }

  // --- sending ------------------------------------------------------------------

  /**
   * Sends one message. Returns the recipients the server refused (an empty
   * map when all were accepted). Throws SMTPRecipientsRefused if every
   * recipient was refused, SMTPSenderRefused, SMTPDataError,
   * SMTPNotSupportedError; after a refusal the connection stays usable.
   */
  sendmail(
    fromAddr: string,
    toAddrs: string | readonly string[],
    msg: MessageInput,
    mailOptions?: MailOptions | readonly string[] | SendmailCallOptions,
    rcptOptions?: RcptOptions | readonly string[] | SendmailCallOptions,
    options?: SendmailCallOptions,
  ): Promise<RefusedRecipients> {
    // Not async, and no options object when none was given (the common bulk
    // send): bad arguments still reject, never throw.
    let sendOptions: SendOptions | undefined;
    if (mailOptions !== undefined || rcptOptions !== undefined || options !== undefined) {
      try {
        const args = sendmailArguments<MailOptions | readonly string[], RcptOptions | readonly string[]>(mailOptions, rcptOptions, options);
        sendOptions = {
          ...(args.mailOptions ? { mailOptions: args.mailOptions } : {}),
          ...(args.rcptOptions ? { rcptOptions: args.rcptOptions } : {}),
          ...args.call,
        };
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.deliver(fromAddr, toAddrs, msg, sendOptions).then(refusedOf);
  }

  /** Like sendmail(), with the whole outcome: accepted, refused, the final reply. */
  deliver(fromAddr: string, toAddrs: string | readonly string[], msg: MessageInput, options: SendOptions = {}): Promise<DeliveryResult> {
    // Not async (one promise less per message): bad arguments still reject, never throw.
    let transaction: Transaction;
    try {
      const to = typeof toAddrs === 'string' ? [toAddrs] : [...toAddrs];
      const mail = toMailOptions(options.mailOptions);
      const signed = this.#dkimSigned(toMessageSource(msg), mail, options.dkim);
      // Every field named (no spread): one shape for every request, built in place.
      transaction = new Transaction({
        from: fromAddr,
        to,
        source: signed.source,
        prepare: signed.prepare,
        mail,
        rcpt: toRcptOptions(options.rcptOptions),
        signal: options.signal,
        beforeCommit: options.beforeCommit,
        beforeCommitSync: options.beforeCommitSync,
      });
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#runTransaction(transaction);
  }

  /**
   * Sends an RFC 5322 message, taking the envelope from its headers (Sender/
   * From, To/Cc/Bcc, or the newest Resent-* block) and removing Bcc and
   * Resent-Bcc from what is sent.
   */
  sendMessage(message: MessageInput, options: SendMessageOptions = {}): Promise<RefusedRecipients> {
    return this.deliverMessage(message, options).then((result) => result.refused);
  }

  /**
   * Like sendMessage(), with the whole outcome: accepted, refused, the final
   * reply. Takes its place in the operation queue at once, like every other
   * call (a stream's header block is read when its turn comes).
   */
  deliverMessage(message: MessageInput, options: SendMessageOptions = {}): Promise<DeliveryResult> {
    try {
      const source = toMessageSource(message);
      if (source.kind === 'bytes') return this.#runTransaction(this.#messageTransaction(splitBytes(source), options));
      if (options.signal?.aborted) return Promise.reject(abortedBeforeStart(options.signal));
      return this.#ops.run(async () => this.#transact(this.#messageTransaction(await splitMessage(source), options))).catch(markNotDelivered);
    } catch (error) {
      return Promise.reject(notDelivered(error));
    }
  }

  #messageTransaction(split: SplitMessage, options: SendMessageOptions): Transaction {
    const envelope = envelopeFromHeaders(split.fields, { from: options.from, to: options.to });
    if (envelope.to.length === 0) throw new SMTPInvalidArgumentError('the message has no To, Cc or Bcc recipients and none were given');
    const mail = toMailOptions(options.mailOptions);
    return new Transaction({
      from: envelope.from,
      to: envelope.to,
      ...this.#dkimSigned(split.source, mail, options.dkim),
      ...(split.source.kind === 'stream' && split.source.requirements ? { requirements: split.source.requirements } : {}),
      mail,
      rcpt: toRcptOptions(options.rcptOptions),
      internationalBody: true,
      signal: options.signal,
      beforeCommit: options.beforeCommit,
      beforeCommitSync: options.beforeCommitSync,
    });
  }

  /**
   * The source to send, DKIM-signed when this send or the connection asks for
   * it: at once for bytes, or (a stream) by a `prepare` step the transaction
   * runs when its turn comes, before its first command.
   */
  #dkimSigned(source: MessageSource, mail: MailOptions, dkim: SendOptions['dkim']): Pick<TransactionRequest, 'source' | 'prepare'> {
    const signer = dkim === false ? undefined : dkim ? toDkimSigner(dkim) : this.#dkim;
    if (!signer) return { source };
    // The bytes hashed are the bytes sent: CRLF-normalized, or as they are under BODY=BINARYMIME.
    const plan = planDkim(signer, source, mail.body === 'BINARYMIME' ? 'binary' : 'bdat');
    return plan.prepare ? { source, prepare: plan.prepare } : { source: plan.source };
  }

  #runTransaction(transaction: Transaction): Promise<DeliveryResult> {
    if (transaction.request.signal?.aborted) {
      return Promise.reject(abortedBeforeStart(transaction.request.signal));
    }
    // (#transact marks its failures 'not-delivered' unless they say otherwise: no extra catch() per message.)
    return this.#ops.run(() => this.#transact(transaction), transaction);
  }

  #transact(transaction: Transaction): Promise<DeliveryResult> {
    // Not async: the common send (EHLO done, nothing aborted) costs one
    // then() on the transaction's promise instead of an async frame awaiting it.
    let context: TransactionContext | undefined;
    try {
      const signal = transaction.request.signal;
      // Once written ahead (pipelined), the transaction must consume its
      // replies; an abort then tears the connection down inside run().
      if (signal?.aborted && !transaction.prewritten) throw abortedBeforeStart(signal);
      // Written ahead: its replies are read where it was written, even if that session has closed since.
      context = transaction.prewrittenContext;
      if (!context) {
        if (this.heloResp === null && this.ehloResp === null) return this.#transactAfterEhlo(transaction);
        context = this.#transactionContext();
      }
    } catch (error) {
      // Whatever failed before the end of data was not delivered.
      return Promise.reject(notDelivered(error));
    }
    return this.#transactIn(context, transaction);
  }

  /** #transact() when EHLO (or HELO) has not been sent yet. */
  async #transactAfterEhlo(transaction: Transaction): Promise<DeliveryResult> {
    try {
      await this.#ehloOrHeloIfNeeded(transaction.request.signal);
      return await this.#transactIn(this.#transactionContext(), transaction);
    } catch (error) {
      throw notDelivered(error);
    }
  }

  #transactIn(context: TransactionContext, transaction: Transaction): Promise<DeliveryResult> {
    const started = performance.now();
    return transaction.run(context, this.#nextTransaction).then(
      (result) => {
        publishSend(this.#session, transaction.request.from, result, started);
        this.acceptedSinceMail = 0;
        return result;
      },
      (error: unknown) => {
        notDelivered(error);
        publishError(this.#session, error, 'transaction', { from: transaction.request.from, to: transaction.request.to, startedAt: started });
        throw error;
      },
    );
  }
  readonly #nextTransaction = () => this.#ops.nextTransaction();


  /** The context of the last transaction: reused while nothing it holds has changed (one object per session, not per message). */
  #context: TransactionContext | undefined;

  #transactionContext(): TransactionContext {
    const session = this.#requireSession();
    const cached = this.#context;
    const capabilities = this.doesEsmtp ? this.#capabilities : undefined;
    if (
      cached !== undefined &&
      cached.session === session &&
      cached.capabilities === (capabilities ?? cached.capabilities) &&
      (capabilities !== undefined) === this.#contextEsmtp &&
      cached.secure === session.transport.secure &&
      cached.timeouts === this.#timeouts
    ) {
      return cached;
    }
    this.#contextEsmtp = capabilities !== undefined;
    this.#context = this.#newTransactionContext(session);
    return this.#context;
  }
  #contextEsmtp = false;

  #newTransactionContext(session: Session): TransactionContext {
    return {
      session,
      capabilities: this.doesEsmtp ? this.#capabilities : new Capabilities(),
      secure: session.transport.secure,
      verified: session.transport.verified,
      lmtp: this.isLmtp(),
      pipelining: this.options.pipelining ?? true,
      chunking: this.options.chunking ?? true,
      chunkSize: this.options.chunkSize,
      longLines: this.options.longLines ?? 'allow',
      timeouts: this.#timeouts,
      writtenAhead: () => this.#ops.nextIsWrittenAhead(),
      rset: async () => {
        const reply = await this.#command('RSET');
        if (!reply.isPositive) this.#session?.close();
      },
    };
  }

  // --- ending -------------------------------------------------------------------

  /** QUIT, then close; forgets the EHLO/HELO state (esmtpFeatures, doesEsmtp, ehloResp, heloResp), as smtplib's quit() does. */
  async quit(options: CallOptions = {}): Promise<Reply> {
    return this.#ops.run(async () => {
      // Already aborted: nothing is written and the connection is left as it is.
      assertNotAborted(options.signal, 'quit');
      try {
        return await this.#command('QUIT', options.signal, 'quit');
      } finally {
        this.#resetEhlo();
        this.close();
      }
    });
  }

  /** Closes the connection without QUIT. Safe to call at any time. */
  close(): void {
    const session = this.#session;
    if (!session) return;
    if (session.isOpen) session.close(new SMTPServerDisconnected('the connection was closed by close()'));
    else session.transport.destroy();
  }

  /** `await using smtp = await SMTP.connect(...)`: QUIT (if still connected) at the end of the block. */
  /**
   * `await using`: QUIT after everything queued before it, then close.
   * Unlike smtplib's `with`, a failed QUIT is not thrown: JavaScript cannot
   * tell a disposer whether the block itself threw, and throwing here would
   * turn the block's own error into a SuppressedError. It is not silent
   * either: the debug log shows it and `smtplib:error` publishes it
   * (scope 'connection').
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.isConnected) {
      const session = this.#session;
      try {
        const reply = await this.quit();
        if (reply.code !== 221) this.#debug.print(`dispose: QUIT answered ${reply.code} ${reply.message} (not thrown)`);
      } catch (error) {
        this.#debug.print(`dispose: QUIT failed: ${(error as Error).message} (not thrown)`);
        publishError(session, error, 'connection');
      }
    }
    this.close();
  }
}

function refusedOf(result: DeliveryResult): RefusedRecipients {
  return result.refused;
}

/** Whatever failed before the end of data (EHLO, a connection already closed by an earlier queued call), the message was not delivered. */
function markNotDelivered(error: unknown): never {
  throw notDelivered(error);
}

function notDelivered(error: unknown): unknown {
  if (error instanceof SMTPException) error.deliveryStatus ??= 'not-delivered';
  return error;
}

/** An already-aborted signal: refuse before anything is written (the connection stays usable). */
function assertNotAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new SMTPAbortError(`${what} was aborted before anything was written`, { cause: signal.reason });
}

function abortedBeforeStart(signal: AbortSignal): SMTPAbortError {
  return new SMTPAbortError('aborted before the message was sent', { cause: signal.reason, deliveryStatus: 'not-delivered' });
}

