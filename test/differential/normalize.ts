// The documented differences between our client and CPython's smtplib, each
// one a named normalization. A scenario lists the ones it needs; anything
// else that differs fails the test. The two marked `always` are properties
// of the wire format that carry no meaning (RFC 5321 §2.4: verbs and
// parameter keywords are case-insensitive; segmentation is invisible because
// the server records lines, not reads).

import type { ServerEvent } from './server.js';
import type { Step, StepResult } from './steps.js';

export type Side = 'python' | 'ours';

export interface Normalization {
  name: string;
  /** Why the difference exists and why it is acceptable. */
  why: string;
  always?: boolean;
  events?(events: ServerEvent[], side: Side): ServerEvent[];
  results?(py: StepResult[], ours: StepResult[], steps: Step[]): void;
}

const code = (e: ServerEvent | undefined) => (e?.kind === 'reply' ? Number(e.text.slice(0, 3)) : NaN);
const verb = (e: ServerEvent | undefined) => (e?.kind === 'cmd' ? (e.text.split(' ')[0] ?? '').toUpperCase() : '');

/** Removes the command at i and the reply right after it. */
function dropCommand(events: ServerEvent[], i: number): void {
  events.splice(i, events[i + 1]?.kind === 'reply' ? 2 : 1);
}

/** Replaces every AUTH exchange (command, challenges, responses) by one outcome event. */
function collapseAuth(events: ServerEvent[], wildcard: boolean): ServerEvent[] {
  const out: ServerEvent[] = [];
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (verb(e) !== 'AUTH') {
      out.push(e);
      continue;
    }
    let j = i + 1;
    while (j < events.length && (events[j]!.kind === 'auth' || (events[j]!.kind === 'reply' && code(events[j]) === 334))) j++;
    let result: ServerEvent | undefined;
    if (events[j]?.kind === 'auth-result') result = events[j++];
    const text = result ? result.text : `${e.text.split(' ')[1] ?? '?'} refused`;
    out.push({ kind: 'auth-result', text: `exchange ${wildcard ? text.replace(/^\S+/, '*') : text}` });
    if (events[j]?.kind === 'reply') out.push(events[j++]!);
    i = j - 1;
  }
  return out;
}

