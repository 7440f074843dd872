// Command lines, built and checked in one place. Every line the client
// writes goes through `commandLine()`, so no caller input can put CR, LF, NUL
// or another control character on the wire (the injection class behind
// CPython bpo-43124, aiosmtplib GHSA-v3q9-hj7j-63hq, nodemailer
// GHSA-vvjj-xcjg-gr5g). Checks run before anything is written.

import { SMTPInvalidArgumentError } from '../errors.js';

/** C0 controls, DEL and C1 controls. */
const CONTROL = /[\x00-\x1f\x7f-\x9f]/;

/** RFC 5321 §4.5.3.1.4 allows 512; extensions add to it (RFC 1869 §4.1.2). */
export const MAX_COMMAND_LINE = 2048;
/**
 * RFC 4954 §4: the AUTH command, initial response included, stays within
 * SMTP's command-line limit (RFC 5321 §4.5.3.1.4: 512 octets with CRLF);
 * a longer initial response is sent after the server's empty 334 instead.
 */
export const MAX_AUTH_COMMAND = 512;
/** RFC 4954 §4: a SASL response line (after a 334) may be up to 12288 octets with CRLF. */
export const MAX_SASL_RESPONSE_LINE = 12288;

/** Throws unless `value` is safe to put in a command line. */
export function assertSafeArgument(value: string, what = 'command argument'): void {
  if (typeof value !== 'string') {
    throw new SMTPInvalidArgumentError(`${what} must be a string`);
  }
  const match = CONTROL.exec(value);
  if (match) {
    const code = match[0].charCodeAt(0);
    const name = code === 13 ? 'CR' : code === 10 ? 'LF' : code === 0 ? 'NUL' : `control character 0x${code.toString(16).padStart(2, '0')}`;
    throw new SMTPInvalidArgumentError(`${what} contains ${name}, which could inject commands; refused before sending`);
  }
}

/**
 * Joins a verb and its argument into one checked command line (without CRLF).
 * `args` is appended after a single space, as smtplib's putcmd does.
 */
export function commandLine(verb: string, args = '', maxLength = MAX_COMMAND_LINE): string {
  // One test of the whole line on the hot path; the checks that name the
  // culprit run only when it fails (or when an argument is not a string).
  if (typeof verb !== 'string' || typeof args !== 'string' || CONTROL.test(verb) || CONTROL.test(args)) {
    assertSafeArgument(verb, 'command');
    assertSafeArgument(args, `${String(verb).split(' ')[0]} argument`);
  }
  const line = args === '' ? verb : `${verb} ${args}`;
  // A UTF-16 code unit is at most 3 UTF-8 octets: short lines need no count.
  if (line.length * 3 + 2 > maxLength && Buffer.byteLength(line) + 2 > maxLength) {
    throw new SMTPInvalidArgumentError(
      `${verb.split(' ')[0]} command line would be ${Buffer.byteLength(line) + 2} octets, over the ${maxLength}-octet limit`,
    );
  }
  return line;
}

/** Checks a HELO/EHLO/LHLO name: a domain or an address literal, nothing else. */
export function assertClientName(name: string): void {
  assertSafeArgument(name, 'local hostname');
  if (name === '' || /\s/.test(name)) {
    throw new SMTPInvalidArgumentError(`local hostname ${JSON.stringify(name)} must be a domain or an address literal without spaces`);
  }
}

/** The AUTH argument is secret: "AUTH PLAIN dGVzdA==" is shown as "AUTH PLAIN ****". */
export function maskSecret(line: string): string {
  const match = /^(AUTH\s+\S+)\s+\S/i.exec(line);
  return match ? `${match[1]} ****` : line;
}
