import { describe, expect, it } from 'vitest';
import {
  backoffDelay,
  classify,
  classifyConnectFailure,
  partitionRefusals,
  resolveRetryOptions,
} from '../../packages/smtplib/src/pool/retry-policy.js';
import {
  SMTPAbortError,
  SMTPAuthenticationError,
  SMTPConnectError,
  SMTPDataError,
  SMTPInvalidArgumentError,
  SMTPNotSupportedError,
  SMTPProtocolError,
  SMTPRecipientsRefused,
  SMTPSenderRefused,
  SMTPServerDisconnected,
  SMTPTimeoutError,
  SMTPTLSError,
} from '../../packages/smtplib/src/errors.js';
import { Reply } from '../../packages/smtplib/src/protocol/reply.js';

const ctx = { retryUnknown: false };
const reply = (code: number, text = 'x') => new Reply(code, [text]);

describe('retry policy: classify', () => {
  it('retries what the server certainly did not accept', () => {
    expect(classify(new SMTPServerDisconnected('connection lost', { deliveryStatus: 'not-delivered' }), ctx)).toEqual({ retry: true, reason: 'connection-lost' });
    expect(classify(new SMTPServerDisconnected('the server closed the connection: 421 4.3.2 bye'), ctx)).toEqual({ retry: true, reason: 'server-closing' });
    expect(classify(new SMTPSenderRefused(451, '4.3.0 try later', 'a@b'), ctx)).toEqual({ retry: true, reason: 'transient-reply' });
    expect(classify(new SMTPDataError(452, '4.3.1 full', undefined, { deliveryStatus: 'not-delivered' }), ctx)).toEqual({ retry: true, reason: 'transient-reply' });
    expect(classify(new SMTPConnectError(421, 'busy'), ctx)).toEqual({ retry: true, reason: 'server-closing' });
    expect(classify(new SMTPConnectError(-1, 'cannot connect: refused'), ctx)).toEqual({ retry: true, reason: 'connection-lost' });
    expect(classify(new SMTPTimeoutError('command', 10, 'timed out', { deliveryStatus: 'not-delivered' }), ctx)).toEqual({ retry: true, reason: 'timeout' });
    expect(classify(new SMTPProtocolError('garbage'), ctx)).toEqual({ retry: true, reason: 'connection-lost' });
    expect(classify(new SMTPAuthenticationError(454, '4.7.0 temporary'), ctx).retry).toBe(true);
  });

  it('never retries a permanent reply', () => {
    expect(classify(new SMTPSenderRefused(550, '5.7.1 no', 'a@x.test'), ctx)).toEqual({ retry: false, reason: 'permanent-reply' });
    expect(classify(new SMTPDataError(554, '5.6.0 rejected', undefined, { deliveryStatus: 'not-delivered' }), ctx)).toEqual({ retry: false, reason: 'permanent-reply' });
    expect(classify(new SMTPAuthenticationError(535, '5.7.8 bad credentials', 'PLAIN'), ctx)).toEqual({ retry: false, reason: 'permanent-reply' });
    expect(classify(new SMTPConnectError(554, 'go away'), ctx)).toEqual({ retry: false, reason: 'permanent-reply' });
  });

  it("does not retry deliveryStatus 'unknown' unless retryUnknown", () => {
    const lost = new SMTPServerDisconnected('lost after the end of data', { deliveryStatus: 'unknown' });
    expect(classify(lost, ctx)).toEqual({ retry: false, reason: 'delivery-unknown' });
    expect(classify(lost, { retryUnknown: true })).toEqual({ retry: true, reason: 'unknown-allowed' });
    const timeout = new SMTPTimeoutError('data-end', 10, 'timed out', { deliveryStatus: 'unknown' });
    expect(classify(timeout, ctx).retry).toBe(false);
  });

  it("tells the caller's abort from another send's abort that took the connection down", () => {
    const abort = new SMTPAbortError('aborted', { deliveryStatus: 'not-delivered' });
    expect(classify(abort, { retryUnknown: false, callerAborted: true })).toEqual({ retry: false, reason: 'aborted' });
    expect(classify(abort, { retryUnknown: false, callerAborted: false })).toEqual({ retry: true, reason: 'connection-lost' });
  });

  it('does not retry local errors or non-library errors', () => {
    expect(classify(new SMTPInvalidArgumentError('bad address'), ctx).retry).toBe(false);
    expect(classify(new SMTPNotSupportedError('no SMTPUTF8'), ctx).retry).toBe(false);
    expect(classify(new SMTPTLSError('certificate expired'), ctx)).toEqual({ retry: false, reason: 'tls' });
    expect(classify(new SMTPAuthenticationError(-1, 'no mechanism'), ctx).retry).toBe(false);
    expect(classify(new TypeError('bug'), ctx)).toEqual({ retry: false, reason: 'not-smtp' });
    expect(classify(new SMTPDataError(-1, 'reading the message failed'), ctx).retry).toBe(false);
  });

  it('all recipients refused: retried when any refusal is transient', () => {
    const mixed = new SMTPRecipientsRefused({ 'a@x': reply(450), 'b@x': reply(550) }, { deliveryStatus: 'not-delivered' });
    expect(classify(mixed, ctx)).toEqual({ retry: true, reason: 'transient-reply' });
    const permanent = new SMTPRecipientsRefused({ 'a@x': reply(550), 'b@x': reply(553) }, { deliveryStatus: 'not-delivered' });
    expect(classify(permanent, ctx)).toEqual({ retry: false, reason: 'permanent-reply' });
  });

  it('partitions refusals by class', () => {
    const { transient, permanent } = partitionRefusals([['a', reply(451)], ['b', reply(550)], ['c', reply(452)]]);
    expect([...transient.keys()]).toEqual(['a', 'c']);
    expect([...permanent.keys()]).toEqual(['b']);
  });
});

