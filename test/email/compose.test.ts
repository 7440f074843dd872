// Composing and writing: the EmailMessage API (Python's names), header
// safety, folding and line limits, transfer encodings, RFC 2047/2231 and
// deterministic output.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  Address,
  EmailMessage,
  formatAddress,
  formatDate,
  Group,
  HeaderInjectionError,
  InvalidHeaderNameError,
  makeMsgid,
  MessageStructureError,
  parseMessage,
  PolicyError,
  SMTP,
  SMTPUTF8,
  policy,
} from 'smtplib-email';
import { compose, messageSpec, phrase } from './helpers.js';

const text = async (msg: EmailMessage) => (await msg.asBytes()).toString('utf8');
const headerBlock = (s: string) => s.slice(0, s.indexOf('\r\n\r\n') + 2);

describe('headers', () => {
  it('get/set/getAll/delete are case-insensitive and keep order; set replaces, add appends', () => {
    const msg = new EmailMessage();
    msg.set('Subject', 'one');
    msg.add('Received', 'a');
    msg.add('received', 'b');
    msg.set('X-Tag', 'x');
    expect(msg.get('SUBJECT')).toBe('one');
    expect(msg.getAll('Received')).toEqual(['a', 'b']);
    expect(msg.getAll('Missing')).toBeUndefined();
    expect(msg.get('missing', 'fallback')).toBe('fallback');
    msg.set('RECEIVED', 'c');
    expect(msg.getAll('received')).toEqual(['c']);
    expect(msg.keys()).toEqual(['Subject', 'RECEIVED', 'X-Tag']);
    expect(msg.delete('x-tag')).toBe(true);
    expect(msg.delete('x-tag')).toBe(false);
    expect(msg.has('Subject')).toBe(true);
  });

  it.each(['line\r\nBcc: victim@example.com', 'a\nb', 'a\rb', 'nul\0'])('refuses CR, LF and NUL in a value (%j) with HeaderInjectionError', (value) => {
    const msg = new EmailMessage();
    expect(() => msg.set('Subject', value)).toThrow(HeaderInjectionError);
    expect(() => msg.add('X-Any', value)).toThrow(HeaderInjectionError);
    expect(() => msg.set('To', new Address({ displayName: value, addrSpec: 'a@b.c' }))).toThrow();
    expect(msg.keys()).toEqual([]);
  });

  it('refuses header names with spaces, colons or control characters', () => {
    const msg = new EmailMessage();
    for (const name of ['Bad Name', 'a:b', 'x\r\ny', '', 'é']) expect(() => msg.set(name, 'v')).toThrow(InvalidHeaderNameError);
    try { msg.set('Subject', 'a\nb'); } catch (e) { expect((e as HeaderInjectionError).code).toBe('ERR_EMAIL_HEADER_INJECTION'); }
  });

  it('writes ASCII subjects as they are and folds them at white space before 78 characters', async () => {
    const msg = new EmailMessage();
    const subject = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ');
    msg.set('Subject', subject);
    const out = headerBlock(await text(msg));
    expect(out).not.toContain('=?');
    for (const line of out.split('\r\n')) expect(line.length).toBeLessThanOrEqual(78);
    expect(parseMessage(out + '\r\n').get('subject')).toBe(subject);
  });

  it('uses encoded words only for the non-ASCII run, and raw UTF-8 under SMTPUTF8', async () => {
    const msg = new EmailMessage();
    msg.set('Subject', 'Invoice for Zoë Ångström, due Friday');
    const out = headerBlock(await text(msg));
    expect(out).toMatch(/^Subject: Invoice for =\?utf-8\?[qb]\?[^?]+\?= due Friday\r\n$/m);
    const utf8 = headerBlock((await msg.asBytes({ policy: SMTPUTF8 })).toString('utf8'));
    expect(utf8).toContain('Subject: Invoice for Zoë Ångström, due Friday\r\n');
  });

  it('encodes a word too long for any line (over 998 octets) instead of writing it', async () => {
    const msg = new EmailMessage();
    const long = 'x'.repeat(3000);
    msg.set('Subject', `a ${long} b`);
    const out = await text(msg);
    for (const line of out.split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);
    expect(parseMessage(out).get('subject')).toBe(`a ${long} b`);
  });

  it('writes address headers: quoted names, encoded non-ASCII names, punycode domains, groups', async () => {
    const msg = new EmailMessage();
    msg.set('From', new Address('Doe, Jane', 'jane', 'example.com'));
    msg.set('To', [new Address({ displayName: 'Jürgen', addrSpec: 'j@bücher.example' }), new Group('Team', [new Address({ addrSpec: 'a@x.org' })])]);
    msg.set('Cc', 'plain@example.com');
    const out = headerBlock(await text(msg));
    expect(out).toContain('From: "Doe, Jane" <jane@example.com>\r\n');
    expect(out).toMatch(/To: =\?utf-8\?[qb]\?[^?]+\?= <j@xn--bcher-kva\.example>, Team: a@x\.org;\r\n/);
    const back = parseMessage(out + '\r\n');
    expect(back.getAddresses('to').map((a) => [a.displayName, a.addrSpec])).toEqual([['Jürgen', 'j@xn--bcher-kva.example'], ['', 'a@x.org']]);
    expect(back.getAddresses('from')[0]!.displayName).toBe('Doe, Jane');
  });

  it('a non-ASCII local part needs the SMTPUTF8 policy (PolicyError otherwise)', async () => {
    const msg = new EmailMessage();
    msg.set('To', new Address({ addrSpec: 'josé@example.com' }));
    await expect(msg.asBytes()).rejects.toThrow(PolicyError);
    expect((await msg.asBytes({ policy: SMTPUTF8 })).toString('utf8')).toContain('To: josé@example.com\r\n');
    expect(msg.smtpRequirements({ policy: SMTPUTF8 })).toEqual({ smtputf8: true, eightBitMime: true });
  });

  it('formatAddress, formatDate and makeMsgid behave like email.utils', () => {
    expect(formatAddress(['Jane Doe', 'jane@example.com'])).toBe('Jane Doe <jane@example.com>');
    expect(formatAddress(['Doe, Jane', 'jane@example.com'])).toBe('"Doe, Jane" <jane@example.com>');
    expect(formatAddress(['', 'jane@example.com'])).toBe('jane@example.com');
    expect(formatAddress(['Zoë', 'z@example.com'])).toMatch(/^=\?utf-8\?[qb]\?.+\?= <z@example\.com>$/);
    expect(formatDate(new Date(Date.UTC(2026, 11, 5, 21, 52, 26)))).toBe('Sat, 05 Dec 2026 21:52:26 -0000');
    expect(formatDate(new Date(Date.UTC(2026, 11, 5, 21, 52, 26)), { usegmt: true })).toBe('Sat, 05 Dec 2026 21:52:26 GMT');
    expect(makeMsgid('tag', 'example.com')).toMatch(/^<\d+\.\d+\.\d+\.tag@example\.com>$/);
    expect(makeMsgid()).not.toBe(makeMsgid());
  });
});

