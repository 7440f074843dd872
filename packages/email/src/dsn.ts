// Delivery status notifications (RFC 3464): a multipart/report with
// report-type=delivery-status whose second part is message/delivery-status,
// a per-message block of fields followed by one block per recipient.

import type { EmailMessage } from './message.js';
import { parseDate } from './headers/date.js';
import { unfold } from './headers/fold.js';

export type DsnAction = 'failed' | 'delayed' | 'delivered' | 'relayed' | 'expanded';

export interface DsnRecipient {
  /** Final-Recipient address (type prefix such as "rfc822;" removed). */
  finalRecipient: string;
  originalRecipient?: string;
  /** Lower-cased Action; other values are kept as written. */
  action: DsnAction | string;
  /** The enhanced status code, "5.1.1". */
  status: string;
  /** 'permanent' for 5.x.x, 'transient' for 4.x.x, 'success' for 2.x.x. */
  statusClass: 'success' | 'transient' | 'permanent' | 'unknown';
  remoteMta?: string;
  /** Diagnostic-Code without its type ("smtp; 550 ..." → "550 ..."). */
  diagnosticCode?: string;
  diagnosticType?: string;
  lastAttemptDate?: Date;
  willRetryUntil?: Date;
  /** Every field of the block, lower-cased names, unfolded values. */
  fields: Record<string, string>;
}

export interface DeliveryStatusReport {
  reportingMta?: string;
  arrivalDate?: Date;
  originalEnvelopeId?: string;
  /** Every per-message field, lower-cased names. */
  fields: Record<string, string>;
  recipients: DsnRecipient[];
  /** The human-readable first part, if it is text. */
  humanReadable?: string;
  /** The returned message or its headers (message/rfc822 or text/rfc822-headers part). */
  originalMessage?: EmailMessage;
}

/** Blocks of `Name: value` fields separated by blank lines. */
function fieldBlocks(text: string): Record<string, string>[] {
  const blocks: Record<string, string>[] = [];
  for (const block of text.replace(/\r\n/g, '\n').split(/\n[ \t]*\n/)) {
    const fields: Record<string, string> = {};
    const lines = unfold(block.trim()).split('\n');
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      if (!(name in fields)) fields[name] = line.slice(colon + 1).trim();
    }
    if (Object.keys(fields).length > 0) blocks.push(fields);
  }
  return blocks;
}

function typed(value: string | undefined): { type?: string; value?: string } {
  if (value === undefined) return {};
  const semi = value.indexOf(';');
  return semi === -1 ? { value: value.trim() } : { type: value.slice(0, semi).trim().toLowerCase(), value: value.slice(semi + 1).trim() };
}

/** The delivery status report of a DSN, or undefined if the message is not one. Never throws on damaged reports. */
export function parseDeliveryStatus(message: EmailMessage): DeliveryStatusReport | undefined {
  let statusPart: EmailMessage | undefined;
  let report: EmailMessage | undefined;
  for (const part of message.walk()) {
    if (part.getContentType() === 'multipart/report' && !report) report = part;
    if (part.getContentType() === 'message/delivery-status' || part.getContentType() === 'message/global-delivery-status') {
      statusPart = part;
      break;
    }
  }
  if (!statusPart) return undefined;
  const raw = statusPart.getDecodedPayload();
  const blocks = fieldBlocks(raw.toString('utf8'));
  const perMessage = blocks[0] ?? {};
  const result: DeliveryStatusReport = { fields: perMessage, recipients: [] };
  const reportingMta = typed(perMessage['reporting-mta']).value;
  if (reportingMta) result.reportingMta = reportingMta;
  const arrival = perMessage['arrival-date'] && parseDate(perMessage['arrival-date']);
  if (arrival) result.arrivalDate = arrival;
  if (perMessage['original-envelope-id']) result.originalEnvelopeId = perMessage['original-envelope-id'];
  for (const fields of blocks.slice(1)) {
    const status = (/\d\.\d{1,3}\.\d{1,3}/.exec(fields['status'] ?? '')?.[0]) ?? (fields['status'] ?? '');
    const recipient: DsnRecipient = {
      finalRecipient: typed(fields['final-recipient']).value ?? '',
      action: (fields['action'] ?? '').toLowerCase(),
      status,
      statusClass: status.startsWith('2') ? 'success' : status.startsWith('4') ? 'transient' : status.startsWith('5') ? 'permanent' : 'unknown',
      fields,
    };
    const original = typed(fields['original-recipient']).value;
    if (original) recipient.originalRecipient = original;
    const remote = typed(fields['remote-mta']).value;
    if (remote) recipient.remoteMta = remote;
    const diagnostic = typed(fields['diagnostic-code']);
    // Folded diagnostics are indented by the MTA; the indentation is not part of the text.
    if (diagnostic.value !== undefined) recipient.diagnosticCode = diagnostic.value.replace(/[ \t]+/g, ' ');
    if (diagnostic.type !== undefined) recipient.diagnosticType = diagnostic.type;
    const last = fields['last-attempt-date'] && parseDate(fields['last-attempt-date']);
    if (last) recipient.lastAttemptDate = last;
    const until = fields['will-retry-until'] && parseDate(fields['will-retry-until']);
    if (until) recipient.willRetryUntil = until;
    result.recipients.push(recipient);
  }
  if (report) {
    const parts = [...report.iterParts()];
    const human = parts[0];
    if (human && human.getContentMaintype() === 'text' && human !== statusPart) {
      try { result.humanReadable = human.getContent() as string; } catch { /* not decodable: left out */ }
    }
    const returned = parts[2];
    if (returned) {
      const type = returned.getContentType();
      if (type === 'message/rfc822' || type === 'message/global') {
        const inner = returned.getPayload();
        if (Array.isArray(inner) && inner[0]) result.originalMessage = inner[0];
      } else if (type === 'text/rfc822-headers' || type === 'message/global-headers') {
        result.originalMessage = returned;
      }
    }
  }
  return result;
}
