// OAuth 2 end to end through a real mail server: Postfix submission
// (STARTTLS required) with Dovecot SASL, whose `oauth2` passdb validates every
// token by RFC 7662 introspection at a real OAuth server (oidc-provider, with
// 8-second access tokens). A person signs in with the device flow; the
// library sends with XOAUTH2 and OAUTHBEARER, keeps sending while the token
// expires (one refresh), recovers from a token withdrawn at the provider (one
// refresh, one retry), and explains a revoked grant. Every delivery is read
// back from the Maildir. Run by .ci/suites/56-oauth.sh (needs root).

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fileRefreshTokenStore, refreshTokenProvider, SMTP, SMTPAuthenticationError, SMTPPool, type OAuthFailure, type TokenEvent, type TokenProvider } from 'smtplib';
import { startOidcServer, CLI_CLIENT, type OidcServer } from '../oauth/oidc-server.js';
import { revoke, signInWithDeviceCode, withdrawAccessToken } from '../oauth/helpers.js';

const HERE = new URL('.', import.meta.url).pathname;
const SERVERS = join(HERE, 'servers.sh');
const STATE = process.env.OAUTH_E2E_STATE ?? join(HERE, '.state');
const SUBMISSION = Number(process.env.OAUTH_SUBMISSION_PORT ?? 2687);
const ISSUER_PORT = Number(process.env.OAUTH_ISSUER_PORT ?? 2690);
const ACCESS_TTL = 8;
const MAILDIR = join(STATE, 'mail/oauth-postfix/alice/new');
const DOVECOT_LOG = join(STATE, 'oauth/dovecot/log/dovecot.log');

let oidc: OidcServer;
let ca: string;
const report: string[] = [];
const note = (line: string) => {
  report.push(line);
  process.stdout.write(`[oauth-e2e] ${line}\n`);
};

beforeAll(async () => {
  execFileSync('bash', [SERVERS, 'start'], { stdio: ['ignore', 'inherit', 'inherit'] });
  ca = readFileSync(join(STATE, 'tls/ca.pem'), 'utf8');
  oidc = await startOidcServer({ accessTtl: ACCESS_TTL, port: ISSUER_PORT });
}, 180_000);

afterAll(async () => {
  await oidc?.close();
  try {
    execFileSync('bash', [SERVERS, 'stop'], { stdio: 'ignore' });
  } catch {
    // stopping is best effort
  }
  // OAUTH_E2E_REPORT=docs/oauth.md: the lines replace the block between the
  // oauth-e2e markers of that file (or make up the whole file when it has none).
  const out = process.env.OAUTH_E2E_REPORT;
  if (out && report.length) {
    const block = `${report.map((l) => `- ${l}`).join('\n')}\n`;
    const begin = '<!-- oauth-e2e:begin -->\n';
    const end = '<!-- oauth-e2e:end -->';
    const current = existsSync(out) ? readFileSync(out, 'utf8') : '';
    const from = current.indexOf(begin);
    const to = current.indexOf(end);
    writeFileSync(out, from >= 0 && to > from ? `${current.slice(0, from + begin.length)}${block}${current.slice(to)}` : block);
  }
});

function delivered(subject: string): string[] {
  return readdirSync(MAILDIR).filter((f) => readFileSync(join(MAILDIR, f), 'utf8').includes(`Subject: ${subject}\n`));
}

async function send(provider: TokenProvider, subject: string, mechanism?: string): Promise<string> {
  const smtp = await SMTP.connect({ host: '127.0.0.1', port: SUBMISSION, tls: { ca }, tlsPolicy: 'required', localHostname: 'client.example.test' });
  try {
    await smtp.login('alice@example.test', { provider, ...(mechanism ? { mechanism } : {}) });
    await smtp.sendmail('alice@example.test', ['alice@example.test'], `From: alice@example.test\r\nTo: alice@example.test\r\nSubject: ${subject}\r\n\r\nsent with OAuth\r\n`);
    return smtp.esmtpFeatures.get('auth') ?? '';
  } finally {
    await smtp.quit().catch(() => smtp.close());
  }
}

async function waitForDelivery(subject: string, count = 1): Promise<string[]> {
  for (let i = 0; i < 100; i++) {
    const files = delivered(subject);
    if (files.length >= count) return files;
    await new Promise((r) => setTimeout(r, 100));
  }
  return delivered(subject);
}