describe('content', () => {
  it('chooses 7bit, quoted-printable or base64 per part, and 8bit only under SMTPUTF8', async () => {
    const cte = (content: string, p = SMTP) => {
      const m = new EmailMessage({ policy: p });
      m.setContent(content);
      return m.get('content-transfer-encoding');
    };
    expect(cte('plain ascii\n')).toBe('7bit');
    expect(cte('a long line ' + 'x'.repeat(200) + '\n')).toBe('quoted-printable');
    expect(cte('mostly ascii with one é\n')).toBe('quoted-printable');
    expect(cte('日本語のテキストです。'.repeat(3) + '\n')).toBe('base64');
    expect(cte('un peu de français\n', SMTPUTF8)).toBe('8bit');
  });

  it('keeps every line of every part within 998 octets (long HTML lines included) and header lines within 78 where breakable', async () => {
    await fc.assert(fc.asyncProperty(messageSpec, async (spec) => {
      const bytes = await compose(spec).asBytes();
      const s = bytes.toString('latin1');
      for (const line of s.split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);
      expect(s).not.toMatch(/[^\r]\n|\r(?!\n)/); // CRLF only
      expect(/[^\x00-\x7f]/.test(s)).toBe(false); // default policy: 7-bit clean
      for (const block of s.split('\r\n\r\n').filter((b) => /^[A-Za-z-]+: /.test(b))) {
        for (const line of block.split('\r\n')) {
          // Longer than 78 only when nothing in it could be folded: one word after the indent or name.
          if (line.length > 78) expect(line.replace(/^[ \t]+|^[A-Za-z-]+: /, '')).not.toMatch(/[ \t]/);
        }
      }
    }), { numRuns: 60, seed: 7 });
  });

  it('builds HTML + text + inline image + attachment in the structure Python builds', async () => {
    const msg = new EmailMessage();
    msg.set('Subject', 'Report');
    msg.setContent('See the chart.\n');
    msg.addAlternative('<p>See <img src="cid:chart@x"></p>\n', { subtype: 'html' });
    msg.getBody(['html'])!.addRelated(Buffer.from([0x89, 0x50, 0x4e, 0x47]), { maintype: 'image', subtype: 'png', cid: 'chart@x' });
    msg.addAttachment(Buffer.from('%PDF-1.4'), { maintype: 'application', subtype: 'pdf', filename: 'report.pdf' });
    const types = [...msg.walk()].map((p) => p.getContentType());
    expect(types).toEqual(['multipart/mixed', 'multipart/alternative', 'text/plain', 'multipart/related', 'text/html', 'image/png', 'application/pdf']);
    expect(msg.getBody()!.getContentType()).toBe('multipart/related');
    expect(msg.getBody(['plain'])!.getContent()).toBe('See the chart.\n');
    expect([...msg.iterAttachments()].map((p) => p.getFilename())).toEqual(['report.pdf']);
    const inline = [...msg.walk()].find((p) => p.getContentType() === 'image/png')!;
    expect(inline.get('content-id')).toBe('<chart@x>');
    expect(inline.getContentDisposition()).toBe('inline');
    expect(msg.get('mime-version')).toBe('1.0');
    expect(types.length).toBe([...parseMessage(await msg.asBytes()).walk()].length);
  });

  it('makeAlternative refuses multipart/mixed; makeRelated refuses alternative (as Python)', () => {
    const msg = new EmailMessage();
    msg.setContent('x');
    msg.makeMixed();
    expect(() => msg.makeAlternative()).toThrow(MessageStructureError);
    const alt = new EmailMessage();
    alt.makeAlternative();
    expect(() => alt.makeRelated()).toThrow(MessageStructureError);
  });

  it('RFC 2231: a long non-ASCII filename goes in continuations and reads back', async () => {
    const msg = new EmailMessage();
    const name = 'Überweisungsbestätigung für das Geschäftsjahr 2026 – endgültige Fassung (Kopie).pdf';
    msg.addAttachment(Buffer.from('x'), { filename: name });
    const out = await text(msg);
    expect(out).toMatch(/filename\*0\*=utf-8''/);
    expect(out).toMatch(/filename\*1\*=/);
    expect(parseMessage(out).walk().next() && [...parseMessage(out).iterAttachments()][0]!.getFilename()).toBe(name);
  });

  it('clear() empties the message; clearContent() keeps non-content headers', () => {
    const msg = new EmailMessage();
    msg.set('Subject', 's');
    msg.setContent('body');
    msg.clearContent();
    expect(msg.keys()).toEqual(['Subject', 'MIME-Version']);
    msg.clear();
    expect(msg.keys()).toEqual([]);
  });

  it('getContent: text as a string, bytes as a Buffer, message/rfc822 as an EmailMessage; multipart refuses', () => {
    const inner = new EmailMessage();
    inner.set('Subject', 'inner');
    inner.setContent('hi');
    const msg = new EmailMessage();
    msg.setContent('text');
    msg.addAttachment(inner);
    msg.addAttachment(Buffer.from([1, 2, 3]), { filename: 'a.bin' });
    const [textPart, rfc822, bin] = [...msg.iterParts()];
    expect(textPart!.getContent()).toBe('text\n');
    expect((rfc822!.getContent() as EmailMessage).get('subject')).toBe('inner');
    expect(bin!.getContent()).toEqual(Buffer.from([1, 2, 3]));
    expect(() => msg.getContent()).toThrow(MessageStructureError);
  });
});

