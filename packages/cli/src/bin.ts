#!/usr/bin/env node
// `smtplib`: the command-line front end. Each subcommand loads its module
// only when it runs, so `smtplib serve` starts fast and works on its own.
import { Command, CommanderError, Option } from 'commander';
import { CliError, EX } from './exit-codes.js';
import { LMTP_PORT, SMTP_PORT } from 'smtplib';
import { describeError } from './errors.js';
import { registerQueueCommands } from './commands/queue.js';

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
    .option('--max-messages <n>', 'messages kept in memory; the oldest is dropped beyond N (default 1000)')
    .option('--exit-after <n>', 'exit after receiving N messages')
    .option('--http <addr:port>', 'web inbox and JSON API address (default 127.0.0.1:8025; a free port with --port 0)')
    .option('--no-http', 'no web inbox or API')
    .option('--fail <rule>', "scripted failure, e.g. 'RCPT to=~@blocked\\.test -> 550 5.1.1 no such user' (repeatable; grammar in docs/capture.md)", collect, [])
    .option('--require-tls', 'refuse MAIL before STARTTLS (530 5.7.0)')
    .option('--record <dir>', "store each session's transcript (both directions, AUTH redacted) as DIR/*.smtp")
    .option('--replay <file>', 'answer every client exactly as this recorded transcript says')
    .addHelpText('after', '\nExamples:\n  smtplib serve                      (web inbox at http://127.0.0.1:8025)\n  smtplib serve --port 0 --starttls --auth alice:secret\n  smtplib serve --maildir ~/Maildir-test --quiet\n  smtplib serve --fail "RCPT to=~@blocked\\.test -> 550 5.1.1 no such user" --fail "DATA p=0.1 -> 451 4.3.0 try later"\n  smtplib serve --record recordings/ ; smtplib serve --replay recordings/SESSION.smtp')
    .action(async (opts) => {
      const { runServe } = await import('./commands/serve.js');
      process.exitCode = await runServe(opts);
    });

  program
    .command('send')
    .description('Send a message: a file (--message), stdin, or one built from --subject/--body/--attach. In a terminal with no message, asks for From, To and the text.')
    .option('-s, --server <host[:port]>', 'SMTP server (default port: 465 with --tls implicit, 587 with --user, else 25)')
    .option('--tls <mode>', 'required (STARTTLS, fail without it), opportunistic (strippable), none, or implicit (SMTPS); default: the library\'s (none to loopback and Unix sockets, implicit on 465, else required)')
    .option('--ca <file>', 'trust the CA certificate(s) in this PEM file too (a private CA, or `serve --cert-out`)')
    .option('--fingerprint <sha256>', 'trust the server\'s certificate by its SHA-256 fingerprint instead of a CA (hex, colons optional; repeatable)', collect, [])
    .option('--timeout <seconds>', 'give up on a silent server after this long')
    .option('--helo <name>', 'name to give in EHLO (default: this host name)')
    .option('--lmtp', `speak LMTP (LHLO, per-recipient replies; default port ${LMTP_PORT}; --server /path for a Unix socket)`)
    .option('--account <name>', 'take server, TLS, user and password from this account of the config file')
    .option('-u, --user <name>', 'log in with AUTH as this user')
    .option('--password-env <var>', 'read the password from this environment variable')
    .option('--password-file <file>', 'read the password from the first line of this file (otherwise it is asked for on the terminal)')
    .option('--insecure-auth', 'allow AUTH over a connection without TLS (test servers only)')
    .option('-f, --from <address>', 'envelope sender and From (default: the From header of --message)')
    .option('-t, --to <address>', 'recipient (repeatable; comma lists allowed)', collect, [])
    .option('--cc <address>', 'Cc recipient (repeatable)', collect, [])
    .option('--bcc <address>', 'Bcc recipient: in the envelope, not in the header (repeatable)', collect, [])
    .option('-m, --message <file>', 'the whole RFC 5322 message ("-" for stdin); recipients default to its To/Cc/Bcc, Bcc is removed')
    .option('--subject <text>', 'build a message with this subject')
    .option('--body <text>', 'text of the built message (default: stdin when it is not a terminal)')
    .option('-a, --attach <file>', 'attach a file to the built message (repeatable)', collect, [])
    .option('--html <file>', 'HTML body of the built message, from this file (with --body: sent as alternatives)')
    .option('--inline <cid=file>', 'an image the HTML shows as <img src="cid:CID"> (repeatable; cid defaults to the file name)', collect, [])
    .option('-H, --header <"Name: value">', 'add a header to the built message (repeatable)', collect, [])
    .option('--notify <list>', 'DSN: when to report, comma list of success,failure,delay or never')
    .option('--ret <full|hdrs>', 'DSN: return the full message or only headers in a bounce')
    .option('--envid <id>', 'DSN: envelope identifier echoed in reports')
    .option('--require-tls', 'REQUIRETLS (RFC 8689): the message may only travel over verified TLS')
    .option('--smtputf8', 'ask for SMTPUTF8 (internationalised addresses)')
    .option('-v, --verbose', 'print the SMTP transcript (debug level 1)')
    .option('-d, --debug', 'print the SMTP transcript with timings, secrets masked (debug level 2)')
    .option('-q, --quiet', 'print nothing on success')
    .option('--json', 'print the outcome as JSON (with --batch: one object per recipient, then a summary)')
    .option('--batch <file>', 'send many messages: JSON lines of {from,to,cc,bcc,subject,text,html,headers,attachments} or {from,to,raw}; attachments are paths or {path,filename,contentType}')
    .option('--concurrency <n>', 'with --batch: connections used in parallel (default 4)')
    .option('--attempts <n>', 'with --batch: tries per message for temporary failures (default: the pool\'s, 3)')
    .option('--dkim-key <file>', 'DKIM-sign the message with this private key (PEM, RSA or Ed25519); with --dkim-selector and --dkim-domain (account keys dkim_key, dkim_selector, dkim_domain)')
    .option('--dkim-selector <name>', 'DKIM selector: the key is published at <name>._domainkey.<domain>')
    .option('--dkim-domain <domain>', 'DKIM signing domain (d=)')
    .option('--queue-dir <dir>', 'accept the message into this queue (smtplib-queue spool) and exit once it is on disk; `smtplib queue run` delivers it (also $SMTPLIB_QUEUE_DIR, account key queue_dir)')
    .addHelpText('after', `
Exit codes (sysexits.h): 0 sent, 64 usage, 65 message refused, 66 input missing,
69 refused permanently / server unavailable, 75 temporary failure (4xx, timeout,
disconnect: try again later), 76 protocol/TLS error, 77 authentication failed, 78 configuration,
79 partial delivery (some recipients got it: the output says who; do not resend to all).

Examples:
  smtplib send -s smtp.example.com -u alice --password-env SMTP_PASS -f alice@example.com -t bob@example.com --subject Hi --body 'Hello'
  smtplib send -s localhost:1025 --tls none --message note.eml
  smtplib send -s 127.0.0.1:1025 --tls none              (asks for From, To and the text)
  echo 'Body' | smtplib send --account work -t bob@example.com --subject Report --attach report.pdf`)
    .action(async (opts) => {
      const { runSend } = await import('./commands/send.js');
      process.exitCode = await runSend(opts);
    });

  program
    .command('probe')
    .description('Inspect an SMTP server: greeting, EHLO before/after STARTTLS, TLS version and cipher, certificate chain, AUTH, SIZE, and a diagnosis of common mistakes.')
    .argument('<host[:port]>', `server to probe (default port ${SMTP_PORT}; a path starting with "/" is a Unix socket, e.g. an LMTP one)`)
    .option('--json', 'print the report as JSON')
    .option('--ca <file>', 'trust the CA certificate(s) in this PEM file too')
    .option('--fingerprint <sha256>', 'the certificate to expect, by SHA-256 fingerprint (as `send --fingerprint`; repeatable)', collect, [])
    .option('--servername <name>', 'name the certificate must match (default: the host given)')
    .option('--timeout <seconds>', 'per step (default 10; the plaintext greeting is awaited at most 5 s before trying implicit TLS)')
    .option('--helo <name>', 'name to give in EHLO')
    .option('--lmtp', `say LHLO instead of EHLO (default port ${LMTP_PORT})`)
    .addHelpText('after', '\nExit codes: 0 no problems found, 76 a problem (TLS not trusted, wrong name, not SMTP), 69 unreachable, 75 timed out.\n\nExamples:\n  smtplib probe smtp.example.com:587\n  smtplib probe mail.example.com:465 --json\n  smtplib probe 127.0.0.1:1025 --ca server.pem --servername localhost')
    .action(async (target: string, opts) => {
      const { runProbe } = await import('./commands/probe.js');
      process.exitCode = await runProbe(target, opts);
    });

  registerQueueCommands(program);

  // Parsed by its own sendmail-compatible parser (see main()); listed here for --help.
  program
    .command('sendmail')
    .description('The /usr/sbin/sendmail interface: message on stdin, recipients as arguments or -t; accounts from ~/.config/smtplib/config (see `smtplib sendmail --help`).')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]');

  // OAuth 2 sign-in (commands/auth.ts); accounts then say `auth oauth`.
  program
    .command('auth')
    .description('OAuth 2 sign-in for accounts that send with XOAUTH2 / OAUTHBEARER (Microsoft 365, Google, any OpenID Connect server).')
    .command('login')
    .description('Sign in once (device code: a URL and a code; or a browser with PKCE on 127.0.0.1) and save the refresh token in a 0600 file.')
    .requiredOption('--provider <name>', 'microsoft, google or oidc')
    .option('--client-id <id>', 'the application (client) id registered with the provider')
    .option('--tenant <id>', 'microsoft: directory (tenant) id or domain (default: organizations)')
    .option('--issuer <url>', 'oidc: the issuer URL (endpoints come from its discovery document)')
    .option('--token-url <url>', 'override the token endpoint')
    .option('--scope <scopes>', 'override the scopes (space-separated)')
    .option('--flow <device|browser>', 'device authorization (default where offered) or browser with PKCE on a loopback redirect')
    .option('--account <name>', 'the account this sign-in is for (names the token file)')
    .option('--user <address>', 'the mailbox address (login hint, and the printed account snippet)')
    .option('--token-file <file>', 'where to keep the refresh token (default ~/.config/smtplib/oauth/<account>.token, mode 0600)')
    .option('--print', 'print the refresh token on stdout instead of saving it (for a password manager; then use oauth_token_eval)')
    .option('--client-secret-env <var>', 'read a client secret from this environment variable (Google desktop apps)')
    .option('--ca <file>', 'trust the CA certificate(s) in this PEM file for the OAuth endpoints too')
    .addHelpText('after', '\nExamples:\n  smtplib auth login --provider microsoft --client-id 00000000-0000-0000-0000-000000000000 --account work --user me@contoso.com\n  smtplib auth login --provider google --client-id ID.apps.googleusercontent.com --client-secret-env GOOGLE_CLIENT_SECRET --account gmail\n  smtplib auth login --provider oidc --issuer https://id.example.com --client-id smtplib --print | pass insert -m mail/oauth')
    .action(async (opts) => {
      const { runAuthLogin } = await import('./commands/auth.js');
      process.exitCode = await runAuthLogin(opts);
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'sendmail') {
    const { runSendmail } = await import('./commands/sendmail.js');
    return runSendmail(argv.slice(1));
  }
  const program = buildProgram();
  if (argv.length === 0) {
    // Bare `smtplib`: the help, on stderr, and a usage exit code (nothing was done).
    process.stderr.write(program.helpInformation());
    return EX.USAGE;
  }
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

// `smtplib ... | head` should end quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

const code = await main(process.argv.slice(2));
process.exitCode = code;
