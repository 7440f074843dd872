// Opening the byte stream: TCP (with Node's Happy Eyeballs), a Unix socket,
// or whatever the caller's `connect` hook returns (a SOCKS or HTTP CONNECT
// tunnel, a test double), then TLS on top when the port wants implicit TLS.
// Every wait here has a deadline and honours an AbortSignal.

import * as net from 'node:net';
import type * as tls from 'node:tls';
import type { LookupFunction } from 'node:net';
import type { Duplex } from 'node:stream';
import { SMTPAbortError, SMTPConnectError, SMTPTimeoutError, type Diagnosis } from '../errors.js';
import { checkPeer, describeTlsFailure, tlsConnectOptions, type TlsSettings } from './tls-options.js';

/** Where to connect. `path` selects a Unix socket. */
export interface ConnectTarget {
  host: string;
  port: number;
  path?: string;
}

/** A caller-supplied way to open the stream (proxies, tunnels, tests). */
export type ConnectHook = (target: ConnectTarget) => Duplex | Promise<Duplex>;

export interface OpenOptions {
  target: ConnectTarget;
  timeout: number;
  signal?: AbortSignal | undefined;
  sourceAddress?: string | undefined;
  sourcePort?: number | undefined;
  lookup?: LookupFunction | undefined;
  family?: number | undefined;
  autoSelectFamily?: boolean | undefined;
  connect?: ConnectHook | undefined;
}

/** The address family of a source address (4 or 6), or 0 for none or a name. */
function sourceFamily(address: string | undefined): number {
  return address ? net.isIP(address) : 0;
}

/** Opens a TCP or Unix-socket connection. */
export async function openSocket(options: OpenOptions): Promise<Duplex> {
  const { target } = options;
  const where = target.path ?? `${target.host}:${target.port}`;
  return withDeadline(
    async (register, settled) => {
      let stream: Duplex;
      if (options.connect) {
        stream = await options.connect({ ...target });
        // The hook's stream arrived after the deadline or the abort: nobody will use it.
        if (settled()) {
          stream.destroy();
          throw new SMTPAbortError('the connect hook returned after the connection attempt had ended');
        }
        register(() => stream.destroy());
        if (stream instanceof net.Socket && stream.connecting) await once(stream, 'connect');
      } else {
        const family = options.family || sourceFamily(options.sourceAddress);
        const socket = target.path
          ? net.connect({ path: target.path })
          : net.connect({
              host: target.host,
              port: target.port,
              ...(options.sourceAddress ? { localAddress: options.sourceAddress } : {}),
              ...(options.sourcePort ? { localPort: options.sourcePort } : {}),
              ...(options.lookup ? { lookup: options.lookup } : {}),
              // A source address binds the socket to one family: resolve the host in that
              // family too, or a name like localhost that resolves to ::1 first fails with
              // "bind EINVAL" instead of reaching 127.0.0.1.
              ...(family ? { family } : {}),
              autoSelectFamily: options.autoSelectFamily ?? true,
            });
        register(() => socket.destroy());
        await once(socket, 'connect');
        stream = socket;
      }
      return stream;
    },
    { timeout: options.timeout, phase: 'connect', what: `connecting to ${where}`, signal: options.signal },
  ).catch((error: unknown) => {
    throw connectError(error, where);
  });
}

let tlsModule: Promise<typeof tls> | undefined;

/**
 * node:tls, loaded with the first TLS connection rather than when smtplib is
 * imported: with its internals about 0.7 ms of CPU (Node 20, after
 * node:crypto, which smtplib loads anyway), and a connection to a local
 * relay never uses it. (Loaded lazily with it: node:fs/promises and
 * node:timers/promises, another ~1.8 ms, by the DKIM spool and OAuth.)
 */
export function loadTls(): Promise<typeof tls> {
  tlsModule ??= import('node:tls');
  return tlsModule;
}

/** Starts TLS on an open socket (implicit TLS and STARTTLS). */
export async function startTls(
  socket: net.Socket | Duplex,
  host: string,
  port: number | undefined,
  settings: TlsSettings,
  timeout: number,
  signal?: AbortSignal,
  afterStarttls = false,
): Promise<tls.TLSSocket> {
  const options = tlsConnectOptions(host, settings);
  const { connect } = await loadTls();
  return withDeadline(
    async (register) => {
      const secure = connect({ ...options, socket: socket as net.Socket });
      register(() => secure.destroy());
      try {
        await once(secure, 'secureConnect');
      } catch (error) {
        throw describeTlsFailure(error, host, port, afterStarttls);
      }
      checkPeer(secure, options.host ?? host, settings);
      return secure;
    },
    { timeout, phase: 'tls', what: `the TLS handshake with ${host}${port ? `:${port}` : ''}`, signal },
  );
}

