// The duplicate deliveries of the CHUNKING soak with connection drops
// (SOAK_MODES=chunking SOAK_MESSAGES=1500 SOAK_SEED=4242 npm run soak), as
// exact wire sequences. A message that fits one chunk goes whole (MAIL,
// RCPT, BDAT LAST and the body in one group) and several such groups are
// chained in one write. When the connection drops before their replies, the
// MAIL and RCPT replies are missing too; those waiters used to fail as
// 'not-delivered', so the pool resent messages the server had already
// delivered. Any reply of a whole group that is lost after the group's last
// byte left the client now means 'unknown'.
//
// The transcripts (test/pool/transcripts/*.smtp) are replayed as
// test/transcript replays its cases: whole, byte by byte, line by line, in
// seeded random splits. The pool tests below drive the same sequence through
// SMTPPool against the fault server, which really delivers before dropping.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SMTPPool, SMTPServerDisconnected } from '../../packages/smtplib/src/index.js';
import { describeTranscripts } from '../support/transcript-suite.js';
import { message, startFaultServer, type FaultContext, type FaultServerHandle } from './helpers.js';

describeTranscripts('a connection dropped under chained BDAT LAST groups: transcripts', join(import.meta.dirname, 'transcripts'), {
  minCases: 3,
  splits: [['whole', 1], ['byte', 1], ['line', 1], ['random', 7]],
});

let server: FaultServerHandle | undefined;
let pool: SMTPPool | undefined;
afterEach(async () => {
  pool?.destroy();
  pool = undefined;
  await server?.close();
  server = undefined;
});

const delivered = (s: FaultServerHandle, id: string) => s.deliveries.get(`${id} b@example.test`) ?? 0;

describe('a connection dropped under chained BDAT LAST groups: SMTPPool', () => {
  it('the server delivers every chained message, then drops before replying: none is sent twice, each is unknown', async () => {
    // On the first connection, the first MAIL after three BDAT LAST were read
    // (the server has delivered those three; their replies are still in its
    // buffer) drops the connection. Later connections behave.
    let lasts = 0;
    let dropped = false;
    const fault = (ctx: FaultContext) => {
      if (dropped || ctx.connection.id !== 1) return undefined;
      if (ctx.stage === 'end-of-data') lasts++;
      if (ctx.verb === 'MAIL' && lasts >= 3) {
        dropped = true;
        return { drop: true as const };
      }
      return undefined;
    };
    server = await startFaultServer({ chunking: true, fault });
    pool = new SMTPPool({
      host: '127.0.0.1',
      port: server.port,
      localHostname: 'client.test',
      maxConnections: 1,
      maxInFlightPerConnection: 10,
      timeout: 5000,
      retry: { attempts: 5, minDelayMs: 1, maxDelayMs: 5 },
    });
    const ids = Array.from({ length: 8 }, (_, i) => `c${i}`);
    const results = await Promise.allSettled(ids.map((id) => pool!.sendmail('a@example.test', 'b@example.test', message(id))));
    expect(dropped).toBe(true);
    expect(server.stats.maxBdatLastInOneRead).toBeGreaterThanOrEqual(3);
    for (const [i, id] of ids.entries()) {
      const result = results[i]!;
      // Never twice, whatever the outcome.
      expect(delivered(server, id), id).toBeLessThanOrEqual(1);
      if (result.status === 'fulfilled') {
        expect(delivered(server, id), id).toBe(1);
      } else {
        const error = result.reason;
        expect(error).toBeInstanceOf(SMTPServerDisconnected);
        expect(error.deliveryStatus, `${id}: ${error.message}`).toBe('unknown');
        expect(error.attempts).toBe(1);
      }
    }
    // The three the server delivered before the drop are among the unknown ones, not resent.
    const unknown = results.flatMap((r, i) => (r.status === 'rejected' ? [ids[i]!] : []));
    expect(unknown.filter((id) => delivered(server!, id) === 1).length).toBe(3);
  });
});
