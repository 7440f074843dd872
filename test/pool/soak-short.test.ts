// The short soak against the sources, in each mode (DATA; CHUNKING with
// chained BDAT LAST groups; STARTTLS and AUTH on every connection): a loopback
// server that drops 5% of connections (in every mode, CHUNKING included) and answers 5% of commands with
// 421/451; the server's deliveries, the client's results and the input must agree.
import { describe, expect, it } from 'vitest';
import { SMTPPool } from '../../packages/smtplib/src/index.js';
// @ts-expect-error plain JS module without types
import { runSoak } from '../soak/soak.js';

const MESSAGES = 1500;
describe('soak (short)', () => {
  for (const mode of ['data', 'chunking', 'tls-auth']) {
    it(`${mode}: ${MESSAGES} messages through faults: zero lost, zero duplicated, heap back near its start`, async () => {
      const lines: string[] = [];
      const result = await runSoak({ SMTPPool, mode, messages: MESSAGES, window: 500, seed: 4242, dropRate: 0.05, log: (line: string) => lines.push(line) });
      console.log(lines.join('\n'));
      expect(result.failures).toEqual([]);
      expect(result.outcomes.pending).toBe(0);
      expect(result.lost).toBe(0);
      expect(result.duplicates).toBe(0);
      expect(result.phantom).toBe(0);
      expect(result.strays).toBe(0);
      // The faults really happened, and were absorbed by retries.
      expect(result.server.faults).toBeGreaterThan(30);
      expect(result.server.drops).toBeGreaterThan(0);
      // Every unknown outcome is explained by a dropped connection (at most one connection's in-flight sends each).
      expect(result.unknown.sends).toBeLessThanOrEqual(result.unknown.bound);
      expect(result.pool.retried).toBeGreaterThan(30);
      // Retries absorb the transient faults: a send that did not resolve is unknown (bounded
      // above by the drops) or, rarely, not delivered. (This was "resolved > 97 %", which a
      // run with 45 explained unknowns out of 1,500 failed by one: it tested the drops' timing.)
      expect(result.outcomes.notDelivered).toBeLessThanOrEqual(MESSAGES * 0.01);
      if (mode !== 'data') expect(result.server.maxBdatLastInOneRead).toBeGreaterThanOrEqual(2);
      if (mode === 'tls-auth') expect(result.server.starttls).toBeGreaterThanOrEqual(result.pool.connectionsOpened);
    }, 90_000);
  }
});
