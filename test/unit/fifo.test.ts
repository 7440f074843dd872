import { describe, expect, it } from 'vitest';
import { Fifo } from '../../packages/smtplib/src/session/fifo.js';

describe('Fifo', () => {
  it('gives items back in order across its compactions, with at() and length relative to the front', () => {
    const fifo = new Fifo<number>();
    const model: number[] = [];
    let next = 0;
    // Interleaved bursts: long enough to compact (front index past 1,024 and half the store) several times.
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 3000; i++) { fifo.push(next); model.push(next++); }
      for (let i = 0; i < 2500; i++) {
        expect(fifo.at(0)).toBe(model[0]);
        expect(fifo.at(7)).toBe(model[7]);
        expect(fifo.shift()).toBe(model.shift());
        expect(fifo.length).toBe(model.length);
      }
    }
    expect(fifo.drain()).toEqual(model);
    expect(fifo.length).toBe(0);
    expect(fifo.shift()).toBeUndefined();
    expect(fifo.at(0)).toBeUndefined();
    fifo.push(1);
    fifo.push(2);
    expect(fifo.shift()).toBe(1);
    expect(fifo.drain()).toEqual([2]);
  });

  it('puts an item back at the front (unshift) and peeks at it, before and after taking some', () => {
    const fifo = new Fifo<string>();
    fifo.unshift('b');
    fifo.unshift('a');
    fifo.push('c');
    expect(fifo.peek()).toBe('a');
    expect(fifo.shift()).toBe('a');
    fifo.unshift('a2');
    expect([fifo.peek(), fifo.at(1), fifo.at(2), fifo.length]).toEqual(['a2', 'b', 'c', 3]);
    expect(fifo.drain()).toEqual(['a2', 'b', 'c']);
    expect(fifo.peek()).toBeUndefined();
  });
});
