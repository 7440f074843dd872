// OAuth 2 token providers for XOAUTH2 / OAUTHBEARER (node:https and node:crypto only).

export { OAuthError, type OAuthErrorKind, type OAuthErrorFields } from './errors.js';
export { type OAuthHttpOptions, type OAuthConnect } from './http.js';
export { CachedTokenProvider, type TokenProvider, type TokenEvent, type CacheOptions, type CommonProviderOptions, type IssuedToken } from './provider.js';
export { refreshTokenProvider, type RefreshTokenProviderOptions, type RefreshTokenStore } from './refresh-token.js';
export { clientCredentialsProvider, type ClientCredentialsProviderOptions, type ClientCertificate } from './client-credentials.js';
export { googleServiceAccountProvider, type GoogleServiceAccountProviderOptions, type ServiceAccountKey } from './service-account.js';
export { microsoft365, microsoft365AppOnlyScope, google, discoverEndpoints, type OAuthPreset } from './presets.js';
export { fileRefreshTokenStore } from './store.js';
export { type OAuthFailure, type OAuthRejectionReason, type OAuthServerError } from './login.js';
export { deviceAuthorization, type DeviceAuthorizationOptions, type DevicePrompt, type SignInResult } from './device.js';
export { authorizationCodeLogin, type AuthorizationCodeOptions } from './authorization-code.js';
