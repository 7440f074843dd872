// Section E of docs/security: command / CRLF injection through caller input.
// Every test records all client bytes and asserts the rejected call wrote
// nothing (beyond the EHLO an earlier step needed), and that the error is a
// typed SMTPInvalidArgumentError / SMTPNotSupportedError.

import { afterEach, describe, expect, it } from 'vitest';
import { SMTP, SMTPInvalidArgumentError, SMTPNotSupportedError } from 'smtplib';
import { clientOptions, esmtp, hostileServer, rejection, shape, thrown, type HostileServer, type Peer } from './kit.js';

let server: HostileServer | undefined;
let client: SMTP | undefined;
afterEach(async () => {
  client?.close();
  client = undefined;
  await server?.close();
  server = undefined;
});

const MSG = 'Subject: t\r\n\r\nhello\r\n';
const INVALID = { name: 'SMTPInvalidArgumentError', code: 'ERR_SMTP_INVALID_ARGUMENT' };

/** A connected client that has done EHLO; returns the peer with its bytes consumed so far. */
async function ready(extensions?: string[]): Promise<{ smtp: SMTP; peer: Peer; before: number }> {
  server = await hostileServer(esmtp(extensions ? { extensions } : {}));
  client = await SMTP.connect(clientOptions(server));
  await client.ehlo();
  const peer = await server.peer();
  await peer.quietFor(20);
  return { smtp: client, peer, before: peer.all.length };
}

/** The client wrote nothing after `before` (and the connection is still usable). */
async function nothingWritten(smtp: SMTP, peer: Peer, before: number): Promise<void> {
  await peer.quietFor(30);
  expect(peer.all.subarray(before).toString('latin1')).toBe('');
  expect(smtp.isConnected).toBe(true);
  const noop = await smtp.noop();
  expect(noop.code).toBe(250);
  expect(peer.all.subarray(before).toString('latin1')).toBe('NOOP\r\n');
}

