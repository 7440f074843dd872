// A real OAuth 2 / OpenID Connect server for the tests: oidc-provider (a
// certified implementation) on loopback, configured here with the grants the
// library uses and short token lifetimes, so expiry and refresh happen while
// a test runs. It listens twice: on http (its issuer, used by the test's
// "browser") and on https with the throw-away test CA (what the library's
// providers talk to, verified TLS). It counts the token requests per grant.

import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Provider } from 'oidc-provider';
import { testPki } from '../support/certs.js';

export interface OidcServerOptions {
  /** Access token lifetime in seconds (AccessToken and ClientCredentials). */
  accessTtl?: number;
  /** Refresh token lifetime in seconds. */
  refreshTtl?: number;
  /** Fixed http port for the issuer (0: any). */
  port?: number;
}

export interface OidcServer {
  provider: Provider;
  issuer: string;
  /** https://127.0.0.1:PORT/token, served with the test CA. */
  tokenUrl: string;
  /** The same endpoint on the http issuer (loopback http). */
  httpTokenUrl: string;
  httpsOrigin: string;
  ca: string;
  /** Key for the private_key_jwt client (smtp-app-cert). */
  certKey: KeyObject;
  /** Token endpoint requests that issued a token, by grant type. */
  issued: Record<string, number>;
  /** Token endpoint requests that were refused, by OAuth error. */
  refused: Record<string, number>;
  introspections: number;
  close(): Promise<void>;
}

export const CLI_CLIENT = 'smtplib-cli';
export const APP_CLIENT = { id: 'smtp-app', secret: 'app-secret-never-logged' };
export const BASIC_CLIENT = { id: 'smtp-app-basic', secret: 'basic secret:with/odd&chars' };
export const CERT_CLIENT = 'smtp-app-cert';
export const RESOURCE_SERVER = { id: 'mail-server', secret: 'introspection-secret' };

function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

export async function startOidcServer(options: OidcServerOptions = {}): Promise<OidcServer> {
  const pki = testPki();
  const accessTtl = options.accessTtl ?? 3600;
  const { privateKey: certKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const http = createHttpServer();
  const httpPort = await listen(http, options.port);
  const issuer = `http://127.0.0.1:${httpPort}`;
  const grantDevice = 'urn:ietf:params:oauth:grant-type:device_code';
  const signing = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const provider = new Provider(issuer, {
    jwks: { keys: [{ ...signing, use: 'sig', kid: 'test' }] },
    clients: [
      { client_id: APP_CLIENT.id, client_secret: APP_CLIENT.secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_post', scope: 'smtp' },
      { client_id: BASIC_CLIENT.id, client_secret: BASIC_CLIENT.secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic', scope: 'smtp' },
      {
        client_id: CERT_CLIENT,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), use: 'sig' }] },
        scope: 'smtp',
      } as never,
      {
        client_id: CLI_CLIENT,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: [grantDevice, 'refresh_token', 'authorization_code'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/callback'],
      },
      { client_id: RESOURCE_SERVER.id, client_secret: RESOURCE_SERVER.secret, grant_types: [], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic' },
    ],
    features: {
      clientCredentials: { enabled: true },
      // Only the mail server's own client may introspect.
      introspection: { enabled: true, allowedPolicy: async (ctx: { oidc: { client: { clientId: string } } }) => ctx.oidc.client.clientId === RESOURCE_SERVER.id },
      revocation: { enabled: true, allowedPolicy: async () => true },
      deviceFlow: { enabled: true },
      devInteractions: { enabled: true },
    },
    scopes: ['openid', 'offline_access', 'smtp'],
    claims: { openid: ['sub'], email: ['email'] },
    ttl: {
      AccessToken: accessTtl,
      ClientCredentials: accessTtl,
      RefreshToken: options.refreshTtl ?? 3600,
      DeviceCode: 300,
      AuthorizationCode: 60,
      Grant: 3600,
      Session: 3600,
      Interaction: 600,
      IdToken: 3600,
    },
    rotateRefreshToken: true,
    cookies: { keys: ['oauth-tests-only'] },
    findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub, email: sub }) }),
  } as never);
  const issued: Record<string, number> = {};
  const refused: Record<string, number> = {};
  const server: OidcServer = {
    provider,
    issuer,
    tokenUrl: '',
    httpTokenUrl: `${issuer}/token`,
    httpsOrigin: '',
    ca: pki.ca,
    certKey,
    issued,
    refused,
    introspections: 0,
    close: async () => {},
  };
  provider.on('grant.success', (ctx: { oidc: { params: { grant_type: string } } }) => {
    const type = ctx.oidc.params.grant_type;
    issued[type] = (issued[type] ?? 0) + 1;
  });
  provider.on('grant.error', (_ctx: unknown, error: { error?: string }) => {
    const key = error.error ?? 'unknown';
    refused[key] = (refused[key] ?? 0) + 1;
  });
  provider.on('introspection.error', () => {});
  provider.on('server_error', (_ctx: unknown, error: Error) => {
    process.stderr.write(`oidc-provider server_error: ${error.stack}\n`);
  });
  const app = provider.callback();
  const counting = (req: Parameters<typeof app>[0], res: Parameters<typeof app>[1]) => {
    if (req.url?.startsWith('/token/introspection')) server.introspections++;
    return app(req, res);
  };
  http.on('request', counting);
  const https = createHttpsServer({ key: pki.server.key, cert: pki.server.cert }, counting);
  const httpsPort = await listen(https);
  server.httpsOrigin = `https://127.0.0.1:${httpsPort}`;
  server.tokenUrl = `${server.httpsOrigin}/token`;
  server.close = async () => {
    for (const s of [http, https]) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  };
  return server;
}
