// Helpers for the security suite (not a test file). They compose the shared
// kit in test/support: a scripted server per test, the throw-away PKI, and a
// few extra pieces the scenarios need:
//   - `run()`: play a script, let the client act, return the client's error
//     (or null) and every byte the server received;
//   - `tunnel()`: a connect hook whose stream is not a loopback net.Socket,
//     so the client sees a remote peer (a proxy/tunnel in real life) while
//     the test still runs on 127.0.0.1;
//   - `lookupTo()`: resolve any name to 127.0.0.1 (TLS still checks the name);
//   - `localhostOnly()`: a certificate valid only for "localhost", signed by
//     the test CA (for the STARTTLS "falls back to localhost" pitfall).

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { Duplex } from 'node:stream';
import type { LookupFunction } from 'node:net';
import { expect } from 'vitest';
import * as smtplib from 'smtplib';
import { parseTranscript, startScriptedServer, type ScriptOptions, type ScriptResult, type Step } from '../support/scripted-server.js';
export type { Step };
import { testPki, type Pair } from '../support/certs.js';

export { smtplib, testPki, parseTranscript, startScriptedServer };

export const pki = () => testPki();

/** Server TLS options presenting `pair` (default: the CA-signed server certificate). */
export function serverTls(pair?: Pair): NonNullable<ScriptOptions['tls']> {
  const p = pair ?? testPki().server;
  return { key: p.key, cert: p.cert };
}

/** A lookup that answers 127.0.0.1 for every name, recording the names asked. */
export function lookupTo(asked: string[] = []): LookupFunction {
  return ((hostname: string, options: unknown, callback?: unknown) => {
    const cb = (typeof options === 'function' ? options : callback) as (...a: unknown[]) => void;
    const opts = (typeof options === 'object' && options) as { all?: boolean } | false;
    asked.push(hostname);
    if (opts && opts.all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
    else cb(null, '127.0.0.1', 4);
  }) as LookupFunction;
}

/**
 * A connect hook that reaches the scripted server on loopback through a
 * Duplex that is not a net.Socket (like a SOCKS or HTTP CONNECT tunnel): the
 * client cannot see a loopback peer address, so it treats the peer as remote.
 */
export function tunnel(port: number): smtplib.SMTPOptions['connect'] {
  return () =>
    new Promise<Duplex>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.setNoDelay(true);
      const stream = new Duplex({
        read() {},
        write(chunk: Buffer, _enc, cb) {
          if (socket.destroyed) cb();
          else socket.write(chunk, () => cb());
        },
        final(cb) {
          socket.end();
          cb();
        },
        destroy(error, cb) {
          socket.destroy();
          cb(error);
        },
      });
      socket.on('data', (d) => stream.push(d));
      socket.on('end', () => stream.push(null));
      socket.on('close', () => stream.destroy());
      socket.on('error', (e) => stream.destroy(e));
      socket.once('connect', () => resolve(stream));
      socket.once('error', reject);
    });
}

/** A plain connect hook to the scripted server, whatever port the client thinks it uses. */
export function directTo(port: number): smtplib.SMTPOptions['connect'] {
  return () =>
    new Promise<Duplex>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => resolve(socket));
      socket.once('error', reject);
    });
}

