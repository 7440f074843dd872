// The built package loads from ESM and from CommonJS, with types, and errors
// from the two builds still satisfy instanceof.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;
const run = (args: string[]) => execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' });

describe.runIf(existsSync(`${root}packages/smtplib/dist/cjs/index.js`))('built package', () => {
  it('loads with import', () => {
    const out = run(['--input-type=module', '-e', "import * as s from 'smtplib'; console.log(typeof s.SMTP, typeof s.SMTP_SSL, typeof s.LMTP, s.SMTP_PORT, s.SMTP_SSL_PORT, s.LMTP_PORT)"]);
    expect(out.trim()).toBe('function function function 25 465 2003');
  });
  it('loads with require, and errors cross the two builds', () => {
    const out = run(['--input-type=module', '-e', "import { createRequire } from 'node:module'; import * as esm from 'smtplib'; const cjs = createRequire(process.cwd() + '/')('smtplib'); const e = new cjs.SMTPDataError(554, 'no'); console.log(typeof cjs.SMTP, e instanceof esm.SMTPDataError, e instanceof esm.SMTPResponseException, e instanceof esm.SMTPSenderRefused, cjs.quoteaddr('A <a@b>'))"]);
    expect(out.trim()).toBe('function true true false <a@b>');
  });
  it('does not load node:http or node:https until OAuth is used (import and require)', () => {
    const http = "process.moduleLoadList.filter((m) => /^NativeModule (_?https?|_http_\\w+)$/.test(m)).join(',') || 'none'";
    expect(run(['--input-type=module', '-e', `await import('smtplib'); console.log(${http})`]).trim()).toBe('none');
    expect(run(['-e', `require('smtplib'); console.log(${http})`]).trim()).toBe('none');
  });
  it('ships type declarations for both', () => {
    expect(existsSync(`${root}packages/smtplib/dist/esm/index.d.ts`)).toBe(true);
    expect(existsSync(`${root}packages/smtplib/dist/cjs/index.d.ts`)).toBe(true);
  });
});
