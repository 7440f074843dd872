// One table of what SMTP replies mean for a sender: the reply codes of
// RFC 5321 §4.2 (and RFC 7504's 521/556), the enhanced status codes of
// RFC 3463 as kept in the IANA "Enumerated Status Codes" registry, and a few
// reply texts that real servers use for greylisting and rate limits.
//
// classifyReply() turns a reply into a verdict a queue can act on:
//   success      2xx
//   permanent    5xx: do not retry; bounce
//   transient    4xx: retry later on the normal schedule
//   rate-limit   4xx that says "too much, too fast": retry later, slower
//   greylisting  4xx that says "come back in a few minutes": retry after that
// The first matching rule wins, most specific first: a text pattern, then the
// exact enhanced status (class included), then the enhanced status with any
// class ("X.4.5"), then the reply code, then the code's first digit.
// Users extend it with new StatusCatalogue([...their rules, ...]) or
// catalogue.extend(rules); their rules are consulted before the built-in ones.

export type StatusKind = 'success' | 'permanent' | 'transient' | 'rate-limit' | 'greylisting';

export interface StatusRule {
  /** What the rule matches: a reply code ("421"), an enhanced status ("4.7.28", or "X.7.28" for any class), or a text pattern. */
  match: string | RegExp;
  /** What it means. */
  title: string;
  /** The verdict; omitted: from the reply's class (2 success, 4 transient, 5 permanent). */
  kind?: StatusKind;
  /** What a person (or a queue) should do about it. */
  advice: string;
  /** Where the meaning is defined. */
  source?: string;
}

export interface StatusVerdict {
  kind: StatusKind;
  /** Whether the same message may succeed later (transient, rate-limit, greylisting). */
  retry: boolean;
  title: string;
  advice: string;
  /** The rule that decided, as written in the table ("X.2.2", "450", a pattern's source). */
  rule: string;
  source?: string;
}

/** What classifyReply() reads: a Reply, or a plain { code, message, enhancedStatus }. */
export interface ReplyLike {
  code: number;
  message?: string;
  enhancedStatus?: string | undefined;
}

const RFC5321 = 'RFC 5321 §4.2.3';

/** Reply texts real servers send; they decide before codes do. */
const TEXT_RULES: StatusRule[] = [
  { match: /gr[ae]y[- ]?list/i, kind: 'greylisting', title: 'Greylisted', advice: 'The server defers first-time senders; retry the same message after a few minutes (not sooner) and it will be accepted.', source: 'common practice (RFC 6647)' },
  { match: /\b(rate[- ]?limit|too many (messages|mails|connections|recipients)|throttl|slow down|sending rate|exceeded .*(rate|quota))/i, kind: 'rate-limit', title: 'Rate limited', advice: 'The server limits how fast this sender may send; retry later and lower the rate or the concurrency towards this destination.', source: 'common practice' },
];

