// Parsing: hand-written hard cases (hard-cases.ts) read by us and by
// Python's email must give the same tree — types, filenames, charsets,
// dispositions, decoded content and the defects recorded — and round trips:
// an untouched parsed message writes back byte for byte; a touched one keeps
// every untouched part.

import { domainToASCII } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EmailMessage, parseMessage } from 'smtplib-email';
import { compose, messageSpec, normalText, ourTree, pythonMissing, pythonTrees } from './helpers.js';
import { HARD_CASES } from './hard-cases.js';

const names = Object.keys(HARD_CASES);

type Part = { type: string; filename: string | null; disposition: string | null; charset: string | null; cid: string | null; text?: string; bytes?: string; error?: string; defects?: string[] };

/**
 * Both views reduced for comparison. Normalizations, each for a stated reason:
 * - text line ends: Python keeps the wire's CRLF in decoded text;
 * - content errors compared by presence (the exception classes differ by language);
 * - an unknown charset: Python's get_content raises LookupError, we decode as
 *   UTF-8 and record UndecodableBytesDefect; the part is compared without its content.
 */
function comparable(parts: Part[]): unknown[] {
  return parts.map((p) => {
    const unknownCharset = p.error === 'LookupError' || (p.defects ?? []).includes('UndecodableBytesDefect');
    return {
      type: p.type,
      filename: p.filename,
      disposition: p.disposition,
      charset: p.charset,
      cid: p.cid,
      bytes: p.bytes,
      text: p.text === undefined || unknownCharset ? undefined : normalText(p.text),
      error: p.error === undefined || unknownCharset ? undefined : true,
      defects: [...new Set((p.defects ?? []).filter((d) => d !== 'UndecodableBytesDefect'))].sort(),
    };
  });
}

describe('parse: the hard cases, against Python\'s email', () => {
  it(`${names.length} hand-written messages give the same tree and defects as BytesParser(policy=default)`, async () => {
    if (pythonMissing()) return;
    const bytes = names.map((n) => HARD_CASES[n]!);
    const trees = await pythonTrees(bytes);
    let agree = 0;
    const report: string[] = [];
    names.forEach((name, i) => {
      const py = trees[i]!;
      const ours = ourTree(bytes[i]!);
      // Python lists message-level defects on msg.defects; they are the root part's.
      const pyParts = py.parts.map((p, j) => ({ ...p, defects: [...(p.defects ?? []), ...(j === 0 ? py.defects : [])] }));
      // Headers: decoded values, and (name, address) pairs for address fields.
      // Content-Type/-Disposition are compared through the parts' type, charset and
      // filename (Python re-quotes their parameters in str(header)).
      const headers = (list: typeof ours.headers) => list.map((h) => ({
        name: h.name.toLowerCase(),
        value: /^content-(type|disposition)$/i.test(h.name) ? undefined : h.value,
        addresses: h.addresses,
      }));
      const a = JSON.stringify([comparable(ours.parts), headers(ours.headers)]);
      const b = JSON.stringify([comparable(pyParts), headers(py.headers)]);
      if (a === b) agree++;
      else report.push(`${name}:\n ours ${a}\n   py ${b}`);
    });
    console.log(`hard cases: ${agree}/${names.length} agree with Python\n${report.join('\n')}`);
    expect(report).toEqual([]);
  });
});

/** A part-by-part view of an EmailMessage (composed or parsed), for round trips. */
function treeOf(msg: EmailMessage, ascii = false): unknown[] {
  return [...msg.walk()].map((p) => {
    let content: unknown;
    if (!p.isMultipart()) {
      try {
        const c = p.getContent();
        content = typeof c === 'string' ? c : Buffer.isBuffer(c) ? c.toString('base64') : 'message';
      } catch (e) { content = `error ${(e as Error).name}`; }
    }
    const headers = p.items().filter(([n]) => !/^content-type$/i.test(n)).map(([n, v]) => (/^(from|to|cc)$/i.test(n)
      ? [n, p.getAddresses(n).map((a) => [a.displayName, a.username, ascii ? domainToASCII(a.domain) : a.domain])]
      : [n, v]));
    return { type: p.getContentType(), filename: p.getFilename(), cid: p.get('content-id'), disposition: p.getContentDisposition(), headers, content };
  });
}

describe('round trips', () => {
  it('compose → write → parse gives the same tree (headers, types, names, decoded content)', async () => {
    let checked = 0;
    await fc.assert(fc.asyncProperty(messageSpec, async (spec) => {
      const msg = compose(spec);
      const bytes = await msg.asBytes();
      // The writer's one change: IDN domains go as punycode under the default policy.
      expect(treeOf(parseMessage(bytes))).toEqual(treeOf(msg, true));
      checked++;
    }), { numRuns: 100, seed: 3 });
    console.log(`round trip compose→parse: ${checked} messages, all equal`);
  });

  it('parse → write of an untouched message is byte-identical (generated and hard cases, CRLF and LF)', async () => {
    const samples = await Promise.all(fc.sample(messageSpec, { numRuns: 100, seed: 4 }).map((s) => compose(s).asBytes()));
    const all = [...samples, ...Object.values(HARD_CASES), ...samples.slice(0, 20).map((b) => Buffer.from(b.toString('latin1').replace(/\r\n/g, '\n'), 'latin1'))];
    for (const bytes of all) {
      const parsed = parseMessage(bytes);
      expect((await parsed.asBytes()).equals(bytes)).toBe(true);
      const streamed: Buffer[] = [];
      for await (const chunk of parsed.stream()) streamed.push(chunk as Buffer);
      expect(Buffer.concat(streamed).equals(bytes)).toBe(true);
    }
    console.log(`round trip parse→write untouched: ${all.length} messages byte-identical`);
  });

  it('a touched message is rewritten around its untouched parts: same tree, and each untouched leaf\'s bytes reappear verbatim', async () => {
    const samples = await Promise.all(fc.sample(messageSpec, { numRuns: 60, seed: 5 }).map((s) => compose(s).asBytes()));
    for (const bytes of [...samples, HARD_CASES['nested multiparts with message/rfc822, preamble and epilogue']!, HARD_CASES['RFC 2231 continuations, encoded and plain sections, charset and language']!]) {
      const parsed = parseMessage(bytes);
      const leaves = [...parsed.walk()].filter((p) => !p.isMultipart());
      const deepest = leaves[leaves.length - 1]!;
      deepest.set('X-Touched', 'yes');
      parsed.set('Subject', 'changed subject');
      const before = treeOf(parsed);
      const rewritten = await parsed.asBytes();
      expect(treeOf(parseMessage(rewritten))).toEqual(before);
      for (const leaf of leaves.slice(0, -1)) {
        const leafBytes = await leaf.asBytes();
        expect(rewritten.includes(leafBytes)).toBe(true);
      }
    }
  });
});
