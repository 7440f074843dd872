// Option objects are checked for keys nobody reads, so a misspelt or misplaced
// option is an error instead of a silent no-op. One rule for every layer that
// takes an options object (protocol parameters, client and pool options), so it
// lives below all of them.

import { SMTPInvalidArgumentError } from './errors.js';

/** Throws SMTPInvalidArgumentError naming any key of `value` not in `known`. */
export function assertKnownKeys(value: Record<string, unknown>, known: readonly string[], what: string, hint = ''): void {
  const unknown = Object.keys(value).filter((key) => !known.includes(key));
  if (unknown.length === 0) return;
  const signalHint = unknown.includes('signal') ? '; pass { signal } as the last argument' : '';
  throw new SMTPInvalidArgumentError(
    `unknown ${what} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: ${known.join(', ')})${signalHint}${hint}`,
  );
}
