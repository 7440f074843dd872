// Policies, as in Python's email.policy: how a message is written.
// - `default`: 7-bit safe output (RFC 2047 encoded words, quoted-printable or
//   base64 bodies), CRLF line ends (the wire format; Python's default uses
//   "\n", use default.clone({ linesep: '\n' }) for files).
// - `SMTP`: the same, named as in Python for sending.
// - `SMTPUTF8`: UTF-8 in headers and 8-bit bodies (RFC 6531/6532), for servers
//   that offer SMTPUTF8.

export interface PolicyOptions {
  /** Header lines are folded at this length (RFC 5322 §2.1.1 recommends 78). */
  maxLineLength: number;
  /** The line end written: '\r\n' for SMTP. */
  linesep: '\r\n' | '\n';
  /** Headers may carry raw UTF-8 (SMTPUTF8, RFC 6532) instead of encoded words. */
  utf8: boolean;
  /** '8bit' lets text bodies go as 8bit; '7bit' encodes them (quoted-printable or base64). */
  cteType: '7bit' | '8bit';
  /** Throw on the first parse defect instead of recording it. */
  raiseOnDefect: boolean;
}

export class Policy implements PolicyOptions {
  readonly name: string;
  readonly maxLineLength: number;
  readonly linesep: '\r\n' | '\n';
  readonly utf8: boolean;
  readonly cteType: '7bit' | '8bit';
  readonly raiseOnDefect: boolean;

  constructor(name: string, options: PolicyOptions) {
    this.name = name;
    this.maxLineLength = options.maxLineLength;
    this.linesep = options.linesep;
    this.utf8 = options.utf8;
    this.cteType = options.cteType;
    this.raiseOnDefect = options.raiseOnDefect;
    Object.freeze(this);
  }

  /** A copy with some options changed (Python: policy.clone(**kw)). */
  clone(changes: Partial<PolicyOptions> & { name?: string }): Policy {
    const { name, ...rest } = changes;
    return new Policy(name ?? this.name, { ...this.options(), ...rest });
  }

  options(): PolicyOptions {
    return {
      maxLineLength: this.maxLineLength,
      linesep: this.linesep,
      utf8: this.utf8,
      cteType: this.cteType,
      raiseOnDefect: this.raiseOnDefect,
    };
  }
}

const base: PolicyOptions = { maxLineLength: 78, linesep: '\r\n', utf8: false, cteType: '7bit', raiseOnDefect: false };

export const policy = Object.freeze({
  default: new Policy('default', base),
  SMTP: new Policy('SMTP', base),
  SMTPUTF8: new Policy('SMTPUTF8', { ...base, utf8: true, cteType: '8bit' }),
  strict: new Policy('strict', { ...base, raiseOnDefect: true }),
});
