// Token providers against a real OAuth 2 server (oidc-provider on loopback,
// verified TLS with the test CA): caching, one refresh shared by concurrent
// callers, expiry, rotation, typed errors, proxies, and no secret in sight.

import { inspect } from 'node:util';
import { connect as netConnect } from 'node:net';
import { mkdtempSync, statSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  authorizationCodeLogin,
  clientCredentialsProvider,
  fileRefreshTokenStore,
  isSMTPError,
  OAuthError,
  refreshTokenProvider,
  type TokenEvent,
} from 'smtplib';
import { APP_CLIENT, BASIC_CLIENT, CERT_CLIENT, CLI_CLIENT, startOidcServer, type OidcServer } from './oidc-server.js';
import { introspect, signInWithBrowser, signInWithDeviceCode, startConnectProxy } from './helpers.js';
import { proxyFromEnvironment } from '../../packages/smtplib/src/oauth/http.js';

let server: OidcServer;
beforeAll(async () => {
  server = await startOidcServer({ accessTtl: 3 });
});
afterAll(async () => {
  await server?.close();
});

const appProvider = (extra: Record<string, unknown> = {}) =>
  clientCredentialsProvider({ tokenUrl: server.tokenUrl, clientId: APP_CLIENT.id, clientSecret: APP_CLIENT.secret, scope: 'smtp', ca: server.ca, ...extra });

const issuedCC = () => server.issued.client_credentials ?? 0;

describe('clientCredentialsProvider', () => {
  test('gets a token the server vouches for, and reuses it', async () => {
    const before = issuedCC();
    const provider = appProvider();
    const token = await provider.getToken();
    expect(await introspect(server, token)).toMatchObject({ active: true, client_id: APP_CLIENT.id, scope: 'smtp' });
    expect(await provider.getToken()).toBe(token);
    expect(issuedCC() - before).toBe(1);
  });

  test('50 concurrent callers share one token request', async () => {
    const before = issuedCC();
    const provider = appProvider();
    const tokens = await Promise.all(Array.from({ length: 50 }, () => provider.getToken()));
    expect(new Set(tokens).size).toBe(1);
    expect(issuedCC() - before).toBe(1);
    expect((provider as unknown as { requests: number }).requests).toBe(1);
  });

  test('renews shortly before expiry, once, and says why', async () => {
    const events: TokenEvent[] = [];
    const provider = appProvider({ onToken: (e: TokenEvent) => events.push(e) });
    const first = await provider.getToken();
    // 3 s tokens: renewed 0.3 s before they expire.
    await new Promise((r) => setTimeout(r, 2900));
    const [second, third] = await Promise.all([provider.getToken(), provider.getToken()]);
    expect(second).not.toBe(first);
    expect(third).toBe(second);
    expect(events.map((e) => e.reason)).toEqual(['initial', 'expiring']);
    expect(events[1]!.expiresAt! - Date.now()).toBeGreaterThan(2000);
    expect(await introspect(server, second!)).toMatchObject({ active: true });
  });

  test('invalidate() makes the next caller fetch a new token (reason "rejected")', async () => {
    const events: TokenEvent[] = [];
    const provider = appProvider({ onToken: (e: TokenEvent) => events.push(e) });
    const first = await provider.getToken();
    provider.invalidate('some-other-token');
    expect(await provider.getToken()).toBe(first);
    provider.invalidate(first);
    expect(await provider.getToken()).not.toBe(first);
    expect(events.map((e) => e.reason)).toEqual(['initial', 'rejected']);
  });

  test('client_secret_basic form-encodes odd characters in the secret', async () => {
    const provider = clientCredentialsProvider({ tokenUrl: server.tokenUrl, clientId: BASIC_CLIENT.id, clientSecret: BASIC_CLIENT.secret, clientAuth: 'basic', scope: 'smtp', ca: server.ca });
    expect(await introspect(server, await provider.getToken())).toMatchObject({ active: true, client_id: BASIC_CLIENT.id });
  });

  test('certificate: a private_key_jwt client assertion signed with the key', async () => {
    const provider = clientCredentialsProvider({
      tokenUrl: server.tokenUrl,
      clientId: CERT_CLIENT,
      certificate: { privateKey: server.certKey },
      assertionAudience: server.issuer,
      scope: 'smtp',
      ca: server.ca,
    });
    expect(await introspect(server, await provider.getToken())).toMatchObject({ active: true, client_id: CERT_CLIENT });
  });

  test('a wrong secret is an OAuthError with the server\'s error, and never shows the secret', async () => {
    const provider = appProvider({ clientSecret: 'wrong-secret-1234' });
    const error = await provider.getToken().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OAuthError);
    expect(isSMTPError(error)).toBe(true);
    expect(error).toMatchObject({ code: 'ERR_SMTP_OAUTH', kind: 'client', error: 'invalid_client', httpStatus: 401 });
    expect((error as Error).message).toMatch(/invalid_client.*check the client id/);
    const shown = `${inspect(error, { depth: 5 })} ${JSON.stringify(error)} ${(error as Error).stack}`;
    expect(shown).not.toContain('wrong-secret-1234');
  });

  test('an invalid scope says so', async () => {
    const error = await appProvider({ scope: 'openid admin' }).getToken().catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'grant-refused', error: 'invalid_scope' });
  });

  test('util.inspect, JSON.stringify and String() show the kind only', async () => {
    const provider = appProvider();
    const token = await provider.getToken();
    for (const text of [inspect(provider, { showHidden: true, depth: 10 }), JSON.stringify(provider), String(provider), JSON.stringify({ auth: { provider } })]) {
      expect(text).toContain('client-credentials');
      expect(text).not.toContain(APP_CLIENT.secret);
      expect(text).not.toContain(token);
    }
  });
});

