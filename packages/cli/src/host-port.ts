// "host[:port]" from the command line and the config file: the library's
// splitHostPort (smtplib's convention), with its refusal as a usage error.
import { SMTPInvalidArgumentError, splitHostPort } from 'smtplib';
import { CliError, EX } from './exit-codes.js';

export function parseHostPort(value: string, flag: string): { host: string; port?: number | undefined } {
  let split: { host: string; port: number | undefined };
  try {
    split = splitHostPort(value.trim());
  } catch (err) {
    if (err instanceof SMTPInvalidArgumentError) throw new CliError(`${flag}: ${err.message}`, EX.USAGE);
    throw err;
  }
  if (!split.host) throw new CliError(`${flag}: "${value}" has no host name`, EX.USAGE);
  return split.port === undefined ? { host: split.host } : { host: split.host, port: split.port };
}
