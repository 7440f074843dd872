// smtplib's status catalogue: one table that reads replies for the queue and the pool.
import { describe, expect, it } from 'vitest';
import { Reply, StatusCatalogue, STATUS_RULES, classifyReply } from 'smtplib';

const reply = (code: number, text: string): Reply => new Reply(code, [text]);

describe('status catalogue', () => {
  it('reads the class, then the enhanced status, then texts that mean greylisting or rate limits', () => {
    expect(classifyReply(reply(250, '2.0.0 ok'))).toMatchObject({ kind: 'success', retry: false });
    expect(classifyReply(reply(550, '5.1.1 no such user'))).toMatchObject({ kind: 'permanent', retry: false, rule: 'X.1.1', title: 'Bad destination mailbox address' });
    expect(classifyReply(reply(452, '4.2.2 mailbox full'))).toMatchObject({ kind: 'transient', retry: true, rule: 'X.2.2', title: 'Mailbox full' });
    expect(classifyReply(reply(450, '4.7.1 greylisted, try again in 5 minutes'))).toMatchObject({ kind: 'greylisting', retry: true });
    expect(classifyReply(reply(421, '4.7.0 too many messages from your IP, slow down'))).toMatchObject({ kind: 'rate-limit', retry: true });
    expect(classifyReply(reply(451, '4.7.28 flood'))).toMatchObject({ kind: 'rate-limit', rule: 'X.7.28' });
    expect(classifyReply(reply(451, 'local error'))).toMatchObject({ kind: 'transient', rule: '451' });
    expect(classifyReply(reply(599, 'odd'))).toMatchObject({ kind: 'permanent', rule: '5xx' });
    expect(classifyReply({ code: -1, message: 'connection reset' })).toMatchObject({ kind: 'transient', retry: true });
  });

  it('a rule never turns a 5xx into a retry or a 4xx into a bounce', () => {
    // "rate limit" text on a 5xx: still permanent (the server said so).
    expect(classifyReply(reply(554, '5.7.1 rate limit exceeded, message rejected'))).toMatchObject({ kind: 'permanent', retry: false });
    const strict = new StatusCatalogue([{ match: '4.2.2', kind: 'permanent', title: 'full', advice: 'x' }]);
    expect(strict.classify(reply(452, '4.2.2 full'))).toMatchObject({ kind: 'transient', retry: true, title: 'full' });
  });

  it('users extend it: their rules win over the built-in table; the table is readable', () => {
    const mine = new StatusCatalogue([{ match: /mailbox is on vacation/i, kind: 'greylisting', title: 'Vacation', advice: 'try next week' }]);
    expect(mine.classify(reply(450, '4.2.1 mailbox is on vacation'))).toMatchObject({ kind: 'greylisting', title: 'Vacation' });
    expect(classifyReply(reply(450, '4.2.1 mailbox is on vacation'))).toMatchObject({ kind: 'transient', title: 'Mailbox disabled, not accepting messages' });
    expect(STATUS_RULES.length).toBeGreaterThan(80);
    expect(STATUS_RULES.every((r) => r.title && r.advice)).toBe(true);
    expect(() => new StatusCatalogue([{ match: 'nonsense', title: 't', advice: 'a' }])).toThrow(RangeError);
    expect(mine.describeEnhanced('5.1.10')?.title).toBe('Recipient address has null MX');
  });
});
