// An LMTP connection lost part-way through the per-recipient replies after the
// data: the queue records the recipients that were answered as what their
// reply says (delivered, or deferred/bounced), and only the rest as unknown.
// The error comes from the real LMTP client against a scripted server.
import { afterEach, describe, expect, it } from 'vitest';
import { LMTP, statusCatalogue } from '../../packages/smtplib/src/index.js';
import { fromError } from '../../packages/queue/src/outcome.js';
import { parseTranscript, startScriptedServer, type ScriptedServer } from '../support/scripted-server.js';

let server: ScriptedServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const script = `S: 220 lmtp ready
C: LHLO client.test
S: 250-lmtp
S: 250-PIPELINING
S: 250 ENHANCEDSTATUSCODES
C: MAIL FROM:<a@example.org>
C: RCPT TO:<r1@example.org>
C: RCPT TO:<r2@example.org>
C: RCPT TO:<r3@example.org>
C: DATA
S: 250 2.1.0 ok
S: 250 2.1.5 ok
S: 250 2.1.5 ok
S: 250 2.1.5 ok
S: 354 go
C: m
C: .
S: 250 2.0.0 <r1@example.org> delivered
S: 452 4.2.2 <r2@example.org> mailbox full
S: <reset>
`;

describe('queue outcome of an LMTP drop between the per-recipient replies', () => {
  it('answered recipients are delivered or deferred by their reply; only the unanswered one is unknown', async () => {
    server = await startScriptedServer(parseTranscript(script));
    const lmtp = await LMTP.connect({ host: '127.0.0.1', port: server.port, localHostname: 'client.test', timeout: 4000 });
    const pending = ['r1@example.org', 'r2@example.org', 'r3@example.org'];
    const error = await lmtp.sendmail('a@example.org', pending, 'm\n').catch((e: unknown) => e);
    lmtp.close();
    await server.done;
    const record = fromError(error, pending, Date.now(), statusCatalogue, false);
    const byAddress = new Map(record.decisions.map((d) => [d.address, d]));
    expect(byAddress.get('r1@example.org')).toMatchObject({ result: 'delivered', reply: { code: 250 } });
    expect(byAddress.get('r2@example.org')).toMatchObject({ result: 'deferred', reply: { code: 452, enhancedStatus: '4.2.2' } });
    expect(byAddress.get('r3@example.org')!.result).toBe('unknown');
    expect(record.unknownReason).toMatch(/connection lost after the end of data/);
    // With retryUnknown the unanswered one is retried; the answered ones still keep their replies.
    const retrying = fromError(error, pending, Date.now(), statusCatalogue, true);
    expect(retrying.decisions.map((d) => d.result)).toEqual(['delivered', 'deferred', 'deferred']);
    expect(retrying.unknownReason).toBeUndefined();
  });
});
