// The CLI signs with --dkim-key/--dkim-selector/--dkim-domain (send) and with
// an account's dkim_key/dkim_selector/dkim_domain (sendmail); what the server
// stored verifies with dkimpy, OpenDKIM and mailauth.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../integration/helpers.js';
import { assertBuilt, run } from '../cli/helpers.js';
import { DOMAIN, makeKeys, verifierGate, verifyAll, VERIFIERS, type TestKeys } from './verifiers.js';

const gate = verifierGate();
const MESSAGE = 'From: alice@example.com\nTo: bob@example.org\nSubject: from the CLI\nDate: Sat, 05 Dec 2026 21:00:00 +0000\n\n.a line with a dot\n';

describe.skipIf(gate.skip)('CLI DKIM flags and account keys', () => {
  let keys: TestKeys;
  let server: TestServer;
  beforeAll(async () => {
    assertBuilt();
    keys = makeKeys();
    writeFileSync(join(keys.dir, 'rsa.pem'), keys.rsa.pem);
    writeFileSync(join(keys.dir, 'ed.pem'), keys.ed25519.pem);
    writeFileSync(join(keys.dir, 'message.eml'), MESSAGE);
    server = await startServer();
  });
  afterAll(async () => {
    await server?.close();
    keys?.cleanup();
  });

  it('send --dkim-key/--dkim-selector/--dkim-domain signs; sendmail signs with the account keys; both verify', async () => {
    const sent = await run(['send', '--server', `127.0.0.1:${server.port}`, '--tls', 'none', '--message', join(keys.dir, 'message.eml'),
      '--dkim-key', join(keys.dir, 'rsa.pem'), '--dkim-selector', keys.rsa.selector, '--dkim-domain', DOMAIN]);
    expect(sent.code, sent.stderr).toBe(0);
    const viaSend = server.received.at(-1)!.data;
    writeFileSync(join(keys.dir, 'config'), `account signed\nhost 127.0.0.1\nport ${server.port}\ntls off\nfrom alice@example.com\n` +
      `dkim_key ${join(keys.dir, 'ed.pem')}\ndkim_selector ${keys.ed25519.selector}\ndkim_domain ${DOMAIN}\naccount default : signed\n`);
    const viaSendmail = await run(['sendmail', '-t'], { input: MESSAGE, env: { SMTPLIB_CONFIG: join(keys.dir, 'config') } });
    expect(viaSendmail.code, viaSendmail.stderr).toBe(0);
    const stored = server.received.at(-1)!.data;
    expect(viaSend.toString()).toMatch(/^DKIM-Signature: v=1; a=rsa-sha256;/);
    expect(stored.toString()).toMatch(/^DKIM-Signature: v=1; a=ed25519-sha256;/);
    const verdicts = await verifyAll(keys, [viaSend, stored]);
    for (const v of verdicts) for (const name of VERIFIERS) expect(v[name], name).toEqual([true]);
  });

  it('a missing part of the DKIM settings is a usage error (64), an unreadable key 66, a bad selector fails; nothing is sent', async () => {
    const before = server.received.length;
    const base = ['send', '--server', `127.0.0.1:${server.port}`, '--tls', 'none', '--message', join(keys.dir, 'message.eml')];
    const partial = await run([...base, '--dkim-key', join(keys.dir, 'rsa.pem'), '--dkim-domain', DOMAIN]);
    expect(partial.code).toBe(64);
    expect(partial.stderr).toMatch(/DKIM needs a key, a selector and a domain/);
    const missing = await run([...base, '--dkim-key', join(keys.dir, 'nope.pem'), '--dkim-selector', 's', '--dkim-domain', DOMAIN]);
    expect(missing.code).toBe(66);
    const badSelector = await run([...base, '--dkim-key', join(keys.dir, 'rsa.pem'), '--dkim-selector', 'bad_selector', '--dkim-domain', DOMAIN]);
    expect(badSelector.code).not.toBe(0); // the CLI maps SMTPInvalidArgumentError to its own code (65 today)
    expect(badSelector.stderr).toMatch(/selector/);
    expect(badSelector.stderr).not.toContain(keys.rsa.pem.split('\n')[8]!);
    expect(server.received.length).toBe(before);
  });
});
