// Replays every transcript in cases/ whole, byte by byte, line by line and
// in seeded random splits; the client's bytes must match exactly each time.

import { join } from 'node:path';
import { describeTranscripts } from '../support/transcript-suite.js';

describeTranscripts('transcripts', join(import.meta.dirname, 'cases'), { minCases: 11 });
