// BODY=BINARYMIME (RFC 3030 §3): the body goes by BDAT exactly as given —
// NUL, bare LF and bare CR untouched, no dot-stuffing — and the octet count
// is the body's length. Without CHUNKING it is refused before anything is sent.
import { describe, expect, it } from 'vitest';
import { SMTP, SMTPNotSupportedError } from 'smtplib';
import { parseTranscript, startScriptedServer, type Step } from '../support/scripted-server.js';

const body = Buffer.concat([Buffer.from('Content-Type: application/octet-stream\r\n\r\n'), Buffer.from([0, 1, 0x0a, 0x2e, 0x0d, 0x2e, 0x0a, 0xff, 0x0d])]);

describe('BINARYMIME', () => {
  it('sends the body unchanged in BDAT LAST with BODY=BINARYMIME', async () => {
    const steps: Step[] = [
      ...parseTranscript('S: 220 mx ESMTP\nC: EHLO client.test\nS: 250-mx\nS: 250-PIPELINING\nS: 250-CHUNKING\nS: 250 BINARYMIME'),
      { kind: 'expect', data: Buffer.concat([Buffer.from(`MAIL FROM:<a@example.org> BODY=BINARYMIME\r\nRCPT TO:<b@example.org>\r\nBDAT ${body.length} LAST\r\n`), body]) },
      ...parseTranscript('S: 250 ok\nS: 250 ok\nS: 250 2.0.0 queued\nC: QUIT\nS: 221 bye'),
    ];
    const server = await startScriptedServer(steps);
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, localHostname: 'client.test' });
    expect((await smtp.sendmail('a@example.org', ['b@example.org'], body, { body: 'BINARYMIME' })).size).toBe(0);
    await smtp.quit();
    const result = await server.done;
    expect(result.mismatch).toBeUndefined();
    expect(result.completed).toBe(steps.length);
    await server.close();
  });

  it('is refused before MAIL when the server has no CHUNKING', async () => {
    const steps = parseTranscript('S: 220 mx ESMTP\nC: EHLO client.test\nS: 250-mx\nS: 250 BINARYMIME\nC: QUIT\nS: 221 bye');
    const server = await startScriptedServer(steps);
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, localHostname: 'client.test' });
    await expect(smtp.sendmail('a@example.org', ['b@example.org'], body, ['BODY=BINARYMIME'])).rejects.toBeInstanceOf(SMTPNotSupportedError);
    await smtp.quit();
    const result = await server.done;
    expect(result.mismatch).toBeUndefined();
    expect(result.leftover.length).toBe(0);
    await server.close();
  });
});
