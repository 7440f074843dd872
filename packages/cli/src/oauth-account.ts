// OAuth 2 for CLI accounts: which endpoints a provider name means, where the
// refresh token of an account lives, and the token provider an account with
// `auth oauth` logs in with. The flows and providers themselves are smtplib's.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import * as Smtplib from 'smtplib';
import { CliError, EX } from './exit-codes.js';

export type ProviderName = 'microsoft' | 'google' | 'oidc';

/** What an account (or `auth login`) says about its OAuth set-up. */
export interface OAuthSettings {
  provider: ProviderName;
  clientId: string;
  /** Microsoft: the tenant (default `organizations`). */
  tenant?: string | undefined;
  /** oidc: the issuer, whose discovery document names the endpoints. */
  issuer?: string | undefined;
  /** Overrides the discovered or preset token endpoint. */
  tokenUrl?: string | undefined;
  scope?: string | undefined;
  /** Where the refresh token is kept (0600); rotated tokens are written back. */
  tokenFile?: string | undefined;
  /** passwordeval-style: a shell command printing the refresh token (read only). */
  tokenEval?: string | undefined;
  /** Environment variable holding the client secret (Google desktop apps have one). */
  clientSecretEnv?: string | undefined;
}

export interface Endpoints {
  tokenUrl: string;
  deviceAuthorizationUrl?: string | undefined;
  authorizationUrl?: string | undefined;
  scope: string;
}

export function defaultTokenFile(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(env.HOME || homedir(), '.config');
  return join(base, 'smtplib', 'oauth', `${name.replace(/[^A-Za-z0-9._-]/g, '_')}.token`);
}

export async function endpointsFor(settings: OAuthSettings, http: Smtplib.OAuthHttpOptions): Promise<Endpoints> {
  const lib = Smtplib;
  let found: Endpoints;
  if (settings.provider === 'microsoft') found = lib.microsoft365(settings.tenant);
  else if (settings.provider === 'google') found = lib.google();
  else {
    if (!settings.issuer) throw new CliError('--provider oidc needs --issuer URL (its /.well-known/openid-configuration names the endpoints)', EX.USAGE);
    found = { ...(await lib.discoverEndpoints(settings.issuer, http)), scope: 'openid offline_access' };
  }
  return { ...found, ...(settings.tokenUrl ? { tokenUrl: settings.tokenUrl } : {}), ...(settings.scope ? { scope: settings.scope } : {}) };
}

function clientSecret(settings: OAuthSettings): string | undefined {
  if (!settings.clientSecretEnv) return undefined;
  const value = process.env[settings.clientSecretEnv];
  if (!value) throw new CliError(`the environment variable ${settings.clientSecretEnv} (the client secret) is empty`, EX.CONFIG);
  return value;
}

/** The token provider for an account with `auth oauth`. */
export async function providerFor(settings: OAuthSettings, account: string, caFile?: string): Promise<Smtplib.TokenProvider> {
  const lib = Smtplib;
  const http: Smtplib.OAuthHttpOptions = caFile ? { ca: readFileSync(caFile, 'utf8') } : {};
  const endpoints = await endpointsFor(settings, http);
  const secret = clientSecret(settings);
  const hint = `smtplib auth login --account ${account}`;
  if (settings.tokenEval) {
    let token: string;
    try {
      token = execFileSync('/bin/sh', ['-c', settings.tokenEval], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).split('\n')[0]!.trim();
    } catch {
      throw new CliError(`oauth_token_eval for account ${account} failed`, EX.CONFIG);
    }
    return lib.refreshTokenProvider({ ...http, tokenUrl: endpoints.tokenUrl, clientId: settings.clientId, ...(secret ? { clientSecret: secret } : {}), refreshToken: token, scope: endpoints.scope, reauthorizeHint: hint });
  }
  const file = settings.tokenFile ?? defaultTokenFile(account);
  return lib.refreshTokenProvider({
    ...http,
    tokenUrl: endpoints.tokenUrl,
    clientId: settings.clientId,
    ...(secret ? { clientSecret: secret } : {}),
    scope: endpoints.scope,
    store: lib.fileRefreshTokenStore(file),
    reauthorizeHint: hint,
  });
}

/** The account settings `auth oauth` reads (msmtp-style names). */
export const OAUTH_KEYS = [
  'oauth_provider', 'oauth_client_id', 'oauth_tenant', 'oauth_issuer', 'oauth_token_url',
  'oauth_scope', 'oauth_token_file', 'oauth_token_eval', 'oauth_client_secret_env',
] as const;

const FIELD: Record<(typeof OAUTH_KEYS)[number], keyof OAuthSettings> = {
  oauth_provider: 'provider',
  oauth_client_id: 'clientId',
  oauth_tenant: 'tenant',
  oauth_issuer: 'issuer',
  oauth_token_url: 'tokenUrl',
  oauth_scope: 'scope',
  oauth_token_file: 'tokenFile',
  oauth_token_eval: 'tokenEval',
  oauth_client_secret_env: 'clientSecretEnv',
};

/** One `oauth_*` line of the config file. */
export function setOAuthKey(current: Partial<OAuthSettings> | undefined, key: string, value: string, where: string): Partial<OAuthSettings> {
  const field = FIELD[key as keyof typeof FIELD];
  if (!field) throw new CliError(`${where}: unknown setting "${key}"`, EX.CONFIG);
  if (field === 'provider' && !(['microsoft', 'google', 'oidc'] as string[]).includes(value)) {
    throw new CliError(`${where}: oauth_provider should be microsoft, google or oidc`, EX.CONFIG);
  }
  const unquoted = value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
  const expanded = field === 'tokenFile' && unquoted.startsWith('~/') ? join(homedir(), unquoted.slice(2)) : unquoted;
  return { ...current, [field]: expanded };
}

/** For a ServerSpec: the provider of an account with `auth oauth`, built when the login needs it. */
export function oauthFor(account: { name: string; where: string; ca?: string | undefined; oauth?: Partial<OAuthSettings> | undefined } | undefined, caFile?: string): (() => Promise<unknown>) | undefined {
  const settings = account?.oauth;
  if (!account || !settings) return undefined;
  return () => {
    if (!settings.provider || !settings.clientId) {
      throw new CliError(`account "${account.name}" (${account.where}) has auth oauth but no oauth_provider / oauth_client_id`, EX.CONFIG, 'run `smtplib auth login --help`');
    }
    return providerFor(settings as OAuthSettings, account.name, caFile ?? account.ca);
  };
}
