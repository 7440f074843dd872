// Transcript files: a scenario as the wire sees it, plus what the client is
// asked to do and what it must return. Format (see test/transcript/cases):
//
//   # class: SMTP                      (SMTP, SMTP_SSL or LMTP)
//   # options: {"pipelining": false}   (merged into the client options)
//   # connect-throws: SMTPConnectError (the connect itself must fail so)
//   # call: sendmail ["a@x", ["b@y"], "Subject: t\n\nhi\n"]
//   # result: {"b@y": {"code": 550}}   (subset match on the call's result)
//   # throws: SMTPRecipientsRefused    (or the call must throw this class)
//   # throws-props: {"smtpCode": 554}
//   S: 220 mx ESMTP
//   C: EHLO client.test
//   ...
//
// A pasted `debugLevel: 1` log (send: '...' / reply: '...' lines) or a
// `smtplib serve --record` recording reads the same way.
//
// Server lines (S:) are replayed; client lines (C:) are asserted byte for
// byte. Every transcript runs whole, one byte per write, line by line, and
// in seeded random splits.

import { readFileSync } from 'node:fs';
import * as smtplib from 'smtplib';
import { parseTranscript, startScriptedServer, type SplitMode } from './scripted-server.js';
import { testPki } from './certs.js';
import { debugLogToScript } from '../../packages/capture/src/transcript.js';

export interface Call {
  method: string;
  args: unknown[];
  result?: unknown;
  throws?: string;
  throwsProps?: Record<string, unknown>;
  /** Start without awaiting; settle at the end (for queued sends). */
  concurrent?: boolean;
}

export interface Transcript {
  name: string;
  className: 'SMTP' | 'SMTP_SSL' | 'LMTP';
  options: Record<string, unknown>;
  connectThrows?: string;
  calls: Call[];
  script: string;
  tls: boolean;
}

export function loadTranscript(path: string): Transcript {
  // A pasted `debugLevel: 1` log (send: '...' / reply: '...') reads as S:/C: lines.
  const text = debugLogToScript(readFileSync(path, 'utf8'));
  const t: Transcript = { name: path.split('/').pop()!, className: 'SMTP', options: {}, calls: [], script: '', tls: false };
  const script: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^# ([\w-]+):\s?(.*)$/.exec(line);
    if (!m) {
      script.push(line);
      if (line.startsWith('S: <starttls>')) t.tls = true;
      continue;
    }
    const [, key, value] = m as unknown as [string, string, string];
    const last = t.calls[t.calls.length - 1];
    switch (key) {
      case 'class': t.className = value.trim() as Transcript['className']; break;
      case 'options': t.options = JSON.parse(value); break;
      case 'connect-throws': t.connectThrows = value.trim(); break;
      case 'call':
      case 'call-concurrent': {
        const space = value.indexOf(' ');
        const method = space === -1 ? value.trim() : value.slice(0, space);
        const args = space === -1 ? [] : JSON.parse(value.slice(space + 1));
        t.calls.push({ method, args, ...(key === 'call-concurrent' ? { concurrent: true } : {}) });
        break;
      }
      case 'result': last!.result = JSON.parse(value); break;
      case 'throws': last!.throws = value.trim(); break;
      case 'throws-props': last!.throwsProps = JSON.parse(value); break;
      default: script.push(line);
    }
  }
  t.script = script.join('\n');
  return t;
}

export interface RunOutcome {
  mismatch?: { step: number; expected: string; actual: string };
  completed: number;
  steps: number;
  leftover: string;
  injectedByClient: string;
  failures: string[];
}

