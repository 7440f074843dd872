// Opens a store from a spec string, so child processes can open the store a test uses.
//   spool:<dir>
//   redis:<url>#<prefix>#<lockDurationMs>[#<max>/<durationMs> rate limit]
export async function openStore(spec) {
  if (spec.startsWith('spool:')) {
    const { SpoolStore } = await import('../../packages/queue/dist/index.js');
    const store = new SpoolStore(spec.slice(6));
    await store.open();
    return store;
  }
  if (spec.startsWith('redis:')) {
    const { RedisStore } = await import('../../packages/queue-redis/dist/index.js');
    const [url, prefix, lock, rate] = spec.slice(6).split('#');
    const [max, durationMs] = (rate ?? '').split('/').map(Number);
    const store = new RedisStore({ url, prefix, lockDurationMs: Number(lock || 30000), ...(max ? { rateLimit: { max, durationMs } } : {}) });
    await store.open();
    return store;
  }
  throw new Error(`unknown store spec ${spec}`);
}
