// The map of refused recipients that sendmail() returns and
// SMTPRecipientsRefused carries. It is a Map (size, get, has, iteration) and
// also shows each address as an own enumerable property, so it reads like
// smtplib's dict: refused['bob@example.org'], Object.keys(refused),
// JSON.stringify(refused).

import type { Reply } from '../protocol/reply.js';

export class RefusedRecipients extends Map<string, Reply> {
  override set(address: string, reply: Reply): this {
    super.set(address, reply);
    Object.defineProperty(this, address, { value: reply, enumerable: true, configurable: true, writable: false });
    return this;
  }

  override delete(address: string): boolean {
    if (super.has(address)) delete (this as unknown as Record<string, unknown>)[address];
    return super.delete(address);
  }

  override clear(): void {
    for (const key of super.keys()) delete (this as unknown as Record<string, unknown>)[key];
    super.clear();
  }

  /** A plain object of the same entries. */
  toJSON(): Record<string, Reply> {
    return Object.fromEntries(this);
  }
}
