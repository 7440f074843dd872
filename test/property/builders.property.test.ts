// Property tests for everything that turns caller input into wire text: a
// builder either throws a typed error or returns a line with no CR, LF, NUL
// (or any other control character), whatever the input. Also: xtext round
// trips, Capabilities.fromReply and the address parsers never throw.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { assertClientName, commandLine, MAX_COMMAND_LINE } from '../../packages/smtplib/src/protocol/commands.js';
import { getaddresses, parseaddr, quoteaddr, toPath } from '../../packages/smtplib/src/protocol/address.js';
import {
  decodeXtext,
  encodeXtext,
  renderMailParameters,
  renderRcptParameters,
  toMailOptions,
  toRcptOptions,
  type MailOptions,
  type RcptOptions,
} from '../../packages/smtplib/src/protocol/params.js';
import { Capabilities } from '../../packages/smtplib/src/protocol/capabilities.js';
import { Reply } from '../../packages/smtplib/src/protocol/reply.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 400);
const TYPED = new Set(['SMTPInvalidArgumentError', 'SMTPNotSupportedError']);
const UNSAFE = /[\x00-\x1f\x7f]/;

/** Strings biased towards the characters injection is made of. */
const hostile = fc.oneof(
  fc.string({ unit: fc.constantFrom('\r', '\n', '\0', 'a', 'b', '@', '<', '>', ' ', '"', '\\', '=', '+', ';', ',', ':', '(', ')', '.', 'é', '用', '\x7f', '\x85', '\t', '\x1b') , maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ maxLength: 40 }),
);

/** Runs `fn`; a throw must be one of the typed errors. Returns the result or undefined. */
function typedOrValue<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (error) {
    expect(TYPED.has((error as Error).name), `${(error as Error).name}: ${(error as Error).message}`).toBe(true);
    expect(String((error as { code?: string }).code)).toMatch(/^ERR_SMTP_/);
    return undefined;
  }
}

const capabilityNames = ['size', 'dsn', '8bitmime', 'binarymime', 'smtputf8', 'requiretls', 'x-opt', 'pipelining'];
const caps = fc.subarray(capabilityNames).map((names) => new Capabilities(new Map(names.map((n) => [n, n === 'size' ? '1000' : '']))));

const mailOptions: fc.Arbitrary<MailOptions> = fc.record(
  {
    size: fc.oneof(fc.integer(), fc.double(), fc.constant(Number.MAX_SAFE_INTEGER + 2)),
    body: fc.oneof(fc.constantFrom('7BIT', '8BITMIME', 'BINARYMIME'), hostile) as fc.Arbitrary<MailOptions['body']>,
    smtputf8: fc.boolean(),
    ret: fc.oneof(fc.constantFrom('FULL', 'HDRS', 'full'), hostile) as fc.Arbitrary<MailOptions['ret']>,
    envid: hostile,
    requireTls: fc.boolean(),
    extra: fc.dictionary(hostile, fc.oneof(hostile, fc.constant(true as const)), { maxKeys: 3 }),
  },
  { requiredKeys: [] },
);
const rcptOptions: fc.Arbitrary<RcptOptions> = fc.record(
  {
    notify: fc.oneof(
      fc.constantFrom('NEVER', 'SUCCESS'),
      fc.array(fc.oneof(fc.constantFrom('NEVER', 'SUCCESS', 'FAILURE', 'DELAY'), hostile), { maxLength: 4 }),
      hostile,
    ) as fc.Arbitrary<RcptOptions['notify']>,
    orcpt: hostile,
    extra: fc.dictionary(hostile, fc.oneof(hostile, fc.constant(true as const)), { maxKeys: 3 }),
  },
  { requiredKeys: [] },
);

