// Shared pieces of the OAuth tests: the device flow driven to a refresh
// token (the provider's real pages, approved by a scripted person), token
// introspection as a resource server does it, and a CONNECT proxy.

import { createServer, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { authorizationCodeLogin, deviceAuthorization, type SignInResult } from 'smtplib';
import { Browser } from './browser.js';
import { APP_CLIENT, CLI_CLIENT, RESOURCE_SERVER, type OidcServer } from './oidc-server.js';

/** Runs the device flow for `user` with a scripted browser approving the code. */
export async function signInWithDeviceCode(server: OidcServer, user: string, scope = 'openid offline_access smtp'): Promise<SignInResult & { prompt: string }> {
  let prompt = '';
  const browser = new Browser();
  let approval: Promise<unknown> | undefined;
  const result = await deviceAuthorization({
    deviceAuthorizationUrl: `${server.issuer}/device/auth`,
    tokenUrl: server.tokenUrl,
    ca: server.ca,
    clientId: CLI_CLIENT,
    scope,
    onPrompt: (p) => {
      prompt = `${p.verificationUri} ${p.userCode}`;
      // The person opens the URL, types the code, signs in and consents.
      approval = browser.signInAndConsent(p.verificationUri, user, p.userCode);
    },
  });
  await approval;
  return { ...result, prompt };
}

/** RFC 7662 introspection as the mail server does it (client_secret_basic, loopback http). */
export async function introspect(server: OidcServer, token: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${server.issuer}/token/introspection`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${RESOURCE_SERVER.id}:${RESOURCE_SERVER.secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token }),
  });
  return (await res.json()) as Record<string, unknown>;
}

/** RFC 7009 revocation (as the user or an admin revoking a grant would). */
export async function revoke(server: OidcServer, token: string, clientId = CLI_CLIENT): Promise<void> {
  const res = await fetch(`${server.issuer}/token/revocation`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, client_id: clientId }),
  });
  if (res.status !== 200) throw new Error(`revocation failed: ${res.status} ${await res.text()}`);
}

/** An HTTP CONNECT proxy on loopback that records the tunnels it opened. */
export async function startConnectProxy(): Promise<{ url: string; tunnels: string[]; close(): Promise<void> }> {
  const tunnels: string[] = [];
  const server: Server = createServer((_req, res) => res.writeHead(405).end());
  const sockets = new Set<{ destroy(): void }>();
  server.on('connect', (req, client, head) => {
    tunnels.push(req.url ?? '');
    sockets.add(client);
    const [host, port] = (req.url ?? '').split(':');
    if (host !== '127.0.0.1') {
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const upstream = netConnect(Number(port), host, () => {
      sockets.add(upstream);
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    tunnels,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Authorization code + PKCE on a loopback redirect, the browser following the redirect to our listener. */
export async function signInWithBrowser(server: OidcServer, user: string, scope = 'openid offline_access smtp'): Promise<SignInResult & { visited: string[] }> {
  const browser = new Browser();
  let visit: Promise<unknown> | undefined;
  const result = await authorizationCodeLogin({
    authorizationUrl: `${server.issuer}/auth`,
    tokenUrl: server.tokenUrl,
    ca: server.ca,
    clientId: CLI_CLIENT,
    scope,
    extraParams: { prompt: 'consent' },
    onPrompt: (url) => {
      visit = browser.signInAndConsent(url, user);
    },
  });
  await visit;
  return { ...result, visited: browser.visited };
}

/**
 * Withdraws one access token at the provider (an administrator's action):
 * the client's cache still holds it as valid; the grant stays.
 */
export async function withdrawAccessToken(server: OidcServer, token: string): Promise<void> {
  const found = await (server.provider as unknown as { AccessToken: { find(t: string): Promise<{ destroy(): Promise<void> } | undefined> } }).AccessToken.find(token);
  if (!found) throw new Error('no such access token at the provider');
  await found.destroy();
}

/** An in-process mail server (smtp-server, XOAUTH2) that checks each token by introspection at `oidcServer`. */
export interface MailServer {
  port: number;
  /** Token checks made (one per AUTH attempt). */
  authAttempts: number;
  accepted: string[];
  /** 'challenge': RFC 7628-style 334 JSON error; 'bare535': Microsoft-style refusal without a challenge. */
  style: 'challenge' | 'bare535';
  close(): Promise<void>;
}


export async function startMailServer(oidcServer: OidcServer): Promise<MailServer> {
  const handle = { authAttempts: 0, accepted: [] as string[], style: 'challenge' } as MailServer;
  const server = new SMTPServer({
    secure: false,
    hideSTARTTLS: true,
    disabledCommands: ['STARTTLS'],
    authMethods: ['XOAUTH2'],
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, callback) {
      handle.authAttempts++;
      introspect(oidcServer, auth.accessToken ?? '').then(
        (info) => {
          const scopes = String(info.scope ?? '').split(' ');
          // Delegated tokens name the mailbox (sub); app-only tokens name the app (client_id).
          const owner = info.sub ?? (info.client_id === APP_CLIENT.id ? auth.username : undefined);
          if (info.active !== true || owner !== auth.username) {
            if (handle.style === 'bare535') {
              const error = new Error('5.7.3 Authentication unsuccessful') as Error & { responseCode: number };
              error.responseCode = 535;
              callback(error);
            } else callback(null, { data: { status: 'invalid_token', schemes: 'bearer', scope: 'smtp' } } as never);
          } else if (!scopes.includes('smtp')) callback(null, { data: { status: 'insufficient_scope', schemes: 'bearer', scope: 'smtp' } } as never);
          else callback(null, { user: auth.username });
        },
        (error: Error) => callback(error),
      );
    },
    onData(stream, session, callback) {
      stream.resume();
      stream.on('end', () => {
        handle.accepted.push(String(session.user));
        callback(null, 'queued');
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  handle.port = (server.server.address() as AddressInfo).port;
  handle.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return handle;
}