describe('transport rules', () => {
  test('verified TLS: without the CA the endpoint is refused', async () => {
    const error = await clientCredentialsProvider({ tokenUrl: server.tokenUrl, clientId: APP_CLIENT.id, clientSecret: APP_CLIENT.secret }).getToken().catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'transport' });
    expect((error as Error).message).toMatch(/could not be reached: .*(self-signed|issuer|certificate)/i);
  });

  test('plain http: refused to a remote host before anything is sent; allowed to loopback', async () => {
    expect(() => clientCredentialsProvider({ tokenUrl: 'http://login.example.test/token', clientId: 'a', clientSecret: 'b' })).toThrow(/refusing to send OAuth credentials over plain http/);
    expect(() => clientCredentialsProvider({ tokenUrl: 'ftp://example.test/token', clientId: 'a', clientSecret: 'b' })).toThrow(/must be an https URL/);
    const loopback = clientCredentialsProvider({ tokenUrl: server.httpTokenUrl, clientId: APP_CLIENT.id, clientSecret: APP_CLIENT.secret, scope: 'smtp' });
    expect(await introspect(server, await loopback.getToken())).toMatchObject({ active: true });
  });

  test('allowInsecureHttp + a connect hook: the hook carries the request', async () => {
    const port = Number(new URL(server.issuer).port);
    const targets: string[] = [];
    const provider = clientCredentialsProvider({
      tokenUrl: 'http://oauth.internal.test/token',
      allowInsecureHttp: true,
      connect: ({ host, port: p }) => {
        targets.push(`${host}:${p}`);
        return netConnect(port, '127.0.0.1');
      },
      clientId: APP_CLIENT.id,
      clientSecret: APP_CLIENT.secret,
      scope: 'smtp',
    });
    expect(await introspect(server, await provider.getToken())).toMatchObject({ active: true });
    expect(targets).toEqual(['oauth.internal.test:80']);
  });

  test('HTTPS_PROXY from the environment is used for remote hosts (the proxy resolves the name, not us)', async () => {
    const proxy = await startConnectProxy();
    const saved = process.env.HTTPS_PROXY;
    process.env.HTTPS_PROXY = proxy.url;
    try {
      const error = await clientCredentialsProvider({ tokenUrl: 'https://login.example.invalid/token', clientId: 'a', clientSecret: 'b' }).getToken().catch((e: unknown) => e);
      // The test proxy only tunnels to 127.0.0.1: it refused, which shows the request went through it.
      expect(proxy.tunnels).toEqual(['login.example.invalid:443']);
      expect((error as Error).message).toMatch(/the proxy 127\.0\.0\.1:\d+ refused the tunnel to login\.example\.invalid:443: HTTP 403/);
    } finally {
      if (saved === undefined) delete process.env.HTTPS_PROXY;
      else process.env.HTTPS_PROXY = saved;
      await proxy.close();
    }
  });

  test('NO_PROXY and loopback bypass the environment proxy', () => {
    const env = { HTTPS_PROXY: 'http://proxy.corp:3128', NO_PROXY: 'internal.corp,.example.org' };
    expect(proxyFromEnvironment(new URL('https://login.microsoftonline.com/x'), env)).toBe('http://proxy.corp:3128');
    expect(proxyFromEnvironment(new URL('https://id.internal.corp/token'), env)).toBeUndefined();
    expect(proxyFromEnvironment(new URL('https://a.example.org/token'), env)).toBeUndefined();
    expect(proxyFromEnvironment(new URL('https://127.0.0.1:8443/token'), env)).toBeUndefined();
    expect(proxyFromEnvironment(new URL('https://x.test/'), { https_proxy: 'http://p:1', NO_PROXY: '*' })).toBeUndefined();
  });

  test('an HTTPS proxy gets a CONNECT tunnel; TLS is still verified end to end', async () => {
    const proxy = await startConnectProxy();
    try {
      const target = new URL(server.tokenUrl);
      const token = await appProvider({ proxy: proxy.url }).getToken();
      expect(await introspect(server, token)).toMatchObject({ active: true });
      expect(proxy.tunnels).toEqual([`127.0.0.1:${target.port}`]);
      const untrusted = await clientCredentialsProvider({ tokenUrl: server.tokenUrl, clientId: APP_CLIENT.id, clientSecret: APP_CLIENT.secret, proxy: proxy.url }).getToken().catch((e: unknown) => e);
      expect(untrusted).toMatchObject({ kind: 'transport' });
    } finally {
      await proxy.close();
    }
  });
});

