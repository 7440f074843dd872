// The error hierarchy. smtplib's names and shape (SMTPException at the root,
// SMTPResponseException for anything carrying a reply code), with what a
// Node caller needs on top: a stable `code`, `cause`, the command that failed
// (secrets masked), the enhanced status code, and whether a message may have
// been delivered despite the error.
//
// Classes are branded with Symbol.for() so `instanceof` works even when the
// ESM and the CommonJS build of this package are both loaded.

import type { Reply } from './protocol/reply.js';
import { RefusedRecipients } from './protocol/refused-recipients.js';

const BRAND = Symbol.for('smtplib.error.brand');

/**
 * Whether a message whose transaction ended in this error reached the server.
 * - `not-delivered`: the server certainly did not accept it (failure before
 *   the end of data was written, or a refusal reply).
 * - `unknown`: the end of data was written but no reply was read; the
 *   message may have been delivered. Do not resend blindly.
 */
export type DeliveryStatus = 'not-delivered' | 'unknown';

/** The phase a timeout happened in. */
export type TimeoutPhase =
  | 'connect'
  | 'tls'
  | 'greeting'
  | 'command'
  | 'data-write'
  | 'data-end'
  | 'quit';

/**
 * What went wrong, as a stable identifier a program can branch on (a CLI
 * names its own flags from it) instead of parsing the message's wording.
 */
export type Diagnosis =
  /** Nothing listens on that port (ECONNREFUSED). */
  | 'connection-refused'
  /** The host name does not resolve. */
  | 'host-not-found'
  /** No route to the host or network. */
  | 'host-unreachable'
  /** The Unix socket path does not exist. */
  | 'no-such-socket'
  /** The OS refused the connection (EACCES). */
  | 'permission-denied'
  /** Plaintext against a port that seems to want implicit TLS (silence, a hang-up or TLS bytes instead of a greeting). */
  | 'implicit-tls-expected'
  /** Implicit TLS against a port that speaks plaintext first (use STARTTLS). */
  | 'plaintext-expected'
  /** tlsPolicy 'required' but the server does not offer STARTTLS. */
  | 'starttls-not-offered'
  /** tlsPolicy 'required' and the server refused STARTTLS (smtpCode says how). */
  | 'starttls-refused'
  /** The server sent bytes between its STARTTLS 220 and the handshake, or non-TLS bytes in the handshake. */
  | 'starttls-injection'
  /** Certificate chain or name check failed (cause.code is Node's). */
  | 'certificate'
  /** The certificate does not match the pinned fingerprint. */
  | 'fingerprint-mismatch'
  /** The server offers only TLS versions below the minimum. */
  | 'tls-version'
  /** A cleartext SASL mechanism on an unencrypted link to another machine was refused. */
  | 'cleartext-auth-refused'
  /** The server offers AUTH only after STARTTLS, and this connection did not start TLS (loopback defaults to tlsPolicy 'none'). */
  | 'auth-requires-starttls'
  /** The server does not offer AUTH at all. */
  | 'auth-not-offered'
  /** No mechanism both sides support (and the connection allows). */
  | 'no-suitable-mechanism'
  /** Cleartext SASL or REQUIRETLS refused on TLS whose certificate was not verified. */
  | 'unverified-tls';

export interface SMTPExceptionOptions {
  cause?: unknown;
  deliveryStatus?: DeliveryStatus;
  diagnosis?: Diagnosis;
  hint?: string;
}

/** Root of every error this library throws (also exported as SMTPError). */
export class SMTPException extends Error {
  /** A stable identifier, `ERR_SMTP_*`, one per class. */
  declare readonly code: string;
  /** Set on errors from a mail transaction; see DeliveryStatus. */
  deliveryStatus?: DeliveryStatus;
  /** A stable identifier of the cause, where the library knows it (see Diagnosis). */
  diagnosis?: Diagnosis;
  /** What to do about it, in the library's terms (options and classes), when there is a usual fix. */
  hint?: string;
  /**
   * LMTP: the recipients whose own reply after the data never came (a
   * timeout or a lost connection): their delivery is unknown. Recipients
   * answered before the failure are not listed.
   */
  pendingRecipients?: string[];
  /**
   * LMTP, with `pendingRecipients`: the replies after the data that did
   * arrive before the failure, by recipient (2xx: delivered; 4xx/5xx: not).
   */
  recipientReplies?: Map<string, Reply>;