describe('Postfix + Dovecot oauth2 passdb (introspection at oidc-provider)', () => {
  const events: TokenEvent[] = [];
  let refreshFile: string;
  let provider: ReturnType<typeof refreshTokenProvider> & { requests: number };

  test('sign in with the device flow; the refresh token goes to a 0600 file', async () => {
    const signIn = await signInWithDeviceCode(oidc, 'alice@example.test');
    refreshFile = join(mkdtempSync(join(tmpdir(), 'oauth-e2e-')), 'alice.refresh');
    await fileRefreshTokenStore(refreshFile).save(signIn.refreshToken!);
    expect(statSync(refreshFile).mode & 0o777).toBe(0o600);
    provider = refreshTokenProvider({
      tokenUrl: oidc.tokenUrl,
      ca: oidc.ca,
      clientId: CLI_CLIENT,
      store: fileRefreshTokenStore(refreshFile),
      onToken: (e) => events.push(e),
    }) as typeof provider;
    note(`device flow: prompt "${signIn.prompt.replace(/:\d+\//, ':PORT/')}" approved by the scripted browser; refresh token stored 0600`);
  }, 30_000);

  test('XOAUTH2 and OAUTHBEARER through Postfix submission, delivered to the Maildir', async () => {
    const offered = await send(provider, 'oauth-xoauth2', 'XOAUTH2');
    await send(provider, 'oauth-oauthbearer', 'OAUTHBEARER');
    await send(provider, 'oauth-auto');
    expect(offered.toUpperCase().split(/\s+/).sort()).toEqual(['OAUTHBEARER', 'XOAUTH2']);
    expect(await waitForDelivery('oauth-xoauth2')).toHaveLength(1);
    expect(await waitForDelivery('oauth-oauthbearer')).toHaveLength(1);
    expect(await waitForDelivery('oauth-auto')).toHaveLength(1);
    expect(provider.requests).toBe(1);
    const log = readFileSync(DOVECOT_LOG, 'utf8');
    expect(log).not.toMatch(/oauth2.*(failed|error)/i);
    note(`XOAUTH2, OAUTHBEARER and automatic choice: 3 messages in ${MAILDIR.replace(STATE, '$STATE')}, 1 token request (server offered AUTH ${offered})`);
  }, 30_000);

  test('the token expires mid-run: one refresh, no failed login', async () => {
    const before = provider.requests;
    const started = Date.now();
    let sent = 0;
    // Send for longer than one token lifetime.
    while (Date.now() - started < (ACCESS_TTL + 2) * 1000) {
      await send(provider, `oauth-run-${sent}`);
      sent++;
      await new Promise((r) => setTimeout(r, 400));
    }
    const refreshes = provider.requests - before;
    const reasons = events.slice(-refreshes).map((e) => e.reason);
    // A refused login would have shown up as a refresh for reason "rejected".
    const refused = reasons.filter((r) => r === 'rejected').length;
    expect(refused).toBe(0);
    for (let i = 0; i < sent; i++) expect(await waitForDelivery(`oauth-run-${i}`)).toHaveLength(1);
    expect(refreshes).toBe(1);
    expect(reasons).toEqual(['expiring']);
    note(`${sent} sends over ${((Date.now() - started) / 1000).toFixed(1)} s with ${ACCESS_TTL} s tokens: ${refreshes} refresh (reason "${reasons.join(', ')}"), ${refused} refused logins, ${sent} messages in the Maildir`);
  }, 60_000);

  test('a token withdrawn at the provider: Dovecot refuses it, one refresh, one retry, delivered', async () => {
    const stale = await provider.getToken();
    await withdrawAccessToken(oidc, stale);
    const before = provider.requests;
    const introspectionsBefore = oidc.introspections;
    await send(provider, 'oauth-after-withdrawal');
    expect(provider.requests - before).toBe(1);
    expect(oidc.introspections - introspectionsBefore).toBe(2);
    expect(events.at(-1)!.reason).toBe('rejected');
    expect(await waitForDelivery('oauth-after-withdrawal')).toHaveLength(1);
    note(`access token withdrawn at the provider: Dovecot's introspection said inactive, the client refreshed once (reason "rejected") and the retry was delivered; introspections: 2`);
  }, 30_000);

  test('50 parallel sends through SMTPPool: one token request', async () => {
    const fresh = refreshTokenProvider({ tokenUrl: oidc.tokenUrl, ca: oidc.ca, clientId: CLI_CLIENT, store: fileRefreshTokenStore(refreshFile) }) as typeof provider;
    const pool = new SMTPPool({ host: '127.0.0.1', port: SUBMISSION, tls: { ca }, tlsPolicy: 'required', maxConnections: 4, auth: { user: 'alice@example.test', provider: fresh } });
    const started = Date.now();
    try {
      await Promise.all(Array.from({ length: 50 }, (_, i) =>
        pool.sendmail('alice@example.test', ['alice@example.test'], `From: alice@example.test\r\nSubject: oauth-pool-${i}\r\n\r\npooled\r\n`)));
    } finally {
      await pool.close();
    }
    for (let i = 0; i < 50; i++) expect(await waitForDelivery(`oauth-pool-${i}`)).toHaveLength(1);
    expect(fresh.requests).toBe(1);
    note(`SMTPPool, 4 connections, 50 parallel sends: ${fresh.requests} token request, 50 messages in the Maildir (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }, 60_000);

  test('the grant revoked: an SMTPAuthenticationError a person can act on', async () => {
    const refreshToken = readFileSync(refreshFile, 'utf8').trim();
    await revoke(oidc, refreshToken);
    const error = await send(provider, 'oauth-after-revocation').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SMTPAuthenticationError);
    expect((error as { oauth: OAuthFailure }).oauth.reason).toBe('revoked');
    expect((error as Error).message).toMatch(/run smtplib auth login again to sign in/);
    expect(delivered('oauth-after-revocation')).toHaveLength(0);
    note(`grant revoked: \`${(error as Error).message.replace(/https:\/\/127\.0\.0\.1:\d+/, 'https://127.0.0.1:PORT')}\``);
  }, 30_000);

  test('Dovecot logged the introspection verdicts', () => {
    const log = readFileSync(DOVECOT_LOG, 'utf8');
    expect(existsSync(DOVECOT_LOG)).toBe(true);
    const failures = log.split('\n').filter((l) => /oauth2/i.test(l) && /fail|invalid|inactive/i.test(l));
    expect(failures.length).toBeGreaterThan(0);
    note(`Dovecot log, first refusal: \`${failures[0]!.replace(/^.*?auth/, 'auth').slice(0, 200)}\``);
  });
});
