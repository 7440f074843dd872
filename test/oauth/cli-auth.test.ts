// `smtplib auth login` as a person meets it: the built CLI runs in a real
// terminal (tmux), prints the verification URL and the code, and polls; the
// test reads the screen, approves the code at the provider's pages like a
// user, and checks the saved refresh token (0600) buys tokens for that user.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { refreshTokenProvider, fileRefreshTokenStore } from 'smtplib';
import { BIN, assertBuilt } from '../cli/helpers.js';
import { Browser } from './browser.js';
import { introspect } from './helpers.js';
import { CLI_CLIENT, startOidcServer, type OidcServer } from './oidc-server.js';

function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const tmuxMissing = !hasTmux();
if (tmuxMissing && process.env.CI) throw new Error('tmux is required for the CLI prompt test (listed in .ci/apt-packages)');
if (tmuxMissing) console.warn('skipping the tmux CLI test: tmux is not installed');

let oidc: OidcServer;
beforeAll(async () => {
  assertBuilt();
  oidc = await startOidcServer({ accessTtl: 60 });
});
afterAll(async () => {
  await oidc?.close();
});

const screen = (session: string) => execFileSync('tmux', ['capture-pane', '-p', '-J', '-t', session], { encoding: 'utf8' });

async function waitForScreen(session: string, pattern: RegExp, ms = 20_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const text = screen(session);
    const match = pattern.exec(text);
    if (match) return match;
    if (Date.now() > deadline) throw new Error(`screen never matched ${pattern}:\n${text}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe.skipIf(tmuxMissing)('smtplib auth login in a terminal', () => {
  test('device flow: URL and code on screen, approved in the browser, token saved 0600', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oauth-cli-'));
    const tokenFile = join(dir, 'work.token');
    const session = `oauth-cli-${process.pid}`;
    const command = [
      process.execPath, BIN, 'auth', 'login', '--provider', 'oidc', '--issuer', oidc.issuer, '--client-id', CLI_CLIENT,
      '--scope', "'openid offline_access smtp'", '--account', 'work', '--user', 'kim@example.test', '--token-file', tokenFile,
    ].join(' ');
    execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', '160', '-y', '40', `${command}; echo "EXIT=$?"; sleep 60`]);
    try {
      const [, url, code] = await waitForScreen(session, /To sign in, open (\S+)\s+and enter the code ([A-Z]{4}-[A-Z]{4})/);
      expect(screen(session)).toMatch(/Waiting for you to finish signing in \(the code expires in 5 min\)/);
      expect(existsSync(tokenFile)).toBe(false);
      // The person at a browser: types the code, signs in, consents.
      const page = await new Browser().signInAndConsent(url!, 'kim@example.test', code!);
      expect(page.html).toMatch(/Sign-in Success/);
      await waitForScreen(session, /EXIT=0/);
      const text = screen(session);
      expect(text).toContain(`Signed in. Refresh token saved to ${tokenFile} (mode 0600).`);
      expect(text).toMatch(/account work\nuser kim@example\.test\nauth oauth\noauth_provider oidc\noauth_client_id smtplib-cli/);
      expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
      const refreshToken = readFileSync(tokenFile, 'utf8').trim();
      expect(text).not.toContain(refreshToken);
      const provider = refreshTokenProvider({ tokenUrl: oidc.tokenUrl, ca: oidc.ca, clientId: CLI_CLIENT, store: fileRefreshTokenStore(tokenFile) });
      expect(await introspect(oidc, await provider.getToken())).toMatchObject({ active: true, sub: 'kim@example.test' });
    } finally {
      execFileSync('tmux', ['kill-session', '-t', session], { stdio: 'ignore' });
    }
  }, 40_000);

  test('a declined sign-in ends with a message and a non-zero status', async () => {
    const session = `oauth-cli-deny-${process.pid}`;
    const command = [process.execPath, BIN, 'auth', 'login', '--provider', 'oidc', '--issuer', oidc.issuer, '--client-id', CLI_CLIENT, '--print'].join(' ');
    execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', '160', '-y', '40', `${command}; echo "EXIT=$?"; sleep 60`]);
    try {
      const [, url, code] = await waitForScreen(session, /To sign in, open (\S+)\s+and enter the code ([A-Z]{4}-[A-Z]{4})/);
      // The person types the code, then presses "Abort" instead of "Continue".
      const browser = new Browser();
      let page = await browser.open(url!);
      page = await browser.submit(page, { user_code: code! });
      await browser.submit(page, { abort: 'yes' });
      await waitForScreen(session, /EXIT=\d+/);
      expect(screen(session)).toMatch(/smtplib: the sign-in was declined at the provider\nEXIT=(?!0)\d+/);
    } finally {
      execFileSync('tmux', ['kill-session', '-t', session], { stdio: 'ignore' });
    }
  }, 40_000);
});