describe('command builders never emit CR, LF or NUL', () => {
  it('commandLine: a throw is typed; a line is clean, within the limit, and exactly verb + " " + args', () => {
    fc.assert(
      fc.property(fc.oneof(fc.constantFrom('NOOP', 'VRFY', 'MAIL FROM:<a@b>'), hostile), hostile, (verb, args) => {
        const line = typedOrValue(() => commandLine(verb, args));
        if (line === undefined) return;
        expect(UNSAFE.test(line)).toBe(false);
        expect(Buffer.byteLength(line) + 2).toBeLessThanOrEqual(MAX_COMMAND_LINE);
        expect(line).toBe(args === '' ? verb : `${verb} ${args}`);
      }),
      { numRuns: RUNS },
    );
  });

  it('assertClientName: accepts only names without controls and whitespace', () => {
    fc.assert(
      fc.property(hostile, (name) => {
        const ok = typedOrValue(() => { assertClientName(name); return true; });
        if (ok) {
          expect(UNSAFE.test(name)).toBe(false);
          expect(/\s/.test(name)).toBe(false);
          expect(name).not.toBe('');
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('toPath: "<...>" with nothing outside the brackets and no control, space or bracket inside (outside quotes)', () => {
    fc.assert(
      fc.property(hostile, fc.boolean(), (address, smtputf8) => {
        const path = typedOrValue(() => toPath(address, { smtputf8, role: 'recipient' }));
        if (path === undefined) return;
        expect(path).toMatch(/^<[^<>]*>$/);
        expect(UNSAFE.test(path)).toBe(false);
        expect(/\s/.test(path.replace(/"(?:[^"\\]|\\.)*"/g, ''))).toBe(false);
        if (!smtputf8) expect(/^[\x00-\x7f]*$/.test(path)).toBe(true);
        // Usable in a command line as is.
        typedOrValue(() => commandLine(`RCPT TO:${path}`));
      }),
      { numRuns: RUNS },
    );
  });

  it('renderMailParameters / renderRcptParameters: clean "KEYWORD[=value]" words, or a typed error', () => {
    const word = /^[A-Za-z0-9][A-Za-z0-9-]*(=[^=\s\x00-\x1f\x7f]+)?$/;
    fc.assert(
      fc.property(mailOptions, rcptOptions, caps, fc.boolean(), (mail, rcpt, capabilities, secure) => {
        for (const rendered of [
          typedOrValue(() => renderMailParameters(mail, { capabilities, secure })),
          typedOrValue(() => renderRcptParameters(rcpt, { capabilities, secure })),
        ]) {
          if (rendered === undefined) continue;
          expect(UNSAFE.test(rendered)).toBe(false);
          if (rendered === '') continue;
          expect(rendered.startsWith(' ')).toBe(true);
          for (const w of rendered.slice(1).split(' ')) expect(w).toMatch(word);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('smtplib-style option strings: parsed and rendered, or a typed error; never a control on the wire', () => {
    fc.assert(
      fc.property(fc.array(hostile, { maxLength: 3 }), fc.array(hostile, { maxLength: 3 }), caps, (m, r, capabilities) => {
        const mail = typedOrValue(() => renderMailParameters(toMailOptions(m), { capabilities, secure: true }));
        const rcpt = typedOrValue(() => renderRcptParameters(toRcptOptions(r), { capabilities, secure: true }));
        for (const s of [mail, rcpt]) if (s !== undefined) expect(UNSAFE.test(s)).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('xtext, capabilities, addresses', () => {
  it('xtext round-trips any string and encodes to "!".."~" without "=" or a bare "+"', () => {
    fc.assert(
      fc.property(fc.oneof(hostile, fc.string({ unit: 'grapheme', maxLength: 30 })), (text) => {
        fc.pre(Buffer.from(text, 'utf8').toString('utf8') === text);
        const x = encodeXtext(text);
        expect(x).toMatch(/^(?:[!-*,-<>-~]|\+[0-9A-F]{2})*$/);
        expect(decodeXtext(x)).toBe(text);
      }),
      { numRuns: RUNS },
    );
  });

  it('decodeXtext of arbitrary text returns or throws a typed error', () => {
    fc.assert(fc.property(hostile, (text) => { typedOrValue(() => decodeXtext(text)); }), { numRuns: RUNS });
  });

  it('Capabilities.fromReply never throws on arbitrary 250 lines; maxSize is a positive safe integer or undefined', () => {
    const line = fc.oneof(
      hostile,
      fc.tuple(fc.constantFrom('SIZE', 'AUTH', 'AUTH=', 'size', 'PIPELINING', 'X-'), hostile).map(([k, v]) => `${k} ${v}`),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 12 }), (lines) => {
        const c = Capabilities.fromReply(new Reply(250, lines));
        const max = c.maxSize;
        if (max !== undefined) expect(Number.isSafeInteger(max) && max > 0).toBe(true);
        for (const m of c.authMechanisms) expect(/\s/.test(m)).toBe(false);
        for (const key of c.features.keys()) expect(key).toMatch(/^[a-z0-9][a-z0-9-]*$/);
      }),
      { numRuns: RUNS },
    );
  });

  it('getaddresses, parseaddr and quoteaddr never throw', () => {
    fc.assert(
      fc.property(fc.oneof(hostile, fc.array(hostile, { maxLength: 4 })), (value) => {
        const list = getaddresses(value);
        expect(Array.isArray(list)).toBe(true);
        for (const v of typeof value === 'string' ? [value] : value) {
          const p = parseaddr(v);
          expect(typeof p.name).toBe('string');
          expect(typeof p.address).toBe('string');
          expect(typeof quoteaddr(v)).toBe('string');
        }
      }),
      { numRuns: RUNS },
    );
  });
});
