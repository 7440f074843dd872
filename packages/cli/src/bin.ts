#!/usr/bin/env node
// `smtplib`: the command-line front end. Each subcommand loads its module
// only when it runs, so `smtplib serve` starts fast and works on its own.
import { Command, CommanderError, Option } from 'commander';
import { CliError, EX } from './exit-codes.js';
import { describeError } from './errors.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function buildProgram(): Command {
  const program = new Command('smtplib');
  program
    .description('SMTP, ESMTP and LMTP from the command line: send mail, act as sendmail, probe a server, run a debugging server.')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program
    .command('serve')
    .description('Run a debugging SMTP/LMTP server on the loopback interface that prints (or saves) every message and relays nothing.')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('-p, --port <port>', 'port to listen on (0 picks a free one)', '1025')
    .option('--starttls', 'offer STARTTLS with a freshly generated self-signed certificate (its SHA-256 fingerprint is printed)')
    .option('--tls', 'implicit TLS (SMTPS, like port 465) instead of plaintext')
    .option('--cert <file>', 'PEM certificate (chain) to use instead of a generated one')
    .option('--key <file>', 'PEM private key for --cert')
    .option('--cert-out <file>', 'write the certificate in use to FILE (to trust it with `probe --ca FILE` or `send --ca FILE`)')
    .option('--auth <user:pass>', 'accept this account with AUTH PLAIN, LOGIN and CRAM-MD5; makes AUTH required (repeatable)', collect, [])
    .option('--auth-optional', 'with --auth: accept mail without authentication too')
    .option('--lmtp', 'speak LMTP (LHLO; one reply per recipient after DATA)')
    .option('--size <bytes>', 'largest message accepted (advertised as SIZE)')
    .option('--eml <dir>', 'save every message as a .eml file in DIR')
    .option('--maildir <dir>', 'deliver every message into the Maildir DIR (tmp/, new/, cur/ are created)')
    .option('--raw', 'print the whole message instead of headers and a body summary')
    .option('--json', 'print one JSON object per line (listening event, then each message)')
    .option('-q, --quiet', 'print nothing per message (only the file name with --eml/--maildir)')
    .option('--refuse-mail <reply>', 'answer every MAIL FROM with this reply, e.g. "451 Try later"')
    .option('--refuse-rcpt <addr=reply>', 'refuse a recipient, e.g. "bob@example.test=550 No such user"; * for all (repeatable)', collect, [])
    .option('--refuse-data <reply>', 'refuse every message after DATA with this reply, e.g. "554 Rejected"')
    .option('--max-messages <n>', 'exit after receiving N messages')
    .addHelpText('after', '\nExamples:\n  smtplib serve\n  smtplib serve --port 0 --starttls --auth alice:secret\n  smtplib serve --maildir ~/Maildir-test --quiet\n  smtplib serve --refuse-rcpt "*=451 4.3.0 Try again later"')
    .action(async (opts) => {
      const { runServe } = await import('./commands/serve.js');
      process.exitCode = await runServe(opts);
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return EX.USAGE;
    }
    const { message, hint, exitCode } = describeError(err);
    process.stderr.write(`smtplib: ${message}\n`);
    if (hint) process.stderr.write(`hint: ${hint}\n`);
    return exitCode;
  }
}

export { CliError, Option };

const code = await main(process.argv.slice(2));
process.exitCode = code;