/** Runs a transcript once with a given split mode. */
export async function runTranscript(t: Transcript, split: SplitMode, seed = 1): Promise<RunOutcome> {
  const steps = parseTranscript(t.script);
  const pki = t.tls || t.className === 'SMTP_SSL' ? testPki() : undefined;
  const server = await startScriptedServer(steps, {
    split,
    seed,
    ...(pki ? { tls: { key: pki.server.key, cert: pki.server.cert } } : {}),
    implicitTls: t.className === 'SMTP_SSL',
  });
  const failures: string[] = [];
  const Class = smtplib[t.className] as typeof smtplib.SMTP;
  const options = {
    host: '127.0.0.1',
    port: server.port,
    localHostname: 'client.test',
    timeout: 4000,
    ...(pki ? { tls: { ca: pki.ca } } : {}),
    ...t.options,
  };
  let client: smtplib.SMTP | undefined;
  try {
    try {
      client = await Class.connect(options);
      if (t.connectThrows) failures.push(`connect should have thrown ${t.connectThrows}`);
    } catch (error) {
      if (!t.connectThrows) failures.push(`connect threw ${describe(error)}`);
      else if ((error as Error).name !== t.connectThrows) failures.push(`connect threw ${describe(error)}, expected ${t.connectThrows}`);
    }
    if (client) {
      const pending: { call: Call; promise: Promise<unknown> }[] = [];
      for (const call of t.calls) {
        const fn = (client as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[call.method];
        if (typeof fn !== 'function') { failures.push(`no method ${call.method}`); continue; }
        const promise = Promise.resolve().then(() => fn.apply(client, call.args));
        if (call.concurrent) { promise.catch(() => {}); pending.push({ call, promise }); continue; }
        for (const p of pending.splice(0)) failures.push(...(await check(p.call, p.promise)));
        failures.push(...(await check(call, promise)));
      }
      for (const p of pending) failures.push(...(await check(p.call, p.promise)));
    }
  } finally {
    client?.close();
  }
  const result = await Promise.race([server.done, new Promise<undefined>((r) => setTimeout(() => r(undefined), 6000))]);
  await server.close();
  if (!result) return { completed: -1, steps: steps.length, leftover: '', injectedByClient: '', failures: [...failures, 'server script did not finish'] };
  return {
    ...(result.mismatch ? { mismatch: result.mismatch } : {}),
    completed: result.completed,
    steps: steps.length,
    leftover: result.leftover.toString('latin1'),
    injectedByClient: result.injectedByClient.toString('latin1'),
    failures,
  };
}

async function check(call: Call, promise: Promise<unknown>): Promise<string[]> {
  try {
    const value = await promise;
    if (call.throws) return [`${call.method} should have thrown ${call.throws}, returned ${safeJson(value)}`];
    if (call.result !== undefined) {
      const actual = JSON.parse(safeJson(value) ?? 'null');
      const diff = subsetDiff(call.result, actual, call.method);
      return diff;
    }
    return [];
  } catch (error) {
    if (!call.throws) return [`${call.method} threw ${describe(error)}`];
    const failures: string[] = [];
    if ((error as Error).name !== call.throws) failures.push(`${call.method} threw ${describe(error)}, expected ${call.throws}`);
    if (call.throwsProps) failures.push(...subsetDiff(call.throwsProps, JSON.parse(safeJson(propsOf(error)) ?? 'null'), `${call.method} error`));
    return failures;
  }
}

function propsOf(error: unknown): Record<string, unknown> {
  const e = error as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of ['code', 'smtpCode', 'smtpError', 'enhancedStatus', 'deliveryStatus', 'phase', 'sender', 'recipients', 'command']) {
    if (e[key] !== undefined) out[key] = e[key];
  }
  return out;
}

function subsetDiff(expected: unknown, actual: unknown, path: string): string[] {
  if (expected === null || typeof expected !== 'object') {
    return expected === actual ? [] : [`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
  }
  if (actual === null || typeof actual !== 'object') return [`${path}: expected an object, got ${JSON.stringify(actual)}`];
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return [`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
  }
  const out: string[] = [];
  for (const [key, value] of Object.entries(expected)) out.push(...subsetDiff(value, (actual as Record<string, unknown>)[key], `${path}.${key}`));
  if (!Array.isArray(expected) && Object.keys(expected).length === 0 && Object.keys(actual).length !== 0) {
    out.push(`${path}: expected {}, got ${JSON.stringify(actual)}`);
  }
  return out;
}

function safeJson(value: unknown): string | undefined {
  return JSON.stringify(value, (_k, v) => (v instanceof Map && !(v instanceof smtplib.RefusedRecipients) ? Object.fromEntries(v) : v));
}

function describe(error: unknown): string {
  const e = error as Error;
  return `${e?.name}: ${e?.message}`;
}
