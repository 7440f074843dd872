// Differential tests: each scenario runs twice against the same scripted,
// recording server, once with CPython's smtplib (py/driver.py) and once with
// our client, and the two runs must agree: the commands the server received
// (with its replies, the message data and AUTH exchanges) and the results of
// every call (return values, reply codes and texts, refused-recipient maps,
// exception classes). Only the named normalizations in normalize.ts may
// explain a difference.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCertificates, type TestCertificates } from './certs.js';
import { applyEvents, applyResults, comparable, NORMALIZATIONS, show } from './normalize.js';
import { SCENARIOS, type Scenario } from './scenarios.js';
import { startServer, type ServerEvent } from './server.js';
import { runOurs, runPython, type Job, type StepResult } from './steps.js';

const LOCAL_HOSTNAME = 'client.test';

let certs: TestCertificates;
let socketDir: string;

beforeAll(() => {
  const version = execFileSync('python3', ['-c', 'import sys, smtplib; print(sys.version_info[:2])'], { encoding: 'utf8' });
  expect(version.trim()).toMatch(/^\(3, \d+\)$/);
  certs = makeCertificates();
  socketDir = mkdtempSync(path.join(tmpdir(), 'smtplib-diff-sock-'));
});

afterAll(() => {
  certs?.cleanup();
  if (socketDir) rmSync(socketDir, { recursive: true, force: true });
});

const clone = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

async function runScenario(scenario: Scenario, index: number) {
  for (const name of scenario.normalizations ?? []) {
    if (!NORMALIZATIONS[name]) throw new Error(`unknown normalization ${name}`);
  }
  const lmtp = scenario.client === 'LMTP';
  const server = await startServer({
    script: scenario.script,
    tls: { key: certs.key, cert: certs.cert },
    ...(lmtp ? { path: path.join(socketDir, `lmtp-${index}.sock`) } : {}),
  });
  try {
    const job: Job = {
      client: scenario.client ?? 'SMTP',
      host: server.host,
      port: server.port,
      path: server.path ?? null,
      localHostname: LOCAL_HOSTNAME,
      caFile: certs.caFile,
      ca: certs.ca,
      steps: scenario.steps,
    };
    const python = await runPython(job);
    await server.idle();
    const pyEvents: ServerEvent[] = clone(server.events);
    server.reset();
    const ours = await runOurs(job, python.rendered);
    await server.idle();
    const ourEvents: ServerEvent[] = clone(server.events);
    return { pyEvents, ourEvents, py: python.results, ours };
  } finally {
    await server.close();
  }
}

function report(scenario: Scenario, raw: { pyEvents: ServerEvent[]; ourEvents: ServerEvent[]; py: StepResult[]; ours: StepResult[] }, pySeq: string[], ourSeq: string[]) {
  const side = (title: string, lines: string[]) => `--- ${title} ---\n${lines.join('\n')}`;
  return [
    `scenario: ${scenario.name}`,
    `normalizations: ${(scenario.normalizations ?? []).join(', ') || '(only the always-on ones)'}`,
    side('smtplib (normalized)', pySeq),
    side('ours (normalized)', ourSeq),
    side('smtplib (raw)', show(raw.pyEvents)),
    side('ours (raw)', show(raw.ourEvents)),
    side('smtplib results', raw.py.map((r, i) => `${i} ${scenario.steps[i]!.op}: ${JSON.stringify(r)}`)),
    side('our results', raw.ours.map((r, i) => `${i} ${scenario.steps[i]!.op}: ${JSON.stringify(r)}`)),
  ].join('\n');
}

describe('differential: our client against CPython smtplib', () => {
  it('has at least 20 scenarios, each name unique, every normalization used or always on', () => {
    expect(SCENARIOS.length).toBeGreaterThanOrEqual(20);
    expect(new Set(SCENARIOS.map((s) => s.name)).size).toBe(SCENARIOS.length);
    const used = new Set(SCENARIOS.flatMap((s) => s.normalizations ?? []));
    for (const n of Object.values(NORMALIZATIONS)) expect(n.always || used.has(n.name), n.name).toBe(true);
  });

  // Each scenario has its own server, so scenarios run concurrently (vitest's maxConcurrency).
  SCENARIOS.forEach((scenario, index) => {
    it.concurrent(scenario.name, async ({ expect }) => {
      const raw = await runScenario(scenario, index);
      const names = scenario.normalizations ?? [];
      const pySeq = show(applyEvents(raw.pyEvents, 'python', names));
      const ourSeq = show(applyEvents(raw.ourEvents, 'ours', names));
      const py = clone(raw.py);
      const ours = clone(raw.ours);
      applyResults(py, ours, scenario.steps, names);
      const message = report(scenario, raw, pySeq, ourSeq);
      if (process.env['DIFF_VERBOSE']) console.log(message);

      // Both runs did something, and smtplib completed every step it was given.
      expect(raw.pyEvents.some((e) => e.kind === 'conn'), message).toBe(true);
      expect(raw.py.length, message).toBe(scenario.steps.length);
      expect(raw.ours.length, message).toBe(scenario.steps.length);

      expect(ourSeq, message).toEqual(pySeq);
      expect(ours.map((r) => comparable(r, 'ours')), message).toEqual(py.map((r) => comparable(r, 'python')));
      scenario.check?.(raw);
    });
  });
});
