// Runs the fuzzer (test/fuzz/run.js, against the built library) for a short
// while so the CI test command covers it; `npm run fuzz` runs it for 60 s.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const script = fileURLToPath(new URL('../fuzz/run.js', import.meta.url));
const SECONDS = Number(process.env.FUZZ_SHORT_SECONDS ?? 10);

it(`fuzz: parser, encoder and whole sessions for ${SECONDS} s: only typed errors, no hang, bounded heap`, async () => {
  const child = spawn(process.execPath, ['--expose-gc', script], {
    env: { ...process.env, FUZZ_SECONDS: String(SECONDS), FUZZ_CONCURRENCY: '16' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const line = out.split('\n').find((l) => l.startsWith('FUZZ_RESULT '));
  expect(line, out).toBeDefined();
  const result = JSON.parse(line!.slice('FUZZ_RESULT '.length));
  expect(result.failures, out).toEqual([]);
  expect(code, out).toBe(0);
  // It really ran: every engine executed, sessions both delivered and failed.
  expect(result.executions.parser).toBeGreaterThan(1000);
  expect(result.executions.encoder).toBeGreaterThan(1000);
  expect(result.executions.session).toBeGreaterThan(100);
  expect(result.session.ok).toBeGreaterThan(0);
  expect(Object.keys(result.session.errors).length).toBeGreaterThan(3);
  expect(result.session.maxCallMs).toBeLessThan(4000);
}, (SECONDS + 30) * 1000);
