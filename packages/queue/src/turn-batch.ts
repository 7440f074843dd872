// Group commit across one turn of the event loop: the requests a store gets in one turn (the
// end-of-data marks of a claimed group, the outcomes of replies that arrived together) are
// handed to one flush on the next turn, so they share one round trip to Redis or one fsync.

export class TurnBatch<T> {
  #items: T[] = [];
  #scheduled = false;
  readonly #flush: (batch: T[]) => Promise<void>;

  /** `flush` gets every item added in a turn; it settles them itself (it must not throw). */
  constructor(flush: (batch: T[]) => Promise<void>) {
    this.#flush = flush;
  }

  add(item: T): void {
    this.#items.push(item);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#run);
  }

  readonly #run = (): void => {
    const batch = this.#items;
    this.#items = [];
    this.#scheduled = false;
    void this.#flush(batch);
  };
}