describe('refreshTokenProvider', () => {
  test('rotating refresh tokens are saved through the store before use; the old one is dead', async () => {
    const signIn = await signInWithBrowser(server, 'alice@example.test');
    expect(signIn.refreshToken).toBeTruthy();
    expect(signIn.visited.some((u) => /^http:\/\/127\.0\.0\.1:\d+\/callback\?/.test(u))).toBe(true);
    const saved: string[] = [];
    const provider = refreshTokenProvider({
      tokenUrl: server.tokenUrl,
      ca: server.ca,
      clientId: CLI_CLIENT,
      refreshToken: signIn.refreshToken!,
      store: { save: (t) => void saved.push(t) },
    });
    const token = await provider.getToken();
    expect(await introspect(server, token)).toMatchObject({ active: true, sub: 'alice@example.test', client_id: CLI_CLIENT });
    expect(saved).toHaveLength(1);
    expect(saved[0]).not.toBe(signIn.refreshToken);

    // Someone still holding the old refresh token is told to sign in again.
    const stale = refreshTokenProvider({ tokenUrl: server.tokenUrl, ca: server.ca, clientId: CLI_CLIENT, refreshToken: signIn.refreshToken!, reauthorizeHint: '`smtplib auth login --account work`' });
    const error = await stale.getToken().catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'reauthorize', error: 'invalid_grant', code: 'ERR_SMTP_OAUTH' });
    expect((error as Error).message).toMatch(/^the refresh token expired or was revoked \(invalid_grant.*\): run `smtplib auth login --account work` again to sign in$/);
    expect(`${inspect(error)} ${JSON.stringify(error)}`).not.toContain(signIn.refreshToken!);
  });

  test('fileRefreshTokenStore: 0600, atomic, loaded in preference to the option, loose files refused', async () => {
    const signIn = await signInWithBrowser(server, 'bob@example.test');
    const dir = mkdtempSync(join(tmpdir(), 'oauth-store-'));
    const file = join(dir, 'refresh-token');
    const store = fileRefreshTokenStore(file);
    await store.save(signIn.refreshToken!);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const provider = refreshTokenProvider({ tokenUrl: server.tokenUrl, ca: server.ca, clientId: CLI_CLIENT, refreshToken: 'stale-from-config', store });
    expect(await introspect(server, await provider.getToken())).toMatchObject({ active: true, sub: 'bob@example.test' });
    const rotated = readFileSync(file, 'utf8').trim();
    expect(rotated).not.toBe(signIn.refreshToken);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    writeFileSync(join(dir, 'loose'), rotated);
    chmodSync(join(dir, 'loose'), 0o644);
    await expect(fileRefreshTokenStore(join(dir, 'loose')).load!()).rejects.toThrow(/can be read by other users \(mode 644\): run chmod 600/);
  });

  test('the device flow prints a URL and a code, and yields a refresh token', async () => {
    const result = await signInWithDeviceCode(server, 'carol@example.test');
    expect(result.prompt).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/device [A-Z]{4}-[A-Z]{4}$/);
    expect(result.refreshToken).toBeTruthy();
    expect(await introspect(server, result.accessToken)).toMatchObject({ active: true, sub: 'carol@example.test' });
  }, 20_000);

  test('authorizationCodeLogin rejects an answer with the wrong state', async () => {
    const error = await authorizationCodeLogin({
      authorizationUrl: `${server.issuer}/auth`,
      tokenUrl: server.tokenUrl,
      ca: server.ca,
      clientId: CLI_CLIENT,
      browserTimeout: 1500,
      onPrompt: async (url) => {
        const redirect = new URL(url).searchParams.get('redirect_uri')!;
        const res = await fetch(`${redirect}?code=forged&state=not-ours`);
        expect(res.status).toBe(400);
      },
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'grant-refused' });
    expect((error as Error).message).toMatch(/no answer from the browser in time/);
  });
});