export const NORMALIZATIONS: Record<string, Normalization> = {
  'verb-case': {
    name: 'verb-case',
    always: true,
    why: 'smtplib writes verbs in lower case ("mail FROM:", "rcpt TO:", "data", "ehlo"...); we write upper case. RFC 5321 §2.4: verbs are case-insensitive. Compared upper-cased.',
    events: (events) => events.map((e) => (e.kind === 'cmd' ? { ...e, text: e.text.replace(/^\S+/, (v) => v.toUpperCase()) } : e)),
  },
  'esmtp-keyword-case': {
    name: 'esmtp-keyword-case',
    always: true,
    why: 'smtplib writes "size=123"; we write "SIZE=123". RFC 5321 §4.1.2 / RFC 1869: ESMTP keywords are case-insensitive. MAIL/RCPT parameter keywords are compared upper-cased (values untouched).',
    events: (events) =>
      events.map((e) => {
        if (e.kind !== 'cmd' || !/^(MAIL|RCPT) /i.test(e.text)) return e;
        const close = e.text.indexOf('>');
        if (close === -1) return e;
        const params = e.text
          .slice(close + 1)
          .split(' ')
          .map((w) => w.replace(/^[^=]+/, (k) => k.toUpperCase()));
        return { ...e, text: e.text.slice(0, close + 1) + params.join(' ') };
      }),
  },
  segmentation: {
    name: 'segmentation',
    always: true,
    why: 'We pipeline (MAIL, every RCPT and DATA in one write when PIPELINING is offered); smtplib writes one command per round trip. The server answers line by line and records lines, so only the command sequence is compared, never the segments.',
  },
  'auto-8bitmime': {
    name: 'auto-8bitmime',
    why: 'We add BODY=8BITMIME by ourselves for a message with 8-bit bytes when the server offers 8BITMIME; smtplib sends BODY= only when the caller passes it. The parameter is removed from our MAIL lines.',
    events: (events, side) =>
      side === 'python' ? events : events.map((e) => (verb(e) === 'MAIL' ? { ...e, text: e.text.replace(/ BODY=8BITMIME\b/i, '') } : e)),
  },
  'esmtp-param-order': {
    name: 'esmtp-param-order',
    why: 'We write MAIL parameters in a fixed order (SIZE, BODY, SMTPUTF8, RET, ENVID, ...); smtplib writes SIZE first and then the caller\'s options in the caller\'s order. Order carries no meaning (RFC 5321 §4.1.2); parameters are compared sorted.',
    events: (events) =>
      events.map((e) => {
        if (verb(e) !== 'MAIL') return e;
        const close = e.text.indexOf('>');
        const params = e.text.slice(close + 1).split(' ').filter(Boolean).sort();
        return { ...e, text: [e.text.slice(0, close + 1), ...params].join(' ') };
      }),
  },
  'size-counts-added-crlf': {
    name: 'size-counts-added-crlf',
    why: 'For a message that does not end with a line end, both clients add CRLF before the final dot. smtplib\'s SIZE= is len(msg) before that CRLF; ours counts the octets actually sent (RFC 1870 §3: CR-LF pairs included, doubled dots and the terminating dot excluded). smtplib\'s SIZE is accepted when it is exactly 2 less than the transmitted message (un-stuffed, with its CRLF); ours must equal it.',
    events: (events, side) => {
      if (side === 'ours') return events;
      return events.map((e, i) => {
        const m = verb(e) === 'MAIL' ? / SIZE=(\d+)/i.exec(e.text) : null;
        if (!m) return e;
        const next = events.slice(i + 1).find((x) => x.kind === 'message' || verb(x) === 'MAIL');
        if (next?.kind !== 'message') return e;
        const sent = Buffer.byteLength(next.text.split('\r\n').map((l) => (l.startsWith('.') ? l.slice(1) : l)).join('\r\n') + '\r\n');
        return Number(m[1]) + 2 === sent ? { ...e, text: e.text.replace(m[0], ` SIZE=${sent}`) } : e;
      });
    },
  },
  'implicit-ehlo': {
    name: 'implicit-ehlo',
    why: 'Our help(), verify()/vrfy(), expn(), mail() and auth() send EHLO first when neither EHLO nor HELO was done (RFC 5321 §4.1.4: a session starts with EHLO); smtplib\'s do not (only sendmail, send_message, login and starttls do). Our EHLO (and its reply) right before the first such command is removed.',
    events: (events, side) => {
      if (side === 'python') return events;
      const out = [...events];
      const first = out.findIndex((e) => ['EHLO', 'HELO', 'LHLO'].includes(verb(e)));
      const after = out.slice(first + 1).find((e) => e.kind === 'cmd');
      if (first !== -1 && verb(out[first]) === 'EHLO' && ['HELP', 'VRFY', 'EXPN', 'MAIL', 'AUTH'].includes(verb(after))) dropCommand(out, first);
      return out;
    },
  },
  'pipelined-data-after-refusals': {
    name: 'pipelined-data-after-refusals',
    why: 'With PIPELINING our DATA leaves with MAIL and the RCPTs, before their replies are known (RFC 2920 §3.1); when every recipient is refused the server refuses that DATA and we send RSET. smtplib, in lock step, never sends that DATA. Our refused DATA (a non-354 reply right before RSET) is removed.',
    events: (events, side) => {
      if (side === 'python') return events;
      const out = [...events];
      for (let i = out.length - 1; i >= 0; i--) {
        if (verb(out[i]) === 'DATA' && out[i + 1]?.kind === 'reply' && code(out[i + 1]) !== 354 && verb(out[i + 2]) === 'RSET') dropCommand(out, i);
      }
      return out;
    },
  },
  'pipelined-rcpt-after-refused-mail': {
    name: 'pipelined-rcpt-after-refused-mail',
    why: 'With PIPELINING our RCPTs (and DATA) leave with MAIL; when MAIL is refused the server answers them 503 (no MAIL). smtplib stops after the refused MAIL. Our RCPT/DATA commands answered 5xx after a refused MAIL, up to RSET, are removed.',
    events: (events, side) => {
      if (side === 'python') return events;
      const out: ServerEvent[] = [];
      let mailRefused = false;
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!;
        if (verb(e) === 'MAIL') mailRefused = code(events[i + 1]) >= 400;
        else if (verb(e) === 'RSET') mailRefused = false;
        else if (mailRefused && (verb(e) === 'RCPT' || verb(e) === 'DATA') && code(events[i + 1]) >= 500) {
          i++;
          continue;
        }
        out.push(e);
      }
      return out;
    },
  },
  'rset-placement': {
    name: 'rset-placement',
    why: 'Both clients reset a failed transaction, at different points. smtplib.sendmail sends RSET after a refused end of data (data() returned non-250) but not after a refused DATA command (data() raises first); we send RSET after a refused DATA command (the transaction is still open) and not after a refused end of data (RFC 5321 §4.1.1.4: the transaction is over either way). Those two RSETs are removed.',
    events: (events, side) => {
      const out = [...events];
      for (let i = out.length - 1; i > 0; i--) {
        if (verb(out[i]) !== 'RSET') continue;
        const prevReply = out[i - 1];
        const prev = out[i - 2];
        if (side === 'python' && prev?.kind === 'message' && code(prevReply) >= 300) dropCommand(out, i);
        if (side === 'ours' && verb(prev) === 'DATA' && code(prevReply) !== 354) dropCommand(out, i);
      }
      return out;
    },
  },
  'login-one-attempt': {
    name: 'login-one-attempt',
    why: 'smtplib.login() tries the next mechanism after a 535; we make one attempt so a password is never offered again in another form. smtplib\'s failed exchanges that are followed by another AUTH in the same login are removed.',
    events: (events, side) => {
      if (side === 'ours') return events;
      const out = [...events];
      for (let i = out.length - 1; i >= 0; i--) {
        if (verb(out[i]) !== 'AUTH') continue;
        let j = i + 1;
        while (j < out.length && verb(out[j]) !== 'AUTH' && out[j]!.kind !== 'cmd') j++;
        const failed = out.slice(i, j).some((e) => e.kind === 'auth-result' && / 535$/.test(e.text));
        if (failed && verb(out[j]) === 'AUTH') out.splice(i, j - i);
      }
      return out;
    },
  },
  'login-initial-response': {
    name: 'login-initial-response',
    why: 'smtplib sends the user name of AUTH LOGIN as an initial response ("AUTH LOGIN Ym9i"); we wait for the first challenge (draft-murchison-sasl-login §2 has no initial response). Each exchange is compared by its outcome: mechanism, user the server decoded, result.',
    events: (events) => collapseAuth(events, false),
  },
  'login-mechanism-choice': {
    name: 'login-mechanism-choice',
    why: 'login(): smtplib prefers CRAM-MD5, then PLAIN, then LOGIN; we prefer SCRAM, then PLAIN, then LOGIN, and use CRAM-MD5 only when named (it is LIMITED in the IANA registry). Exchanges are compared by user and result, with the mechanism name wildcarded.',
    events: (events) => collapseAuth(events, true),
  },
  'quit-after-554-greeting': {
    name: 'quit-after-554-greeting',
    why: 'After a 554 greeting we send QUIT (RFC 5321 §3.1: the client SHOULD wait for QUIT\'s reply); smtplib closes at once. Both raise SMTPConnectError. Our QUIT right after the greeting is removed.',
    events: (events, side) => {
      if (side === 'python') return events;
      const out = [...events];
      const first = out.findIndex((e) => e.kind === 'cmd');
      if (first !== -1 && verb(out[first]) === 'QUIT') dropCommand(out, first);
      return out;
    },
  },
  'closing-421': {
    name: 'closing-421',
    why: 'On a 421 reply (the server is closing) smtplib raises the class of the step that failed (SMTPSenderRefused, SMTPRecipientsRefused, SMTPDataError) with code 421; we raise SMTPServerDisconnected with the 421 in its message and cause. Python errors carrying a 421 are compared as SMTPServerDisconnected; the code and text are checked to be 421 on the Python side.',
    results: (py) => {
      for (const [i, r] of py.entries()) {
        if (!('error' in r)) continue;
        const in421 = r.code === 421 || Object.values(r.recipients ?? {}).some((v) => v.code === 421);
        if (in421) py[i] = { error: 'SMTPServerDisconnected' };
      }
    },
  },
  'auth-feature-leading-space': {
    name: 'auth-feature-leading-space',
    why: 'smtplib builds esmtp_features["auth"] as "" + " " + params, so its value starts with a space; ours is trimmed. The Python value is compared trimmed.',
    results: (py, _ours, steps) => {
      steps.forEach((s, i) => {
        const r = py[i];
        if (s.op !== 'state' || !r || !('ok' in r)) return;
        const f = (r.ok as { esmtpFeatures: Record<string, string> }).esmtpFeatures;
        if (typeof f['auth'] === 'string') f['auth'] = f['auth'].trim();
      });
    },
  },
  'lmtp-one-reply-per-recipient': {
    name: 'lmtp-one-reply-per-recipient',
    why: 'LMTP (RFC 2033 §4.2) answers the end of data once per accepted recipient. We read them all and report recipients that failed after the data in the refused map; smtplib reads only the first (cpython gh-76984), so its map misses them and its next command (quit) reads a stale per-recipient reply. Our post-data refusals are removed from the map, and smtplib\'s quit() result is compared only as "a reply was read".',
    results: (py, ours, steps) => {
      steps.forEach((s, i) => {
        const o = ours[i];
        const p = py[i];
        if ((s.op === 'sendmail' || s.op === 'sendMessage') && o && 'ok' in o && p && 'ok' in p) {
          const pyMap = p.ok as Record<string, unknown>;
          const ourMap = { ...(o.ok as Record<string, unknown>) };
          for (const addr of Object.keys(ourMap)) if (!(addr in pyMap)) delete ourMap[addr];
          ours[i] = { ok: ourMap };
        }
        if (s.op === 'quit' && p && 'ok' in p && o && 'ok' in o) {
          py[i] = { ok: 'a reply' };
          ours[i] = { ok: 'a reply' };
        }
      });
    },
  },
};

