// `smtplib auth login`: signs a person in once and keeps the refresh token
// (a 0600 file, or printed for a password manager), so accounts with
// `auth oauth` can send without a password. Device authorization (RFC 8628:
// a URL and a code, for terminals and SSH sessions) or the authorization code
// flow with PKCE on a loopback redirect (RFC 8252, for a local browser).
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CliError, EX } from '../exit-codes.js';
import * as lib from 'smtplib';
import { defaultTokenFile, endpointsFor, type OAuthSettings, type ProviderName } from '../oauth-account.js';

export interface AuthLoginOptions {
  provider?: string;
  clientId?: string;
  tenant?: string;
  issuer?: string;
  tokenUrl?: string;
  scope?: string;
  flow?: string;
  account?: string;
  tokenFile?: string;
  print?: boolean;
  clientSecretEnv?: string;
  ca?: string;
  user?: string;
}

const PROVIDERS: readonly ProviderName[] = ['microsoft', 'google', 'oidc'];

export async function runAuthLogin(options: AuthLoginOptions, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const provider = options.provider as ProviderName;
  if (!PROVIDERS.includes(provider)) throw new CliError(`--provider must be one of ${PROVIDERS.join(', ')}`, EX.USAGE);
  if (!options.clientId) throw new CliError('--client-id is required: the application (client) id registered with the provider', EX.USAGE, 'see docs/oauth.md for registering an app');
  const settings: OAuthSettings = {
    provider,
    clientId: options.clientId,
    tenant: options.tenant,
    issuer: options.issuer,
    tokenUrl: options.tokenUrl,
    scope: options.scope,
    clientSecretEnv: options.clientSecretEnv,
  };
  const http = options.ca ? { ca: readFileSync(options.ca, 'utf8') } : {};
  const endpoints = await endpointsFor(settings, http);
  const flow = options.flow ?? (endpoints.deviceAuthorizationUrl ? 'device' : 'browser');
  const secret = options.clientSecretEnv ? process.env[options.clientSecretEnv] : undefined;
  const common = { ...http, tokenUrl: endpoints.tokenUrl, clientId: settings.clientId, scope: endpoints.scope, ...(secret ? { clientSecret: secret } : {}) };
  let result: Awaited<ReturnType<typeof lib.deviceAuthorization>>;
  if (flow === 'device') {
    if (!endpoints.deviceAuthorizationUrl) throw new CliError(`${provider} has no device authorization endpoint for mail; use --flow browser`, EX.USAGE);
    result = await lib.deviceAuthorization({
      ...common,
      deviceAuthorizationUrl: endpoints.deviceAuthorizationUrl,
      onPrompt: (p) => {
        err.write(`To sign in, open ${p.verificationUri}\nand enter the code ${p.userCode}\n`);
        if (p.verificationUriComplete) err.write(`(or open ${p.verificationUriComplete})\n`);
        err.write(`Waiting for you to finish signing in (the code expires in ${Math.round(p.expiresIn / 60)} min)...\n`);
      },
    });
  } else if (flow === 'browser') {
    if (!endpoints.authorizationUrl) throw new CliError(`${provider} has no authorization endpoint`, EX.CONFIG);
    result = await lib.authorizationCodeLogin({
      ...common,
      authorizationUrl: endpoints.authorizationUrl,
      ...(options.user ? { extraParams: { login_hint: options.user } } : {}),
      onPrompt: (url) => {
        err.write(`To sign in, open this URL in a browser on this machine:\n\n  ${url}\n\nWaiting for the browser to come back to 127.0.0.1...\n`);
      },
    });
  } else {
    throw new CliError('--flow must be device or browser', EX.USAGE);
  }
  if (!result.refreshToken) {
    throw new CliError('signed in, but the provider issued no refresh token', EX.PROTOCOL, 'ask for the offline_access scope (Microsoft, OpenID Connect) or use a Google "Desktop app" client');
  }
  if (options.print) {
    // For `| pass insert -m ...`; the account then uses oauth_token_eval.
    out.write(`${result.refreshToken}\n`);
    err.write('Signed in. The refresh token was printed on standard output (not saved).\n');
    return EX.OK;
  }
  const name = options.account ?? provider;
  const file = options.tokenFile ?? defaultTokenFile(name);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  await lib.fileRefreshTokenStore(file).save(result.refreshToken);
  err.write(`Signed in. Refresh token saved to ${file} (mode 0600).\n`);
  out.write(
    [
      `# add to your smtplib config (${'~/.config/smtplib/config'}):`,
      `account ${name}`,
      ...(provider === 'microsoft' ? ['host smtp.office365.com', 'port 587'] : provider === 'google' ? ['host smtp.gmail.com', 'port 587'] : []),
      `user ${options.user ?? 'you@example.com'}`,
      'auth oauth',
      `oauth_provider ${provider}`,
      `oauth_client_id ${settings.clientId}`,
      ...(settings.tenant ? [`oauth_tenant ${settings.tenant}`] : []),
      ...(settings.issuer ? [`oauth_issuer ${settings.issuer}`] : []),
      ...(options.scope ? [`oauth_scope ${options.scope}`] : []),
      ...(options.tokenFile ? [`oauth_token_file ${file}`] : []),
      '',
    ].join('\n'),
  );
  return EX.OK;
}
