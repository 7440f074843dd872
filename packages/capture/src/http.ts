// The HTTP side: the JSON API, server-sent events for live updates, and the
// web inbox's static files (public/, shipped as they are). node:http only.
//
// A page on another site can make the browser send requests to 127.0.0.1, so:
// the Host header must name this server (no DNS rebinding), requests that
// change something must come from this origin (no cross-site deletes), and no
// CORS headers are ever sent. Message HTML is served with a CSP that sandboxes
// it (no scripts, opaque origin) and blocks remote content unless asked.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseMail, type ParsedMail } from './parse.js';
import { isEmptyFilter, matches, parseQuery, type MessageFilter } from './query.js';
import type { MessageStore, StoredMessage } from './store.js';
import type { FailureScript } from './failures.js';
import { expandTranscript } from './transcript.js';

export interface HttpOptions {
  host?: string;
  /** Default 8025; 0 picks a free port. */
  port?: number;
}

export interface HttpApi {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export interface ApiContext {
  store: MessageStore;
  failures: FailureScript;
  smtp: { host: string; port: number };
}

const PUBLIC_DIR = fileURLToPath(new URL('../public/', import.meta.url));
const STATIC: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/app.js': 'app.js',
  '/style.css': 'style.css',
  '/favicon.svg': 'favicon.svg',
};
const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};
const INBOX_CSP = "default-src 'self'; img-src 'self' data:; frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const MAX_WAIT_MS = 300_000;

/** What the list shows of a message. */
export function summaryOf(m: StoredMessage): Record<string, unknown> {
  return {
    id: m.id,
    receivedAt: m.receivedAt,
    from: m.from,
    to: m.to,
    subject: m.subject,
    size: m.size,
    snippet: m.snippet,
    hasAttachments: m.hasAttachments,
    mailFrom: m.mailFrom,
    rcptTo: m.rcptTo,
    accepted: m.accepted,
    tls: m.tls,
    user: m.user,
    transmissionType: m.transmissionType,
    remoteAddress: m.remoteAddress,
    clientName: m.clientName,
  };
}

export function detailOf(m: StoredMessage, parsed: ParsedMail): Record<string, unknown> {
  const base = `/api/v1/messages/${m.id}`;
  return {
    ...summaryOf(m),
    cc: parsed.cc,
    date: parsed.date,
    messageId: parsed.messageId,
    headers: parsed.headers,
    text: parsed.text ?? null,
    html: parsed.html ?? null,
    attachments: parsed.attachments.map((a) => ({
      index: a.index,
      filename: a.filename,
      contentType: a.contentType,
      disposition: a.disposition,
      contentId: a.contentId,
      size: a.size,
      url: `${base}/attachments/${a.index}`,
    })),
    mime: parsed.mime,
    links: { raw: `${base}/raw`, source: `${base}/source`, transcript: `${base}/transcript`, html: `${base}/html` },
  };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: string | Buffer, type: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    ...extra,
  });
  res.end(body);
}

function json(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, JSON.stringify(value), 'application/json; charset=utf-8');
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 256 * 1024) throw new HttpError(413, 'request body over 256 KiB');
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
  } catch {
    throw new HttpError(400, 'the request body is not JSON');
  }
}

function filterFrom(params: URLSearchParams): MessageFilter {
  const f = parseQuery(params.get('q') ?? '');
  for (const key of ['from', 'to', 'subject'] as const) {
    const v = params.get(key);
    if (v) f[key] = v;
  }
  return f;
}