/** Python exception class → ours. smtplib's names are kept; only non-smtplib exceptions need a mapping. */
export const EXCEPTION_MAP: Record<string, string> = {
  SMTPException: 'SMTPException',
  SMTPServerDisconnected: 'SMTPServerDisconnected',
  SMTPResponseException: 'SMTPResponseException',
  SMTPSenderRefused: 'SMTPSenderRefused',
  SMTPRecipientsRefused: 'SMTPRecipientsRefused',
  SMTPDataError: 'SMTPDataError',
  SMTPConnectError: 'SMTPConnectError',
  SMTPHeloError: 'SMTPHeloError',
  SMTPAuthenticationError: 'SMTPAuthenticationError',
  SMTPNotSupportedError: 'SMTPNotSupportedError',
  // smtplib raises ValueError for malformed arguments (e.g. CR/LF in a command); we raise SMTPInvalidArgumentError.
  ValueError: 'SMTPInvalidArgumentError',
  // smtplib lets socket errors through; a refused TCP connect is ours SMTPConnectError.
  ConnectionRefusedError: 'SMTPConnectError',
};

export function applyEvents(events: ServerEvent[], side: Side, names: readonly string[]): ServerEvent[] {
  let out = [...events];
  for (const n of Object.values(NORMALIZATIONS)) {
    if (n.events && (n.always || names.includes(n.name))) out = n.events(out, side);
  }
  return out;
}