describe('retry policy: backoff with full jitter', () => {
  const options = { minDelayMs: 100, maxDelayMs: 1000 };
  it('grows exponentially, capped, uniformly random below the cap', () => {
    expect(backoffDelay(1, options, () => 1)).toBe(100);
    expect(backoffDelay(2, options, () => 1)).toBe(200);
    expect(backoffDelay(3, options, () => 1)).toBe(400);
    expect(backoffDelay(4, options, () => 1)).toBe(800);
    expect(backoffDelay(5, options, () => 1)).toBe(1000);
    expect(backoffDelay(50, options, () => 1)).toBe(1000);
    // Full jitter: the low end is near zero (a small floor, minDelay/10).
    expect(backoffDelay(4, options, () => 0)).toBe(10);
    const samples = Array.from({ length: 2000 }, () => backoffDelay(4, options));
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(10);
    expect(Math.max(...samples)).toBeLessThanOrEqual(800);
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    expect(mean).toBeGreaterThan(350);
    expect(mean).toBeLessThan(460);
  });

  it('validates options', () => {
    expect(resolveRetryOptions()).toEqual({ attempts: 3, minDelayMs: 1000, maxDelayMs: 60_000, retryUnknown: false });
    expect(() => resolveRetryOptions({ attempts: 0 })).toThrow(RangeError);
    expect(() => resolveRetryOptions({ minDelayMs: 10, maxDelayMs: 5 })).toThrow(RangeError);
  });

  it('connect failures: a connection lost or reset during STARTTLS may pass next time; a certificate that fails verification will not', () => {
    const lostDuringStarttls = new SMTPTLSError('TLS is required but the server closed the connection; not continuing in plaintext', {
      cause: new SMTPServerDisconnected('the server closed the connection'),
    });
    expect(classifyConnectFailure(lostDuringStarttls)).toBe('retry');
    const cutInHandshake = new SMTPTLSError('TLS upgrade failed: Client network socket disconnected before secure TLS connection was established', {
      cause: Object.assign(new Error('Client network socket disconnected before secure TLS connection was established'), { code: 'ECONNRESET' }),
    });
    expect(classifyConnectFailure(cutInHandshake)).toBe('retry');
    const unverified = new SMTPTLSError('TLS upgrade failed: unable to verify the first certificate', {
      cause: Object.assign(new Error('unable to verify the first certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }),
    });
    expect(classifyConnectFailure(unverified)).toBe('dead');
  });
});
