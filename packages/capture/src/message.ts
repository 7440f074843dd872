// Turns raw bytes and what the SMTP session knew into a stored message: the
// decoded fields the list and search need are read once, on arrival.
import { gistOf } from './parse.js';
import { capSearchText, newId, type CapturedMessage, type StoredMessage } from './store.js';

const SNIPPET = 160;

export async function describeMessage(raw: Buffer, meta: Partial<CapturedMessage>): Promise<StoredMessage> {
  let subject = '';
  let from = '';
  let to: string[] = [];
  let text = '';
  let hasAttachments = false;
  try {
    const gist = await gistOf(raw);
    subject = gist.subject;
    from = gist.from;
    to = [...gist.to, ...gist.cc];
    text = gist.text;
    hasAttachments = gist.hasAttachments;
  } catch {
    text = raw.subarray(0, 8192).toString('utf8');
  }
  const mailFrom = meta.mailFrom ?? { address: '', args: {} };
  const rcptTo = meta.rcptTo ?? [];
  return {
    id: meta.id ?? newId(),
    sessionId: meta.sessionId ?? '',
    receivedAt: meta.receivedAt ?? new Date().toISOString(),
    remoteAddress: meta.remoteAddress ?? '',
    clientName: meta.clientName ?? '',
    transmissionType: meta.transmissionType ?? '',
    tls: meta.tls ?? null,
    user: meta.user ?? null,
    mailFrom,
    rcptTo,
    accepted: meta.accepted ?? rcptTo.map((r) => r.address),
    size: raw.length,
    subject,
    from: from || mailFrom.address,
    to: to.length ? to : rcptTo.map((r) => r.address),
    snippet: text.replace(/\s+/g, ' ').trim().slice(0, SNIPPET),
    hasAttachments,
    transcript: meta.transcript ?? '',
    raw,
    searchText: capSearchText(text),
  };
}
