// The same class as the CHUNKING duplicates, on LMTP: after the data, LMTP
// owes one reply per recipient. When the connection drops part-way through
// them, the recipients already answered are known for certain (delivered, or
// refused), and only the rest are unknown. The error keeps both, so nothing
// delivered is sent again and nothing refused is reported as maybe delivered.
import { afterEach, describe, expect, it } from 'vitest';
import { LMTP, SMTPException } from '../../packages/smtplib/src/index.js';
import { parseTranscript, startScriptedServer, type ScriptedServer } from '../support/scripted-server.js';

let server: ScriptedServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const script = (withChunking: boolean) => `S: 220 lmtp ready
C: LHLO client.test
S: 250-lmtp
S: 250-PIPELINING
${withChunking ? 'S: 250-CHUNKING\n' : ''}S: 250 ENHANCEDSTATUSCODES
C: MAIL FROM:<a@example.org>
C: RCPT TO:<r1@example.org>
C: RCPT TO:<r2@example.org>
C: RCPT TO:<r3@example.org>
${withChunking ? '' : 'C: DATA\n'}S: 250 2.1.0 ok
S: 250 2.1.5 ok
S: 250 2.1.5 ok
S: 250 2.1.5 ok
${withChunking ? 'C: BDAT 3 LAST\nC: m\n' : 'S: 354 go\nC: m\nC: .\n'}S: 250 2.0.0 <r1@example.org> delivered
S: 452 4.2.2 <r2@example.org> mailbox full
S: <reset>
`;

describe('LMTP: a connection lost between the per-recipient replies after the data', () => {
  for (const chunking of [false, true]) {
    it(`answered recipients keep their replies, only the rest are unknown (${chunking ? 'BDAT' : 'DATA'})`, async () => {
      server = await startScriptedServer(parseTranscript(script(chunking)));
      const lmtp = await LMTP.connect({ host: '127.0.0.1', port: server.port, localHostname: 'client.test', timeout: 4000 });
      const error = await lmtp.sendmail('a@example.org', ['r1@example.org', 'r2@example.org', 'r3@example.org'], 'm\n').catch((e: unknown) => e);
      lmtp.close();
      const result = await server.done;
      expect(result.mismatch).toBeUndefined();
      expect(error).toBeInstanceOf(SMTPException);
      const e = error as SMTPException;
      expect(e.deliveryStatus).toBe('unknown');
      expect(e.pendingRecipients).toEqual(['r3@example.org']);
      expect([...(e.recipientReplies ?? new Map()).entries()].map(([address, reply]) => [address, reply.code])).toEqual([
        ['r1@example.org', 250],
        ['r2@example.org', 452],
      ]);
    });
  }
});
