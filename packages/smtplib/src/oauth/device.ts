// The device authorization grant (RFC 8628) for programs without a browser:
// ask for a code, show the person the URL and the code, and poll the token
// endpoint at the server's pace until they have signed in elsewhere.

import { clean, OAuthError, showEndpoint } from './errors.js';
import { checkEndpoint, postForm, type OAuthHttpOptions } from './http.js';
import { requestToken, scopeString } from './provider.js';

/** What to show the person (RFC 8628 §3.2). */
export interface DevicePrompt {
  verificationUri: string;
  /** The URI with the code in it, when the server gives one (for a QR code or a click). */
  verificationUriComplete?: string;
  userCode: string;
  /** Seconds until the code expires. */
  expiresIn: number;
}

/** Tokens from a completed sign-in. */
export interface SignInResult {
  accessToken: string;
  refreshToken?: string;
  expiresIn?: number;
  scope?: string;
}

export interface DeviceAuthorizationOptions extends OAuthHttpOptions {
  deviceAuthorizationUrl: string | URL;
  tokenUrl: string | URL;
  clientId: string;
  clientSecret?: string;
  scope?: string | readonly string[];
  /** Shows the URL and code to the person; called once, before polling starts. */
  onPrompt: (prompt: DevicePrompt) => void | Promise<void>;
  signal?: AbortSignal;
}

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export async function deviceAuthorization(options: DeviceAuthorizationOptions): Promise<SignInResult> {
  const deviceUrl = checkEndpoint(options.deviceAuthorizationUrl, 'device authorization endpoint', options);
  const tokenUrl = checkEndpoint(options.tokenUrl, 'token endpoint', options);
  const scope = scopeString(options.scope);
  const client = { client_id: options.clientId, ...(options.clientSecret !== undefined ? { client_secret: options.clientSecret } : {}) };
  const { status, body } = await postForm(deviceUrl, { ...client, ...(scope ? { scope } : {}) }, options);
  if (status !== 200 || typeof body.device_code !== 'string' || typeof body.user_code !== 'string' || typeof body.verification_uri !== 'string') {
    const error = clean(body.error, 80);
    throw new OAuthError(
      `${showEndpoint(deviceUrl)} refused the device authorization request: ${error ?? `HTTP ${status}`}${body.error_description ? ` (${clean(body.error_description)})` : ''}`,
      { kind: error === 'invalid_client' || error === 'unauthorized_client' ? 'client' : 'grant-refused', error, errorDescription: clean(body.error_description), httpStatus: status, endpoint: showEndpoint(deviceUrl) },
    );
  }
  const expiresIn = Number(body.expires_in) > 0 ? Number(body.expires_in) : 600;
  await options.onPrompt({
    verificationUri: clean(body.verification_uri, 2000)!,
    ...(typeof body.verification_uri_complete === 'string' ? { verificationUriComplete: clean(body.verification_uri_complete, 2000)! } : {}),
    userCode: clean(body.user_code, 100)!,
    expiresIn,
  });
  // §3.2: without an interval the client MUST wait 5 s between polls.
  let interval = Number(body.interval) > 0 ? Number(body.interval) * 1000 : 5000;
  const deadline = Date.now() + expiresIn * 1000;
  const deviceCode = body.device_code;
  // Loaded here, not when smtplib is imported.
  const { setTimeout: sleep } = await import('node:timers/promises');
  for (;;) {
    await sleep(interval, undefined, options.signal ? { signal: options.signal } : {});
    if (Date.now() > deadline) throw new OAuthError('the device code expired before the sign-in was completed: run the command again', { kind: 'grant-refused', error: 'expired_token' });
    try {
      const issued = await requestToken(tokenUrl, { grant_type: DEVICE_GRANT, device_code: deviceCode, ...client }, options);
      const refresh = issued.body.refresh_token;
      return {
        accessToken: issued.accessToken,
        ...(typeof refresh === 'string' ? { refreshToken: refresh } : {}),
        ...(issued.expiresIn !== undefined ? { expiresIn: issued.expiresIn } : {}),
        ...(issued.scope !== undefined ? { scope: issued.scope } : {}),
      };
    } catch (error) {
      if (!(error instanceof OAuthError)) throw error;
      // §3.5: keep polling while pending; back off by 5 s on slow_down.
      if (error.error === 'authorization_pending') continue;
      if (error.error === 'slow_down') {
        interval += 5000;
        continue;
      }
      if (error.error === 'access_denied') throw new OAuthError('the sign-in was declined at the provider', { kind: 'grant-refused', error: error.error, cause: error });
      if (error.error === 'expired_token') throw new OAuthError('the device code expired before the sign-in was completed: run the command again', { kind: 'grant-refused', error: error.error, cause: error });
      throw error;
    }
  }
}
