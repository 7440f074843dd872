// The scenarios: what the server advertises and answers, the public calls
// both clients make, and the documented differences (normalizations) each
// one needs. Anything else that differs fails the scenario.

import { r, type ServerEvent, type ServerScript } from './server.js';
import type { Step, StepResult } from './steps.js';

export interface Scenario {
  name: string;
  script: ServerScript;
  client?: 'SMTP' | 'LMTP';
  steps: Step[];
  normalizations?: string[];
  /** Absolute checks on top of the comparison (raw, un-normalized data). */
  check?: (run: { pyEvents: ServerEvent[]; ourEvents: ServerEvent[]; py: StepResult[]; ours: StepResult[] }) => void;
}

const FULL = ['PIPELINING', 'SIZE 10240000', '8BITMIME', 'SMTPUTF8', 'DSN', 'ENHANCEDSTATUSCODES', 'AUTH PLAIN LOGIN', 'HELP'];
const LOCKSTEP = ['SIZE 10240000', '8BITMIME', 'DSN', 'ENHANCEDSTATUSCODES'];

const MSG = 'From: alice@example.test\r\nTo: bob@example.test\r\nSubject: hello\r\n\r\nHello Bob.\r\n.a line that starts with a dot\r\n..two dots\r\nBye.\r\n';
const MSG_NO_EOL = 'From: alice@example.test\r\nTo: bob@example.test\r\nSubject: hello\r\n\r\nHello Bob.\r\n.a line that starts with a dot\r\n..two dots\r\nlast line without end of line';
const MSG_LF = 'From: alice@example.test\nTo: bob@example.test\nSubject: bare LF\n\nline one\n.dot\nline three\n';
const MSG_8BIT = 'From: alice@example.test\r\nTo: bob@example.test\r\nSubject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nCafé crème, naïve façade.\r\n';

const ok = (result: StepResult | undefined) => {
  if (!result || !('ok' in result)) throw new Error(`expected success, got ${JSON.stringify(result)}`);
  return result.ok;
};
const fail = (result: StepResult | undefined) => {
  if (!result || !('error' in result)) throw new Error(`expected an error, got ${JSON.stringify(result)}`);
  return result;
};
const expectTrue = (cond: boolean, what: string) => {
  if (!cond) throw new Error(`check failed: ${what}`);
};
const cmds = (events: ServerEvent[]) => events.filter((e) => e.kind === 'cmd').map((e) => e.text.toUpperCase());

