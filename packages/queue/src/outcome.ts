// Turns what SMTPPool returned for one attempt into a decision per recipient,
// reading every reply through the status catalogue (one table for the whole
// project: smtplib's protocol/status-catalogue.ts).

import {
  SMTPException,
  SMTPRecipientsRefused,
  SMTPResponseException,
  classifyRetry,
  type PoolSendResult,
  type Reply,
  type StatusCatalogue,
} from 'smtplib';
import { toStoredReply, type AttemptRecord, type RecipientDecision } from './record.js';

function decide(address: string, reply: Reply | { code: number; message: string; enhancedStatus?: string }, catalogue: StatusCatalogue): RecipientDecision {
  const verdict = catalogue.classify(reply);
  const stored = toStoredReply(reply);
  if (verdict.kind === 'success') return { address, result: 'delivered', reply: stored };
  return {
    address,
    result: verdict.retry ? 'deferred' : 'bounced',
    reply: stored,
    kind: verdict.kind,
    advice: `${verdict.title} (${verdict.rule}): ${verdict.advice}`,
  };
}

export function fromResult(result: PoolSendResult, pending: readonly string[], startedAt: number, catalogue: StatusCatalogue, retryUnknown: boolean): AttemptRecord {
  const decisions: RecipientDecision[] = [];
  const seen = new Set<string>();
  for (const address of result.accepted) {
    decisions.push({ address, result: 'delivered', reply: toStoredReply(result.reply) });
    seen.add(address);
  }
  for (const [address, reply] of result.refused) {
    decisions.push(decide(address, reply, catalogue));
    seen.add(address);
  }
  for (const address of result.unknown) {
    decisions.push(unknownDecision(address, retryUnknown));
    seen.add(address);
  }
  for (const address of pending) if (!seen.has(address)) decisions.push({ address, result: 'deferred', kind: 'transient', advice: 'not reached in this attempt' });
  return { decisions, startedAt };
}

function unknownDecision(address: string, retryUnknown: boolean): RecipientDecision {
  return retryUnknown
    ? { address, result: 'deferred', kind: 'transient', advice: 'the end of data was written and no reply came; retried because retryUnknown is set (may deliver twice)' }
    : { address, result: 'unknown', advice: "the end of data was written and no reply came: the message may have been delivered; check the server's log, `queue retry` resends it" };
}

export function fromError(error: unknown, pending: readonly string[], startedAt: number, catalogue: StatusCatalogue, retryUnknown: boolean): AttemptRecord {
  const text = error instanceof Error ? error.message : String(error);
  if (error instanceof SMTPRecipientsRefused) {
    const decisions: RecipientDecision[] = [];
    const seen = new Set<string>();
    for (const [address, reply] of error.recipients) {
      decisions.push(decide(address, reply, catalogue));
      seen.add(address);
    }
    for (const address of pending) if (!seen.has(address)) decisions.push({ address, result: 'deferred', kind: 'transient', advice: text });
    return { decisions, startedAt };
  }
  if (error instanceof SMTPException && error.deliveryStatus === 'unknown') {
    // LMTP: the recipients answered after the data before the loss are known
    // for certain (delivered, or refused); only the others are unknown.
    const answered = error.pendingRecipients ? (error.recipientReplies ?? new Map<string, Reply>()) : new Map<string, Reply>();
    const decisions = pending.map((address) => {
      const reply = answered.get(address);
      return reply ? decide(address, reply, catalogue) : unknownDecision(address, retryUnknown);
    });
    const anyUnknown = decisions.some((d) => d.result === 'unknown');
    return {
      decisions,
      startedAt,
      error: text,
      ...(anyUnknown ? { unknownReason: `connection lost after the end of data was written: ${text}` } : {}),
    };
  }
  if (error instanceof SMTPResponseException && error.smtpCode > 0) {
    const reply = error.reply ?? { code: error.smtpCode, message: error.smtpError, ...(error.enhancedStatus ? { enhancedStatus: error.enhancedStatus } : {}) };
    return { decisions: pending.map((address) => decide(address, reply, catalogue)), startedAt, error: text };
  }
  // No reply to read: a connection failure, a timeout, TLS, a bad argument.
  const verdict = classifyRetry(error, { retryUnknown: false });
  const never = !verdict.retry && verdict.reason === 'invalid';
  return {
    decisions: pending.map((address) => ({
      address,
      result: never ? 'bounced' : 'deferred',
      kind: 'transient',
      advice: never ? `this message can never be sent as it is: ${text}` : `${verdict.reason}: ${text}`,
    })),
    startedAt,
    error: text,
  };
}
