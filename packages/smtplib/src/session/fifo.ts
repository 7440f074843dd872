// A first-in, first-out queue whose push and shift are O(1) however long it
// grows: the session's reply waiters, the client's operation queue and the
// pool's ready jobs. Array.prototype.shift moves every element once an array
// is past V8's regular object size (about 16,000 entries), which made a burst
// of thousands of queued sends quadratic (each reply took the first of tens
// of thousands of waiters). Here the front is an index; the taken slots are
// dropped in one copy once they are the larger half.

export class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  /** Puts an item back at the front. */
  unshift(item: T): void {
    if (this.#head > 0) this.#items[--this.#head] = item;
    else this.#items.unshift(item);
  }

  /** The first item, without taking it. */
  peek(): T | undefined {
    return this.#items[this.#head];
  }

  /** The item `index` places from the front (0: the first), without taking it. */
  at(index: number): T | undefined {
    return this.#items[this.#head + index];
  }

  shift(): T | undefined {
    const items = this.#items;
    if (this.#head >= items.length) return undefined;
    const item = items[this.#head];
    items[this.#head++] = undefined;
    if (this.#head === items.length) {
      // Empty: start over (the common case, a queue that drains between bursts).
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= items.length) {
      this.#items = items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Takes every item, in order, leaving the queue empty. */
  drain(): T[] {
    const all = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#head = 0;
    return all;
  }
}
