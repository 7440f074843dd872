// Delivery status notifications (RFC 3464): a Postfix-style bounce with two
// recipients parses into typed per-recipient results; damaged and non-DSN
// messages give undefined or partial results, never an exception.

import { describe, expect, it } from 'vitest';
import { parseDeliveryStatus, parseMessage } from 'smtplib-email';

const crlf = (s: string) => s.replace(/\r?\n/g, '\r\n');

export const POSTFIX_BOUNCE = crlf(`Return-Path: <>
Date: Sat,  5 Dec 2026 22:10:01 +0000 (UTC)
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: alice@example.com
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="6F1A2C0021.1764972601/mx.example.net"

This is a MIME-encapsulated message.

--6F1A2C0021.1764972601/mx.example.net
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--6F1A2C0021.1764972601/mx.example.net
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
X-Postfix-Queue-ID: 6F1A2C0021
Original-Envelope-Id: Q4-1
Arrival-Date: Sat,  5 Dec 2026 22:09:58 +0000 (UTC)

Final-Recipient: rfc822; nobody@example.org
Original-Recipient: rfc822;Nobody@example.org
Action: failed
Status: 5.1.1
Remote-MTA: dns; mail.example.org
Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.org>: Recipient address
    rejected: User unknown in local recipient table

Final-Recipient: rfc822; slow@example.org
Action: delayed
Status: 4.4.1
Diagnostic-Code: X-Postfix; connect to mail.example.org[192.0.2.1]:25:
    Connection timed out
Will-Retry-Until: Tue,  8 Dec 2026 22:09:58 +0000 (UTC)

--6F1A2C0021.1764972601/mx.example.net
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: alice@example.com
To: nobody@example.org, slow@example.org
Subject: Quarterly
Message-ID: <q4.1@example.com>

--6F1A2C0021.1764972601/mx.example.net--
`);

describe('delivery status notifications', () => {
  it('a Postfix bounce: per-message fields and typed per-recipient results', () => {
    const msg = parseMessage(POSTFIX_BOUNCE);
    const report = parseDeliveryStatus(msg)!;
    expect(report.reportingMta).toBe('mx.example.net');
    expect(report.originalEnvelopeId).toBe('Q4-1');
    expect(report.arrivalDate?.toISOString()).toBe('2026-12-05T22:09:58.000Z');
    expect(report.recipients.map((r) => [r.finalRecipient, r.action, r.status, r.statusClass])).toEqual([
      ['nobody@example.org', 'failed', '5.1.1', 'permanent'],
      ['slow@example.org', 'delayed', '4.4.1', 'transient'],
    ]);
    const [failed, delayed] = report.recipients;
    expect(failed!.originalRecipient).toBe('Nobody@example.org');
    expect(failed!.remoteMta).toBe('mail.example.org');
    expect(failed!.diagnosticType).toBe('smtp');
    expect(failed!.diagnosticCode).toBe('550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in local recipient table');
    expect(delayed!.willRetryUntil?.toISOString()).toBe('2026-12-08T22:09:58.000Z');
    expect(delayed!.fields['x-postfix-queue-id']).toBeUndefined();
    expect(report.fields['x-postfix-queue-id']).toBe('6F1A2C0021');
    expect(report.humanReadable).toMatch(/could not\nbe delivered/);
    expect(report.originalMessage?.getContentType()).toBe('text/rfc822-headers');
  });

  it('not a DSN: undefined; a truncated DSN: what could be read, no exception', () => {
    expect(parseDeliveryStatus(parseMessage('Subject: hi\r\n\r\nbody'))).toBeUndefined();
    for (let cut = 0; cut < POSTFIX_BOUNCE.length; cut += 97) {
      const report = parseDeliveryStatus(parseMessage(POSTFIX_BOUNCE.slice(0, cut)));
      if (report) for (const r of report.recipients) expect(typeof r.status).toBe('string');
    }
  });
});
