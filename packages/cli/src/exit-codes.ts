// Exit codes from sysexits.h, as sendmail and MTAs use them, and one of our own
// (PARTIAL) for a message that reached only some of its recipients.
export const EX = {
  OK: 0,
  USAGE: 64,
  DATAERR: 65,
  NOINPUT: 66,
  NOUSER: 67,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  OSERR: 71,
  IOERR: 74,
  TEMPFAIL: 75,
  PROTOCOL: 76,
  NOPERM: 77,
  CONFIG: 78,
  /** Not in sysexits.h: some recipients got the message and some did not (the output says who). */
  PARTIAL: 79,
} as const;

/** An error that ends the command with a message for the user and an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