let localhostPair: Pair | undefined;
/** A certificate for DNS:localhost only, signed by the test CA. */
export function localhostOnly(): Pair {
  if (localhostPair) return localhostPair;
  const p = testPki();
  const dir = mkdtempSync(join(tmpdir(), 'smtplib-sec-'));
  copyFileSync(join(p.dir, 'ca.pem'), join(dir, 'ca.pem'));
  copyFileSync(join(p.dir, 'ca.key'), join(dir, 'ca.key'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'lh.key', '-out', 'lh.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'lh.ext'), 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n');
  ssl('x509', '-req', '-in', 'lh.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'lh.pem', '-days', '2', '-extfile', 'lh.ext');
  localhostPair = { key: readFileSync(join(dir, 'lh.key'), 'utf8'), cert: readFileSync(join(dir, 'lh.pem'), 'utf8') };
  return localhostPair;
}

/** A PKCS#12 bundle of the client certificate and key, with a passphrase. */
export function clientPfx(passphrase: string): Buffer {
  const p = testPki();
  const dir = mkdtempSync(join(tmpdir(), 'smtplib-pfx-'));
  writeFileSync(join(dir, 'c.key'), p.client.key);
  writeFileSync(join(dir, 'c.pem'), p.client.cert);
  execFileSync('openssl', ['pkcs12', '-export', '-inkey', 'c.key', '-in', 'c.pem', '-out', 'c.p12', '-passout', `pass:${passphrase}`], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  return readFileSync(join(dir, 'c.p12'));
}

export interface Outcome<T> {
  /** What the action returned, when it did not throw. */
  value?: T;
  /** The error the action threw, if any. */
  error: (Error & { code?: string; cause?: unknown; smtpCode?: number; command?: string }) | null;
  /** Everything the server received, and how the script went. */
  server: ScriptResult;
  /** The client's bytes as text (latin1). */
  wire: string;
  /** Debug lines the client printed (debugLevel 1). */
  debug: string[];
}

export interface RunOptions {
  server?: ScriptOptions;
  /** Client options; host/port default to the scripted server. */
  client?: (port: number) => smtplib.SMTPOptions;
  cls?: typeof smtplib.SMTP;
}

/**
 * Starts a scripted server, runs `act` against a client built from the
 * options (default: SMTP to 127.0.0.1 with the test CA trusted), closes the
 * client, waits for the script to finish, and returns what happened.
 */
export async function run<T>(
  script: string | Step[],
  act: (connect: () => Promise<smtplib.SMTP>) => Promise<T>,
  options: RunOptions = {},
): Promise<Outcome<T>> {
  const server = await startScriptedServer(typeof script === 'string' ? parseTranscript(script) : script, { expectTimeout: 3000, ...options.server });
  const debug: string[] = [];
  const Class = options.cls ?? smtplib.SMTP;
  const clientOptions: smtplib.SMTPOptions = {
    host: '127.0.0.1',
    port: server.port,
    localHostname: 'client.test',
    timeout: 3000,
    tls: { ca: testPki().ca },
    debugLevel: 1,
    debugOutput: (line) => debug.push(line),
    ...(options.client ? options.client(server.port) : {}),
  };
  const clients: smtplib.SMTP[] = [];
  const connect = async () => {
    const c = new Class(clientOptions);
    clients.push(c);
    await c.connect();
    return c;
  };
  let value: T | undefined;
  let error: Outcome<T>['error'] = null;
  try {
    value = await act(connect);
  } catch (e) {
    error = e as Outcome<T>['error'];
  } finally {
    for (const c of clients) c.close();
  }
  const result = await Promise.race([server.done, new Promise<undefined>((r) => setTimeout(() => r(undefined), 6000))]);
  await server.close();
  if (!result) throw new Error('scripted server did not finish');
  return { ...(value !== undefined ? { value } : {}), error, server: result, wire: result.all.toString('latin1'), debug };
}

/** Asserts the error's class (by name and instanceof), stable code, and message fragments. */
export function expectError(
  error: unknown,
  Class: abstract new (...args: never[]) => Error,
  code: string,
  ...fragments: (string | RegExp)[]
): asserts error is Error & { code: string } {
  expect(error, 'expected an error').toBeInstanceOf(Error);
  expect(error).toBeInstanceOf(Class);
  expect((error as Error).name).toBe(Class.name);
  expect((error as { code?: string }).code).toBe(code);
  for (const f of fragments) {
    if (typeof f === 'string') expect((error as Error).message).toContain(f);
    else expect((error as Error).message).toMatch(f);
  }
}

/** Client command lines as the server saw them (one per CRLF-terminated line), plaintext and TLS alike. */
export function lines(wire: string): string[] {
  return wire.split('\r\n').filter((l, i, a) => !(i === a.length - 1 && l === ''));
}

/** Asserts that no client line starts with any of the given verbs (case-insensitive). */
export function expectNoCommand(wire: string, ...verbs: string[]): void {
  for (const line of lines(wire)) {
    for (const verb of verbs) expect(line.toUpperCase().startsWith(verb.toUpperCase()), `unexpected client line ${JSON.stringify(line)}`).toBe(false);
  }
}

export const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