export function applyResults(py: StepResult[], ours: StepResult[], steps: Step[], names: readonly string[]): void {
  for (const n of Object.values(NORMALIZATIONS)) {
    if (n.results && (n.always || names.includes(n.name))) n.results(py, ours, steps);
  }
}

/** The comparable part of a step result: the error class (mapped), code, text, recipients, sender; or the value. */
export function comparable(result: StepResult, side: Side): unknown {
  if ('ok' in result) return { ok: result.ok ?? null };
  const name = side === 'python' ? (EXCEPTION_MAP[result.error] ?? `python ${result.error}`) : result.error;
  const out: Record<string, unknown> = { error: name };
  if (result.code !== undefined && result.code !== -1) out['code'] = result.code;
  if (result.code !== undefined && result.code !== -1) out['message'] = result.message;
  if (result.recipients) out['recipients'] = result.recipients;
  if (result.sender !== undefined) out['sender'] = result.sender;
  return out;
}

export function show(events: ServerEvent[]): string[] {
  return events.map((e) => {
    switch (e.kind) {
      case 'cmd':
        return `C: ${e.text}`;
      case 'reply':
        return `S: ${e.text}`;
      case 'auth':
        return `C(auth): ${e.text}`;
      case 'message':
        return `C(message): ${JSON.stringify(e.text)}`;
      default:
        return `-- ${e.kind}: ${e.text}`;
    }
  });
}
