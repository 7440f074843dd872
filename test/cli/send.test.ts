// `smtplib send` against the debugging server: what arrives, and the exit
// codes for accepted, temporary (4xx) and permanent (5xx) outcomes.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { SMTPServer } from 'smtp-server';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDebugServer, type DebugServerOptions } from '../../packages/cli/src/serve.js';
import { assertBuilt, freePort, run, tempDir } from './helpers.js';

beforeAll(assertBuilt);
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(opts: DebugServerOptions = {}) {
  const s = await startDebugServer({ port: 0, ...opts });
  cleanups.push(() => s.close());
  return s;
}

const base = (port: number) => ['send', '--server', `127.0.0.1:${port}`, '--tls', 'none', '--from', 'alice@example.test'];

describe('smtplib send', () => {
  it('builds a message, sends Bcc only in the envelope, and exits 0', async () => {
    const s = await server();
    const r = await run([...base(s.port), '--to', 'bob@example.test', '--cc', 'carol@example.test', '--bcc', 'dave@example.test', '--subject', 'Quarterly', '--body', 'Numbers attached.', '--header', 'X-Tracking: 42', '--notify', 'success,failure', '--ret', 'hdrs', '--envid', 'Q4-1']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/accepted by 127\.0\.0\.1:\d+ for 3 recipient\(s\)/);
    const m = s.messages[0]!;
    expect(m.mailFrom.address).toBe('alice@example.test');
    expect(m.mailFrom.args).toMatchObject({ RET: 'HDRS', ENVID: 'Q4-1' });
    expect(m.rcptTo.map((x) => x.address)).toEqual(['bob@example.test', 'carol@example.test', 'dave@example.test']);
    expect(m.rcptTo[0]!.args).toMatchObject({ NOTIFY: 'SUCCESS,FAILURE' });
    const h = Object.fromEntries(m.headers.map(([k, v]) => [k.toLowerCase(), v]));
    expect(h.subject).toBe('Quarterly');
    expect(h['x-tracking']).toBe('42');
    expect(h.cc).toBe('carol@example.test');
    expect(h.bcc).toBeUndefined();
    expect(m.raw.toString()).not.toContain('dave@example.test');
    expect(m.raw.toString()).toContain('Numbers attached.');
  });

  it('attaches files with --attach and reads the body from stdin', async () => {
    const s = await server();
    const t = tempDir();
    cleanups.push(t.cleanup);
    const file = join(t.dir, 'report.csv');
    writeFileSync(file, 'a,b\n1,2\n');
    const r = await run([...base(s.port), '--to', 'bob@example.test', '--subject', 'Report', '--attach', file], { input: 'Body from stdin\n' });
    expect(r.code).toBe(0);
    const raw = s.messages[0]!.raw.toString();
    expect(raw).toMatch(/Content-Type: multipart\/mixed/);
    expect(raw).toMatch(/filename=report\.csv/);
    expect(raw).toContain('Body from stdin');
    expect(raw).toContain(Buffer.from('a,b\n1,2\n').toString('base64'));
  });

  it('sends a raw message from stdin to its To/Cc/Bcc and removes Bcc', async () => {
    const s = await server();
    const msg = 'From: Alice <alice@example.test>\nTo: bob@example.test\nCc: Carol <carol@example.test>\nBcc: secret@example.test\nSubject: raw\n\nHello.\n';
    const r = await run(['send', '--server', `127.0.0.1:${s.port}`, '--tls', 'none'], { input: msg });
    expect(r.code, r.stderr).toBe(0);
    const m = s.messages[0]!;
    expect(m.mailFrom.address).toBe('alice@example.test');
    expect(m.rcptTo.map((x) => x.address).sort()).toEqual(['bob@example.test', 'carol@example.test', 'secret@example.test']);
    expect(m.raw.toString()).not.toMatch(/^Bcc:/im);
    // Date and Message-ID were missing: added (as sendmail does); the rest is as given.
    const sent = m.raw.toString();
    expect(sent).toMatch(/^Date: [A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\nMessage-ID: <[^@>\s]+@example\.test>\r\n/);
    expect(sent.replace(/^Date: .*\r\nMessage-ID: .*\r\n/, '')).toBe('From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nCc: Carol <carol@example.test>\r\nSubject: raw\r\n\r\nHello.\r\n');
  });

  it('send -m FILE keeps the Date and Message-ID a message already has', async () => {
    const s = await server();
    const t = tempDir();
    cleanups.push(t.cleanup);
    const file = join(t.dir, 'note.eml');
    const msg = 'From: alice@example.test\r\nTo: bob@example.test\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <fixed@example.test>\r\nSubject: kept\r\n\r\nHello.\r\n';
    writeFileSync(file, msg);
    const r = await run(['send', '--server', `127.0.0.1:${s.port}`, '--tls', 'none', '-m', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(s.messages[0]!.raw.toString()).toBe(msg);
  });

  it('exits 75 when every recipient gets a 451', async () => {
    const s = await server({ refuseRcpt: { '*': { code: 451, message: 'Greylisted, try again later' } } });
    const r = await run([...base(s.port), '--to', 'bob@example.test', '--subject', 's', '--body', 'b']);
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/bob@example\.test: 451 .*Greylisted/);
    expect(r.stderr).toMatch(/try again later/);
    expect(s.messages).toHaveLength(0);
  });

  it('exits 69 when every recipient gets a 550', async () => {
    const s = await server({ refuseRcpt: { '*': { code: 550, message: 'No such user' } } });
    const r = await run([...base(s.port), '--to', 'nobody@example.test', '--subject', 's', '--body', 'b']);
    expect(r.code).toBe(69);
    expect(r.stderr).toMatch(/nobody@example\.test: 550 .*No such user/);
  });

  it('a partial refusal exits 79 (its own code) and says who got the message', async () => {
    const s = await server({ refuseRcpt: { 'gone@example.test': { code: 550, message: 'Gone' } } });
    const r = await run([...base(s.port), '--to', 'bob@example.test', '--to', 'gone@example.test', '--subject', 's', '--body', 'b']);
    expect(r.code).toBe(79);
    expect(r.stdout).toMatch(/for 1 recipient\(s\).*bob@example\.test/);
    expect(r.stderr).toMatch(/gone@example\.test: 550/);
    expect(r.stderr).toMatch(/partial delivery \(exit 79\): only bob@example\.test got the message/);
    const json = await run([...base(s.port), '--json', '--to', 'bob@example.test', '--to', 'gone@example.test', '--subject', 's', '--body', 'b']);
    expect(json.code).toBe(79);
    const out = JSON.parse(json.stdout) as { exitCode: number; recipients: { recipient: string; status: string; reply: { code: number } }[] };
    expect(out.exitCode).toBe(79);
    expect(out.recipients.map((x) => [x.recipient, x.status, x.reply.code])).toEqual([
      ['bob@example.test', 'delivered', 250],
      ['gone@example.test', 'refused', 550],
    ]);
    expect(s.messages[0]!.rcptTo.map((x) => x.address)).toEqual(['bob@example.test']);
  });

  it('exits 65 when the message is refused after DATA (5xx) and 75 for a 4xx there', async () => {
    const s = await server({ refuseData: { code: 554, message: 'Message rejected as spam' } });
    const r = await run([...base(s.port), '--to', 'bob@example.test', '--subject', 's', '--body', 'b']);
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/554.*spam/);
    const s2 = await server({ refuseData: { code: 452, message: 'Insufficient storage' } });
    const r2 = await run([...base(s2.port), '--to', 'bob@example.test', '--subject', 's', '--body', 'b']);
    expect(r2.code).toBe(75);
  });

  it('exits 69 when the sender is refused permanently', async () => {
    const s = await server({ refuseMail: { code: 553, message: 'Sender not allowed' } });
    const r = await run([...base(s.port), '--to', 'bob@example.test', '--subject', 's', '--body', 'b']);
    expect(r.code).toBe(69);
    expect(r.stderr).toMatch(/sender was refused: 553/);
  });

  it('logs in with --password-env, and exits 77 when the password is wrong', async () => {
    const s = await server({ auth: [{ user: 'alice', pass: 'correct horse' }] });
    const ok = await run([...base(s.port), '--user', 'alice', '--password-env', 'SMTP_PASS', '--to', 'bob@example.test', '--subject', 's', '--body', 'b', '--debug'], {
      env: { SMTP_PASS: 'correct horse' },
    });
    expect(ok.code, ok.stderr).toBe(0);
    expect(s.messages[0]!.user).toBe('alice');
    // The transcript (--debug) shows AUTH but not the secret.
    expect(ok.stderr).toMatch(/AUTH/);
    expect(ok.stderr).not.toContain('correct horse');
    expect(ok.stderr).not.toContain(Buffer.from('\0alice\0correct horse').toString('base64'));
    const bad = await run([...base(s.port), '--user', 'alice', '--password-env', 'SMTP_PASS', '--to', 'bob@example.test', '--subject', 's', '--body', 'b'], {
      env: { SMTP_PASS: 'wrong' },
    });
    expect(bad.code).toBe(77);
    expect(bad.stderr).toMatch(/authentication failed.*535/);
  });

  it('reads the password from --password-file and says so when the variable is missing', async () => {
    const s = await server({ auth: [{ user: 'alice', pass: 'filepw' }] });
    const t = tempDir();
    cleanups.push(t.cleanup);
    const pw = join(t.dir, 'pw');
    writeFileSync(pw, 'filepw\n', { mode: 0o600 });
    const ok = await run([...base(s.port), '--user', 'alice', '--password-file', pw, '--to', 'bob@example.test', '--subject', 's', '--body', 'b']);
    expect(ok.code, ok.stderr).toBe(0);
    const missing = await run([...base(s.port), '--user', 'alice', '--password-env', 'NOT_SET_ANYWHERE', '--to', 'bob@example.test', '--subject', 's', '--body', 'b']);
    expect(missing.code).toBe(78);
    expect(missing.stderr).toMatch(/NOT_SET_ANYWHERE is not set/);
  });

  it('exits 75 when the server cannot be reached, 76 when STARTTLS is required but missing, 66 without the message file', async () => {
    const port = await freePort();
    const down = await run([...base(port), '--to', 'bob@example.test', '--subject', 's', '--body', 'b']);
    expect(down.code).toBe(75);
    expect(down.stderr).toMatch(/could not connect/);
    const s = await server();
    const noTls = await run(['send', '--server', `127.0.0.1:${s.port}`, '--tls', 'required', '--from', 'a@example.test', '--to', 'b@example.test', '--subject', 's', '--body', 'b']);
    expect(noTls.code).toBe(76);
    expect(noTls.stderr).toMatch(/STARTTLS/);
    const nofile = await run([...base(s.port), '--message', '/nonexistent/message.eml']);
    expect(nofile.code).toBe(66);
    expect(s.messages).toHaveLength(0);
  });

  it('sends over STARTTLS to a server whose certificate is trusted with --ca', async () => {
    const s = await server({ starttls: true });
    const t = tempDir();
    cleanups.push(t.cleanup);
    const ca = join(t.dir, 'ca.pem');
    writeFileSync(ca, s.cert!);
    const untrusted = await run(['send', '--server', `localhost:${s.port}`, '--tls', 'required', '--from', 'a@example.test', '--to', 'b@example.test', '--subject', 's', '--body', 'b']);
    expect(untrusted.code, untrusted.stderr).toBe(76);
    const r = await run(['send', '--server', `localhost:${s.port}`, '--tls', 'required', '--ca', ca, '--from', 'a@example.test', '--to', 'b@example.test', '--subject', 's', '--body', 'b']);
    expect(r.code, r.stderr).toBe(0);
    expect(s.messages[0]!.secure).toBe(true);
  });

  it('uses the library\'s TLS default when --tls is not given: plaintext to loopback, no --ca needed', async () => {
    const s = await server({ starttls: true });
    const r = await run(['send', '--server', `127.0.0.1:${s.port}`, '--from', 'a@example.test', '--to', 'b@example.test', '--subject', 's', '--body', 'b']);
    expect(r.code, r.stderr).toBe(0);
    expect(s.messages[0]!.secure).toBe(false);
  });

  it('--fingerprint trusts a self-signed certificate by its SHA-256; a wrong one fails with exit 76', async () => {
    const s = await server({ starttls: true });
    const fp = new X509Certificate(s.cert!).fingerprint256;
    const args = ['send', '--server', `localhost:${s.port}`, '--tls', 'required', '--from', 'a@example.test', '--to', 'b@example.test', '--subject', 's', '--body', 'b'];
    const ok = await run([...args, '--fingerprint', fp]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(s.messages[0]!.secure).toBe(true);
    const bad = await run([...args, '--fingerprint', 'AB'.repeat(32)]);
    expect(bad.code).toBe(76);
    expect(bad.stderr).toMatch(/--fingerprint|--ca/);
    expect(s.messages).toHaveLength(1);
  });

  it('sends over LMTP to a Unix socket (--lmtp --server /path), each recipient\'s own reply', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const path = join(t.dir, 'lmtp.sock');
    const got: string[] = [];
    const lmtp = new SMTPServer({
      lmtp: true,
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData(stream, session, callback) {
        stream.resume();
        stream.on('end', () => {
          got.push(...session.envelope.rcptTo.map((r) => r.address));
          callback(null, session.envelope.rcptTo.map((r) => (r.address === 'full@example.test' ? new Error('Mailbox full') : `2.0.0 delivered to ${r.address}`)) as unknown as string);
        });
      },
    });
    await new Promise<void>((r) => lmtp.listen(path, r));
    cleanups.push(() => new Promise<void>((r) => lmtp.close(() => r())));
    const r = await run(['send', '--lmtp', '--server', path, '--json', '--from', 'a@example.test', '--to', 'ok@example.test', '--to', 'full@example.test', '--subject', 's', '--body', 'b']);
    expect(r.code, r.stderr).toBe(79);
    const out = JSON.parse(r.stdout) as { server: string; recipients: { recipient: string; status: string; reply: { code: number; message: string } }[] };
    expect(out.server).toBe(path);
    expect(out.recipients[0]).toMatchObject({ recipient: 'ok@example.test', status: 'delivered', reply: { code: 250 } });
    expect(out.recipients[0]!.reply.message).toMatch(/delivered to ok@example\.test/);
    expect(out.recipients[1]).toMatchObject({ recipient: 'full@example.test', status: 'refused' });
    expect(out.recipients[1]!.reply.code).toBeGreaterThanOrEqual(400);
    expect(got).toEqual(['ok@example.test', 'full@example.test']);
  });

  it('names CLI flags in hints: AUTH only after STARTTLS on loopback, and an implicit-TLS port', async () => {
    const s = await server({ starttls: true, auth: [{ user: 'alice', pass: 'pw' }] });
    const r = await run(['send', '--server', `127.0.0.1:${s.port}`, '--user', 'alice', '--password-env', 'P', '--from', 'a@example.test', '--to', 'b@example.test', '--subject', 's', '--body', 'b'], { env: { P: 'pw' } });
    expect(r.code).toBe(77);
    // smtp-server advertises AUTH before TLS and answers 538 (RFC 4954: encryption required).
    expect(r.stderr).toMatch(/538/);
    expect(r.stderr).toMatch(/hint: add --tls required/);
    expect(r.stderr).not.toMatch(/tlsPolicy|SMTP_SSL/);
    const tlsOnly = await server({ implicitTls: true });
    const r2 = await run(['send', '--server', `127.0.0.1:${tlsOnly.port}`, '--timeout', '2', '--from', 'a@example.test', '--to', 'b@example.test', '--subject', 's', '--body', 'b']);
    expect(r2.stderr).toMatch(/hint: use --tls implicit/);
    expect(r2.stderr).not.toMatch(/tlsPolicy|SMTP_SSL/);
    expect(s.messages).toHaveLength(0);
  });

  it('refuses a bad port as a usage error (the library\'s splitHostPort)', async () => {
    const r = await run(['send', '--server', 'localhost:smtp', '--from', 'a@example.test', '--to', 'b@example.test', '--subject', 's', '--body', 'b']);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/--server/);
  });
});
