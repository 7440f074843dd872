// The map of refused recipients that sendmail() returns and
// SMTPRecipientsRefused carries: address → the server's reply.
//
// It reads like smtplib's dict — each address is an own enumerable property,
// so refused['bob@example.org'], Object.keys(refused), JSON.stringify(refused)
// and a deep comparison with {} work — and it has Map's read API as well:
// size, get, has, keys, values, entries, forEach, iteration.
// (It does not extend Map, because then it would never deep-equal a plain
// object; an address that collides with a method name is kept in the map but
// not mirrored as a property.)

import type { Reply } from './reply.js';

/** What an empty map iterates (never written to). */
const NONE: ReadonlyMap<string, Reply> = new Map();

const RESERVED = new Set(['size', 'get', 'has', 'set', 'delete', 'clear', 'keys', 'values', 'entries', 'forEach', 'toJSON', 'constructor']);

export class RefusedRecipients implements Iterable<[string, Reply]> {
  /** Each refused address, as a property (use get() for a typed lookup). */
  readonly [address: string]: unknown;
  /** Made by the first set(): most sends refuse no one, and a Map per message is not free. */
  #map: Map<string, Reply> | undefined;

  /** A map with the entries of a plain object or any iterable of pairs. */
  static from(entries: Record<string, Reply> | Iterable<[string, Reply]>): RefusedRecipients {
    const map = new RefusedRecipients();
    const pairs = Symbol.iterator in entries ? (entries as Iterable<[string, Reply]>) : Object.entries(entries);
    for (const [address, reply] of pairs) map.set(address, reply);
    return map;
  }

  /** The number of refused recipients. */
  get size(): number {
    return this.#map === undefined ? 0 : this.#map.size;
  }

  get(address: string): Reply | undefined {
    return this.#map?.get(address);
  }

  has(address: string): boolean {
    return this.#map !== undefined && this.#map.has(address);
  }

  set(address: string, reply: Reply): this {
    (this.#map ??= new Map()).set(address, reply);
    if (!RESERVED.has(address)) {
      Object.defineProperty(this, address, { value: reply, enumerable: true, configurable: true, writable: false });
    }
    return this;
  }

  delete(address: string): boolean {
    if (!this.#map?.delete(address)) return false;
    if (!RESERVED.has(address)) delete (this as Record<string, unknown>)[address];
    return true;
  }

  clear(): void {
    for (const address of [...this.keys()]) this.delete(address);
  }

  keys(): IterableIterator<string> {
    return (this.#map ?? NONE).keys();
  }

  values(): IterableIterator<Reply> {
    return (this.#map ?? NONE).values();
  }

  entries(): IterableIterator<[string, Reply]> {
    return (this.#map ?? NONE).entries();
  }

  forEach(callback: (reply: Reply, address: string, map: this) => void): void {
    for (const [address, reply] of this.entries()) callback(reply, address, this);
  }

  [Symbol.iterator](): IterableIterator<[string, Reply]> {
    return this.entries();
  }

  /** A plain object of the same entries. */
  toJSON(): Record<string, Reply> {
    return Object.fromEntries(this.entries());
  }
}
