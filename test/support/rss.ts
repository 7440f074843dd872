// Peak RSS growth over a piece of work, for the tests that stream a gigabyte
// and assert a memory bound: a GC first (when --expose-gc gave one) so the
// baseline is not inflated by garbage, then a sample every 20 ms and one last
// sample when stopped.

export interface RssSampler {
  /** Peak RSS so far minus the baseline, in bytes. */
  readonly growth: number;
  /** Stops sampling (idempotent) and returns the growth, with a last sample taken now. */
  stop(): number;
}

export function sampleRssGrowth(intervalMs = 20): RssSampler {
  global.gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  const sample = () => { peak = Math.max(peak, process.memoryUsage().rss); };
  let timer: NodeJS.Timeout | undefined = setInterval(sample, intervalMs);
  return {
    get growth() { return peak - before; },
    stop() {
      if (timer) { clearInterval(timer); timer = undefined; sample(); }
      return peak - before;
    },
  };
}
