// A worker that dies on purpose (SIGKILL itself), for the recovery tests.
// Uses the built packages (npm test builds first).
//   node crash-child.mjs <store-spec> <mode>
//   store-spec: spool:<dir> | redis:<url>[#prefix]
//   mode: claim-mark  claims one message, records "about to write the end of data", dies
//         claim       claims one message, dies
import { openStore } from './store-spec.mjs';

const [spec, mode] = process.argv.slice(2);
const store = await openStore(spec);
const worker = await store.registerWorker();
const claims = await store.claim(worker, 1);
if (claims.length !== 1) {
  console.error(`expected one claim, got ${claims.length}`);
  process.exit(2);
}
if (mode === 'claim-mark') await store.markCommitting(worker, claims[0].message.id, claims[0].message.attempts + 1);
process.stdout.write(`${claims[0].message.id}\n`, () => process.kill(process.pid, 'SIGKILL'));