/** Enhanced status codes (RFC 3463 and the IANA registry), "X" standing for the class. */
const ENHANCED_RULES: StatusRule[] = [
  { match: 'X.0.0', title: 'Other undefined status', advice: 'The server gave no detail; read its text.', source: 'RFC 3463' },
  { match: 'X.1.0', title: 'Other address status', advice: 'Something about an address was wrong; check the recipient and sender addresses.', source: 'RFC 3463' },
  { match: 'X.1.1', title: 'Bad destination mailbox address', advice: 'The mailbox does not exist; remove or correct the recipient.', source: 'RFC 3463' },
  { match: 'X.1.2', title: 'Bad destination system address', advice: 'The recipient domain does not accept mail; check its spelling.', source: 'RFC 3463' },
  { match: 'X.1.3', title: 'Bad destination mailbox address syntax', advice: 'The recipient address is malformed; correct it.', source: 'RFC 3463' },
  { match: 'X.1.4', title: 'Destination mailbox address ambiguous', advice: 'The address matches several mailboxes; use a more precise one.', source: 'RFC 3463' },
  { match: 'X.1.5', title: 'Destination address valid', advice: 'Nothing to do.', source: 'RFC 3463' },
  { match: 'X.1.6', title: 'Destination mailbox has moved, no forwarding address', advice: 'Ask the recipient for the new address.', source: 'RFC 3463' },
  { match: 'X.1.7', title: "Bad sender's mailbox address syntax", advice: 'The envelope sender is malformed; correct it.', source: 'RFC 3463' },
  { match: 'X.1.8', title: "Bad sender's system address", advice: "The sender's domain is not accepted (it may not resolve); use a sender domain with valid DNS.", source: 'RFC 3463' },
  { match: 'X.1.9', title: 'Message relayed to non-compliant mailer', advice: 'Delivered, but DSNs may not follow; nothing to do.', source: 'RFC 3886' },
  { match: 'X.1.10', title: 'Recipient address has null MX', advice: 'The recipient domain declares it takes no mail (RFC 7505); remove the recipient.', source: 'RFC 7505' },
  { match: 'X.2.0', title: 'Other or undefined mailbox status', advice: 'The mailbox exists but has a problem; retry later or contact the recipient.', source: 'RFC 3463' },
  { match: 'X.2.1', title: 'Mailbox disabled, not accepting messages', advice: 'The mailbox is disabled; contact the recipient another way.', source: 'RFC 3463' },
  { match: 'X.2.2', title: 'Mailbox full', advice: 'The mailbox is over quota; a retry may succeed once the recipient frees space.', source: 'RFC 3463' },
  { match: 'X.2.3', title: 'Message length exceeds administrative limit', advice: 'The message is too large for this mailbox; send a smaller one (link to large attachments).', source: 'RFC 3463' },
  { match: 'X.2.4', title: 'Mailing list expansion problem', advice: 'The list could not be expanded; contact the list owner.', source: 'RFC 3463' },
  { match: 'X.3.0', title: 'Other or undefined mail system status', advice: 'The destination system has a problem; retry later.', source: 'RFC 3463' },
  { match: 'X.3.1', title: 'Mail system full', advice: 'The destination ran out of storage; retry later.', source: 'RFC 3463' },
  { match: 'X.3.2', title: 'System not accepting network messages', advice: 'The destination is shutting down or refuses mail for now; retry later.', source: 'RFC 3463' },
  { match: 'X.3.3', title: 'System not capable of selected features', advice: 'Drop the extension the message asked for (DSN, SMTPUTF8, ...) or send elsewhere.', source: 'RFC 3463' },
  { match: 'X.3.4', title: 'Message too big for system', advice: "The message exceeds the server's size limit; send a smaller one.", source: 'RFC 3463' },
  { match: 'X.3.5', title: 'System incorrectly configured', advice: 'The destination is misconfigured; tell its postmaster.', source: 'RFC 3463' },
  { match: 'X.3.6', title: 'Requested priority was changed', advice: 'Delivered at another priority; nothing to do.', source: 'RFC 6710' },
  { match: 'X.4.0', title: 'Other or undefined network or routing status', advice: 'A routing problem; retry later.', source: 'RFC 3463' },
  { match: 'X.4.1', title: 'No answer from host', advice: 'The destination did not answer; retry later.', source: 'RFC 3463' },
  { match: 'X.4.2', title: 'Bad connection', advice: 'The connection broke; retry later.', source: 'RFC 3463' },
  { match: 'X.4.3', title: 'Directory server failure', advice: 'A DNS or directory lookup failed; retry later.', source: 'RFC 3463' },
  { match: 'X.4.4', title: 'Unable to route', advice: 'No route to the destination (no MX/A); check the domain.', source: 'RFC 3463' },
  { match: 'X.4.5', kind: 'rate-limit', title: 'Mail system congestion', advice: 'The destination is overloaded; retry later, more slowly.', source: 'RFC 3463' },
  { match: 'X.4.6', title: 'Routing loop detected', advice: 'Mail loops between servers; tell the postmasters.', source: 'RFC 3463' },
  { match: 'X.4.7', title: 'Delivery time expired', advice: 'The message was too old to deliver; send it again if it still matters.', source: 'RFC 3463' },
  { match: 'X.5.0', title: 'Other or undefined protocol status', advice: 'A protocol problem; read the server text.', source: 'RFC 3463' },
  { match: 'X.5.1', title: 'Invalid command', advice: 'The server did not understand a command; report it as a client bug.', source: 'RFC 3463' },
  { match: 'X.5.2', title: 'Syntax error', advice: 'A command was malformed; report it as a client bug.', source: 'RFC 3463' },
  { match: 'X.5.3', kind: 'rate-limit', title: 'Too many recipients', advice: 'Send to fewer recipients per message; the refused ones are retried alone.', source: 'RFC 3463' },
  { match: 'X.5.4', title: 'Invalid command arguments', advice: 'A parameter was refused; check MAIL/RCPT options.', source: 'RFC 3463' },
  { match: 'X.5.5', title: 'Wrong protocol version', advice: 'Use the protocol the server speaks (SMTP vs LMTP).', source: 'RFC 3463' },
  { match: 'X.5.6', title: 'Authentication exchange line is too long', advice: 'Use a mechanism with shorter responses or an initial response.', source: 'RFC 4954' },
  { match: 'X.6.0', title: 'Other or undefined media error', advice: 'The content could not be handled; check the MIME structure.', source: 'RFC 3463' },
  { match: 'X.6.1', title: 'Media not supported', advice: 'The content type is refused; send another format.', source: 'RFC 3463' },
  { match: 'X.6.2', title: 'Conversion required and prohibited', advice: 'Encode 8-bit content (quoted-printable/base64).', source: 'RFC 3463' },
  { match: 'X.6.3', title: 'Conversion required but not supported', advice: 'Encode 8-bit content (quoted-printable/base64).', source: 'RFC 3463' },
  { match: 'X.6.4', title: 'Conversion with loss performed', advice: 'Delivered with loss; nothing to do.', source: 'RFC 3463' },
  { match: 'X.6.5', title: 'Conversion failed', advice: 'The server could not convert the content; encode it yourself.', source: 'RFC 3463' },
  { match: 'X.6.6', title: 'Message content not available', advice: 'A referenced message (BURL) was not available.', source: 'RFC 4468' },
  { match: 'X.6.7', title: 'Non-ASCII addresses not permitted for that sender/recipient', advice: 'Use an ASCII address or a server with SMTPUTF8.', source: 'RFC 6531' },
  { match: 'X.6.8', title: 'UTF-8 string reply is required, but not permitted by the SMTP client', advice: 'Nothing to do on the client side.', source: 'RFC 6531' },
  { match: 'X.6.9', title: 'UTF-8 header message cannot be transferred to one or more recipients', advice: 'Send an ASCII-only message to these recipients.', source: 'RFC 6531' },
  { match: 'X.6.10', title: 'UTF-8 string reply is required, but not permitted by the SMTP client', advice: 'Nothing to do on the client side.', source: 'RFC 6531' },
  { match: 'X.7.0', title: 'Other or undefined security status', advice: 'A policy refused the message; read the server text.', source: 'RFC 3463' },
  { match: 'X.7.1', title: 'Delivery not authorized, message refused', advice: 'The server refuses this sender or content (relay denied, policy, blocklist); check authentication and reputation.', source: 'RFC 3463' },
  { match: 'X.7.2', title: 'Mailing list expansion prohibited', advice: 'The sender may not post to this list.', source: 'RFC 3463' },
  { match: 'X.7.3', title: 'Security conversion required but not possible', advice: 'Send without the security feature or to another server.', source: 'RFC 3463' },
  { match: 'X.7.4', title: 'Security features not supported', advice: 'Send without the security feature or to another server.', source: 'RFC 3463' },
  { match: 'X.7.5', title: 'Cryptographic failure', advice: 'A signature or encryption failed; check keys.', source: 'RFC 3463' },
  { match: 'X.7.6', title: 'Cryptographic algorithm not supported', advice: 'Use another algorithm.', source: 'RFC 3463' },
  { match: 'X.7.7', title: 'Message integrity failure', advice: 'The message was altered in transit; send it again.', source: 'RFC 3463' },
  { match: 'X.7.8', title: 'Authentication credentials invalid', advice: 'Fix the username/password or token.', source: 'RFC 4954' },
  { match: 'X.7.9', title: 'Authentication mechanism is too weak', advice: 'Use a stronger SASL mechanism.', source: 'RFC 4954' },
  { match: 'X.7.10', title: 'Encryption needed', advice: 'Use STARTTLS or implicit TLS.', source: 'RFC 5248' },
  { match: 'X.7.11', title: 'Encryption required for requested authentication mechanism', advice: 'Start TLS before authenticating.', source: 'RFC 4954' },
  { match: 'X.7.12', title: 'A password transition is needed', advice: 'Change the password (log in once with PLAIN over TLS).', source: 'RFC 4954' },
  { match: 'X.7.13', title: 'User account disabled', advice: 'The sending account is disabled; contact the provider.', source: 'RFC 5248' },
  { match: 'X.7.14', title: 'Trust relationship required', advice: 'The server needs an agreement with the sender.', source: 'RFC 5248' },
  { match: 'X.7.15', title: 'Priority level is too low', advice: 'Retry later or with a higher priority.', source: 'RFC 6710' },
  { match: 'X.7.16', title: 'Message is too big for the specified priority', advice: 'Send a smaller message or use a lower priority.', source: 'RFC 6710' },
  { match: 'X.7.17', title: 'Mailbox owner has changed', advice: 'The mailbox belongs to someone else now; remove the recipient.', source: 'RFC 7293' },
  { match: 'X.7.18', title: 'Domain owner has changed', advice: 'The domain belongs to someone else now; remove the recipient.', source: 'RFC 7293' },
  { match: 'X.7.19', title: 'RRVS test cannot be completed', advice: 'Send without RRVS or retry later.', source: 'RFC 7293' },
  { match: 'X.7.20', title: 'No passing DKIM signature found', advice: 'Sign the message with DKIM.', source: 'RFC 7372' },
  { match: 'X.7.21', title: 'No acceptable DKIM signature found', advice: 'Sign with a key and algorithm the receiver accepts.', source: 'RFC 7372' },
  { match: 'X.7.22', title: 'No valid author-matched DKIM signature found', advice: "Sign with the From domain's key.", source: 'RFC 7372' },
  { match: 'X.7.23', title: 'SPF validation failed', advice: "Add the sending host to the sender domain's SPF record.", source: 'RFC 7372' },
  { match: 'X.7.24', title: 'SPF validation error', advice: "Fix the sender domain's SPF record; retry later.", source: 'RFC 7372' },
  { match: 'X.7.25', title: 'Reverse DNS validation failed', advice: 'Give the sending IP a matching PTR record.', source: 'RFC 7372' },
  { match: 'X.7.26', title: 'Multiple authentication checks failed', advice: 'Fix SPF, DKIM and DMARC for the sender domain.', source: 'RFC 7372' },
  { match: 'X.7.27', title: 'Sender address has null MX', advice: 'The sender domain declares it takes no mail; use a sender that can receive bounces.', source: 'RFC 7505' },
  { match: 'X.7.28', kind: 'rate-limit', title: 'Mail flood detected', advice: 'Too much mail from this sender; slow down.', source: 'IANA registry' },
  { match: 'X.7.29', title: 'ARC validation failure', advice: 'Fix the ARC chain of the forwarded message.', source: 'RFC 8617' },
  { match: 'X.7.30', title: 'REQUIRETLS support required', advice: 'Send over a path that supports REQUIRETLS, or without it.', source: 'RFC 8689' },
];

