// One way to replay a directory of transcripts (test/transcript/cases,
// test/pool/transcripts): each runs whole, byte by byte, line by line and in
// seeded random splits, and each run must match the client's bytes exactly,
// complete every step, leave nothing unread and inject nothing.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SplitMode } from './scripted-server.js';
import { loadTranscript, type RunOutcome, runTranscript } from './transcript.js';

export const ALL_SPLITS: readonly [SplitMode, number][] = [['whole', 1], ['byte', 1], ['line', 1], ['random', 7], ['random', 42]];

/** Asserts one replay went exactly as the transcript says. */
export function expectReplayed(outcome: RunOutcome, label?: string): void {
  expect(outcome.failures, label).toEqual([]);
  expect(outcome.mismatch, label).toBeUndefined();
  expect(outcome.completed, label).toBe(outcome.steps);
  expect(outcome.leftover, label).toBe('');
  expect(outcome.injectedByClient, label).toBe('');
}

/** A describe block with one test per transcript file in `dir` and split mode. */
export function describeTranscripts(title: string, dir: string, options: { minCases: number; splits?: readonly [SplitMode, number][] }): void {
  const files = readdirSync(dir).filter((f) => f.endsWith('.smtp')).sort();
  describe(title, () => {
    it(`has at least ${options.minCases} cases`, () => expect(files.length).toBeGreaterThanOrEqual(options.minCases));
    for (const file of files) {
      describe(file.replace(/\.smtp$/, ''), () => {
        const transcript = loadTranscript(join(dir, file));
        for (const [mode, seed] of options.splits ?? ALL_SPLITS) {
          it(`${mode}${mode === 'random' ? ` seed ${seed}` : ''}`, async () => {
            expectReplayed(await runTranscript(transcript, mode, seed));
          });
        }
      });
    }
  });
}
