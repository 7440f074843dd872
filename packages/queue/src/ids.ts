// Queue ids: time-ordered (so a listing sorts by age) and unguessable enough
// that two processes never pick the same one: 9 base-36 digits of the time
// in ms, then 12 random base-36 digits.

import { randomBytes } from 'node:crypto';

export function newId(now = Date.now()): string {
  const time = now.toString(36).padStart(9, '0');
  const bytes = randomBytes(12);
  let random = '';
  for (const byte of bytes) random += (byte % 36).toString(36);
  return time + random;
}

/** When the message with this id was created (ms): newId's time digits; undefined for a name that is not an id. */
export function idCreatedAt(id: string): number | undefined {
  const time = parseInt(id.slice(0, 9), 36);
  return id.length > 9 && Number.isFinite(time) ? time : undefined;
}