export const SCENARIOS: Scenario[] = [
  {
    name: 'connect() greeting, ehlo(), esmtpFeatures/doesEsmtp/ehloResp/heloResp, hasExtn(), quit()',
    script: { extensions: [...FULL, 'AUTH=LOGIN', 'X-EXPERIMENT  spaced  value'] },
    steps: [
      { op: 'connect' },
      { op: 'state' },
      { op: 'ehlo' },
      { op: 'state' },
      { op: 'hasExtn', name: 'size' },
      { op: 'hasExtn', name: 'SMTPUTF8' },
      { op: 'hasExtn', name: 'auth' },
      { op: 'hasExtn', name: 'starttls' },
      { op: 'quit' },
    ],
    normalizations: ['auth-feature-leading-space'],
    check: ({ ours }) => {
      expectTrue((ok(ours[0]) as { code: number }).code === 220, 'greeting is 220');
      expectTrue(ok(ours[4]) === true && ok(ours[7]) === false, 'hasExtn true for size, false for starttls');
    },
  },
  {
    name: 'helo() with the default and an explicit name; heloResp; noop()',
    script: { extensions: FULL },
    steps: [{ op: 'open' }, { op: 'helo' }, { op: 'state' }, { op: 'helo', name: 'other.test' }, { op: 'state' }, { op: 'noop' }, { op: 'quit' }],
  },
  {
    name: 'ehlo() refused: ehloOrHeloIfNeeded() falls back to HELO; sendmail() without ESMTP parameters',
    script: { extensions: FULL, ehloReply: r(502, '5.5.1 EHLO not implemented') },
    steps: [
      { op: 'open' },
      { op: 'ehloOrHeloIfNeeded' },
      { op: 'state' },
      { op: 'hasExtn', name: 'size' },
      { op: 'sendmail', from: 'alice@example.test', to: ['bob@example.test'], msg: MSG },
      { op: 'quit' },
    ],
    check: ({ ourEvents }) => expectTrue(cmds(ourEvents).some((c) => c.startsWith('HELO ')), 'HELO was used'),
  },
  {
    name: 'EHLO and HELO both refused: SMTPHeloError from ehloOrHeloIfNeeded() and sendmail()',
    script: { ehloReply: r(502, '5.5.1 EHLO not implemented'), heloReply: r(550, '5.7.1 go away') },
    steps: [
      { op: 'open' },
      { op: 'ehloOrHeloIfNeeded' },
      { op: 'sendmail', from: 'alice@example.test', to: 'bob@example.test', msg: MSG },
      { op: 'quit' },
    ],
    check: ({ ours }) => expectTrue(fail(ours[1]).error === 'SMTPHeloError' && fail(ours[1]).code === 550, 'SMTPHeloError 550'),
  },
  {
    name: 'sendmail() with PIPELINING and SIZE: dot-stuffing, missing final CRLF, two recipients',
    script: { extensions: FULL },
    steps: [{ op: 'open' }, { op: 'sendmail', from: 'alice@example.test', to: ['bob@example.test', 'carol@example.test'], msg: MSG_NO_EOL }, { op: 'quit' }],
    normalizations: ['size-counts-added-crlf'],
    check: ({ ourEvents, pyEvents }) => {
      const mail = cmds(ourEvents).find((c) => c.startsWith('MAIL'));
      expectTrue(/SIZE=\d+/.test(mail ?? ''), 'SIZE= sent when SIZE is advertised');
      // The server answered each of several commands that arrived in one read.
      const group = (events: ServerEvent[]) =>
        new Set(events.filter((e) => e.kind === 'cmd' && /^(mail|rcpt|data)\b/i.test(e.text)).map((e) => e.segment)).size;
      expectTrue(group(ourEvents) === 1, 'our MAIL, RCPT, RCPT, DATA arrived in one segment (pipelined)');
      expectTrue(group(pyEvents) === 4, 'smtplib sent MAIL, RCPT, RCPT, DATA in four segments');
    },
  },
  {
    name: 'sendmail() lock step (no PIPELINING), bare LF line ends in a str message',
    script: { extensions: LOCKSTEP },
    steps: [{ op: 'open' }, { op: 'sendmail', from: 'alice@example.test', to: ['bob@example.test'], msg: MSG_LF }, { op: 'quit' }],
  },
  {
    name: 'sendmail() without SIZE advertised: no SIZE= parameter',
    script: { extensions: ['PIPELINING', '8BITMIME'] },
    steps: [{ op: 'open' }, { op: 'sendmail', from: 'alice@example.test', to: ['bob@example.test'], msg: MSG }, { op: 'quit' }],
    check: ({ ourEvents }) => expectTrue(!cmds(ourEvents).some((c) => c.includes('SIZE=')), 'no SIZE='),
  },
  {
    name: 'sendmail() one recipient refused (550): refused map, message still sent',
    script: { extensions: FULL, rcpt: { 'carol@example.test': r(550, '5.1.1 <carol@example.test>: Recipient address rejected') } },
    steps: [
      { op: 'open' },
      { op: 'sendmail', from: 'alice@example.test', to: ['bob@example.test', 'carol@example.test', 'dave@example.test'], msg: MSG },
      { op: 'quit' },
    ],
    check: ({ ours }) => expectTrue(Object.keys(ok(ours[1]) as object).join() === 'carol@example.test', 'carol refused'),
  },
  {
    name: 'sendmail() every recipient refused, with PIPELINING: SMTPRecipientsRefused, RSET, connection usable',
    script: { extensions: FULL, rcpt: { 'bob@example.test': r(550, '5.1.1 no bob'), 'carol@example.test': r(450, '4.2.0 carol busy') } },
    steps: [
      { op: 'open' },
      { op: 'sendmail', from: 'alice@example.test', to: ['bob@example.test', 'carol@example.test'], msg: MSG },
      { op: 'noop' },
      { op: 'quit' },
    ],
    normalizations: ['pipelined-data-after-refusals'],
    check: ({ ours }) => expectTrue(Object.keys(fail(ours[1]).recipients ?? {}).length === 2, 'both recipients in the error'),
  },
  {
    name: 'sendmail() every recipient refused, lock step: identical sequence',
    script: { extensions: LOCKSTEP, rcpt: { 'bob@example.test': r(550, '5.1.1 no bob') } },
    steps: [{ op: 'open' }, { op: 'sendmail', from: 'alice@example.test', to: 'bob@example.test', msg: MSG }, { op: 'noop' }, { op: 'quit' }],
  },
  {
    name: 'sendmail() sender refused (553) with PIPELINING: SMTPSenderRefused, RSET',
    script: { extensions: FULL, mail: { 'spam@example.test': r(553, '5.7.1 sender rejected') } },
    steps: [{ op: 'open' }, { op: 'sendmail', from: 'spam@example.test', to: ['bob@example.test'], msg: MSG }, { op: 'noop' }, { op: 'quit' }],
    normalizations: ['pipelined-rcpt-after-refused-mail'],
  },
  {
    name: 'sendmail() sender refused, lock step: identical sequence',
    script: { extensions: LOCKSTEP, mail: { 'spam@example.test': r(553, '5.7.1 sender rejected') } },
    steps: [{ op: 'open' }, { op: 'sendmail', from: 'spam@example.test', to: ['bob@example.test'], msg: MSG }, { op: 'quit' }],
  },
  {
    name: 'sendmail() DATA command refused (451): SMTPDataError',
    script: { extensions: FULL, data: r(451, '4.3.0 try again later') },
    steps: [{ op: 'open' }, { op: 'sendmail', from: 'alice@example.test', to: ['bob@example.test'], msg: MSG }, { op: 'noop' }, { op: 'quit' }],
    normalizations: ['rset-placement'],
  },
  {
    name: 'sendmail() end of data refused (554): SMTPDataError',
    script: { extensions: LOCKSTEP, end: r(554, '5.6.0 message content rejected') },
    steps: [{ op: 'open' }, { op: 'sendmail', from: 'alice@example.test', to: ['bob@example.test'], msg: MSG }, { op: 'noop' }, { op: 'quit' }],
    normalizations: ['rset-placement'],
  },
  {
    name: 'sendmail() 421 at RCPT with PIPELINING: connection closed, later quit() raises SMTPServerDisconnected',
    script: { extensions: FULL, closeAt: { verb: 'RCPT', reply: r(421, '4.3.2 shutting down') } },
    steps: [{ op: 'open' }, { op: 'sendmail', from: 'alice@example.test', to: ['bob@example.test', 'carol@example.test'], msg: MSG }, { op: 'quit' }],
    normalizations: ['closing-421'],
  },
  {
    name: 'sendmail() 421 at MAIL, lock step',
    script: { extensions: LOCKSTEP, closeAt: { verb: 'MAIL', reply: r(421, '4.3.2 too busy') } },
    steps: [{ op: 'open' }, { op: 'sendmail', from: 'alice@example.test', to: ['bob@example.test'], msg: MSG }, { op: 'noop' }],
    normalizations: ['closing-421'],
  },
  {
    name: 'sendmail() 8-bit body with BODY=8BITMIME passed by the caller',
    script: { extensions: FULL },
    steps: [
      { op: 'open' },
      { op: 'sendmail', from: 'alice@example.test', to: ['bob@example.test'], msg: MSG_8BIT, binary: true, mailOptions: ['BODY=8BITMIME'] },
      { op: 'quit' },
    ],
  },
  {
    name: 'sendmail() 8-bit body without options: we add BODY=8BITMIME',
    script: { extensions: FULL },
    steps: [{ op: 'open' }, { op: 'sendmail', from: 'alice@example.test', to: ['bob@example.test'], msg: MSG_8BIT, binary: true }, { op: 'quit' }],
    normalizations: ['auto-8bitmime'],
    check: ({ ourEvents }) => expectTrue(cmds(ourEvents).some((c) => c.startsWith('MAIL') && c.includes('BODY=8BITMIME')), 'BODY=8BITMIME added'),
  },
  {
    name: 'sendmail() SMTPUTF8 addresses with mail options SMTPUTF8 and BODY=8BITMIME',
    script: { extensions: FULL },
    steps: [
      { op: 'open' },
      { op: 'sendmail', from: 'jörg@example.test', to: ['zoë@bücher.example'], msg: MSG_8BIT, binary: true, mailOptions: ['SMTPUTF8', 'BODY=8BITMIME'] },
      { op: 'quit' },
    ],
    normalizations: ['esmtp-param-order'],
  },
  {
    name: 'sendmail() DSN mail and rcpt options',
    script: { extensions: FULL },
    steps: [
      { op: 'open' },
      {
        op: 'sendmail',
        from: 'alice@example.test',
        to: ['bob@example.test'],
        msg: MSG,
        mailOptions: ['RET=HDRS', 'ENVID=QQ314159'],
        rcptOptions: ['NOTIFY=SUCCESS,FAILURE', 'ORCPT=rfc822;bob@example.test'],
      },
      { op: 'quit' },
    ],
  },
  {
    name: 'sendMessage() takes the envelope from From/To/Cc/Bcc and removes Bcc',
    script: { extensions: FULL },
    steps: [
      { op: 'open' },
      {
        op: 'sendMessage',
        headers: [
          ['From', 'Alice <alice@example.test>'],
          ['To', 'Bob <bob@example.test>, carol@example.test'],
          ['Cc', 'dave@example.test'],
          ['Bcc', 'eve@example.test'],
          ['Subject', 'send_message'],
        ],
        body: 'Hi all.\n.leading dot\n',
      },
      { op: 'quit' },
    ],
    check: ({ ourEvents }) => {
      const message = ourEvents.find((e) => e.kind === 'message')?.text ?? '';
      expectTrue(!/^Bcc:/im.test(message), 'Bcc removed from the data');
      expectTrue(cmds(ourEvents).includes('RCPT TO:<EVE@EXAMPLE.TEST>'), 'Bcc recipient in the envelope');
    },
  },
  {
    name: 'sendMessage() with a Resent- block uses Resent-Sender/From and Resent-To/Cc/Bcc',
    script: { extensions: FULL },
    steps: [
      { op: 'open' },
      {
        op: 'sendMessage',
        headers: [
          ['Resent-Date', 'Mon, 01 Jan 2024 10:00:00 +0000'],
          ['Resent-From', 'forwarder@example.test'],
          ['Resent-To', 'new@example.test'],
          ['From', 'alice@example.test'],
          ['To', 'bob@example.test'],
          ['Subject', 'resent'],
        ],
        body: 'Forwarded.\n',
      },
      { op: 'quit' },
    ],
  },
  {
    name: 'sendMessage() with explicit from/to overriding the headers',
    script: { extensions: FULL },
    steps: [
      { op: 'open' },
      {
        op: 'sendMessage',
        headers: [
          ['From', 'alice@example.test'],
          ['To', 'bob@example.test'],
          ['Subject', 'explicit envelope'],
        ],
        body: 'Envelope differs from headers.\n',
        from: 'bounces@example.test',
        to: ['archive@example.test', 'bob@example.test'],
      },
      { op: 'quit' },
    ],
  },
  {
    name: 'sendMessage() international address: SMTPUTF8 and BODY=8BITMIME',
    script: { extensions: FULL },
    steps: [
      { op: 'open' },
      {
        op: 'sendMessage',
        headers: [
          ['From', 'alice@example.test'],
          ['To', 'Zoë <zoë@example.test>'],
          ['Subject', 'Grüße'],
        ],
        body: 'Schöne Grüße.\n',
      },
      { op: 'quit' },
    ],
    normalizations: ['esmtp-param-order'],
  },
  {
    name: 'sendMessage() international address without SMTPUTF8: SMTPNotSupportedError',
    script: { extensions: ['PIPELINING', 'SIZE 10240000', '8BITMIME'] },
    steps: [
      { op: 'open' },
      { op: 'sendMessage', headers: [['From', 'alice@example.test'], ['To', 'zoë@example.test'], ['Subject', 'x']], body: 'x\n' },
      { op: 'quit' },
    ],
  },
  {
    name: 'login() with AUTH PLAIN LOGIN: both use PLAIN with an initial response',
    script: { extensions: FULL },
    steps: [{ op: 'open' }, { op: 'login', user: 'bob', password: 'secret' }, { op: 'sendmail', from: 'bob@example.test', to: 'carol@example.test', msg: MSG }, { op: 'quit' }],
  },
  {
    name: 'login() with CRAM-MD5 offered first: smtplib uses CRAM-MD5, we use PLAIN',
    script: { extensions: ['AUTH CRAM-MD5 PLAIN LOGIN', 'SIZE 1000000'] },
    steps: [{ op: 'open' }, { op: 'login', user: 'bob', password: 'secret' }, { op: 'quit' }],
    normalizations: ['login-mechanism-choice'],
  },
  {
    name: 'login() when CRAM-MD5 fails: smtplib falls back to PLAIN, we go straight to PLAIN',
    script: { extensions: ['AUTH CRAM-MD5 PLAIN'], failMechanisms: ['CRAM-MD5'] },
    steps: [{ op: 'open' }, { op: 'login', user: 'bob', password: 'secret' }, { op: 'noop' }, { op: 'quit' }],
    normalizations: ['login-one-attempt', 'login-mechanism-choice'],
  },
  {
    name: 'login() wrong password: SMTPAuthenticationError 535',
    script: { extensions: ['AUTH PLAIN LOGIN'] },
    steps: [{ op: 'open' }, { op: 'login', user: 'bob', password: 'wrong' }, { op: 'noop' }, { op: 'quit' }],
    normalizations: ['login-one-attempt', 'login-mechanism-choice'],
    check: ({ ours }) => expectTrue(fail(ours[1]).error === 'SMTPAuthenticationError' && fail(ours[1]).code === 535, '535'),
  },
  {
    name: 'login() with only AUTH LOGIN offered',
    script: { extensions: ['AUTH LOGIN'] },
    steps: [{ op: 'open' }, { op: 'login', user: 'bob', password: 'secret' }, { op: 'quit' }],
    normalizations: ['login-initial-response'],
  },
  {
    name: 'login() without the AUTH extension: SMTPNotSupportedError, nothing sent',
    script: { extensions: ['SIZE 1000'] },
    steps: [{ op: 'open' }, { op: 'login', user: 'bob', password: 'secret' }, { op: 'quit' }],
  },
  {
    name: 'auth("PLAIN", auth_plain-style callable)',
    script: { extensions: ['AUTH PLAIN'] },
    steps: [{ op: 'open' }, { op: 'ehlo' }, { op: 'auth', mechanism: 'PLAIN', object: 'plain' }, { op: 'quit' }],
  },
  {
    name: 'auth("LOGIN", auth_login-style callable) with initialResponseOk false',
    script: { extensions: ['AUTH LOGIN'] },
    steps: [{ op: 'open' }, { op: 'ehlo' }, { op: 'auth', mechanism: 'LOGIN', object: 'login', initialResponseOk: false }, { op: 'quit' }],
  },
  {
    name: 'auth("LOGIN", auth_login-style callable) with an initial response',
    script: { extensions: ['AUTH LOGIN'] },
    steps: [{ op: 'open' }, { op: 'ehlo' }, { op: 'auth', mechanism: 'LOGIN', object: 'login' }, { op: 'quit' }],
  },
  {
    name: 'auth("CRAM-MD5", auth_cram_md5-style callable returning None for the initial response)',
    script: { extensions: ['AUTH CRAM-MD5'] },
    steps: [{ op: 'open' }, { op: 'ehlo' }, { op: 'auth', mechanism: 'CRAM-MD5', object: 'cram-md5' }, { op: 'quit' }],
  },
  {
    name: 'auth() with a mechanism the server does not offer: 504 → SMTPAuthenticationError',
    script: { extensions: ['AUTH PLAIN'] },
    steps: [{ op: 'open' }, { op: 'auth', mechanism: 'CRAM-MD5', object: 'cram-md5' }, { op: 'noop' }, { op: 'quit' }],
    normalizations: ['implicit-ehlo'],
  },
  {
    name: 'starttls() with a throw-away CA, features forgotten, EHLO again, login() and sendmail() over TLS',
    script: { extensions: ['PIPELINING', 'SIZE 10240000', 'STARTTLS'], tlsExtensions: ['PIPELINING', 'SIZE 10240000', '8BITMIME', 'AUTH PLAIN LOGIN'] },
    steps: [
      { op: 'open' },
      { op: 'ehlo' },
      { op: 'hasExtn', name: 'auth' },
      { op: 'starttls' },
      { op: 'state' },
      { op: 'ehlo' },
      { op: 'hasExtn', name: 'auth' },
      { op: 'login', user: 'bob', password: 'secret' },
      { op: 'sendmail', from: 'bob@example.test', to: ['carol@example.test'], msg: MSG },
      { op: 'quit' },
    ],
    check: ({ ourEvents, pyEvents }) => {
      for (const events of [ourEvents, pyEvents]) {
        const tlsAt = events.findIndex((e) => e.kind === 'tls');
        const authAt = events.findIndex((e) => e.kind === 'cmd' && /^auth /i.test(e.text));
        expectTrue(tlsAt !== -1 && authAt > tlsAt, 'AUTH only after the TLS handshake');
      }
    },
  },
  {
    name: 'starttls() implicit EHLO first, refused with 454: SMTPResponseException',
    script: { extensions: ['STARTTLS', 'SIZE 1000'], starttlsReply: r(454, '4.7.0 TLS not available due to temporary reason') },
    steps: [{ op: 'open' }, { op: 'starttls' }, { op: 'noop' }, { op: 'quit' }],
  },
  {
    name: 'starttls() not offered: SMTPNotSupportedError',
    script: { extensions: ['SIZE 1000'] },
    steps: [{ op: 'open' }, { op: 'starttls' }, { op: 'quit' }],
  },
  {
    name: 'verify()/vrfy() (address only), expn() multi-line and refused, help() with and without argument',
    script: {
      extensions: FULL,
      vrfy: { 'bob@example.test': r(250, 'Bob Example <bob@example.test>') },
      expn: { staff: r(250, 'Alice <alice@example.test>', 'Bob <bob@example.test>', 'Carol <carol@example.test>') },
      help: { MAIL: r(214, '2.0.0 MAIL FROM:<sender> [ <parameters> ]', 'End of HELP info') },
    },
    steps: [
      { op: 'open' },
      { op: 'verify', address: 'bob@example.test' },
      { op: 'vrfy', address: 'Bob Example <bob@example.test>' },
      { op: 'verify', address: 'nobody@example.test' },
      { op: 'expn', address: 'staff' },
      { op: 'expn', address: 'nolist' },
      { op: 'help' },
      { op: 'help', args: 'MAIL' },
      { op: 'quit' },
    ],
    normalizations: ['implicit-ehlo'],
  },
  {
    name: 'rset(), noop() and docmd() (known and unknown commands) before EHLO',
    script: { extensions: FULL },
    steps: [
      { op: 'open' },
      { op: 'noop' },
      { op: 'rset' },
      { op: 'docmd', cmd: 'XFOO', args: 'bar baz' },
      { op: 'docmd', cmd: 'NOOP' },
      { op: 'ehlo', name: 'named.client.test' },
      { op: 'docmd', cmd: 'RSET' },
      { op: 'quit' },
    ],
  },
  {
    name: 'mail()/rcpt()/data() by hand: options, one refused RCPT, dot-stuffing, rset()',
    script: { extensions: FULL, rcpt: { 'carol@example.test': r(550, '5.1.1 no carol') } },
    steps: [
      { op: 'open' },
      { op: 'ehlo' },
      { op: 'mail', from: 'alice@example.test', options: ['BODY=8BITMIME'] },
      { op: 'rcpt', to: 'bob@example.test', options: ['NOTIFY=NEVER'] },
      { op: 'rcpt', to: 'carol@example.test' },
      { op: 'data', msg: MSG },
      { op: 'mail', from: 'alice@example.test' },
      { op: 'rset' },
      { op: 'quit' },
    ],
  },
  {
    name: 'data() refused at DATA (no valid recipients): SMTPDataError 554',
    script: { extensions: LOCKSTEP, rcpt: { 'bob@example.test': r(550, '5.1.1 no bob') } },
    steps: [
      { op: 'open' },
      { op: 'ehlo' },
      { op: 'mail', from: 'alice@example.test' },
      { op: 'rcpt', to: 'bob@example.test' },
      { op: 'data', msg: MSG },
      { op: 'rset' },
      { op: 'quit' },
    ],
  },
  {
    name: 'putcmd() + getreply(), send() of a raw line + getreply()',
    script: { extensions: FULL },
    steps: [
      { op: 'open' },
      { op: 'putcmd', cmd: 'NOOP' },
      { op: 'getreply' },
      { op: 'send', data: 'VRFY bob@example.test\r\n' },
      { op: 'getreply' },
      { op: 'putcmd', cmd: 'EHLO', args: 'raw.client.test' },
      { op: 'getreply' },
      { op: 'quit' },
    ],
  },
  {
    name: 'close(), a call on the closed object (SMTPServerDisconnected), connect() again',
    script: { extensions: FULL },
    steps: [{ op: 'open' }, { op: 'noop' }, { op: 'close' }, { op: 'noop' }, { op: 'connect' }, { op: 'ehlo' }, { op: 'noop' }, { op: 'quit' }],
  },
  {
    name: 'greeting 554: SMTPConnectError from the constructor form',
    script: { greeting: r(554, '5.3.2 no service for you') },
    steps: [{ op: 'open' }],
    normalizations: ['quit-after-554-greeting'],
  },
  {
    name: 'LMTP over a Unix socket: LHLO, one recipient',
    client: 'LMTP',
    script: { lmtp: true, extensions: ['PIPELINING', 'ENHANCEDSTATUSCODES', '8BITMIME'] },
    steps: [{ op: 'open' }, { op: 'ehlo' }, { op: 'sendmail', from: 'alice@example.test', to: ['bob@example.test'], msg: MSG }, { op: 'quit' }],
    check: ({ ourEvents }) => expectTrue(cmds(ourEvents).some((c) => c.startsWith('LHLO ')), 'LHLO'),
  },
  {
    name: 'LMTP over a Unix socket: one reply per recipient after the data, second recipient fails',
    client: 'LMTP',
    script: { lmtp: true, extensions: ['PIPELINING', 'ENHANCEDSTATUSCODES'], lmtpEnd: { 'carol@example.test': r(452, '4.2.2 carol over quota') } },
    steps: [{ op: 'open' }, { op: 'sendmail', from: 'alice@example.test', to: ['bob@example.test', 'carol@example.test'], msg: MSG }, { op: 'quit' }],
    normalizations: ['lmtp-one-reply-per-recipient'],
    check: ({ ours, py }) => {
      const refused = ok(ours[1]) as Record<string, { code: number }>;
      expectTrue(refused['carol@example.test']?.code === 452, 'our refused map reports carol (452 after the data)');
      expectTrue((ok(ours[2]) as { code: number }).code === 221, 'our quit() reads QUIT\'s own 221');
      expectTrue((ok(py[2]) as { code: number }).code === 452, 'smtplib quit() reads the stale 452 (gh-76984)');
    },
  },
  {
    name: 'sendmail() address forms: display names, angle brackets, comments, null sender',
    script: { extensions: FULL },
    steps: [
      { op: 'open' },
      { op: 'sendmail', from: 'Alice Example <alice@example.test>', to: ['<bob@example.test>', 'carol@example.test (Carol)', '"Dave D." <dave@example.test>'], msg: MSG },
      { op: 'sendmail', from: '', to: 'bob@example.test', msg: MSG },
      { op: 'quit' },
    ],
    check: ({ ourEvents }) => expectTrue(cmds(ourEvents).includes('MAIL FROM:<> SIZE=128'), 'null reverse-path'),
  },
  {
    name: 'two sendmail() calls on one connection (second pipelined after the first)',
    script: { extensions: FULL, rcpt: { 'nobody@example.test': r(550, '5.1.1 no such user') } },
    steps: [
      { op: 'open' },
      { op: 'sendmail', from: 'alice@example.test', to: ['bob@example.test'], msg: MSG },
      { op: 'sendmail', from: 'alice@example.test', to: ['nobody@example.test', 'carol@example.test'], msg: MSG_LF },
      { op: 'quit' },
    ],
  },
  {
    name: 'rcpt() before mail() and data() before rcpt(): the server\'s 503 replies are returned / raised',
    script: { extensions: LOCKSTEP },
    steps: [
      { op: 'open' },
      { op: 'ehlo' },
      { op: 'rcpt', to: 'bob@example.test' },
      { op: 'mail', from: 'alice@example.test' },
      { op: 'data', msg: MSG },
      { op: 'rset' },
      { op: 'quit' },
    ],
  },
  {
    name: 'docmd()/putcmd() with CR LF in the argument: refused before anything is written',
    script: { extensions: FULL },
    steps: [
      { op: 'open' },
      { op: 'docmd', cmd: 'NOOP', args: 'x\r\nRSET' },
      { op: 'putcmd', cmd: 'VRFY', args: 'bob\nQUIT' },
      { op: 'noop' },
      { op: 'quit' },
    ],
  },
  {
    name: 'the server drops the connection at NOOP without a reply: SMTPServerDisconnected, then quit() too',
    script: { extensions: FULL, closeAt: { verb: 'NOOP' } },
    steps: [{ op: 'open' }, { op: 'ehlo' }, { op: 'noop' }, { op: 'quit' }],
  },
  {
    name: 'multi-line greeting and replies with surrounding blanks: reply text as smtplib joins it',
    script: {
      greeting: r(220, 'mx.test ESMTP', 'second greeting line'),
      extensions: FULL,
      help: { '': r(214, 'trailing blanks   ', '\tleading tab', '  two leading spaces') },
      vrfy: { 'bob@example.test': r(250, '  Bob  <bob@example.test>  ') },
    },
    steps: [{ op: 'connect' }, { op: 'ehlo' }, { op: 'help' }, { op: 'verify', address: 'bob@example.test' }, { op: 'quit' }],
    check: ({ py, ours }) => {
      expectTrue((ok(ours[0]) as { message: string }).message === 'mx.test ESMTP\nsecond greeting line', 'multi-line greeting joined with \\n');
      expectTrue(ok(py[2]) === 'trailing blanks\nleading tab\ntwo leading spaces', 'smtplib strips each line');
      expectTrue(ok(ours[2]) === 'trailing blanks\nleading tab\ntwo leading spaces', 'so do we');
    },
  },
  {
    name: 'starttls() then login() and sendmail() with no explicit ehlo(): EHLO again over TLS',
    script: { extensions: ['STARTTLS', 'SIZE 10240000'], tlsExtensions: ['SIZE 10240000', 'AUTH PLAIN'] },
    steps: [
      { op: 'open' },
      { op: 'starttls' },
      { op: 'login', user: 'bob', password: 'secret' },
      { op: 'sendmail', from: 'bob@example.test', to: 'carol@example.test', msg: MSG },
      { op: 'quit' },
    ],
  },
  {
    name: 'quit() forgets the EHLO state (esmtpFeatures, doesEsmtp, ehloResp, heloResp)',
    script: { extensions: FULL },
    steps: [{ op: 'open' }, { op: 'ehlo' }, { op: 'helo' }, { op: 'state' }, { op: 'quit' }, { op: 'state' }],
    normalizations: ['auth-feature-leading-space'],
  },
  {
    name: 'sendmail() with RCPT answered 251 (will forward): accepted',
    script: { extensions: FULL, rcpt: { 'old@example.test': r(251, '2.1.5 User not local; will forward to <new@example.test>') } },
    steps: [{ op: 'open' }, { op: 'sendmail', from: 'alice@example.test', to: ['old@example.test', 'bob@example.test'], msg: MSG }, { op: 'quit' }],
  },
  {
    name: 'a 421 reply to NOOP, then the server closes: noop() result, then quit()',
    script: { extensions: FULL, closeAt: { verb: 'NOOP', reply: r(421, '4.3.2 service shutting down') } },
    steps: [{ op: 'open' }, { op: 'ehlo' }, { op: 'noop' }, { op: 'quit' }],
  },
  {
    name: 'auth("PLAIN", custom callable) with initialResponseOk false: the response follows an empty 334',
    script: { extensions: ['AUTH PLAIN'] },
    steps: [
      { op: 'open' },
      { op: 'ehlo' },
      { op: 'auth', mechanism: 'PLAIN', object: { initial: 'never sent', responses: ['\u0000bob\u0000secret'] }, initialResponseOk: false },
      { op: 'quit' },
    ],
    check: ({ ourEvents }) => expectTrue(cmds(ourEvents).includes('AUTH PLAIN'), 'no initial response on the AUTH line'),
  },
];
