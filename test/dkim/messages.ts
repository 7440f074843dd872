// The messages DKIM is tested on: ordinary ones and the hard cases (folded
// headers, empty bodies, no final line end, whitespace, UTF-8 headers, lines
// that need dot-stuffing), and the input shapes a message can arrive in.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { MessageInput } from 'smtplib';

const HEAD = 'From: Alice Example <alice@example.com>\r\nTo: Bob <bob@example.org>\r\nSubject: DKIM test\r\nDate: Sat, 05 Dec 2026 21:00:00 +0000\r\nMessage-ID: <dkim-test@example.com>\r\n';

export interface Case {
  name: string;
  /** Verifiers known to reject it under simple header canonicalization, and why. */
  simpleHeaderLimitation?: { verifier: 'opendkim'; reason: string };
  bytes: Buffer;
  /** Needs SMTPUTF8 (sent with sendMessage so the client asks for it). */
  utf8?: boolean;
}

const longSubject = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ');
const manyRecipients = Array.from({ length: 12 }, (_, i) => `Recipient Number ${i} <r${i}@example.org>`).join(',\r\n\t');

export const HARD_CASES: readonly Case[] = [
  { name: 'plain', bytes: Buffer.from(`${HEAD}\r\nHello Bob,\r\n\r\nthis is a signed message.\r\n`) },
  {
    name: 'long folded headers',
    bytes: Buffer.from(
      `From: Alice Example <alice@example.com>\r\nTo: ${manyRecipients}\r\nSubject: ${longSubject.slice(0, 60)}\r\n  ${longSubject.slice(60)}\r\n` +
        `Date: Sat, 05 Dec 2026 21:00:00 +0000\r\nX-Long: ${'x'.repeat(900)}\r\nReferences: <a@b>\r\n\t<c@d>\r\n \t <e@f>\r\n\r\nbody\r\n`,
    ),
  },
  { name: 'empty body', bytes: Buffer.from(`${HEAD}\r\n`) },
  { name: 'no body, no blank line', bytes: Buffer.from(HEAD) },
  { name: 'body without final CRLF', bytes: Buffer.from(`${HEAD}\r\nfirst line\r\nlast line without a line end`) },
  { name: 'bare LF line ends', bytes: Buffer.from(`${HEAD}\r\nunix\nline ends\n\nand a bare CR\rhere\n`.replace(/\r\n/g, '\n')) },
  {
    name: 'trailing whitespace',
    bytes: Buffer.from(`${HEAD}X-Spaced: spaced \t out  \r\n\r\ntrailing spaces   \r\n\t tabs\t\t\r\n   \r\nin  the\t middle\r\nend \t \r\n\r\n\r\n\r\n`),
  },
  {
    // Not one space after the colon: OpenDKIM's milter path rebuilds "Name: value"
    // and so cannot verify these under simple header canonicalization.
    name: 'unusual colon spacing',
    simpleHeaderLimitation: {
      verifier: 'opendkim',
      reason: "OpenDKIM's milter interface passes header values without their exact whitespace after the colon, so c=simple/* signatures over such fields fail there",
    },
    bytes: Buffer.from(`${HEAD.replace('Subject: DKIM test', 'Subject:   DKIM test')}X-None:none\r\n\r\nbody\r\n`),
  },
  {
    name: 'UTF-8 headers under SMTPUTF8',
    utf8: true,
    bytes: Buffer.from(
      'From: Jörg Müller <jörg@example.com>\r\nTo: Zoë <zoë@example.org>\r\nSubject: Grüße aus Köln 😀\r\nDate: Sat, 05 Dec 2026 21:00:00 +0000\r\n' +
        'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSchöne Grüße — ünïcødé body.\r\n',
    ),
  },
  {
    name: 'dot-stuffing',
    bytes: Buffer.from(`${HEAD}\r\n.\r\n..\r\n.leading dot\r\n\r\n.\r\nend\r\n.`),
  },
];

/** A message past the spool threshold (1 MiB), with hard-case lines throughout. */
export function largeCase(): Case {
  const block = '.dotted line with trailing space \r\nwords  with\t\truns of  whitespace\r\n\r\n';
  return { name: 'large (1.1 MB)', bytes: Buffer.from(`${HEAD}\r\n${block.repeat(Math.ceil(1_100_000 / block.length))}last line`) };
}

export type InputKind = 'string' | 'Buffer' | 'file' | 'stream' | 'EmailMessage';
export const INPUT_KINDS: readonly InputKind[] = ['string', 'Buffer', 'file', 'stream', 'EmailMessage'];

/** Splits bytes into chunks of awkward sizes (so CRLFs and whitespace runs straddle chunks). */
export function chunked(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

/**
 * A stand-in with EmailMessage's serialization contract (a deterministic
 * stream()), as smtplib-email implements it: the core depends on that shape
 * only. It counts its serializations, so a test can see it was read twice.
 */
export class SerializedMessage {
  serializations = 0;
  constructor(private readonly bytes: Buffer) {}
  stream(): Readable {
    this.serializations++;
    return Readable.from(chunked(this.bytes, 4093));
  }
}

export function toInput(kind: InputKind, bytes: Buffer, dir: string, name: string): MessageInput {
  switch (kind) {
    case 'string':
      return bytes.toString('utf8');
    case 'Buffer':
      return bytes;
    case 'file': {
      const path = join(dir, `${name.replace(/\W+/g, '-')}-${Math.random().toString(36).slice(2)}.eml`);
      writeFileSync(path, bytes);
      return { path };
    }
    case 'stream':
      return Readable.from(chunked(bytes, 997));
    case 'EmailMessage':
      return new SerializedMessage(bytes);
  }
}