  constructor(message: string, options: SMTPExceptionOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    if (options.deliveryStatus) this.deliveryStatus = options.deliveryStatus;
    if (options.diagnosis) this.diagnosis = options.diagnosis;
    if (options.hint) this.hint = options.hint;
    Object.defineProperty(this, BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // A caller's subclass (class Quota extends SMTPDataError {}) has no brand
    // of its own: ordinary prototype rules apply, so a plain SMTPDataError is
    // not a Quota.
    if (!Object.prototype.hasOwnProperty.call(this, NAME)) return Function.prototype[Symbol.hasInstance].call(this, value);
    if (typeof value !== 'object' || value === null || !(BRAND in value)) return false;
    // Match by the class chain's names, so two loaded copies agree.
    let proto = Object.getPrototypeOf(value);
    while (proto && proto !== Object.prototype) {
      if (proto.constructor?.[NAME] === (this as unknown as Named)[NAME]) return true;
      proto = Object.getPrototypeOf(proto);
    }
    return false;
  }
}

const NAME = Symbol.for('smtplib.error.class');
interface Named {
  [NAME]: string;
}

/** Declares the stable name and code of an error class in one place. */
function brand(cls: Function, name: string, code: string): void {
  Object.defineProperty(cls, NAME, { value: name });
  Object.defineProperty(cls.prototype, 'name', {
    // A caller's subclass keeps its own name.
    get(this: { constructor?: { name?: string } }) {
      const ctor = this?.constructor;
      return ctor && !Object.prototype.hasOwnProperty.call(ctor, NAME) && ctor.name ? ctor.name : name;
    },
    configurable: true,
  });
  Object.defineProperty(cls.prototype, 'code', { value: code, writable: false, configurable: true });
}

/** The server closed the connection, or the object was used while not connected. */
export class SMTPServerDisconnected extends SMTPException {}

/** A malformed, oversized or unexpected reply; the connection is closed. */
export class SMTPProtocolError extends SMTPException {}

/** A wait exceeded its deadline; the connection is closed. */
export class SMTPTimeoutError extends SMTPException {
  readonly phase: TimeoutPhase;
  readonly timeout: number;
  constructor(phase: TimeoutPhase, timeout: number, message: string, options: SMTPExceptionOptions = {}) {
    super(message, options);
    this.phase = phase;
    this.timeout = timeout;
  }
}

/** The caller's AbortSignal fired. `cause` holds `signal.reason`. */
export class SMTPAbortError extends SMTPException {}

/** The server lacks an extension the operation needs, or the operation is not allowed. */
export class SMTPNotSupportedError extends SMTPException {}

/**
 * A caller-supplied value cannot be written safely (CR, LF, NUL or another
 * control character, a malformed address or ESMTP parameter, a line too
 * long). Thrown before anything is written; the connection stays usable.
 */
export class SMTPInvalidArgumentError extends SMTPException {}

/**
 * TLS could not be established or verified, or STARTTLS was stripped or
 * tampered with. When the server refused STARTTLS, its reply is here too
 * (`smtpCode`, `smtpError`, `enhancedStatus`, `reply`), not only in `cause`.
 */
export class SMTPTLSError extends SMTPException {
  /** The STARTTLS reply code when the server refused it; -1 otherwise. */
  readonly smtpCode: number = -1;
  /** The STARTTLS reply text when the server refused it; '' otherwise. */
  readonly smtpError: string = '';
  readonly enhancedStatus?: string;
  declare readonly reply?: Reply;

  constructor(message: string, options: SMTPExceptionOptions & { reply?: Reply } = {}) {
    super(message, options);
    const reply = options.reply;
    if (reply) {
      this.smtpCode = reply.code;
      this.smtpError = reply.message;
      if (reply.enhancedStatus) this.enhancedStatus = reply.enhancedStatus;
      Object.defineProperty(this, 'reply', { value: reply, enumerable: false });
    }
  }

  /** A 4xx STARTTLS refusal: TLS may work later. */
  get isTransient(): boolean {
    return this.smtpCode >= 400 && this.smtpCode < 500;
  }
}

/** Fields common to the errors built from a server reply. */
export interface ResponseErrorFields {
  reply?: Reply;
  command?: string;
}

/** Base class for errors that carry an SMTP reply code (smtplib's smtp_code / smtp_error). */
export class SMTPResponseException extends SMTPException {
  /** The reply code, or -1 when the error did not come from a reply. */
  readonly smtpCode: number;
  /** The reply text (multi-line replies joined with "\n"). */
  readonly smtpError: string;
  /** The RFC 3463 enhanced status code ("5.1.1"), when the reply carried one. */
  readonly enhancedStatus?: string;
  /** The command that drew the reply, with secrets masked. */
  readonly command?: string;
  /** The whole reply. */
  readonly reply?: Reply;

