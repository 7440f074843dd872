// POSTs a form to an OAuth 2 endpoint and reads its JSON answer, with the
// rules that keep a token endpoint honest:
// - https with verified certificates only; http only to a loopback address
//   (RFC 8252 §8.3 makes the same exception for redirects) or when the caller
//   sets `allowInsecureHttp`;
// - an HTTPS proxy from the `proxy` option or HTTPS_PROXY (NO_PROXY honoured,
//   loopback never proxied from the environment), tunnelled with CONNECT so
//   the proxy sees only ciphertext; or a caller's `connect` hook that returns
//   the stream to the endpoint (SSH tunnels, SOCKS, tests);
// - bounded time and size; nothing from the request (which holds secrets)
//   ever appears in an error.

import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { Duplex } from 'node:stream';
import { loadTls } from '../wire/connect.js';
import { clean, OAuthError, showEndpoint } from './errors.js';

type HttpModules = { httpRequest: typeof import('node:http').request; httpsRequest: typeof import('node:https').request; tlsConnect: typeof import('node:tls').connect };
let httpModules: Promise<HttpModules> | undefined;

/**
 * node:http, node:https and node:tls, loaded at the first OAuth request
 * rather than when smtplib is imported: most programs never use OAuth, and
 * these (with their _http_* and _tls_* internals) are a good part of what
 * importing it cost.
 */
function loadHttp(): Promise<HttpModules> {
  httpModules ??= Promise.all([import('node:http'), import('node:https'), loadTls()]).then(([http, https, tls]) => ({
    httpRequest: http.request,
    httpsRequest: https.request,
    tlsConnect: tls.connect,
  }));
  return httpModules;
}

/** Opens a byte stream to host:port (TLS is layered on top by this module for https). */
export type OAuthConnect = (target: { host: string; port: number }) => Duplex | Promise<Duplex>;

/** How token endpoints are reached. Shared by every provider. */
export interface OAuthHttpOptions {
  /** Extra trust anchors (PEM) for the token endpoint's certificate; the system store is used otherwise. */
  ca?: string | Buffer | readonly (string | Buffer)[];
  /** Allow http:// to a host that is not loopback. Only for a link protected some other way. Default false. */
  allowInsecureHttp?: boolean;
  /** HTTP proxy URL for CONNECT tunnelling, or false for none. Default: HTTPS_PROXY / https_proxy, minus NO_PROXY. */
  proxy?: string | false;
  /** Opens the connection yourself (overrides `proxy`). */
  connect?: OAuthConnect;
  /** Milliseconds for the whole request. Default 30 000. */
  timeout?: number;
}

export interface OAuthResponse {
  status: number;
  body: Record<string, unknown>;
}

const MAX_BODY = 256 * 1024;
const DEFAULT_TIMEOUT = 30_000;

export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') ? host.slice(1, -1) : host;
  if (bare === 'localhost' || bare.endsWith('.localhost')) return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return bare === '::1';
}

/** Parses and checks an endpoint URL; throws OAuthError(kind 'config') when it must not be used. */
export function checkEndpoint(raw: string | URL, what: string, options: Pick<OAuthHttpOptions, 'allowInsecureHttp'> = {}): URL {
  let url: URL;
  try {
    url = new URL(String(raw));
  } catch (cause) {
    throw new OAuthError(`the ${what} is not a URL`, { kind: 'config', cause });
  }
  if (url.username || url.password) {
    throw new OAuthError(`the ${what} must not contain a user name or password; pass client credentials as options`, { kind: 'config' });
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && (isLoopbackHost(url.hostname) || options.allowInsecureHttp)) return url;
  throw new OAuthError(
    url.protocol === 'http:'
      ? `refusing to send OAuth credentials over plain http to ${url.host}: use https (http is allowed only to a loopback address, or with allowInsecureHttp)`
      : `the ${what} must be an https URL (got ${url.protocol})`,
    { kind: 'config', endpoint: showEndpoint(url) },
  );
}

/** The proxy to use for this URL from the environment, honouring NO_PROXY. */
export function proxyFromEnvironment(url: URL, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (isLoopbackHost(url.hostname)) return undefined;
  const proxy = url.protocol === 'https:' ? env.HTTPS_PROXY ?? env.https_proxy : env.HTTP_PROXY ?? env.http_proxy;
  if (!proxy) return undefined;
  const noProxy = (env.NO_PROXY ?? env.no_proxy ?? '').split(/[\s,]+/).filter(Boolean);
  const host = url.hostname.toLowerCase();
  for (const entry of noProxy) {
    if (entry === '*') return undefined;
    const suffix = entry.replace(/^\*?\.?/, '.').toLowerCase().replace(/:\d+$/, '');
    if (host === suffix.slice(1) || host.endsWith(suffix)) return undefined;
  }
  return proxy;
}

function defaultPort(url: URL): number {
  return Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
}

