// Found by the CHUNKING soak: transactions written ahead (pipelined) must
// never put a MAIL between a written-ahead envelope and its own BDAT chunks.
// A message that fits one chunk goes whole (MAIL, RCPT, BDAT LAST + body) and
// anything may follow it; one that needs several chunks ends the chain until
// its chunks are written. The scripted server answers a MAIL inside an open
// transaction with 503 (nested MAIL), as real servers do.
import { afterEach, describe, expect, it } from 'vitest';
import { SMTP } from '../../packages/smtplib/src/index.js';
import { message, startFaultServer, type FaultServerHandle } from './helpers.js';

let server: FaultServerHandle | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('pipelined BDAT transactions', () => {
  it('whole-chunk and multi-chunk messages queued together: no MAIL before the previous message’s chunks, each delivered once', async () => {
    const commands: string[] = [];
    server = await startFaultServer({ chunking: true, log: (line: string) => commands.push(line.replace(/^\d+ C: /, '')) });
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, localHostname: 'client.test', chunkSize: 256 });
    const sizes = [0, 0, 400, 400, 0, 400, 0, 0, 400, 400];
    const results = await Promise.allSettled(sizes.map((pad, i) => smtp.sendmail('a@example.test', ['b@example.test'], message(`m${i}`, `X-Pad: ${'p'.repeat(pad)}\r\n`))));
    await smtp.quit();
    expect(results.map((r) => r.status)).toEqual(sizes.map(() => 'fulfilled'));
    for (let i = 0; i < sizes.length; i++) expect(server.deliveries.get(`m${i} b@example.test`)).toBe(1);
    expect(server.stats.nestedMail).toBe(0);
    // Each MAIL is followed by its RCPT and its BDAT chunks before the next MAIL.
    let open = false;
    for (const line of commands) {
      if (line.startsWith('MAIL')) {
        expect(open, commands.join(' | ')).toBe(false);
        open = true;
      }
      if (/^BDAT \d+ LAST/.test(line)) open = false;
    }
    // And the whole-chunk ones were still chained (several transactions in flight).
    expect(server.stats.maxBdatLastInOneRead).toBeGreaterThanOrEqual(2);
  });

  it('a 421 to a later command: replies that arrived before it still count, so no delivered message is reported failed (or sent twice by a pool)', async () => {
    let mails = 0;
    server = await startFaultServer({ chunking: true, fault: (c) => (c.verb === 'MAIL' && ++mails === 6 ? { reply: '421 4.3.2 closing' } : undefined) });
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, localHostname: 'client.test' });
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => smtp.sendmail('a@example.test', ['b@example.test'], message(`q${i}`))));
    // Messages 0..4 were delivered (their replies came before the 421); 5 got the 421; 6 and 7 never reached the server.
    for (let i = 0; i < 5; i++) {
      expect(server.deliveries.get(`q${i} b@example.test`)).toBe(1);
      expect(results[i]!.status, `message ${i}`).toBe('fulfilled');
    }
    for (let i = 5; i < 8; i++) {
      expect(server.deliveries.get(`q${i} b@example.test`) ?? 0).toBe(0);
      expect(results[i]!.status).toBe('rejected');
      expect((results[i] as PromiseRejectedResult).reason.deliveryStatus).toBe('not-delivered');
    }
  });
});
