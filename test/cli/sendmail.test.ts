// The sendmail interface: -t with Bcc removed, the lone-dot rule and -i,
// added From/Date/Message-ID, account selection by envelope sender, exit codes.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, chooseAccount } from '../../packages/cli/src/config.js';
import { parseSendmailArgs } from '../../packages/cli/src/commands/sendmail.js';
import { startDebugServer, type DebugServer, type DebugServerOptions } from '../../packages/cli/src/serve.js';
import { assertBuilt, run, SENDMAIL_BIN, tempDir } from './helpers.js';

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

function configFile(text: string): string {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const file = join(t.dir, 'config');
  writeFileSync(file, text);
  return file;
}

const oneAccount = (port: number, extra = '') => `account local\nhost 127.0.0.1\nport ${port}\ntls none\nfrom robot@example.test\n${extra}\naccount default : local\n`;

describe('smtplib-sendmail', () => {
  it('-t takes recipients from To/Cc/Bcc and removes Bcc from what is sent', async () => {
    const s = await server();
    const cfg = configFile(oneAccount(s.port));
    const msg = 'From: Robot <robot@example.test>\nTo: bob@example.test, Carol <carol@example.test>\nCc: dan@example.test\nBcc: eve@example.test,\n  frank@example.test\nSubject: hidden copies\n\nBody line\n';
    const r = await run(['-t', '-i'], { bin: SENDMAIL_BIN, input: msg, env: { SMTPLIB_CONFIG: cfg } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const m = s.messages[0]!;
    expect(m.mailFrom.address).toBe('robot@example.test');
    expect(m.rcptTo.map((x) => x.address).sort()).toEqual(['bob@example.test', 'carol@example.test', 'dan@example.test', 'eve@example.test', 'frank@example.test']);
    const raw = m.raw.toString();
    expect(raw).not.toMatch(/^Bcc:/im);
    expect(raw).not.toContain('eve@example.test');
    expect(raw).not.toContain('frank@example.test');
    expect(raw).toMatch(/^To: bob@example\.test, Carol <carol@example\.test>\r\n/m);
    expect(raw).toMatch(/^Date: /m);
    expect(raw).toMatch(/^Message-ID: <[^>]+@example\.test>/m);
    expect(raw.endsWith('\r\n\r\nBody line\r\n')).toBe(true);
  });

  it('without -t sends only to the arguments; adds From with -F and -f', async () => {
    const s = await server();
    const cfg = configFile(oneAccount(s.port));
    const r = await run(['-f', 'ops@example.test', '-F', 'Ops Team', 'bob@example.test'], { bin: SENDMAIL_BIN, input: 'To: someone-else@example.test\nSubject: x\n\nhi\n', env: { SMTPLIB_CONFIG: cfg } });
    expect(r.code, r.stderr).toBe(0);
    const m = s.messages[0]!;
    expect(m.mailFrom.address).toBe('ops@example.test');
    expect(m.rcptTo.map((x) => x.address)).toEqual(['bob@example.test']);
    expect(m.raw.toString()).toMatch(/^From: Ops Team <ops@example\.test>\r\n/m);
  });

  it('ends the message at a lone "." line unless -i / -oi is given', async () => {
    const s = await server();
    const cfg = configFile(oneAccount(s.port));
    const input = 'Subject: dots\n\nbefore\n.\nafter\n';
    const r1 = await run(['bob@example.test'], { bin: SENDMAIL_BIN, input, env: { SMTPLIB_CONFIG: cfg } });
    expect(r1.code, r1.stderr).toBe(0);
    const body1 = s.messages[0]!.raw.toString().split('\r\n\r\n')[1];
    expect(body1).toBe('before\r\n');
    const r2 = await run(['-oi', 'bob@example.test'], { bin: SENDMAIL_BIN, input, env: { SMTPLIB_CONFIG: cfg } });
    expect(r2.code, r2.stderr).toBe(0);
    const body2 = s.messages[1]!.raw.toString().split('\r\n\r\n')[1];
    expect(body2).toBe('before\r\n.\r\nafter\r\n');
  });

  it('chooses the account whose "from" matches the envelope sender, else the default', async () => {
    const work = await server();
    const home = await server();
    const cfg = configFile(
      `# two accounts\ndefaults\ntls none\n\naccount work\nhost 127.0.0.1\nport ${work.port}\nfrom *@work.example\n\naccount home\nhost 127.0.0.1\nport ${home.port}\nfrom me@home.example\n\naccount default : work\n`,
    );
    const send = (args: string[], input = 'Subject: s\n\nb\n') => run(args, { bin: SENDMAIL_BIN, input, env: { SMTPLIB_CONFIG: cfg } });
    expect((await send(['-f', 'me@home.example', 'x@example.test'])).code).toBe(0);
    expect(home.messages.map((m) => m.mailFrom.address)).toEqual(['me@home.example']);
    expect(work.messages).toHaveLength(0);
    expect((await send(['-f', 'boss@work.example', 'x@example.test'])).code).toBe(0);
    expect(work.messages.map((m) => m.mailFrom.address)).toEqual(['boss@work.example']);
    // The From: header decides when there is no -f.
    expect((await send(['x@example.test'], 'From: Me <me@home.example>\nSubject: s\n\nb\n')).code).toBe(0);
    expect(home.messages).toHaveLength(2);
    // No match: the default account.
    expect((await send(['-f', 'stranger@elsewhere.example', 'x@example.test'])).code).toBe(0);
    expect(work.messages).toHaveLength(2);
    // --account wins over the sender.
    expect((await send(['--account', 'home', '-f', 'boss@work.example', 'x@example.test'])).code).toBe(0);
    expect(home.messages).toHaveLength(3);
  });

  it('finds the config under $XDG_CONFIG_HOME/smtplib/config', async () => {
    const s = await server();
    const t = tempDir();
    cleanups.push(t.cleanup);
    mkdirSync(join(t.dir, 'smtplib'));
    writeFileSync(join(t.dir, 'smtplib', 'config'), oneAccount(s.port));
    const r = await run(['sendmail', 'bob@example.test'], { input: 'Subject: xdg\n\nb\n', env: { SMTPLIB_CONFIG: '', XDG_CONFIG_HOME: t.dir } });
    expect(r.code, r.stderr).toBe(0);
    expect(s.messages).toHaveLength(1);
  });

  it('exits 75 for a temporary refusal, 69 for a permanent one, 77 for a bad password, 78 without a config', async () => {
    const temp = await server({ refuseRcpt: { '*': { code: 451, message: 'Try later' } } });
    const perm = await server({ refuseRcpt: { '*': { code: 550, message: 'Unknown user' } } });
    const auth = await server({ auth: [{ user: 'robot', pass: 'right' }] });
    const input = 'Subject: s\n\nb\n';
    const r1 = await run(['bob@example.test'], { bin: SENDMAIL_BIN, input, env: { SMTPLIB_CONFIG: configFile(oneAccount(temp.port)) } });
    expect(r1.code).toBe(75);
    expect(r1.stderr).toMatch(/^sendmail: all recipients were refused:\n  bob@example\.test: 451 .*Try later/m);
    const r2 = await run(['bob@example.test'], { bin: SENDMAIL_BIN, input, env: { SMTPLIB_CONFIG: configFile(oneAccount(perm.port)) } });
    expect(r2.code).toBe(69);
    const r3 = await run(['bob@example.test'], {
      bin: SENDMAIL_BIN,
      input,
      env: { SMTPLIB_CONFIG: configFile(oneAccount(auth.port, 'user robot\npasswordeval "echo wrong"')) },
    });
    expect(r3.code).toBe(77);
    const r3ok = await run(['bob@example.test'], {
      bin: SENDMAIL_BIN,
      input,
      env: { SMTPLIB_CONFIG: configFile(oneAccount(auth.port, 'user robot\npasswordeval "echo right"')) },
    });
    expect(r3ok.code, r3ok.stderr).toBe(0);
    const t = tempDir();
    cleanups.push(t.cleanup);
    const r4 = await run(['bob@example.test'], { bin: SENDMAIL_BIN, input, env: { SMTPLIB_CONFIG: '', XDG_CONFIG_HOME: t.dir } });
    expect(r4.code).toBe(78);
    expect(r4.stderr).toMatch(/no config file at .*smtplib\/config/);
    const r5 = await run([], { bin: SENDMAIL_BIN, input, env: { SMTPLIB_CONFIG: configFile(oneAccount(perm.port)) } });
    expect(r5.code).toBe(64);
  });
});

describe('sendmail argument and config parsing', () => {
  it('understands the usual sendmail flags', () => {
    const a = parseSendmailArgs(['-oi', '-t', '-fme@example.test', '-F', 'Me', '-odi', '-oem', '-vv', '-N', 'failure,delay', '-R', 'hdrs', '-V', 'id1', '--', '-odd@example.test']);
    expect(a).toMatchObject({ ignoreDots: true, readHeaders: true, from: 'me@example.test', fullName: 'Me', verbose: 2, recipients: ['-odd@example.test'] });
    expect(a.dsn).toEqual({ notify: ['FAILURE', 'DELAY'], ret: 'HDRS', envid: 'id1' });
    expect(() => parseSendmailArgs(['-bp'])).toThrow(/not supported/);
    expect(() => parseSendmailArgs(['-f'])).toThrow(/needs a value/);
  });

  it('parses accounts, inheritance, msmtp tls settings and the default', () => {
    const c = parseConfig(
      'defaults\nport 587\ntls on\n\naccount a\nhost a.example\nfrom a@example.test\nuser ua\npassword-file ~/pw\n\naccount b : a\nhost b.example\ntls_starttls off\ntls on\nfrom *@b.example\n\naccount default : b\n',
      'cfg',
    );
    expect(c.accounts.get('a')).toMatchObject({ host: 'a.example', port: 587, tls: 'required', user: 'ua' });
    expect(c.accounts.get('b')).toMatchObject({ host: 'b.example', port: 587, tls: 'implicit', user: 'ua' });
    expect(c.defaultName).toBe('b');
    expect(chooseAccount(c, { sender: 'x@B.example' })?.name).toBe('b');
    expect(chooseAccount(c, { sender: 'a@example.test' })?.name).toBe('a');
    expect(chooseAccount(c, { sender: 'other@example.test' })?.name).toBe('b');
    // Unknown settings are reported (once) and ignored, never fatal: see msmtp-config.test.ts.
    expect(() => parseConfig('host x\n', 'cfg')).toThrow(/outside an account/);
    expect(() => chooseAccount(c, { name: 'nope' })).toThrow(/no account "nope"/);
  });
});