/** Opens a CONNECT tunnel through an HTTP proxy. */
function tunnel(proxyUrl: string, host: string, port: number, signal: AbortSignal): Promise<Duplex> {
  const proxy = new URL(proxyUrl);
  if (proxy.protocol !== 'http:') {
    return Promise.reject(new OAuthError(`only http:// proxies are supported for CONNECT tunnels (got ${proxy.protocol})`, { kind: 'config' }));
  }
  const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const headers: Record<string, string> = { host: authority };
  if (proxy.username) {
    const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
    headers['proxy-authorization'] = `Basic ${Buffer.from(credentials).toString('base64')}`;
  }
  return loadHttp().then(({ httpRequest }) => new Promise((resolve, reject) => {
    const req = httpRequest({ host: proxy.hostname, port: Number(proxy.port) || 80, method: 'CONNECT', path: authority, headers, signal });
    req.once('connect', (res, socket) => {
      if (res.statusCode === 200) resolve(socket);
      else {
        socket.destroy();
        reject(new OAuthError(`the proxy ${proxy.host} refused the tunnel to ${authority}: HTTP ${res.statusCode}`, { kind: 'transport' }));
      }
    });
    req.once('error', (cause) => reject(new OAuthError(`the proxy ${proxy.host} could not be reached: ${cause.message}`, { kind: 'transport', cause })));
    req.end();
  }));
}

/**
 * POSTs `form` (application/x-www-form-urlencoded) to `url` and returns the
 * parsed JSON body with the status. Never throws for an HTTP error status:
 * the caller reads the OAuth error from the body.
 */
export function postForm(url: URL, form: Record<string, string>, options: OAuthHttpOptions = {}, extraHeaders: Record<string, string> = {}): Promise<OAuthResponse> {
  return requestJson('POST', url, new URLSearchParams(form).toString(), options, extraHeaders);
}

/** GETs a JSON document (OpenID Connect discovery, RFC 8414 metadata) under the same rules. */
export function getJson(url: URL, options: OAuthHttpOptions = {}): Promise<OAuthResponse> {
  return requestJson('GET', url, undefined, options, {});
}

async function requestJson(method: 'GET' | 'POST', url: URL, body: string | undefined, options: OAuthHttpOptions, extraHeaders: Record<string, string>): Promise<OAuthResponse> {
  checkEndpoint(url, 'endpoint', options);
  const endpoint = showEndpoint(url);
  const controller = new AbortController();
  const timeout = options.timeout ?? DEFAULT_TIMEOUT;
  const timer = setTimeout(() => controller.abort(new Error(`no answer within ${timeout} ms`)), timeout);
  const secure = url.protocol === 'https:';
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = defaultPort(url);
  try {
    let stream: Duplex | undefined;
    if (options.connect) stream = await options.connect({ host, port });
    else {
      const proxy = options.proxy === false ? undefined : (options.proxy ?? proxyFromEnvironment(url));
      if (proxy) stream = await tunnel(proxy, host, port, controller.signal);
    }
    const tls: ConnectionOptions = {
      host,
      port,
      servername: isIP(host) ? undefined : host,
      rejectUnauthorized: true,
      ...(options.ca ? { ca: options.ca as ConnectionOptions['ca'] } : {}),
    } as ConnectionOptions;
    const requestOptions = {
      method,
      host,
      port,
      path: url.pathname + url.search,
      signal: controller.signal,
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) } : {}),
        accept: 'application/json',
        ...extraHeaders,
      },
      // createConnection is honoured only without an agent (node:http ClientRequest).
      ...(stream ? {} : { agent: false as const }),
    };
    const { httpRequest, httpsRequest, tlsConnect } = await loadHttp();
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = secure
        ? httpsRequest({
            ...requestOptions,
            ...tls,
            ...(stream ? { createConnection: () => tlsConnect({ ...tls, socket: stream }) } : {}),
          })
        : httpRequest({ ...requestOptions, ...(stream ? { createConnection: () => stream as never } : {}) });
      req.once('response', resolve);
      req.once('error', reject);
      req.end(body);
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY) {
        res.destroy();
        throw new OAuthError(`the answer of ${endpoint} is larger than ${MAX_BODY} bytes`, { kind: 'transport', endpoint, httpStatus: res.statusCode });
      }
      chunks.push(chunk);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new OAuthError(`${endpoint} answered HTTP ${res.statusCode} without an OAuth JSON body (${clean(res.headers['content-type']) ?? 'no content type'}); is this the token endpoint?`, {
        kind: 'transport',
        endpoint,
        httpStatus: res.statusCode,
      });
    }
    return { status: res.statusCode ?? 0, body: parsed as Record<string, unknown> };
  } catch (error) {
    if (error instanceof OAuthError) throw error;
    const reason = controller.signal.aborted ? (controller.signal.reason as Error).message : (error as Error).message;
    const code = (error as NodeJS.ErrnoException).code;
    throw new OAuthError(`the OAuth endpoint ${endpoint} could not be reached: ${clean(reason)}${code ? ` (${code})` : ''}`, { kind: 'transport', endpoint, cause: error });
  } finally {
    clearTimeout(timer);
  }
}
