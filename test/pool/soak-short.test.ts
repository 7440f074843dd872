// The short soak (2000 messages) against the sources: a loopback server that
// drops 5% of connections and answers 5% of commands with 421/451; the
// server's deliveries, the client's results and the input must agree.
import { describe, expect, it } from 'vitest';
import { SMTPPool } from '../../packages/smtplib/src/index.js';
// @ts-expect-error plain JS module without types
import { runSoak } from '../soak/soak.js';

describe('soak (short)', () => {
  it('2000 messages through faults: zero lost, zero duplicated, heap back near its start', async () => {
    const lines: string[] = [];
    const result = await runSoak({ SMTPPool, messages: 2000, window: 500, seed: 4242, log: (line: string) => lines.push(line) });
    console.log(lines.join('\n'));
    expect(result.failures).toEqual([]);
    expect(result.outcomes.pending).toBe(0);
    expect(result.lost).toBe(0);
    expect(result.duplicates).toBe(0);
    expect(result.phantom).toBe(0);
    expect(result.strays).toBe(0);
    // The faults really happened, and were absorbed by retries.
    expect(result.server.faults).toBeGreaterThan(50);
    expect(result.server.drops).toBeGreaterThan(0);
    expect(result.pool.retried).toBeGreaterThan(50);
    expect(result.outcomes.resolved).toBeGreaterThan(1950);
  }, 60_000);
});
