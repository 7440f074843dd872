// login(user, { provider }) and SMTPPool({ auth: { provider } }) against an
// in-process smtp-server that validates each bearer token the way a mail
// server does: RFC 7662 introspection at the real oidc-provider. Tokens are
// revoked at the provider, scopes narrowed, grants withdrawn; the client must
// refresh exactly once where that helps and explain itself where it does not.

import { inspect } from 'node:util';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { clientCredentialsProvider, refreshTokenProvider, SMTP, SMTPAuthenticationError, SMTPNotSupportedError, SMTPPool, type OAuthFailure, type TokenProvider } from 'smtplib';
import { APP_CLIENT, CLI_CLIENT, startOidcServer, type OidcServer } from './oidc-server.js';
import { introspect, revoke, signInWithBrowser, startMailServer, withdrawAccessToken, type MailServer } from './helpers.js';

let oidc: OidcServer;
let mail: MailServer;

beforeAll(async () => {
  oidc = await startOidcServer({ accessTtl: 60 });
  mail = await startMailServer(oidc);
});
afterAll(async () => {
  await mail?.close();
  await oidc?.close();
});

const message = 'From: a@example.test\r\nTo: b@example.test\r\nSubject: oauth\r\n\r\nhello\r\n';

async function signedInProvider(user: string, scope?: string): Promise<{ provider: TokenProvider & { requests: number }; refreshToken: string }> {
  const signIn = await signInWithBrowser(oidc, user);
  let refreshToken = signIn.refreshToken!;
  const provider = refreshTokenProvider({
    tokenUrl: oidc.tokenUrl,
    ca: oidc.ca,
    clientId: CLI_CLIENT,
    refreshToken,
    ...(scope ? { scope } : {}),
    store: { save: (t) => void (refreshToken = t) },
  }) as TokenProvider & { requests: number };
  return { provider, get refreshToken() { return refreshToken; } };
}

async function withClient<T>(run: (smtp: SMTP) => Promise<T>): Promise<T> {
  const smtp = new SMTP({ host: '127.0.0.1', port: mail.port });
  await smtp.connect();
  try {
    return await run(smtp);
  } finally {
    smtp.close();
  }
}