/** Basic reply codes (RFC 5321 §4.2.3, RFC 7504). */
const CODE_RULES: StatusRule[] = [
  { match: '250', title: 'Requested action okay, completed', advice: 'Nothing to do.', source: RFC5321 },
  { match: '251', title: 'User not local; will forward', advice: 'Nothing to do.', source: RFC5321 },
  { match: '252', title: 'Cannot verify the user, but will accept the message', advice: 'Nothing to do.', source: RFC5321 },
  { match: '421', title: 'Service not available, closing transmission channel', advice: 'The server is closing (overload, shutdown); retry on a new connection later.', source: RFC5321 },
  { match: '450', title: 'Mailbox unavailable (busy or temporarily blocked)', advice: 'Retry later.', source: RFC5321 },
  { match: '451', title: 'Local error in processing', advice: 'The server had a problem; retry later.', source: RFC5321 },
  { match: '452', title: 'Insufficient system storage', advice: 'Retry later; with many recipients, the refused ones are retried alone.', source: RFC5321 },
  { match: '455', title: 'Server unable to accommodate parameters', advice: 'Retry later or without the parameters.', source: RFC5321 },
  { match: '500', title: 'Syntax error, command unrecognized', advice: 'Report as a client bug.', source: RFC5321 },
  { match: '501', title: 'Syntax error in parameters or arguments', advice: 'Check the addresses and parameters.', source: RFC5321 },
  { match: '502', title: 'Command not implemented', advice: 'Do not use this command with this server.', source: RFC5321 },
  { match: '503', title: 'Bad sequence of commands', advice: 'Report as a client bug.', source: RFC5321 },
  { match: '504', title: 'Command parameter not implemented', advice: 'Do not use this parameter with this server.', source: RFC5321 },
  { match: '521', title: 'Host does not accept mail', advice: 'The destination takes no mail; remove the recipient.', source: 'RFC 7504' },
  { match: '550', title: 'Mailbox unavailable or policy refusal', advice: 'The recipient does not exist or the server refuses the message; do not retry.', source: RFC5321 },
  { match: '551', title: 'User not local', advice: 'Send to the address the server names.', source: RFC5321 },
  { match: '552', title: 'Exceeded storage allocation', advice: 'The message is too big or the mailbox full; do not retry as is.', source: RFC5321 },
  { match: '553', title: 'Mailbox name not allowed', advice: 'Correct the address.', source: RFC5321 },
  { match: '554', title: 'Transaction failed', advice: 'The server refused the message; read its text.', source: RFC5321 },
  { match: '555', title: 'MAIL/RCPT parameters not recognized or not implemented', advice: 'Send without the parameters.', source: RFC5321 },
  { match: '556', title: 'Domain does not accept mail', advice: 'The destination takes no mail; remove the recipient.', source: 'RFC 7504' },
];

