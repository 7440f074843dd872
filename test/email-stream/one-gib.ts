// The 1 GiB attachment both gigabyte email tests use: varied bytes, made on
// demand in 64 KiB chunks, so the test itself holds one block, never the file.
import { Readable } from 'node:stream';

export const GiB = 1024 ** 3;
export const MB = 1024 * 1024;

/** 1 GiB of varied bytes as a fresh stream (call again for another pass). */
export function oneGiB(): Readable {
  const block = Buffer.alloc(64 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = (i * 2654435761) >>> 24;
  let left = GiB;
  return new Readable({
    read() {
      if (left === 0) { this.push(null); return; }
      const n = Math.min(left, block.length);
      left -= n;
      // The same block every time: it is never written to, so it can be pushed again.
      this.push(n === block.length ? block : block.subarray(0, n));
    },
  });
}
