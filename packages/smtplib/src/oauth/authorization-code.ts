// The authorization code grant with PKCE (RFC 7636) on a loopback redirect
// (RFC 8252 §7.3): a one-shot HTTP listener on 127.0.0.1 and a random port
// receives the browser's redirect; `state` ties the answer to this request
// and the S256 code verifier ties the code to this process.

import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { OAuthError, clean } from './errors.js';
import { checkEndpoint, type OAuthHttpOptions } from './http.js';
import { requestToken, scopeString } from './provider.js';
import type { SignInResult } from './device.js';

export interface AuthorizationCodeOptions extends OAuthHttpOptions {
  authorizationUrl: string | URL;
  tokenUrl: string | URL;
  clientId: string;
  clientSecret?: string;
  scope?: string | readonly string[];
  /** Extra authorization request parameters (login_hint, prompt, ...). */
  extraParams?: Record<string, string>;
  /** Shows the person the URL to open (or opens a browser). */
  onPrompt: (authorizationUrl: string) => void | Promise<void>;
  /** How long to wait for the browser, ms. Default 5 minutes. */
  browserTimeout?: number;
  signal?: AbortSignal;
}

export async function authorizationCodeLogin(options: AuthorizationCodeOptions): Promise<SignInResult> {
  const authorizationUrl = checkEndpoint(options.authorizationUrl, 'authorization endpoint', options);
  const tokenUrl = checkEndpoint(options.tokenUrl, 'token endpoint', options);
  const state = randomBytes(16).toString('base64url');
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  let settle!: { resolve: (code: string) => void; reject: (error: Error) => void };
  const codePromise = new Promise<string>((resolve, reject) => (settle = { resolve, reject }));
  // node:http only now: importing smtplib does not load it.
  const { createServer } = await import('node:http');
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    const error = url.searchParams.get('error');
    const done = (text: string) => {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end(text);
    };
    if (url.searchParams.get('state') !== state) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('state mismatch: this answer is not for the running sign-in');
      return;
    }
    if (error) {
      done('Sign-in failed; see the terminal.');
      settle.reject(new OAuthError(`the sign-in was refused: ${clean(error, 80)}${url.searchParams.get('error_description') ? ` (${clean(url.searchParams.get('error_description'))})` : ''}`, { kind: 'grant-refused', error: clean(error, 80) }));
      return;
    }
    const code = url.searchParams.get('code');
    if (!code) {
      res.writeHead(400).end('no code');
      return;
    }
    done('Signed in. You can close this window and return to the terminal.');
    settle.resolve(code);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`;
  const timer = setTimeout(() => settle.reject(new OAuthError('no answer from the browser in time: run the command again', { kind: 'grant-refused' })), options.browserTimeout ?? 300_000);
  const onAbort = () => settle.reject(options.signal!.reason as Error);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const scope = scopeString(options.scope);
    const url = new URL(authorizationUrl);
    const params = {
      ...options.extraParams,
      response_type: 'code',
      client_id: options.clientId,
      redirect_uri: redirectUri,
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...(scope ? { scope } : {}),
    };
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
    await options.onPrompt(url.href);
    const code = await codePromise;
    const issued = await requestToken(tokenUrl, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      code_verifier: verifier,
      client_id: options.clientId,
      ...(options.clientSecret !== undefined ? { client_secret: options.clientSecret } : {}),
    }, options);
    const refresh = issued.body.refresh_token;
    return {
      accessToken: issued.accessToken,
      ...(typeof refresh === 'string' ? { refreshToken: refresh } : {}),
      ...(issued.expiresIn !== undefined ? { expiresIn: issued.expiresIn } : {}),
      ...(issued.scope !== undefined ? { scope: issued.scope } : {}),
    };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    server.closeAllConnections();
    server.close();
  }
}
