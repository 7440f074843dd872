// The CLI builds its messages with smtplib-email: `smtplib send` with
// --body, --html, --inline and --attach against the debugging server, and the
// received bytes read back by our parser and by Python's email.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseMessage } from 'smtplib-email';
import { startDebugServer } from '../../packages/cli/src/serve.js';
import { assertBuilt, run, tempDir } from '../cli/helpers.js';
import { pythonMissing, pythonTrees } from './helpers.js';

beforeAll(assertBuilt);
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('smtplib send builds with smtplib-email', () => {
  it('--body + --html + --inline + --attach: text/HTML alternatives, the image related to the HTML, the file attached', async () => {
    const s = await startDebugServer({ port: 0 });
    cleanups.push(() => s.close());
    const t = tempDir();
    cleanups.push(t.cleanup);
    const html = join(t.dir, 'page.html');
    writeFileSync(html, '<p>Grüße <img src="cid:logo"></p>\n');
    const png = join(t.dir, 'logo.png');
    const pngBytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
    writeFileSync(png, pngBytes);
    const pdf = join(t.dir, 'Résumé.pdf');
    writeFileSync(pdf, '%PDF-1.4\n');
    const r = await run(['send', '--server', `127.0.0.1:${s.port}`, '--tls', 'none', '--from', 'Zoë <zoe@example.test>', '--to', 'bob@example.test', '--bcc', 'hidden@example.test',
      '--subject', 'Grüße', '--body', 'Hello in text', '--html', html, '--inline', `logo=${png}`, '--attach', pdf]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const raw = s.messages[0]!.raw;
    expect(raw.toString('latin1')).not.toMatch(/[^\x00-\x7f]/); // 7-bit: encoded words, QP/base64
    expect(raw.toString()).not.toContain('hidden@example.test');
    const msg = parseMessage(raw);
    expect([...msg.walk()].map((p) => p.getContentType())).toEqual(['multipart/mixed', 'multipart/alternative', 'text/plain', 'multipart/related', 'text/html', 'image/png', 'application/pdf']);
    expect(msg.get('subject')).toBe('Grüße');
    expect(msg.getAddresses('from')[0]!.displayName).toBe('Zoë');
    expect(msg.get('message-id')).toMatch(/@example\.test>$/);
    expect(msg.getBody(['plain'])!.getContent()).toBe('Hello in text\n');
    expect(msg.getBody(['html'])!.getContent()).toBe('<p>Grüße <img src="cid:logo"></p>\n');
    const image = [...msg.walk()].find((p) => p.getContentType() === 'image/png')!;
    expect(image.get('content-id')).toBe('<logo>');
    expect(image.getContent()).toEqual(pngBytes);
    expect([...msg.iterAttachments()].map((p) => [p.getFilename(), String(p.getContent())])).toEqual([['Résumé.pdf', '%PDF-1.4\n']]);
    if (!pythonMissing()) {
      const [py] = await pythonTrees([raw]);
      expect(py!.parts.map((p) => [p.type, p.filename])).toEqual([...msg.walk()].map((p) => [p.getContentType(), p.getFilename() ?? null]));
      expect(py!.defects).toEqual([]);
    }
  });

  it('--inline without --html is a usage error (exit 64)', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const r = await run(['send', '--server', '127.0.0.1:9', '--tls', 'none', '--from', 'a@example.test', '--to', 'b@example.test', '--body', 'x', '--inline', `x=${join(t.dir, 'x.png')}`]);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/--inline images need an HTML body/);
  });

  it('a CR or LF in --header is refused (exit 64), never folded into a new header', async () => {
    const r = await run(['send', '--server', '127.0.0.1:9', '--tls', 'none', '--from', 'a@example.test', '--to', 'b@example.test', '--body', 'x', '--header', 'X-A: 1\r\nBcc: victim@example.test']);
    expect(r.code).toBe(64);
  });
});
