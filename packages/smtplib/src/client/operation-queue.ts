// Serializes the operations of one client so that concurrent calls never
// interleave on the wire, and lets the running mail transaction see the
// transaction queued right behind it (to pipeline its commands into the same
// write as its own end of data).

import { Fifo } from '../session/fifo.js';
import type { Transaction } from './transaction.js';

interface Operation {
  start(): Promise<void>;
  transaction?: Transaction | undefined;
}

export class OperationQueue {
  #waiting = new Fifo<Operation>();
  #running = false;
  /**
   * Every waiting operation before this index is a transaction written ahead
   * whole (that never changes until it is taken off the front): the scan for
   * the next transaction starts here. Without it a burst of queued sends,
   * thousands written ahead, was scanned from the front for every message
   * (quadratic: 20,000 queued sends spent ~300 us each in the scan).
   */
  #scanFrom = 0;

  /** Runs `work` after every operation queued before it has finished. */
  run<T>(work: () => Promise<T>, transaction?: Transaction): Promise<T> {
    if (!this.#running && this.#waiting.length === 0) {
      // Idle: start at once and hand the caller the work's own promise
      // (the common awaited send costs no wrapper promise and no pump).
      this.#running = true;
      let running: Promise<T>;
      try {
        running = work();
      } catch (error) {
        this.#running = false;
        return Promise.reject(error);
      }
      running.then(this.#resume, this.#resume);
      return running;
    }
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push({
        // Settles the caller's promise; never rejects itself (a failure is the caller's, not the queue's).
        start: () => {
          let running: Promise<T>;
          try {
            running = work();
          } catch (error) {
            reject(error);
            return Promise.resolve();
          }
          return running.then(resolve, reject);
        },
        transaction,
      });
      if (!this.#running) void this.#pump();
    });
  }

  /** The operation started directly has ended: run whatever queued up meanwhile. */
  readonly #resume = (): void => {
    this.#running = false;
    if (this.#waiting.length > 0) void this.#pump();
  };

  /**
   * The first waiting transaction not yet written ahead, if every operation
   * before it is a transaction already written ahead (so its commands may
   * follow on the wire without anything else in between).
   */
  nextTransaction(): Transaction | undefined {
    const waiting = this.#waiting;
    let i = this.#scanFrom;
    for (; i < waiting.length; i++) {
      const transaction = waiting.at(i)!.transaction;
      if (!transaction) break;
      if (!transaction.prewritten) {
        this.#scanFrom = i;
        return transaction;
      }
      // Written ahead without its body (a DATA group, or BDAT in several
      // chunks): only that body may follow it on the wire.
      if (!transaction.prewrittenWhole) break;
    }
    this.#scanFrom = i;
    return undefined;
  }

  /** Whether the next waiting operation is a transaction already written ahead. */
  nextIsWrittenAhead(): boolean {
    return this.#waiting.at(0)?.transaction?.prewritten ?? false;
  }

  /** Operations not started yet. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** The first waiting operation, taken off the queue. */
  #take(): Operation | undefined {
    if (this.#scanFrom > 0) this.#scanFrom--;
    return this.#waiting.shift();
  }

  async #pump(): Promise<void> {
    this.#running = true;
    try {
      for (let op = this.#take(); op; op = this.#take()) await op.start();
    } finally {
      this.#running = false;
    }
  }
}
