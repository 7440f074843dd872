// Errors thrown while composing or serializing a message. Parsing never
// throws for damaged input: it records defects instead (see defects.ts).
// Each class has a stable `code` and a message that says what to change.

export class EmailError extends Error {
  readonly code: string = 'ERR_EMAIL';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A header value held CR, LF or NUL: it would start a new header field (header injection). */
export class HeaderInjectionError extends EmailError {
  override readonly code = 'ERR_EMAIL_HEADER_INJECTION';
  readonly header: string;
  constructor(header: string) {
    super(`the ${JSON.stringify(header)} header value contains CR, LF or NUL; a header value is one line (remove the line breaks)`);
    this.header = header;
  }
}

/** A header name outside RFC 5322's printable ASCII without ':'. */
export class InvalidHeaderNameError extends EmailError {
  override readonly code = 'ERR_EMAIL_HEADER_NAME';
  constructor(name: string) {
    super(`${JSON.stringify(name)} is not a header name (printable ASCII without ':' or spaces)`);
  }
}

/** A header or body line cannot be written within RFC 5322's 998-octet limit. */
export class LineTooLongError extends EmailError {
  override readonly code = 'ERR_EMAIL_LINE_TOO_LONG';
  constructor(what: string) {
    super(`${what} cannot be written in lines of at most 998 octets; shorten it`);
  }
}

/** The message needs something the policy forbids (e.g. a non-ASCII local part without SMTPUTF8). */
export class PolicyError extends EmailError {
  override readonly code = 'ERR_EMAIL_POLICY';
}

/** An address that cannot be written as RFC 5322 requires. */
export class AddressError extends EmailError {
  override readonly code = 'ERR_EMAIL_ADDRESS';
}

/** A call that does not fit the message's current shape (e.g. makeAlternative on multipart/mixed). */
export class MessageStructureError extends EmailError {
  override readonly code = 'ERR_EMAIL_STRUCTURE';
}

/** A body that is a one-shot stream was asked for in memory, or read a second time. */
export class ContentUnavailableError extends EmailError {
  override readonly code = 'ERR_EMAIL_CONTENT_UNAVAILABLE';
}