/** The last resort: the first digit of the code. */
const CLASS_RULES: StatusRule[] = [
  { match: '2xx', kind: 'success', title: 'Success', advice: 'Nothing to do.', source: RFC5321 },
  { match: '4xx', kind: 'transient', title: 'Transient failure', advice: 'Retry later.', source: RFC5321 },
  { match: '5xx', kind: 'permanent', title: 'Permanent failure', advice: 'Do not retry the same message.', source: RFC5321 },
];

/** The built-in table, in the order it is consulted. Read it, print it, extend it. */
export const STATUS_RULES: readonly StatusRule[] = Object.freeze([...TEXT_RULES, ...ENHANCED_RULES, ...CODE_RULES, ...CLASS_RULES]);

function kindOfClass(code: number): StatusKind {
  // No reply at all (code -1: the connection failed) says nothing about the message.
  if (code < 200) return 'transient';
  if (code >= 200 && code < 400) return 'success';
  if (code >= 400 && code < 500) return 'transient';
  return 'permanent';
}

export class StatusCatalogue {
  #text: StatusRule[] = [];
  #enhanced = new Map<string, StatusRule>();
  #codes = new Map<string, StatusRule>();

  /** `rules` are consulted before the built-in table (pass `builtIn: false` to start empty). */
  constructor(rules: readonly StatusRule[] = [], options: { builtIn?: boolean } = {}) {
    if (options.builtIn !== false) this.extend(STATUS_RULES, { append: true });
    this.extend(rules);
  }

