// Shared bits of the hardening suite (issue 11): play a transcript against
// the scripted server and give the test a connected client and every byte
// the server received.

import * as smtplib from 'smtplib';
import { parseTranscript, startScriptedServer, type ScriptOptions, type ScriptResult } from '../support/scripted-server.js';

export { smtplib };

export interface Played<T> {
  value?: T;
  error?: unknown;
  wire: ScriptResult;
  /** Every client byte as text. */
  sent: string;
}

/**
 * Starts a scripted server with `script` ("S: ..."/"C: ..." lines), runs
 * `act(port)` and returns its outcome with what the server saw.
 */
export async function play<T>(script: string, act: (port: number) => Promise<T>, options: ScriptOptions = {}): Promise<Played<T>> {
  const server = await startScriptedServer(parseTranscript(script), { expectTimeout: 2000, ...options });
  let value: T | undefined;
  let error: unknown;
  try {
    value = await act(server.port);
  } catch (e) {
    error = e;
  }
  const wire = await Promise.race([server.done, new Promise<ScriptResult>((_, reject) => setTimeout(() => reject(new Error('script did not finish')), 8000))]);
  await server.close();
  return { ...(value !== undefined ? { value } : {}), ...(error !== undefined ? { error } : {}), wire, sent: wire.all.toString('latin1') };
}

/** Client options for the scripted server on loopback. */
export function local(port: number, extra: smtplib.SMTPOptions = {}): smtplib.SMTPOptions {
  return { host: '127.0.0.1', port, localHostname: 'client.test', timeout: 3000, ...extra };
}

export const GREET = 'S: 220 mx ESMTP\nC: EHLO client.test\nS: 250-mx\nS: 250-PIPELINING\nS: 250 8BITMIME\n';
