// Which messages a search or a wait means. One matcher for the list's `q`,
// the wait endpoint's fields and the web inbox's search box:
//   q = "from:alice to:bob subject:invoice words in the body"
// Every term must match (case-insensitive substring). `from:` looks at the
// envelope sender and the From header, `to:` at the envelope recipients and
// To/Cc, `subject:` at the decoded Subject, a bare word at all of those and
// the text body.
import type { StoredMessage } from './store.js';

export interface MessageFilter {
  from?: string | undefined;
  to?: string | undefined;
  subject?: string | undefined;
  /** Free text terms. */
  text?: string[] | undefined;
}

export function parseQuery(q: string): MessageFilter {
  const filter: MessageFilter = {};
  const text: string[] = [];
  for (const m of q.matchAll(/(\w+):"([^"]*)"|(\w+):(\S+)|"([^"]*)"|(\S+)/g)) {
    const key = (m[1] ?? m[3])?.toLowerCase();
    const value = m[2] ?? m[4] ?? m[5] ?? m[6] ?? '';
    if (key === 'from' || key === 'to' || key === 'subject') filter[key] = value;
    else text.push(key ? `${key}:${value}` : value);
  }
  if (text.length) filter.text = text;
  return filter;
}

const has = (hay: string, needle: string): boolean => hay.toLowerCase().includes(needle.toLowerCase());

export function matches(m: StoredMessage, f: MessageFilter): boolean {
  if (f.from && !has(`${m.mailFrom.address}\n${m.from}`, f.from)) return false;
  if (f.to && !has(`${m.rcptTo.map((r) => r.address).join('\n')}\n${m.to.join('\n')}`, f.to)) return false;
  if (f.subject && !has(m.subject, f.subject)) return false;
  for (const t of f.text ?? []) {
    if (!has(`${m.mailFrom.address}\n${m.from}\n${m.rcptTo.map((r) => r.address).join('\n')}\n${m.to.join('\n')}\n${m.subject}\n${m.searchText}`, t)) return false;
  }
  return true;
}

export function isEmptyFilter(f: MessageFilter): boolean {
  return !f.from && !f.to && !f.subject && !(f.text && f.text.length);
}