/** Rewrites cid: references to this server's part URLs so inline images show. */
function inlineCids(html: string, m: StoredMessage, parsed: ParsedMail): string {
  return html.replace(/\bcid:([^"'\s)>]+)/gi, (whole, cid: string) => {
    const a = parsed.attachments.find((x) => x.contentId && x.contentId.replace(/^<|>$/g, '') === decodeURIComponent(cid));
    return a ? `/api/v1/messages/${m.id}/attachments/${a.index}` : whole;
  });
}

function messageCsp(origin: string, id: string, remote: boolean): string {
  const own = `${origin}/api/v1/messages/${id}/attachments/`;
  // `sandbox` without allow-scripts: even opened on its own, the page runs no script and has an opaque origin.
  return remote
    ? `sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; img-src * data: ${own}; style-src * 'unsafe-inline'; font-src * data:; media-src *`
    : `sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; img-src data: ${own}; style-src 'unsafe-inline'; font-src data:`;
}

export async function startHttpApi(ctx: ApiContext, options: HttpOptions = {}): Promise<HttpApi> {
  const { store, failures } = ctx;
  const host = options.host ?? '127.0.0.1';
  const streams = new Set<ServerResponse>();
  const waiters = new Set<{ filter: MessageFilter; since: string; done: (m: StoredMessage) => void }>();
  let port = 0;

  const broadcast = (event: string, data: unknown): void => {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of streams) res.write(frame);
  };
  const onMessage = (m: StoredMessage): void => {
    broadcast('message', summaryOf(m));
    for (const w of [...waiters]) if (m.id > w.since && matches(m, w.filter)) w.done(m);
  };
  const onDelete = (id: string): void => broadcast('delete', { id });
  const onClear = (): void => broadcast('clear', {});
  store.on('message', onMessage);
  store.on('delete', onDelete);
  store.on('drop', onDelete);
  store.on('clear', onClear);
  const heartbeat = setInterval(() => {
    for (const res of streams) res.write(': keep-alive\n\n');
  }, 15_000);
  heartbeat.unref();

  const allowedHosts = (): Set<string> =>
    new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `${host}:${port}`, host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`]);

  const getMessage = (id: string): StoredMessage => {
    const m = store.get(id);
    if (!m) throw new HttpError(404, `no message ${id} (deleted, or dropped by --max-messages)`);
    return m;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const hostHeader = (req.headers.host ?? '').toLowerCase();
    if (!allowedHosts().has(hostHeader)) throw new HttpError(421, `this server answers to 127.0.0.1:${port} or localhost:${port}, not ${hostHeader || 'no Host'}`);
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      const origin = req.headers.origin;
      if (origin && origin !== `http://${hostHeader}`) throw new HttpError(403, 'cross-origin requests may not change anything');
    }
    const url = new URL(req.url ?? '/', `http://${hostHeader}`);
    const path = url.pathname;
    if (method === 'GET' && STATIC[path]) {
      const file = STATIC[path]!;
      const body = await readFile(join(PUBLIC_DIR, file));
      return send(res, 200, body, TYPES[file.split('.').pop()!]!, { 'content-security-policy': INBOX_CSP, 'x-frame-options': 'DENY' });
    }
    if (!path.startsWith('/api/v1/')) throw new HttpError(404, `nothing at ${path}`);
    const parts = path.slice('/api/v1/'.length).split('/').map(decodeURIComponent);

    if (parts[0] === 'info' && method === 'GET') {
      return json(res, 200, { smtp: ctx.smtp, http: { host, port }, messages: store.size, maxMessages: store.maxMessages });
    }
    if (parts[0] === 'events' && method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-content-type-options': 'nosniff' });
      res.write(`retry: 1000\n: ${store.size} messages\n\n`);
      streams.add(res);
      req.on('close', () => streams.delete(res));
      return;
    }
    if (parts[0] === 'failures') {
      if (method === 'GET') return json(res, 200, { rules: failures.list() });
      if (method === 'PUT') {
        const body = (await readJson(req)) as { rules?: unknown };
        if (!body || !Array.isArray(body.rules) || !body.rules.every((r) => typeof r === 'string')) throw new HttpError(400, 'send {"rules": ["RCPT to=~@x -> 550 ...", ...]}');
        try {
          failures.replace(body.rules as string[]);
        } catch (err) {
          throw new HttpError(400, (err as Error).message);
        }
        return json(res, 200, { rules: failures.list() });
      }
      if (method === 'DELETE') {
        failures.replace([]);
        return json(res, 200, { rules: [] });
      }
    }
    if (parts[0] !== 'messages') throw new HttpError(404, `nothing at ${path}`);

    if (parts.length === 1) {
      if (method === 'GET') {
        const filter = filterFrom(url.searchParams);
        const all = store.all().reverse();
        const found = isEmptyFilter(filter) ? all : all.filter((m) => matches(m, filter));
        const limit = Math.min(Math.max(Number(url.searchParams.get('limit') ?? 100) || 100, 1), 1000);
        const offset = Math.max(Number(url.searchParams.get('offset') ?? 0) || 0, 0);
        return json(res, 200, { total: store.size, matched: found.length, offset, messages: found.slice(offset, offset + limit).map(summaryOf) });
      }
      if (method === 'DELETE') return json(res, 200, { deleted: store.clear() });
    }

    if (parts[1] === 'wait' && parts.length === 2 && method === 'GET') {
      const filter = filterFrom(url.searchParams);
      const since = url.searchParams.get('since') ?? '';
      const timeout = Math.min(Math.max(Number(url.searchParams.get('timeout') ?? 10_000) || 0, 0), MAX_WAIT_MS);
      const existing = store.all().find((m) => m.id > since && matches(m, filter));
      const found =
        existing ??
        (await new Promise<StoredMessage | undefined>((resolve) => {
          const w = {
            filter,
            since,
            done: (m: StoredMessage | undefined) => {
              clearTimeout(timer);
              waiters.delete(w);
              req.off('close', gone);
              resolve(m);
            },
          };
          const timer = setTimeout(() => w.done(undefined), timeout);
          const gone = (): void => w.done(undefined);
          req.on('close', gone);
          waiters.add(w);
        }));
      if (!found) return json(res, 408, { error: `no matching message within ${timeout} ms`, filter });
      return json(res, 200, detailOf(found, await parseMail(found.raw)));
    }

    const id = parts[1]!;
    if (parts.length === 2) {
      if (method === 'GET') {
        const m = getMessage(id);
        return json(res, 200, detailOf(m, await parseMail(m.raw)));
      }
      if (method === 'DELETE') {
        if (!store.delete(id)) throw new HttpError(404, `no message ${id}`);
        return json(res, 200, { deleted: 1 });
      }
    }
    if (method !== 'GET' || parts.length < 3) throw new HttpError(405, `${method} is not allowed on ${path}`);
    const m = getMessage(id);
    switch (parts[2]) {
      case 'raw':
        return send(res, 200, m.raw, 'message/rfc822', url.searchParams.has('download') ? { 'content-disposition': `attachment; filename="${m.id}.eml"` } : {});
      case 'transcript':
        return send(res, 200, expandTranscript(m.transcript, m.raw), 'text/plain; charset=utf-8', url.searchParams.has('download') ? { 'content-disposition': `attachment; filename="${m.id}.smtp"` } : {});
      case 'source':
        return json(res, 200, {
          id: m.id,
          mailFrom: m.mailFrom,
          rcptTo: m.rcptTo,
          accepted: m.accepted,
          remoteAddress: m.remoteAddress,
          clientName: m.clientName,
          transmissionType: m.transmissionType,
          tls: m.tls,
          user: m.user,
          transcript: expandTranscript(m.transcript, m.raw),
          raw: m.raw.toString('utf8'),
        });
      case 'html': {
        const parsed = await parseMail(m.raw);
        const remote = url.searchParams.get('remote') === '1';
        const body = parsed.html ? inlineCids(parsed.html, m, parsed) : `<pre>${escapeHtml(parsed.text ?? '')}</pre>`;
        const page = `<!doctype html><meta charset="utf-8"><base target="_blank">${body}`;
        return send(res, 200, page, 'text/html; charset=utf-8', { 'content-security-policy': messageCsp(`http://${hostHeader}`, m.id, remote) });
      }
      case 'attachments': {
        const parsed = await parseMail(m.raw);
        const a = parsed.attachments[Number(parts[3])];
        if (!a || parts.length !== 4) throw new HttpError(404, `message ${id} has no attachment ${parts[3]}`);
        const name = (a.filename ?? `part-${a.index}`).replace(/["\\\r\n]/g, '_');
        return send(res, 200, Buffer.from(a.content), safeType(a.contentType), {
          'content-disposition': `${url.searchParams.has('inline') ? 'inline' : 'attachment'}; filename="${name.replace(/[^\x20-\x7e]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(name)}`,
          'content-security-policy': "sandbox; default-src 'none'",
        });
      }
    }
    throw new HttpError(404, `nothing at ${path}`);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy();
      const status = err instanceof HttpError ? err.status : 500;
      json(res, status, { error: (err as Error).message });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8025, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    host,
    port,
    url: `http://${shownHost === '0.0.0.0' ? '127.0.0.1' : shownHost}:${port}`,
    close: async () => {
      clearInterval(heartbeat);
      store.off('message', onMessage);
      store.off('delete', onDelete);
      store.off('drop', onDelete);
      store.off('clear', onClear);
      for (const w of [...waiters]) w.done(undefined as unknown as StoredMessage);
      for (const res of streams) res.end();
      streams.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Types a browser may render inline stay; anything that could run script is served as bytes. */
function safeType(type: string): string {
  return /^(image\/(png|jpeg|gif|webp)|text\/plain|application\/pdf)$/i.test(type) ? type : 'application/octet-stream';
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
