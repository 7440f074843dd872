// Opens a store from a spec string, so child processes can open the store a test uses.
export async function openStore(spec) {
  const queue = await import('../../packages/queue/dist/index.js');
  if (spec.startsWith('spool:')) {
    const store = new queue.SpoolStore(spec.slice(6));
    await store.open();
    return store;
  }
  if (spec.startsWith('redis:')) {
    const [url, prefix] = spec.slice(6).split('#');
    const store = new queue.RedisStore({ url, prefix });
    await store.open();
    return store;
  }
  throw new Error(`unknown store spec ${spec}`);
}
