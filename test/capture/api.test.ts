// The capture server's HTTP API, driven by Node's fetch, with mail sent by
// our client (smtplib) and nodemailer to the real SMTP side.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import nodemailer from 'nodemailer';
import { SMTP } from 'smtplib';
import { expandTranscript, startCapture, type CaptureOptions, type CaptureServer } from '../../packages/capture/src/index.js';
import { Inbox, InboxError } from '../../packages/capture/src/testing.js';
import { LATE_MS } from '../support/timing.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function capture(opts: CaptureOptions = {}): Promise<CaptureServer & { url: string }> {
  const s = await startCapture({ port: 0, http: { port: 0 }, ...opts });
  cleanups.push(() => s.close());
  return Object.assign(s, { url: s.http!.url });
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'capture-api-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const mailer = (port: number) => nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });

async function send(port: number, from: string, to: string[], message: string): Promise<void> {
  const smtp = await SMTP.connect({ host: '127.0.0.1', port, localHostname: 'client.test' });
  await smtp.sendmail(from, to, message);
  await smtp.quit();
}

describe('HTTP API', () => {
  it('lists, searches, gets parsed, raw, source, and deletes one and all', async () => {
    const s = await capture();
    await mailer(s.smtp.port).sendMail({
      from: 'Alice <alice@example.test>',
      to: 'bob@example.test',
      subject: 'Invoice 42',
      text: 'Please find the invoice attached.',
      html: '<p>Please find the <b>invoice</b> attached.</p>',
      attachments: [{ filename: 'invoice.pdf', content: Buffer.from('%PDF-1.4 fake'), contentType: 'application/pdf' }],
    });
    await send(s.smtp.port, 'carol@example.test', ['dave@example.test'], 'From: carol@example.test\r\nTo: dave@example.test\r\nSubject: Lunch?\r\n\r\nNoodles at noon\r\n');

    const list = await (await fetch(`${s.url}/api/v1/messages`)).json();
    expect(list.total).toBe(2);
    expect(list.messages.map((m: { subject: string }) => m.subject)).toEqual(['Lunch?', 'Invoice 42']); // newest first
    const lunch = list.messages[0];
    expect(lunch).toMatchObject({ from: 'carol@example.test', to: ['dave@example.test'], mailFrom: { address: 'carol@example.test' }, tls: null, user: null, clientName: 'client.test' });

    for (const [q, expected] of [
      ['invoice', ['Invoice 42']],
      ['from:carol', ['Lunch?']],
      ['to:bob subject:invoice', ['Invoice 42']],
      ['noodles', ['Lunch?']],
      ['nothing-like-this', []],
    ] as const) {
      const r = await (await fetch(`${s.url}/api/v1/messages?q=${encodeURIComponent(q)}`)).json();
      expect(r.messages.map((m: { subject: string }) => m.subject), q).toEqual(expected);
    }

    const invoiceId = list.messages[1].id;
    const detail = await (await fetch(`${s.url}/api/v1/messages/${invoiceId}`)).json();
    expect(detail.text).toContain('Please find the invoice attached.');
    expect(detail.html).toContain('<b>invoice</b>');
    expect(detail.headers).toContainEqual(['Subject', 'Invoice 42']);
    expect(detail.attachments).toEqual([expect.objectContaining({ index: 0, filename: 'invoice.pdf', contentType: 'application/pdf', size: 13 })]);
    expect(detail.mime.contentType).toBe('multipart/mixed');
    expect(detail.mime.children.map((c: { contentType: string }) => c.contentType)).toEqual(['multipart/alternative', 'application/pdf']);

    const att = await fetch(`${s.url}${detail.attachments[0].url}`);
    expect(att.headers.get('content-disposition')).toMatch(/^attachment; filename="invoice.pdf"/);
    expect(Buffer.from(await att.arrayBuffer()).toString()).toBe('%PDF-1.4 fake');

    const raw = await (await fetch(`${s.url}/api/v1/messages/${lunch.id}/raw`)).text();
    expect(raw).toBe('From: carol@example.test\r\nTo: dave@example.test\r\nSubject: Lunch?\r\n\r\nNoodles at noon\r\n');
    const source = await (await fetch(`${s.url}/api/v1/messages/${lunch.id}/source`)).json();
    expect(source.rcptTo).toEqual([{ address: 'dave@example.test', args: {} }]);
    expect(source.transcript).toMatch(/^# class: SMTP\n# timing: \[[\d,]+\]\nS: 220 /);
    expect(source.transcript).toContain('C: EHLO client.test\n');
    expect(source.transcript).toContain('C: MAIL FROM:<carol@example.test>');
    expect(source.transcript).toMatch(/C: Noodles at noon\nC: \.\nS: 250 2\.0\.0 Message \w+ received/);

    expect((await fetch(`${s.url}/api/v1/messages/${lunch.id}`, { method: 'DELETE' })).status).toBe(200);
    expect((await fetch(`${s.url}/api/v1/messages/${lunch.id}`)).status).toBe(404);
    expect((await (await fetch(`${s.url}/api/v1/messages`)).json()).total).toBe(1);
    expect(await (await fetch(`${s.url}/api/v1/messages`, { method: 'DELETE' })).json()).toEqual({ deleted: 1 });
    expect((await (await fetch(`${s.url}/api/v1/messages`)).json()).total).toBe(0);
  });

  it('wait returns within 100 ms of delivery, matches to/subject, and answers 408 on timeout', async () => {
    const s = await capture();
    const started = Date.now();
    const waiting = fetch(`${s.url}/api/v1/messages/wait?to=${encodeURIComponent('erin@example.test')}&subject=reset&timeout=5000`);
    // Another message first: it must not satisfy the wait.
    await send(s.smtp.port, 'app@example.test', ['frank@example.test'], 'Subject: Password reset\r\n\r\nnot for erin\r\n');
    await new Promise((r) => setTimeout(r, 150));
    let deliveredAt = 0;
    s.store.once('message', () => (deliveredAt = Date.now()));
    await send(s.smtp.port, 'app@example.test', ['erin@example.test'], 'Subject: Password reset\r\n\r\nyour link\r\n');
    const res = await waiting;
    const answeredAt = Date.now();
    expect(res.status).toBe(200);
    const m = await res.json();
    expect(m.rcptTo[0].address).toBe('erin@example.test');
    expect(m.text).toContain('your link');
    expect(deliveredAt).toBeGreaterThan(started);
    expect(answeredAt - deliveredAt).toBeLessThan(LATE_MS); // not the 5 s timeout

    const t0 = Date.now();
    const timeout = await fetch(`${s.url}/api/v1/messages/wait?to=nobody@example.test&timeout=300`);
    expect(timeout.status).toBe(408);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect((await timeout.json()).error).toMatch(/no matching message within 300 ms/);
  });

  it('the Inbox test helper waits, reads and clears, and scripts failures at run time', async () => {
    const inbox = await Inbox.start();
    cleanups.push(() => inbox.close());
    const pending = inbox.waitFor({ to: 'grace@example.test', timeout: 5000 });
    await send(inbox.smtp.port, 'app@example.test', ['grace@example.test'], 'Subject: Welcome\r\n\r\nhello grace\r\n');
    const mail = await pending;
    expect(mail.subject).toBe('Welcome');
    expect((await inbox.raw(mail.id)).toString()).toBe('Subject: Welcome\r\n\r\nhello grace\r\n');
    expect(await inbox.transcript(mail.id)).toContain('C: RCPT TO:<grace@example.test>');
    await expect(inbox.waitFor({ to: 'nobody@example.test', timeout: 50 })).rejects.toMatchObject({ name: 'InboxError', status: 408 });

    await inbox.setFailures(['RCPT to=~@blocked\\.test -> 550 5.1.1 no such user']);
    const info = await mailer(inbox.smtp.port).sendMail({ envelope: { from: 'a@example.test', to: ['ok@example.test', 'x@blocked.test'] }, raw: 'Subject: s\r\n\r\nb\r\n' });
    expect(info.rejected).toEqual(['x@blocked.test']);
    expect((info.rejectedErrors as { response?: string }[])[0]!.response).toBe('550 5.1.1 no such user');
    await expect(inbox.setFailures(['RCPT -> 999 nope'])).rejects.toBeInstanceOf(InboxError);
    await inbox.clearFailures();
    const info2 = await mailer(inbox.smtp.port).sendMail({ envelope: { from: 'a@example.test', to: ['x@blocked.test'] }, raw: 'Subject: s\r\n\r\nb\r\n' });
    expect(info2.accepted).toEqual(['x@blocked.test']);
    expect(await inbox.clear()).toBe(3);
    expect(await inbox.list()).toEqual([]);
  });

  it('refuses foreign Host headers and cross-origin changes, and serves message HTML sandboxed', async () => {
    const s = await capture();
    await mailer(s.smtp.port).sendMail({ from: 'a@example.test', to: 'b@example.test', subject: 'h', html: '<p>hi</p><img src="http://remote.example/x.png"><script>alert(1)</script>' });
    const { messages } = await (await fetch(`${s.url}/api/v1/messages`)).json();
    const port = new URL(s.url).port;
    // fetch may not set Host, so this one request goes through node:http.
    const rebound = await new Promise<number>((resolve, reject) => {
      request({ host: '127.0.0.1', port: Number(port), path: '/api/v1/messages', headers: { host: `attacker.example:${port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    expect(rebound).toBe(421);
    const csrf = await fetch(`${s.url}/api/v1/messages`, { method: 'DELETE', headers: { origin: 'http://attacker.example' } });
    expect(csrf.status).toBe(403);
    expect((await (await fetch(`${s.url}/api/v1/messages`)).json()).total).toBe(1);
    const html = await fetch(`${s.url}/api/v1/messages/${messages[0].id}/html`);
    const csp = html.headers.get('content-security-policy')!;
    expect(csp).toMatch(/^sandbox allow-popups allow-popups-to-escape-sandbox;/);
    expect(csp).not.toMatch(/allow-scripts|allow-same-origin/);
    expect(csp).toMatch(/img-src data: http:\/\/127\.0\.0\.1:\d+\/api\/v1\/messages\/\w+\/attachments\/;/);
    const remote = await fetch(`${s.url}/api/v1/messages/${messages[0].id}/html?remote=1`);
    expect(remote.headers.get('content-security-policy')).toMatch(/img-src \* data:/);
    const page = await (await fetch(s.url)).text();
    expect(page).toContain('<title>smtplib capture</title>');
  });

  it('keeps at most --max-messages in memory, dropping the oldest', async () => {
    const s = await capture({ maxMessages: 3 });
    const dropped: string[] = [];
    s.store.on('drop', (id: string) => dropped.push(id));
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: s.smtp.port, localHostname: 'client.test' });
    for (let i = 1; i <= 5; i++) await smtp.sendmail('a@example.test', ['b@example.test'], `Subject: n${i}\r\n\r\nbody ${i}\r\n`);
    await smtp.quit();
    const list = await (await fetch(`${s.url}/api/v1/messages`)).json();
    expect(list.total).toBe(3);
    expect(list.messages.map((m: { subject: string }) => m.subject)).toEqual(['n5', 'n4', 'n3']);
    expect(dropped).toHaveLength(2);
  });

  it('persists to a Maildir and an .eml directory and reads them back, envelope and transcript included', async () => {
    const maildir = join(tempDir(), 'Maildir');
    const eml = tempDir();
    const first = await startCapture({ port: 0, http: false, maildir, emlDir: eml });
    await send(first.smtp.port, 'keep@example.test', ['me@example.test'], 'Subject: persisted\r\n\r\nstill here\r\n');
    const original = first.store.all()[0]!;
    await first.close();
    expect(readdirSync(join(maildir, 'new'))).toHaveLength(1);
    expect(readdirSync(eml).filter((f) => f.endsWith('.eml'))).toHaveLength(1);

    for (const opts of [{ maildir }, { emlDir: eml }]) {
      const again = await capture(opts);
      expect(again.reloaded).toBe(1);
      const list = await (await fetch(`${again.url}/api/v1/messages`)).json();
      expect(list.messages).toHaveLength(1);
      expect(list.messages[0]).toMatchObject({ id: original.id, subject: 'persisted', mailFrom: { address: 'keep@example.test' }, rcptTo: [{ address: 'me@example.test' }] });
      const source = await (await fetch(`${again.url}/api/v1/messages/${original.id}/source`)).json();
      expect(source.transcript).toBe(expandTranscript(original.transcript, original.raw));
      await again.close();
    }
    // Deleting through the API removes the files too.
    const third = await capture({ maildir });
    await fetch(`${third.url}/api/v1/messages/${original.id}`, { method: 'DELETE' });
    expect(readdirSync(join(maildir, 'new'))).toHaveLength(0);
  });
});
