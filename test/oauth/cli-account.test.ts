// An account with `auth oauth` in the CLI config: `smtplib send --account`
// logs in with the refresh token `auth login` saved (rotated tokens written
// back to the 0600 file), against an in-process mail server that checks every
// token by introspection at oidc-provider; a revoked grant ends with a
// message that names the command to run.

import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fileRefreshTokenStore } from 'smtplib';
import { assertBuilt, run } from '../cli/helpers.js';
import { revoke, signInWithBrowser, startMailServer, type MailServer } from './helpers.js';
import { CLI_CLIENT, startOidcServer, type OidcServer } from './oidc-server.js';

let oidc: OidcServer;
let mail: MailServer;
beforeAll(async () => {
  assertBuilt();
  oidc = await startOidcServer({ accessTtl: 60 });
  mail = await startMailServer(oidc);
});
afterAll(async () => {
  await mail?.close();
  await oidc?.close();
});

function writeConfig(dir: string, tokenFile: string): string {
  const file = join(dir, 'config');
  writeFileSync(
    file,
    [
      'account work',
      'host 127.0.0.1',
      `port ${mail.port}`,
      'tls none',
      'user lee@example.test',
      'from lee@example.test',
      'auth oauth',
      'oauth_provider oidc',
      `oauth_issuer ${oidc.issuer}`,
      `oauth_client_id ${CLI_CLIENT}`,
      'oauth_scope openid offline_access smtp',
      `oauth_token_file ${tokenFile}`,
      '',
    ].join('\n'),
  );
  chmodSync(file, 0o600);
  return file;
}

describe('accounts with auth oauth', () => {
  test('send --account logs in with the saved refresh token and writes the rotated one back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oauth-account-'));
    const tokenFile = join(dir, 'work.token');
    const signIn = await signInWithBrowser(oidc, 'lee@example.test');
    await fileRefreshTokenStore(tokenFile).save(signIn.refreshToken!);
    const config = writeConfig(dir, tokenFile);
    const result = await run(['send', '--account', 'work', '--to', 'b@example.test', '--subject', 'oauth account', '--body', 'hi'], { env: { SMTPLIB_CONFIG: config } });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(mail.accepted).toContain('lee@example.test');
    const rotated = readFileSync(tokenFile, 'utf8').trim();
    expect(rotated).not.toBe(signIn.refreshToken);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(result.stdout + result.stderr).not.toContain(rotated);

    // The grant is revoked: the user is told what to run.
    await revoke(oidc, rotated);
    const refused = await run(['send', '--account', 'work', '--to', 'b@example.test', '--subject', 'after revocation', '--body', 'hi'], { env: { SMTPLIB_CONFIG: config } });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/the refresh token expired or was revoked \(invalid_grant.*\): run smtplib auth login --account work again to sign in/);
  });

  test('auth oauth without a provider is a configuration error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oauth-account-'));
    const file = join(dir, 'config');
    writeFileSync(file, `account half\nhost 127.0.0.1\nport ${mail.port}\ntls none\nuser x@example.test\nfrom x@example.test\nauth oauth\n`);
    const result = await run(['send', '--account', 'half', '--to', 'b@example.test', '--subject', 's', '--body', 'b'], { env: { SMTPLIB_CONFIG: file } });
    expect(result.code).toBe(78);
    expect(result.stderr).toMatch(/has auth oauth but no oauth_provider \/ oauth_client_id/);
  });
});