describe('deterministic output', () => {
  it('the same message writes the same bytes twice (boundaries are fixed at the first write)', async () => {
    await fc.assert(fc.asyncProperty(messageSpec, async (spec) => {
      const msg = compose(spec, { seed: undefined as unknown as string });
      const a = await msg.asBytes();
      const b = await msg.asBytes();
      const chunks: Buffer[] = [];
      for await (const chunk of msg.stream()) chunks.push(chunk as Buffer);
      expect(b.equals(a)).toBe(true);
      expect(Buffer.concat(chunks).equals(a)).toBe(true);
    }), { numRuns: 25, seed: 11 });
  });

  it('with a boundary seed, two separately built messages are byte-identical', async () => {
    await fc.assert(fc.asyncProperty(messageSpec, async (spec) => {
      const a = await compose(spec, { seed: 's1' }).asBytes();
      const b = await compose(spec, { seed: 's1' }).asBytes();
      const c = await compose(spec, { seed: 's2' }).asBytes();
      expect(a.equals(b)).toBe(true);
      if (spec.html !== undefined || spec.attachments.length > 0) expect(a.equals(c)).toBe(false);
    }), { numRuns: 25, seed: 12 });
  });

  it('a file attachment ({ path }) can be written any number of times; a Readable once, then a typed error', async () => {
    const { Readable } = await import('node:stream');
    const { fileURLToPath } = await import('node:url');
    const msg = new EmailMessage({ boundarySeed: 'f' });
    msg.setContent('see attached');
    msg.addAttachment({ path: fileURLToPath(import.meta.url) });
    const a = await msg.asBytes();
    expect((await msg.asBytes()).equals(a)).toBe(true);
    expect([...msg.iterAttachments()][0]!.getFilename()).toBe('compose.test.ts');
    const once = new EmailMessage();
    once.addAttachment(Readable.from([Buffer.from('abc')]), { filename: 'x.bin' });
    await once.asBytes();
    await expect(once.asBytes()).rejects.toMatchObject({ code: 'ERR_EMAIL_CONTENT_UNAVAILABLE' });
  });

  it('policy.default writes CRLF; a clone with linesep "\\n" writes LF', async () => {
    const msg = new EmailMessage();
    msg.set('Subject', phrase(1).toString());
    msg.setContent('a\nb\n');
    expect((await msg.asBytes()).toString()).toContain('\r\n\r\na\r\nb\r\n');
    expect((await msg.asBytes({ policy: policy.default.clone({ linesep: '\n' }) })).toString()).not.toContain('\r');
  });
});
