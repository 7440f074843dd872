// --help for every subcommand, and usage errors.
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, run, SENDMAIL_BIN } from './helpers.js';

beforeAll(assertBuilt);

describe('smtplib --help', () => {
  it('lists the subcommands', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of ['serve', 'send', 'sendmail', 'probe']) expect(r.stdout).toMatch(new RegExp(`^  ${cmd}\\b`, 'm'));
  });

  const cases: [string[], RegExp[]][] = [
    [['serve', '--help'], [/Usage: smtplib serve/, /--starttls/, /--maildir <dir>/, /--lmtp/, /--size <bytes>/, /--auth <user:pass>/]],
    [['send', '--help'], [/Usage: smtplib send/, /--password-env <var>/, /--password-file <file>/, /--attach <file>/, /--notify <list>/, /--batch <file>/, /75 temporary failure/]],
    [['probe', '--help'], [/Usage: smtplib probe/, /--json/, /--ca <file>/]],
    [['sendmail', '--help'], [/Usage: smtplib sendmail/, /^  -t /m, /-oi/, /account default : work/]],
    [['help', 'send'], [/Usage: smtplib send/]],
  ];
  for (const [args, patterns] of cases) {
    it(`smtplib ${args.join(' ')}`, async () => {
      const r = await run(args);
      expect(r.code).toBe(0);
      for (const p of patterns) expect(r.stdout).toMatch(p);
    });
  }

  it('smtplib-sendmail --help', async () => {
    const r = await run(['--help'], { bin: SENDMAIL_BIN });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/smtplib-sendmail \[options\]/);
  });

  it('never offers a password option that takes the password itself', async () => {
    const r = await run(['send', '--help']);
    expect(r.stdout).not.toMatch(/--password\s+</);
    expect(r.stdout).not.toMatch(/--pass\b/);
  });

  it('exits 64 on usage errors', async () => {
    for (const args of [['bogus'], ['send', '--no-such-flag'], ['probe'], ['sendmail', '-bp'], ['send', '--tls', 'sometimes', '--server', 'x', '-f', 'a@b', '-t', 'c@d', '--subject', 's', '--body', 'b']]) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(64);
      expect(r.stderr.length, args.join(' ')).toBeGreaterThan(0);
    }
  });

  it('bare `smtplib` prints the help on stderr and exits 64', async () => {
    const r = await run([]);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^Usage: smtplib \[options\] \[command\]/);
    for (const cmd of ['serve', 'send', 'sendmail', 'probe']) expect(r.stderr).toMatch(new RegExp(`^  ${cmd}\\b`, 'm'));
  });

  it('documents exit code 79 (partial delivery) in send and sendmail help', async () => {
    expect((await run(['send', '--help'])).stdout).toMatch(/79 partial delivery/);
    expect((await run(['sendmail', '--help'])).stdout).toMatch(/79 partial delivery/);
  });
});
