// A server reply (RFC 5321 §4.2): a three-digit code and one or more text
// lines. Destructures like smtplib's (code, message) tuple:
//   const [code, message] = await smtp.noop();

import { parseEnhancedStatus } from './enhanced-status.js';

export class Reply {
  /** The three-digit reply code. */
  readonly code: number;
  /** The lines joined with "\n", as smtplib joins multi-line replies. */
  readonly message: string;
  /** The text of every line (without code and separator), in order. */
  readonly lines: readonly string[];
  /** RFC 3463 enhanced status code ("2.1.5"), when the first line starts with one. */
  readonly enhancedStatus?: string;

  constructor(code: number, lines: readonly string[]) {
    this.code = code;
    this.message = lines.length === 1 ? lines[0]! : lines.join('\n');
    this.lines = lines;
    const status = parseEnhancedStatus(code, lines[0] ?? '');
    if (status) this.enhancedStatus = status;
  }

  /** 2xx: the command was accepted. */
  get isPositive(): boolean {
    return this.code >= 200 && this.code < 300;
  }
  /** 3xx: the server waits for more (DATA's 354, AUTH's 334). */
  get isIntermediate(): boolean {
    return this.code >= 300 && this.code < 400;
  }
  /** 4xx: a temporary failure; the same command may succeed later. */
  get isTransient(): boolean {
    return this.code >= 400 && this.code < 500;
  }
  /** 5xx: a permanent failure. */
  get isPermanent(): boolean {
    return this.code >= 500;
  }

  // Index getters on the prototype (not own properties, so a reply still
  // deep-equals a plain { code, message, lines, enhancedStatus? }) make
  // TypeScript type `const [code, message] = reply` as [number, string]:
  // destructuring uses the "0"/"1" properties of a tuple-like type.
  /** The code, as `reply[0]` (smtplib's tuple). */
  get 0(): number {
    return this.code;
  }
  /** The message, as `reply[1]` (smtplib's tuple). */
  get 1(): string {
    return this.message;
  }

  *[Symbol.iterator](): IterableIterator<number | string> {
    yield this.code;
    yield this.message;
  }

  toString(): string {
    return `${this.code} ${this.message}`;
  }

  toJSON(): { code: number; message: string; enhancedStatus?: string } {
    return this.enhancedStatus
      ? { code: this.code, message: this.message, enhancedStatus: this.enhancedStatus }
      : { code: this.code, message: this.message };
  }
}

/** A reply that exists only to give errors and return values a uniform shape. */
export function syntheticReply(code: number, text: string): Reply {
  return new Reply(code, [text]);
}
