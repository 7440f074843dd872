// Differential: messages generated from a model (fast-check) are composed
// and written by us, then read by three parsers — ours, Python's email
// (BytesParser, policy.default) and postal-mime — and each reading is compared
// with the model: headers, decoded text and HTML, attachment names, types,
// charsets and bytes. Plus hard cases written by hand.

import { domainToASCII } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeEncodedWords, parseMessage, SMTPUTF8 } from 'smtplib-email';
import { compose, messageSpec, normalText, ourTree, postalView, pythonMissing, pythonTrees, type MessageSpec, type TreeView } from './helpers.js';

const CORPUS = Number(process.env.EMAIL_DIFF_RUNS ?? 120);

function asciiAddress(addr: string): string {
  const at = addr.lastIndexOf('@');
  return `${addr.slice(0, at)}@${domainToASCII(addr.slice(at + 1))}`;
}

/** What every parser should find, from the model. */
function expected(spec: MessageSpec, utf8: boolean) {
  const address = (a: string): string => (utf8 ? a : asciiAddress(a));
  return {
    subject: spec.subject,
    from: [[spec.from[0], address(spec.from[1])]],
    to: spec.to.map(([n, a]) => [n, address(a)]),
    text: normalText(spec.text),
    html: spec.html === undefined ? undefined : normalText(spec.html),
    // In tree order: inline images sit in the HTML's multipart/related, before the attachments.
    attachments: [...spec.attachments.filter((a) => a.inline && spec.html !== undefined), ...spec.attachments.filter((a) => !(a.inline && spec.html !== undefined))]
      .map((a) => ({ filename: a.filename, bytes: Buffer.from(a.bytes).toString('base64') })),
  };
}

function fromTree(tree: TreeView) {
  const header = (name: string) => tree.headers.find((h) => h.name.toLowerCase() === name);
  const leaves = tree.parts.filter((p) => !p.type.startsWith('multipart/'));
  return {
    subject: header('subject')?.value,
    from: header('from')?.addresses,
    to: header('to')?.addresses,
    text: leaves.find((p) => p.type === 'text/plain' && p.disposition === null)?.text,
    html: leaves.find((p) => p.type === 'text/html')?.text,
    attachments: leaves.filter((p) => p.filename !== null).map((p) => ({ filename: p.filename, bytes: p.bytes })),
  };
}

/** The fields that differ, both sides, for the failure message. */
function differences(actual: Record<string, unknown>, want: Record<string, unknown>): string {
  return Object.keys(want)
    .filter((k) => JSON.stringify(actual[k]) !== JSON.stringify(want[k]))
    .map((k) => `${k}:\n  got  ${JSON.stringify(actual[k])}\n  want ${JSON.stringify(want[k])}`)
    .join('\n');
}

describe('differential: our writer, read by three parsers', () => {
  const specs = fc.sample(messageSpec, { numRuns: CORPUS, seed: 20261205 });
  const cases = specs.flatMap((spec, i) => [
    { spec, utf8: false, name: `#${i} default` },
    ...(i % 4 === 0 ? [{ spec, utf8: true, name: `#${i} SMTPUTF8` }] : []),
  ]);

  it(`${cases.length} generated messages: ours and Python's email read back the model`, async () => {
    const bytes = await Promise.all(cases.map((c) => compose(c.spec, c.utf8 ? { policy: SMTPUTF8 } : {}).asBytes()));
    for (const b of bytes) for (const line of b.toString('latin1').split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);
    const mismatches = { ours: 0, python: 0 };
    const ours = bytes.map((b) => fromTree(ourTree(b)));
    cases.forEach((c, i) => {
      const diff = differences(ours[i]!, expected(c.spec, c.utf8));
      if (diff) { mismatches.ours++; if (mismatches.ours < 4) console.log(c.name, diff); }
    });
    if (!pythonMissing()) {
      const trees = await pythonTrees(bytes);
      cases.forEach((c, i) => {
        const tree = trees[i]!;
        const defects = [...(tree.defects ?? []), ...tree.parts.flatMap((p) => (p as { defects?: string[] }).defects ?? [])];
        // Normalization: Python's get_content() keeps the wire's CRLF line ends in text.
        for (const p of tree.parts) if (p.text !== undefined) p.text = normalText(p.text);
        // Normalization: Python 3.11 keeps (even adds) white space between adjacent
        // encoded words in a display name, which RFC 2047 §6.2 says to drop; where
        // the header has adjacent encoded words, names are compared without white space.
        const raw = bytes[i]!.toString('latin1');
        for (const h of tree.headers) {
          const field = new RegExp(`^${h.name}:(.*(?:\r\n[ \t].*)*)`, 'mi').exec(raw)?.[1] ?? '';
          if (h.addresses && /\?=\s+=\?/.test(field)) h.addresses = h.addresses.map(([n, a]) => [n.replace(/\s+/g, ''), a]);
        }
        const want = expected(c.spec, c.utf8);
        const squeezed = (list: string[][]) => list.map(([n, a]) => [n!.replace(/\s+/g, ''), a!]);
        const got = fromTree(tree);
        for (const key of ['from', 'to'] as const) {
          if (JSON.stringify(got[key]) !== JSON.stringify(want[key]) && JSON.stringify(got[key]) === JSON.stringify(squeezed(want[key]))) want[key] = squeezed(want[key]);
        }
        const diff = tree.crash ?? (differences(got, want) + (defects.length ? `defects: ${defects}` : ''));
        if (diff) { mismatches.python++; if (mismatches.python < 4) console.log(c.name, diff); }
      });
    }
    console.log(`differential (writer → ours, Python): ${cases.length} messages, mismatches ${JSON.stringify(mismatches)}`);
    expect(mismatches).toEqual({ ours: 0, python: 0 });
  });

  it(`${cases.length} generated messages: postal-mime reads back the model`, async () => {
    let mismatches = 0;
    for (const c of cases) {
      const b = await compose(c.spec, c.utf8 ? { policy: SMTPUTF8 } : {}).asBytes();
      const view = await postalView(b);
      const want = expected(c.spec, c.utf8);
      // Normalization: inside a multipart, postal-mime keeps the line end that
      // RFC 2046 §5.1.1 gives to the boundary delimiter (one extra "\n").
      // Base64 bodies are decoded without it.
      const multipart = c.spec.html !== undefined || c.spec.attachments.length > 0;
      const parsed = parseMessage(b);
      const keepsEol = (subtype: string) => multipart && parsed.getBody([subtype])?.get('content-transfer-encoding') !== 'base64';
      const postalText = (t: string | undefined, subtype: string) => (t === undefined ? undefined : normalText(keepsEol(subtype) ? t.replace(/\r?\n$/, '') : t));
      const diff = differences({
          subject: view.subject,
          from: [view.from],
          to: view.to,
          text: postalText(view.text, 'plain'),
          html: postalText(view.html, 'html'),
          attachments: view.attachments.map((a) => ({ filename: a.filename, bytes: a.bytes })),
        }, {
          ...want,
          // Normalization: postal-mime also decodes RFC 2047 look-alikes inside an
          // RFC 2231 value (which RFC 2231 does not ask for); the model's name is read the same way.
          attachments: want.attachments.map((a) => ({ ...a, filename: decodeEncodedWords(a.filename).text })),
        });
      if (diff) { mismatches++; if (mismatches < 4) console.log(c.name, diff); }
    }
    console.log(`differential (writer → postal-mime): ${cases.length} messages, mismatches ${mismatches}`);
    expect(mismatches).toBe(0);
  });
});