  constructor(code: number, text: string, message?: string, fields: ResponseErrorFields & SMTPExceptionOptions = {}) {
    super(message ?? describeReply(code, text, fields.command), fields);
    this.smtpCode = code;
    this.smtpError = text;
    if (fields.reply?.enhancedStatus) this.enhancedStatus = fields.reply.enhancedStatus;
    if (fields.command !== undefined) this.command = fields.command;
    if (fields.reply) Object.defineProperty(this, 'reply', { value: fields.reply, enumerable: false });
  }

  /** A 4xx reply: the same request may succeed later. */
  get isTransient(): boolean {
    return this.smtpCode >= 400 && this.smtpCode < 500;
  }

  /** A 5xx reply: repeating the same request will fail again. */
  get isPermanent(): boolean {
    return this.smtpCode >= 500 && this.smtpCode < 600;
  }
}

function describeReply(code: number, text: string, command?: string): string {
  const reply = code >= 0 ? `${code} ${text}`.trim() : text;
  return command ? `${command} → ${reply}` : reply;
}

/** The server refused the sender (MAIL FROM). */
export class SMTPSenderRefused extends SMTPResponseException {
  readonly sender: string;
  constructor(code: number, text: string, sender: string, fields: ResponseErrorFields & SMTPExceptionOptions = {}) {
    super(code, text, `sender ${JSON.stringify(sender)} refused: ${code} ${text}`, fields);
    this.sender = sender;
  }
}

/** Every recipient was refused; `recipients` is the same map sendmail() returns. */
export class SMTPRecipientsRefused extends SMTPException {
  readonly recipients: RefusedRecipients;
  constructor(recipients: RefusedRecipients | Record<string, Reply>, options: SMTPExceptionOptions = {}) {
    const map = recipients instanceof RefusedRecipients ? recipients : RefusedRecipients.from(recipients);
    const list = [...map].map(([addr, r]) => `${addr}: ${r.code} ${r.message}`).join('; ');
    super(`all recipients were refused (${list})`, options);
    this.recipients = map;
  }
}

/** The server refused the message data (DATA, the end of data, or BDAT). */
export class SMTPDataError extends SMTPResponseException {}

/** The connection could not be established, or the greeting was not 220. */
export class SMTPConnectError extends SMTPResponseException {}

/** The server refused HELO/EHLO/LHLO. */
export class SMTPHeloError extends SMTPResponseException {}

/** Authentication failed, or no usable mechanism was offered. */
export class SMTPAuthenticationError extends SMTPResponseException {
  /** The SASL mechanism that was tried, if any. */
  readonly mechanism?: string;
  constructor(code: number, text: string, mechanism?: string, fields: ResponseErrorFields & SMTPExceptionOptions = {}) {
    super(code, text, mechanism ? `AUTH ${mechanism} failed: ${code} ${text}` : undefined, fields);
    if (mechanism) this.mechanism = mechanism;
  }
}

brand(SMTPException, 'SMTPException', 'ERR_SMTP');
brand(SMTPServerDisconnected, 'SMTPServerDisconnected', 'ERR_SMTP_DISCONNECTED');
brand(SMTPProtocolError, 'SMTPProtocolError', 'ERR_SMTP_PROTOCOL');
brand(SMTPTimeoutError, 'SMTPTimeoutError', 'ERR_SMTP_TIMEOUT');
brand(SMTPAbortError, 'SMTPAbortError', 'ERR_SMTP_ABORTED');
brand(SMTPNotSupportedError, 'SMTPNotSupportedError', 'ERR_SMTP_NOT_SUPPORTED');
brand(SMTPInvalidArgumentError, 'SMTPInvalidArgumentError', 'ERR_SMTP_INVALID_ARGUMENT');
brand(SMTPTLSError, 'SMTPTLSError', 'ERR_SMTP_TLS');
brand(SMTPResponseException, 'SMTPResponseException', 'ERR_SMTP_RESPONSE');
brand(SMTPSenderRefused, 'SMTPSenderRefused', 'ERR_SMTP_SENDER_REFUSED');
brand(SMTPRecipientsRefused, 'SMTPRecipientsRefused', 'ERR_SMTP_RECIPIENTS_REFUSED');
brand(SMTPDataError, 'SMTPDataError', 'ERR_SMTP_DATA');
brand(SMTPConnectError, 'SMTPConnectError', 'ERR_SMTP_CONNECT');
brand(SMTPHeloError, 'SMTPHeloError', 'ERR_SMTP_HELO');
brand(SMTPAuthenticationError, 'SMTPAuthenticationError', 'ERR_SMTP_AUTH');

/** smtplib's root name is SMTPException; JavaScript code expects *Error. */
export { SMTPException as SMTPError };

/** True for any error thrown by this library (either build). */
export function isSMTPError(value: unknown): value is SMTPException {
  return typeof value === 'object' && value !== null && BRAND in value;
}
