// Replays every transcript in cases/ whole, byte by byte, line by line and
// in seeded random splits; the client's bytes must match exactly each time.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTranscript, runTranscript } from '../support/transcript.js';
import type { SplitMode } from '../support/scripted-server.js';

const dir = join(import.meta.dirname, 'cases');
const files = readdirSync(dir).filter((f) => f.endsWith('.smtp')).sort();
const modes: [SplitMode, number][] = [['whole', 1], ['byte', 1], ['line', 1], ['random', 7], ['random', 42]];

describe('transcripts', () => {
  it('has cases', () => expect(files.length).toBeGreaterThan(10));
  for (const file of files) {
    describe(file.replace(/\.smtp$/, ''), () => {
      const transcript = loadTranscript(join(dir, file));
      for (const [mode, seed] of modes) {
        it(`${mode}${mode === 'random' ? ` seed ${seed}` : ''}`, async () => {
          const outcome = await runTranscript(transcript, mode, seed);
          expect(outcome.failures).toEqual([]);
          expect(outcome.mismatch).toBeUndefined();
          expect(outcome.completed).toBe(outcome.steps);
          expect(outcome.leftover).toBe('');
          expect(outcome.injectedByClient).toBe('');
        });
      }
    });
  }
});