const CONNECT_FAILURES: Record<string, { diagnosis: Diagnosis; text: string; hint?: string }> = {
  ECONNREFUSED: { diagnosis: 'connection-refused', text: 'the connection was refused', hint: 'is a server listening there, and is the port right?' },
  ENOTFOUND: { diagnosis: 'host-not-found', text: 'the host name could not be resolved', hint: 'check the host name' },
  EAI_AGAIN: { diagnosis: 'host-not-found', text: 'the host name could not be resolved (temporary DNS failure)', hint: 'check the host name and DNS, then try again' },
  ENOENT: { diagnosis: 'no-such-socket', text: 'no such Unix socket', hint: 'check the socket path and that the server is running' },
  EACCES: { diagnosis: 'permission-denied', text: 'permission denied' },
  EHOSTUNREACH: { diagnosis: 'host-unreachable', text: 'the host is unreachable' },
  ENETUNREACH: { diagnosis: 'host-unreachable', text: 'the network is unreachable' },
};

function connectError(error: unknown, where: string): Error {
  if (error instanceof SMTPTimeoutError || error instanceof SMTPAbortError) return error;
  if (error instanceof Error && (error as { code?: string }).code?.startsWith('ERR_SMTP')) return error;
  const code = (error as NodeJS.ErrnoException)?.code ?? '';
  const known = CONNECT_FAILURES[code];
  const text = known ? `${known.text}${known.hint ? `: ${known.hint}` : ''}` : ((error as Error)?.message ?? String(error));
  return new SMTPConnectError(-1, `cannot connect to ${where}: ${text}`, `cannot connect to ${where}: ${text}`, {
    cause: error,
    ...(known ? { diagnosis: known.diagnosis } : {}),
    ...(known?.hint ? { hint: known.hint } : {}),
  });
}

/** Resolves on `event`, rejects on 'error' or an early close. */
export function once(emitter: Duplex, event: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onEvent = () => { cleanup(); resolve(); };
    const onError = (error: Error) => { cleanup(); reject(error); };
    const onClose = () => { cleanup(); reject(Object.assign(new Error('socket closed before ' + event), { code: 'ECONNRESET' })); };
    const cleanup = () => {
      emitter.off(event, onEvent);
      emitter.off('error', onError);
      emitter.off('close', onClose);
    };
    emitter.on(event, onEvent);
    emitter.on('error', onError);
    emitter.on('close', onClose);
  });
}

interface DeadlineOptions {
  timeout: number;
  phase: 'connect' | 'tls';
  what: string;
  signal?: AbortSignal | undefined;
}

/**
 * Runs `work` with a deadline and an AbortSignal; on either, the resources
 * `work` registered are destroyed and a typed error is thrown.
 */
export async function withDeadline<T>(
  work: (register: (cleanup: () => void) => void, settled: () => boolean) => Promise<T>,
  options: DeadlineOptions,
): Promise<T> {
  if (options.signal?.aborted) throw new SMTPAbortError(`aborted before ${options.what}`, { cause: options.signal.reason });
  const cleanups: (() => void)[] = [];
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const failure = new Promise<never>((_, reject) => {
    if (Number.isFinite(options.timeout) && options.timeout > 0) {
      timer = setTimeout(() => {
        reject(new SMTPTimeoutError(options.phase, options.timeout, `timed out after ${options.timeout} ms during ${options.what}`));
      }, options.timeout);
    }
    if (options.signal) {
      onAbort = () => reject(new SMTPAbortError(`aborted during ${options.what}`, { cause: options.signal!.reason }));
      options.signal.addEventListener('abort', onAbort, { once: true });
    }
  });
  let over = false;
  const running = work((cleanup) => (over ? cleanup() : cleanups.push(cleanup)), () => over);
  running.catch(() => {}); // a late failure after the deadline is nobody's to handle
  try {
    return await Promise.race([running, failure]);
  } catch (error) {
    over = true;
    for (const cleanup of cleanups) cleanup();
    throw error;
  } finally {
    over = true;
    clearTimeout(timer);
    if (onAbort) options.signal?.removeEventListener('abort', onAbort);
  }
}

/** True if the address is on this machine's loopback (127.0.0.0/8, ::1, or IPv4-mapped). */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  if (address === '::1') return true;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return net.isIPv4(v4) && v4.startsWith('127.');
}
