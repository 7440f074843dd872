// The config file reads msmtp's format: the layouts of msmtp's documented
// example files parse as msmtp reads them, and a copied ~/.msmtprc sends
// through a real (debugging) server with its settings honoured: TLS
// fingerprint and certcheck, set_from_header, DSN, source_ip, aliases,
// logfile (and a log that cannot be written), syslog, undisclosed_recipients,
// allow_from_override, remove_bcc_headers / keepbcc, eval.
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chooseAccount, parseConfig } from '../../packages/cli/src/config.js';
import { startDebugServer, type DebugServer, type DebugServerOptions } from '../../packages/cli/src/serve.js';
import { assertBuilt, ROOT, run, SENDMAIL_BIN, tempDir } from './helpers.js';

beforeAll(assertBuilt);
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(opts: DebugServerOptions = {}): Promise<DebugServer> {
  const s = await startDebugServer({ port: 0, ...opts });
  cleanups.push(() => s.close());
  return s;
}

function dir(): string {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

const fixture = (name: string): string => readFileSync(join(ROOT, 'test', 'cli', 'fixtures', name), 'utf8');

/** A HOME holding `~/.msmtprc` (and nothing of ours), as a msmtp user's would. */
function homeWith(msmtprc: string): { home: string; env: NodeJS.ProcessEnv } {
  const home = dir();
  writeFileSync(join(home, '.msmtprc'), msmtprc, { mode: 0o600 });
  return { home, env: { HOME: home, XDG_CONFIG_HOME: join(home, '.config') } };
}

const MSG = 'From: Joe <joe_smith@freemail.example>\nTo: bob@example.test\nBcc: hidden@example.test\nSubject: via msmtprc\n\nHello.\n';

describe('msmtp configuration files', () => {
  it('reads the layout of msmtp\'s documented user example: defaults, inheritance, passwordeval, default account', () => {
    const c = parseConfig(fixture('msmtprc-user.example'), 'msmtprc-user.example');
    expect(c.accounts.get('freemail')).toMatchObject({ host: 'smtp.freemail.example', port: 587, tls: 'required', user: 'joe.smith', from: 'joe_smith@freemail.example' });
    expect(c.accounts.get('freemail')!.passwordeval).toBe('gpg2 --no-tty -q -d ~/.msmtp-password.gpg');
    expect(c.accounts.get('freemail2')).toMatchObject({ host: 'smtp.freemail.example', port: 587, user: 'joe.smith', from: 'joey@freemail.example' });
    expect(c.accounts.get('isp')).toMatchObject({ host: 'mail.isp.example', port: 587, tls: 'required', user: '12345' });
    expect(c.defaultName).toBe('freemail');
    expect(chooseAccount(c, { sender: 'joey@freemail.example' })!.name).toBe('freemail2');
    expect(chooseAccount(c, { sender: 'someone@else.example' })!.name).toBe('freemail');
  });

  it('reads the layout of msmtp\'s documented system example: implicit TLS on 465; syslog is warned about once, never fatal', async () => {
    const c = parseConfig(fixture('msmtprc-system.example'), 'msmtprc-system.example');
    expect(c.accounts.get('default')).toMatchObject({ host: 'mailhub.oursite.example', port: 465, tls: 'implicit' });
    // Through the command: the warning names the line, once, and the mail still goes (to our server).
    const s = await server();
    const { env } = homeWith(fixture('msmtprc-system.example').replace('mailhub.oursite.example', '127.0.0.1').replace('port 465', `port ${s.port}`).replace('tls on\ntls_starttls off', 'tls off').replace('syslog LOG_MAIL', 'syslog LOG_MAIL\nsyslog on'));
    const r = await run(['bob@example.test'], { bin: SENDMAIL_BIN, input: MSG, env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/syslog is ignored/g)?.length).toBe(2); // two lines, one warning each
    expect(s.messages).toHaveLength(1);
  });

  it('a copied ~/.msmtprc sends: tls_fingerprint pins the self-signed certificate, dsn_notify/dsn_return, source_ip, logfile', async () => {
    const s = await server({ starttls: true });
    const fp = new X509Certificate(s.cert!).fingerprint256;
    const home = dir();
    const log = join(home, 'msmtp.log');
    const rc = [
      'defaults',
      'tls on',
      `logfile ${log}`,
      'dsn_notify failure,delay',
      'dsn_return headers',
      'account freemail',
      'host localhost',
      `port ${s.port}`,
      `tls_fingerprint ${fp}`,
      'source_ip 127.0.0.1',
      'from joe_smith@freemail.example',
      'account default : freemail',
    ].join('\n');
    const { env } = homeWith(rc);
    const r = await run(['-t'], { bin: SENDMAIL_BIN, input: MSG, env });
    expect(r.code, r.stderr).toBe(0);
    const m = s.messages[0]!;
    expect(m.secure).toBe(true);
    expect(m.mailFrom.args).toMatchObject({ RET: 'HDRS' });
    expect(m.rcptTo.map((x) => [x.address, x.args.NOTIFY])).toEqual([
      ['bob@example.test', 'FAILURE,DELAY'],
      ['hidden@example.test', 'FAILURE,DELAY'],
    ]);
    expect(m.raw.toString()).not.toMatch(/^Bcc:/im);
    const logged = readFileSync(log, 'utf8');
    expect(logged).toMatch(/host=localhost port=\d+ tls=required auth=off from=joe_smith@freemail\.example recipients=bob@example\.test,hidden@example\.test mailsize=\d+ smtpstatus=250 delivered=2 refused=0 exitcode=0\n$/);
    // A different fingerprint refuses to send (exit 76).
    const wrong = homeWith(rc.replace(fp, 'AB'.repeat(32)));
    const bad = await run(['-t'], { bin: SENDMAIL_BIN, input: MSG, env: wrong.env });
    expect(bad.code).toBe(76);
    expect(s.messages).toHaveLength(1);
  });

  it('tls_certcheck off connects to an untrusted certificate, with a warning', async () => {
    const s = await server({ starttls: true });
    const { env } = homeWith(`account default\nhost localhost\nport ${s.port}\ntls on\ntls_certcheck off\nfrom a@example.test\n`);
    const r = await run(['bob@example.test'], { bin: SENDMAIL_BIN, input: MSG, env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/certificate verification is OFF/);
    expect(s.messages[0]!.secure).toBe(true);
  });

  it('a log file that cannot be written is a warning, never a reason not to send', async () => {
    const s = await server();
    // /proc refuses new files even to root.
    const { env } = homeWith(`account default\nhost 127.0.0.1\nport ${s.port}\ntls off\nfrom a@example.test\nlogfile /proc/no-such-dir/msmtp.log\n`);
    const r = await run(['bob@example.test'], { bin: SENDMAIL_BIN, input: MSG, env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/logfile .* cannot be written .*the mail is sent anyway/);
    expect(s.messages).toHaveLength(1);
  });

  it('set_from_header on, allow_from_override off, from_full_name, undisclosed_recipients, aliases, eval', async () => {
    const s = await server();
    const home = dir();
    const aliases = join(home, 'aliases');
    writeFileSync(aliases, '# local names\nroot: admin@example.test, ops@example.test\ndefault: catchall@example.test\n');
    const rc = [
      'account default',
      'eval echo host 127.0.0.1',
      `port ${s.port}`,
      'tls off',
      'from robot@example.test',
      'from_full_name "Build Robot"',
      'allow_from_override off',
      'set_from_header on',
      'undisclosed_recipients on',
      `aliases ${aliases}`,
    ].join('\n');
    const { env } = homeWith(rc);
    const r = await run(['-f', 'someone@else.test', 'root', 'nobody', 'bob@example.test'], { bin: SENDMAIL_BIN, input: MSG, env });
    expect(r.code, r.stderr).toBe(0);
    const m = s.messages[0]!;
    // allow_from_override off: the account's from, not -f.
    expect(m.mailFrom.address).toBe('robot@example.test');
    // aliases: root → two addresses, an unknown local name → default; full addresses untouched.
    expect(m.rcptTo.map((x) => x.address)).toEqual(['admin@example.test', 'ops@example.test', 'catchall@example.test', 'bob@example.test']);
    const head = m.raw.toString().split('\r\n\r\n')[0]!;
    // set_from_header on: the message's own From is replaced by one built from the envelope.
    expect(head).toMatch(/^From: Build Robot <robot@example\.test>$/m);
    expect(head).not.toMatch(/joe_smith/);
    expect(head).toMatch(/^To: undisclosed-recipients:;$/m);
    expect(head).not.toMatch(/^To: bob/m);
    expect(head).not.toMatch(/^Bcc:/im);
  });

  it('remove_bcc_headers off (and keepbcc on) keep the Bcc field', async () => {
    for (const setting of ['remove_bcc_headers off', 'keepbcc on']) {
      const s = await server();
      const { env } = homeWith(`account default\nhost 127.0.0.1\nport ${s.port}\ntls off\nfrom a@example.test\n${setting}\n`);
      const r = await run(['-t'], { bin: SENDMAIL_BIN, input: MSG, env });
      expect(r.code, r.stderr).toBe(0);
      expect(s.messages[0]!.raw.toString(), setting).toMatch(/^Bcc: hidden@example\.test\r$/m);
    }
  });

  it('warns once about a setting it does not support and about an unknown one, and sends', async () => {
    const s = await server();
    const { env } = homeWith(`defaults\ntls_crl_file ~/.tls-crls\nbogus_setting 1\naccount default\nhost 127.0.0.1\nport ${s.port}\ntls off\nfrom a@example.test\n`);
    const r = await run(['bob@example.test'], { bin: SENDMAIL_BIN, input: MSG, env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/:2: tls_crl_file is ignored: certificate revocation lists are not checked/);
    expect(r.stderr).toMatch(/:3: unknown setting "bogus_setting" is ignored/);
    expect(s.messages).toHaveLength(1);
  });
});
