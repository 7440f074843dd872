import { describe, expect, it } from 'vitest';
import { OperationQueue } from '../../packages/smtplib/src/client/operation-queue.js';
import type { Transaction } from '../../packages/smtplib/src/client/transaction.js';

/** A stand-in for a queued transaction: only what the queue reads. */
function fake(name: string): Transaction & { name: string; prewritten: boolean; prewrittenWhole: boolean } {
  return { name, prewritten: false, prewrittenWhole: false } as never;
}

describe('OperationQueue.nextTransaction', () => {
  it('skips transactions written ahead whole, stops at a partial one or a non-transaction, and stays right as operations are taken', async () => {
    const queue = new OperationQueue();
    let release!: () => void;
    // The first operation runs at once and holds the queue until released.
    const first = queue.run(() => new Promise<void>((resolve) => (release = resolve)));
    const started: string[] = [];
    const txs = ['a', 'b', 'c', 'd'].map(fake);
    const runs = txs.map((tx) => queue.run(async () => { started.push(tx.name); }, tx));
    expect(queue.waiting).toBe(4);
    expect((queue.nextTransaction() as { name?: string })?.name).toBe('a');
    txs[0]!.prewritten = txs[0]!.prewrittenWhole = true;
    expect((queue.nextTransaction() as { name?: string })?.name).toBe('b');
    txs[1]!.prewritten = txs[1]!.prewrittenWhole = true;
    expect((queue.nextTransaction() as { name?: string })?.name).toBe('c');
    // written ahead without its body: nothing else may follow it on the wire
    txs[2]!.prewritten = true;
    expect(queue.nextTransaction()).toBeUndefined();
    expect(queue.nextTransaction()).toBeUndefined();
    release();
    await first;
    await Promise.all(runs);
    expect(started).toEqual(['a', 'b', 'c', 'd']);
    expect(queue.waiting).toBe(0);
    // After the queue emptied, new operations are scanned from the front again.
    let hold!: () => void;
    const second = queue.run(() => new Promise<void>((resolve) => (hold = resolve)));
    const e = fake('e');
    const f = fake('f');
    const more = [queue.run(async () => undefined, e), queue.run(async () => undefined), queue.run(async () => undefined, f)];
    expect((queue.nextTransaction() as { name?: string })?.name).toBe('e');
    e.prewritten = e.prewrittenWhole = true;
    // a plain operation (not a transaction) sits between e and f: f must wait for its turn
    expect(queue.nextTransaction()).toBeUndefined();
    hold();
    await second;
    await Promise.all(more);
  });
});