describe('E. command / CRLF injection through caller input', () => {
  it('E1 CRLF in MAIL FROM is refused before any write (sendmail and mail)', async () => {
    const { smtp, peer, before } = await ready();
    for (const from of ['a@x.com\r\nRCPT TO:<evil@x>', 'a@x.com\nRCPT TO:<evil@x>', 'a@x.com\rRSET']) {
      const e1 = await rejection(smtp.sendmail(from, ['b@y.test'], MSG));
      expect(e1).toBeInstanceOf(SMTPInvalidArgumentError);
      expect(shape(e1)).toMatchObject(INVALID);
      const e2 = await rejection(smtp.mail(from));
      expect(shape(e2)).toMatchObject(INVALID);
    }
    await nothingWritten(smtp, peer, before);
  });

  it('E2 CR or LF in any recipient (first, middle, last) refuses the whole envelope, no RCPT for valid ones', async () => {
    const { smtp, peer, before } = await ready();
    const bad = ['evil@x\r\nDATA', 'evil@x\nDATA', 'evil@x\rDATA'];
    for (const b of bad) {
      for (const to of [[b, 'ok1@y.test', 'ok2@y.test'], ['ok1@y.test', b, 'ok2@y.test'], ['ok1@y.test', 'ok2@y.test', b]]) {
        const error = await rejection(smtp.sendmail('a@x.test', to, MSG));
        expect(shape(error)).toMatchObject(INVALID);
      }
      expect(shape(await rejection(smtp.rcpt(b)))).toMatchObject(INVALID);
    }
    await nothingWritten(smtp, peer, before);
  });

  it('E4 NUL, ESC and DEL in an address or the EHLO name are refused', async () => {
    const { smtp, peer, before } = await ready();
    for (const c of ['\x00', '\x1b[31m', '\x7f', '\x85']) {
      expect(shape(await rejection(smtp.sendmail(`a${c}@x.test`, ['b@y.test'], MSG)))).toMatchObject(INVALID);
      expect(shape(await rejection(smtp.sendmail('a@x.test', [`b${c}@y.test`], MSG)))).toMatchObject(INVALID);
      expect(shape(await thrown(() => new SMTP({ localHostname: `host${c}.test` })))).toMatchObject(INVALID);
      expect(shape(await rejection(smtp.ehlo(`host${c}.test`)))).toMatchObject(INVALID);
      expect(shape(await rejection(smtp.helo(`host${c}.test`)))).toMatchObject(INVALID);
    }
    await nothingWritten(smtp, peer, before);
  });

  it('E5 EHLO/HELO/LHLO name injection is refused at construction, by the setter and per call (not cleaned)', async () => {
    const evil = 'hi\r\nMAIL FROM:<x>';
    expect(shape(await thrown(() => new SMTP({ localHostname: evil })))).toMatchObject(INVALID);
    expect(shape(await thrown(() => new SMTP({ localHostname: 'two words' })))).toMatchObject(INVALID);
    expect(shape(await thrown(() => new SMTP({ localHostname: '' })))).toMatchObject(INVALID);
    const { smtp, peer, before } = await ready();
    expect(shape(await thrown(() => { smtp.localHostname = evil; }))).toMatchObject(INVALID);
    expect(smtp.localHostname).toBe('client.test');
    expect(shape(await rejection(smtp.ehlo(evil)))).toMatchObject(INVALID);
    expect(shape(await rejection(smtp.helo('hi\nMAIL FROM:<x>')))).toMatchObject(INVALID);
    await nothingWritten(smtp, peer, before);
  });

  it('E6 ESMTP option injection and keyword/value grammar (mail and rcpt options)', async () => {
    const { smtp, peer, before } = await ready(['PIPELINING', 'DSN', 'X-OPT']);
    // (An option string is space-separated words, as smtplib joins them; each word is checked.)
    const badMail = ['X-OPT\nRCPT TO:<evil@x>', 'X-OPT\r\nRSET', 'X OPT=a=b', 'X=Y=Z', '=V', 'X-OPT=a\x00b', '-X', 'X_OPT'];
    for (const option of badMail) {
      expect(shape(await rejection(smtp.sendmail('a@x.test', ['b@y.test'], MSG, [option]))), option).toMatchObject(INVALID);
      expect(shape(await rejection(smtp.mail('a@x.test', [option]))), option).toMatchObject(INVALID);
    }
    const badRcpt = ['NOTIFY=NEVER\r\nRCPT TO:<evil@x>', 'NOTIFY=NEVER\nDATA', 'X-OPT=a=b'];
    for (const option of badRcpt) {
      expect(shape(await rejection(smtp.sendmail('a@x.test', ['b@y.test'], MSG, [], [option]))), option).toMatchObject(INVALID);
      expect(shape(await rejection(smtp.rcpt('b@y.test', [option]))), option).toMatchObject(INVALID);
    }
    // Typed `extra` parameters are checked the same way.
    expect(shape(await rejection(smtp.mail('a@x.test', { extra: { 'X-OPT': 'v\r\nRSET' } })))).toMatchObject(INVALID);
    expect(shape(await rejection(smtp.mail('a@x.test', { extra: { 'X OPT': true } })))).toMatchObject(INVALID);
    await nothingWritten(smtp, peer, before);
  });

  it('E8 DSN: ENVID and ORCPT are xtext-encoded; RET and NOTIFY outside their sets and CRLF are refused', async () => {
    const { smtp, peer, before } = await ready(['PIPELINING', 'DSN']);
    const reply = await smtp.mail('a@x.test', { envid: 'id with space+plus=eq/é', ret: 'HDRS' });
    expect(reply.code).toBe(250);
    const r2 = await smtp.rcpt('b@y.test', { notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;x y+z=w@é.test' });
    expect(r2.code).toBe(250);
    await peer.quietFor(20);
    expect(peer.all.subarray(before).toString('latin1')).toBe(
      'MAIL FROM:<a@x.test> RET=HDRS ENVID=id+20with+20space+2Bplus+3Deq/+C3+A9\r\n' +
        'RCPT TO:<b@y.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+20y+2Bz+3Dw@+C3+A9.test\r\n',
    );
    await smtp.rset();
    const mark = peer.all.length;
    const bad: Array<() => Promise<unknown>> = [
      () => smtp.mail('a@x.test', { envid: 'x\r\nRSET' }),
      () => smtp.mail('a@x.test', { ret: 'ALL' as 'FULL' }),
      () => smtp.mail('a@x.test', { ret: 'FULL\r\n' as 'FULL' }),
      () => smtp.rcpt('b@y.test', { notify: 'ALWAYS' as 'NEVER' }),
      () => smtp.rcpt('b@y.test', { notify: ['NEVER', 'SUCCESS'] }),
      () => smtp.rcpt('b@y.test', { notify: [] }),
      () => smtp.rcpt('b@y.test', { orcpt: 'rfc822;x\r\nDATA' }),
      () => smtp.rcpt('b@y.test', { orcpt: 'rfc 822;x@y' }),
      () => smtp.sendmail('a@x.test', ['b@y.test'], MSG, ['RET=ALL']),
      () => smtp.sendmail('a@x.test', ['b@y.test'], MSG, [], ['NOTIFY=SOMETIMES']),
    ];
    for (const call of bad) expect(shape(await rejection(call))).toMatchObject(INVALID);
    await nothingWritten(smtp, peer, mark);
  });

  it('E9 angle brackets and parameter smuggling in addresses are refused', async () => {
    const { smtp, peer, before } = await ready(['PIPELINING', 'DSN']);
    const evil = [
      '"foo@psres.net> ORCPT=admin@admin.com"@test.com',
      'a@b.com> NOTIFY=NEVER',
      'a@b.com NOTIFY=NEVER',
      'a<b@c.test',
    ];
    for (const address of evil) {
      expect(shape(await rejection(smtp.sendmail('a@x.test', [address], MSG))), address).toMatchObject(INVALID);
      expect(shape(await rejection(smtp.sendmail(address, ['b@y.test'], MSG))), address).toMatchObject(INVALID);
    }
    await nothingWritten(smtp, peer, before);
    // Text after a complete "<...>" is dropped, as smtplib's quoteaddr does:
    // the path is written alone and nothing the caller put after ">" reaches the wire.
    const mark = peer.all.length;
    await smtp.mail('Fred <fred@x.test>');
    await smtp.rcpt('<a@b.com> NOTIFY=NEVER');
    await smtp.rcpt('<c@d.com>> SIZE=1');
    await peer.quietFor(20);
    expect(peer.all.subarray(mark).toString('latin1')).toBe('MAIL FROM:<fred@x.test>\r\nRCPT TO:<a@b.com>\r\nRCPT TO:<c@d.com>\r\n');
  });

  it('E11 non-ASCII envelope without SMTPUTF8: typed "not supported" before MAIL; with it, SMTPUTF8 is requested', async () => {
    const { smtp, peer, before } = await ready(['PIPELINING', '8BITMIME']);
    const e = await rejection(smtp.sendmail('用户@例子.广告', ['b@y.test'], MSG));
    expect(e).toBeInstanceOf(SMTPNotSupportedError);
    expect(shape(e)).toMatchObject({ name: 'SMTPNotSupportedError', code: 'ERR_SMTP_NOT_SUPPORTED', deliveryStatus: 'not-delivered' });
    expect(shape(await rejection(smtp.sendmail('a@x.test', ['用户@例子.广告'], MSG)))).toMatchObject({ name: 'SMTPNotSupportedError' });
    expect(shape(await rejection(smtp.mail('用户@例子.广告')))).toMatchObject({ name: 'SMTPNotSupportedError' });
    await nothingWritten(smtp, peer, before);
    // An ASCII local part with a Unicode domain becomes A-labels, never raw UTF-8.
    const mark = peer.all.length;
    await smtp.sendmail('a@x.test', ['user@bücher.example'], MSG);
    await peer.quietFor(20);
    const sent = peer.all.subarray(mark);
    expect(sent.toString('latin1')).toContain('RCPT TO:<user@xn--bcher-kva.example>\r\n');
    expect([...sent].every((b) => b < 0x80)).toBe(true);

    // With SMTPUTF8 advertised the parameter is sent.
    client!.close();
    await server!.close();
    const r = await ready(['PIPELINING', '8BITMIME', 'SMTPUTF8']);
    await r.smtp.sendmail('用户@例子.广告', ['b@y.test'], MSG);
    await r.peer.quietFor(20);
    expect(r.peer.all.subarray(r.before).toString('utf8')).toMatch(/^MAIL FROM:<用户@例子\.广告> .*SMTPUTF8/);
  });

  it('E12 VRFY, EXPN, AUTH mechanism names, docmd and putcmd all share the lowest-layer check', async () => {
    const { smtp, peer, before } = await ready(['PIPELINING', 'AUTH PLAIN']);
    const evil = 'x@y\r\nRSET';
    expect(shape(await rejection(smtp.verify(evil)))).toMatchObject(INVALID);
    expect(shape(await rejection(smtp.vrfy('x@y\nRSET')))).toMatchObject(INVALID);
    expect(shape(await rejection(smtp.expn(evil)))).toMatchObject(INVALID);
    expect(shape(await rejection(smtp.docmd('NOOP\r\nRSET')))).toMatchObject(INVALID);
    expect(shape(await rejection(smtp.docmd('NOOP', 'x\nRSET')))).toMatchObject(INVALID);
    expect(shape(await rejection(smtp.putcmd('NOOP', 'x\rRSET')))).toMatchObject(INVALID);
    expect(shape(await rejection(smtp.help('x\r\nRSET')))).toMatchObject(INVALID);
    expect(shape(await rejection(smtp.auth('PLAIN\r\nRSET', () => 'x')))).toMatchObject(INVALID);
    expect(shape(await rejection(smtp.auth('PL AIN', () => 'x')))).toMatchObject(INVALID);
    // A mechanism name that is not advertised is refused as unsupported, not written.
    expect(shape(await rejection(smtp.login('u', 'p', { mechanism: 'PLAIN\r\nRSET' })))).toMatchObject({ name: 'SMTPNotSupportedError' });
    await nothingWritten(smtp, peer, before);
  });

  it('E13 an address of 2,000 octets and an over-long command line are typed errors (not truncated, not split)', async () => {
    const { smtp, peer, before } = await ready();
    const long = `${'a'.repeat(1990)}@x.test`;
    expect(shape(await rejection(smtp.sendmail(long, ['b@y.test'], MSG)))).toMatchObject(INVALID);
    expect(shape(await rejection(smtp.sendmail('a@x.test', [long], MSG)))).toMatchObject(INVALID);
    expect(shape(await rejection(smtp.mail(long)))).toMatchObject(INVALID);
    expect(shape(await rejection(smtp.docmd('NOOP', 'x'.repeat(3000))))).toMatchObject(INVALID);
    expect(shape(await rejection(smtp.verify(`${'a'.repeat(3000)}@x.test`)))).toMatchObject(INVALID);
    await nothingWritten(smtp, peer, before);
  });
});