describe('login(user, { provider })', () => {
  test('logs in with XOAUTH2 and sends', async () => {
    const { provider } = await signedInProvider('dana@example.test');
    await withClient(async (smtp) => {
      const reply = await smtp.login('dana@example.test', { provider });
      expect(reply.code).toBe(235);
      await smtp.sendmail('a@example.test', ['b@example.test'], message);
    });
    expect(mail.accepted).toContain('dana@example.test');
    expect(provider.requests).toBe(1);
  });

  test('an access token withdrawn at the provider: 334 JSON error, one refresh, one retry, success', async () => {
    const { provider } = await signedInProvider('erin@example.test');
    const stale = await provider.getToken();
    await withdrawAccessToken(oidc, stale);
    expect(await introspect(oidc, stale)).toEqual({ active: false });
    const attempts = mail.authAttempts;
    await withClient((smtp) => smtp.login('erin@example.test', { provider }));
    expect(mail.authAttempts - attempts).toBe(2);
    expect(provider.requests).toBe(2);
    expect(await provider.getToken()).not.toBe(stale);
  });

  test('the same with a bare 535 (Microsoft 365 style)', async () => {
    const { provider } = await signedInProvider('finn@example.test');
    await withdrawAccessToken(oidc, await provider.getToken());
    mail.style = 'bare535';
    try {
      await withClient((smtp) => smtp.login('finn@example.test', { provider }));
    } finally {
      mail.style = 'challenge';
    }
    expect(provider.requests).toBe(2);
  });

  test('the grant revoked: the error says so and what to run', async () => {
    const signedIn = await signedInProvider('gwen@example.test');
    await signedIn.provider.getToken();
    // Revoking the refresh token withdraws the whole grant, access tokens included.
    await revoke(oidc, signedIn.refreshToken);
    const error = await withClient((smtp) => smtp.login('gwen@example.test', { provider: signedIn.provider })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SMTPAuthenticationError);
    const failure = (error as { oauth: OAuthFailure }).oauth;
    expect(failure).toMatchObject({ reason: 'revoked', attempts: 1, serverError: { status: 'invalid_token', scope: 'smtp' } });
    expect((error as Error).message).toMatch(
      /^AUTH XOAUTH2 failed: 535 .* — the server refused an access token that had not expired yet: it was revoked, and no new token could be had: the refresh token expired or was revoked \(invalid_grant.*\): run smtplib auth login again to sign in/,
    );
    expect((error as Error & { cause: unknown }).cause).toMatchObject({ code: 'ERR_SMTP_OAUTH', kind: 'reauthorize' });
    expect(signedIn.provider.requests).toBe(2);
  });

  test('a fresh token refused again is "revoked", after exactly one retry', async () => {
    const { provider } = await signedInProvider('hugo@example.test');
    // The mailbox is someone else's: every token is refused.
    const error = await withClient((smtp) => smtp.login('somebody-else@example.test', { provider })).catch((e: unknown) => e);
    expect((error as { oauth: OAuthFailure }).oauth).toMatchObject({ reason: 'revoked', attempts: 2 });
    expect((error as Error).message).toMatch(/refused a freshly issued token/);
    expect(provider.requests).toBe(2);
  });

  test('wrong scope: no pointless retry, and the scope the server wants', async () => {
    const { provider } = await signedInProvider('ivy@example.test', 'openid offline_access');
    const attempts = mail.authAttempts;
    const error = await withClient((smtp) => smtp.login('ivy@example.test', { provider })).catch((e: unknown) => e);
    expect((error as { oauth: OAuthFailure }).oauth).toMatchObject({ reason: 'scope', attempts: 1, serverError: { status: 'insufficient_scope' } });
    expect((error as Error).message).toMatch(/lacks the scope the mail server needs \(the server asks for scope "smtp"\)/);
    expect(mail.authAttempts - attempts).toBe(1);
    expect(provider.requests).toBe(1);
  });

  test('a server without XOAUTH2/OAUTHBEARER: SMTPNotSupportedError, and no token is requested', async () => {
    const plainOnly = new SMTPServer({ disabledCommands: ['STARTTLS'], authMethods: ['PLAIN'], allowInsecureAuth: true, logger: false });
    await new Promise<void>((resolve) => plainOnly.listen(0, '127.0.0.1', () => resolve()));
    const provider = refreshTokenProvider({ tokenUrl: oidc.tokenUrl, ca: oidc.ca, clientId: CLI_CLIENT, refreshToken: 'never-used' }) as TokenProvider & { requests: number };
    const smtp = new SMTP({ host: '127.0.0.1', port: (plainOnly.server.address() as AddressInfo).port });
    try {
      await smtp.connect();
      await expect(smtp.login('x@example.test', { provider })).rejects.toBeInstanceOf(SMTPNotSupportedError);
    } finally {
      smtp.close();
      await new Promise<void>((resolve) => plainOnly.close(() => resolve()));
    }
    expect(provider.requests).toBe(0);
  });

  test('the debug transcript shows AUTH with the token masked', async () => {
    const { provider } = await signedInProvider('kai@example.test');
    const lines: string[] = [];
    const smtp = new SMTP({ host: '127.0.0.1', port: mail.port, debugLevel: 2, debugOutput: (line: string) => void lines.push(line) });
    await smtp.connect();
    try {
      await smtp.login('kai@example.test', { provider });
    } finally {
      smtp.close();
    }
    const transcript = lines.join('\n');
    expect(transcript).toMatch(/AUTH XOAUTH2 \*\*\*\*/);
    const token = await provider.getToken();
    expect(transcript).not.toContain(token);
    expect(transcript).not.toContain(Buffer.from(`user=kai@example.test\x01auth=Bearer ${token}\x01\x01`).toString('base64'));
  });

  test('no token is shown by util.inspect or JSON.stringify of the error', async () => {
    const { provider } = await signedInProvider('jon@example.test');
    const token = await provider.getToken();
    const error = await withClient((smtp) => smtp.login('not-jon@example.test', { provider })).catch((e: unknown) => e);
    const shown = `${inspect(error, { depth: 10, showHidden: true })} ${JSON.stringify(error)}`;
    expect(shown).not.toContain(token);
    expect(shown).not.toContain(await provider.getToken().catch(() => 'none'));
  });
});

describe('SMTPPool with a provider', () => {
  test('50 parallel sends trigger one token request (counted at the provider)', async () => {
    const before = oidc.issued.client_credentials ?? 0;
    const provider = clientCredentialsProvider({ tokenUrl: oidc.tokenUrl, ca: oidc.ca, clientId: APP_CLIENT.id, clientSecret: APP_CLIENT.secret, scope: 'smtp' });
    const pool = new SMTPPool({ host: '127.0.0.1', port: mail.port, maxConnections: 5, auth: { user: 'app@example.test', provider } });
    const acceptedBefore = mail.accepted.filter((u) => u === 'app@example.test').length;
    try {
      await Promise.all(Array.from({ length: 50 }, (_, i) => pool.sendmail('a@example.test', [`r${i}@example.test`], message)));
    } finally {
      await pool.close();
    }
    expect(mail.accepted.filter((u) => u === 'app@example.test').length - acceptedBefore).toBe(50);
    expect((oidc.issued.client_credentials ?? 0) - before).toBe(1);
    expect(inspect(pool, { depth: 10 })).not.toContain(APP_CLIENT.secret);
  });
});