  /** Adds rules; they win over those already present (unless `append`). */
  extend(rules: readonly StatusRule[], options: { append?: boolean } = {}): this {
    const text: StatusRule[] = [];
    for (const rule of rules) {
      if (rule.match instanceof RegExp) text.push(rule);
      else if (/^[245X]\.\d{1,3}\.\d{1,3}$/i.test(rule.match)) {
        const key = rule.match.toUpperCase();
        if (options.append && this.#enhanced.has(key)) continue;
        this.#enhanced.set(key, rule);
      } else if (/^(\d{3}|[245]xx)$/i.test(rule.match)) {
        const key = rule.match.toLowerCase();
        if (options.append && this.#codes.has(key)) continue;
        this.#codes.set(key, rule);
      } else {
        throw new RangeError(`a status rule matches a reply code ("421", "4xx"), an enhanced status ("4.7.1", "X.7.1") or a RegExp; got ${JSON.stringify(rule.match)}`);
      }
    }
    this.#text = options.append ? [...this.#text, ...text] : [...text, ...this.#text];
    return this;
  }

  /** Every rule, in the order they are consulted. */
  rules(): StatusRule[] {
    return [...this.#text, ...this.#enhanced.values(), ...this.#codes.values()];
  }

  /** The rule for an enhanced status ("5.1.1"), exact class first, then any class. */
  describeEnhanced(status: string): StatusRule | undefined {
    const [, subject, detail] = status.split('.');
    return this.#enhanced.get(status.toUpperCase()) ?? this.#enhanced.get(`X.${Number(subject)}.${Number(detail)}`);
  }

  /** What a reply means and whether to retry it. */
  classify(reply: ReplyLike): StatusVerdict {
    const code = reply.code;
    const base = kindOfClass(code);
    const fromRule = (rule: StatusRule, name: string): StatusVerdict => {
      // A rule can refine a failure (transient → greylisting) but never turn a
      // 5xx into something retried, nor a 4xx into a bounce: the code's class decides that.
      let kind = rule.kind ?? base;
      if (base === 'success') kind = 'success';
      else if (base === 'permanent') kind = 'permanent';
      else if (kind === 'permanent' || kind === 'success') kind = 'transient';
      return { kind, retry: kind !== 'success' && kind !== 'permanent', title: rule.title, advice: rule.advice, rule: name, ...(rule.source ? { source: rule.source } : {}) };
    };
    if (base !== 'success') {
      const text = reply.message ?? '';
      for (const rule of this.#text) {
        if ((rule.match as RegExp).test(text)) return fromRule(rule, String(rule.match));
      }
      if (reply.enhancedStatus) {
        const exact = this.#enhanced.get(reply.enhancedStatus.toUpperCase());
        if (exact) return fromRule(exact, reply.enhancedStatus);
        const [, subject, detail] = reply.enhancedStatus.split('.');
        const anyClass = `X.${Number(subject)}.${Number(detail)}`;
        const rule = this.#enhanced.get(anyClass);
        if (rule) return fromRule(rule, anyClass);
      }
    }
    const exact = this.#codes.get(String(code));
    if (exact) return fromRule(exact, String(code));
    const cls = `${Math.floor(code / 100)}xx`;
    const rule = this.#codes.get(cls);
    if (rule) return fromRule(rule, cls);
    return { kind: base, retry: base !== 'success' && base !== 'permanent', title: 'Unknown reply', advice: 'Read the server text.', rule: 'none' };
  }
}

/** The built-in catalogue. */
export const statusCatalogue = new StatusCatalogue();

/** statusCatalogue.classify(reply). */
export function classifyReply(reply: ReplyLike): StatusVerdict {
  return statusCatalogue.classify(reply);
}
