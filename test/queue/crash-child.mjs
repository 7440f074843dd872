// A worker that dies on purpose (SIGKILL itself), for the recovery tests.
// Uses the built packages (npm test builds first).
//   node crash-child.mjs <store-spec> <mode>
//   store-spec: spool:<dir> | redis:<url>[#prefix]
//   mode: claim-mark-write  claims one message, records "about to write the end of data", notes
//                           that it is writing it (markWriting, where the store has it, as the pool's
//                           beforeCommitSync does just before that write), dies
//         claim-mark        claims one message, records "about to write the end of data", dies (still
//                           waiting in the pool: its end of data never begun)
//         claim             claims one message, dies
import { openStore } from './store-spec.mjs';

const [spec, mode] = process.argv.slice(2);
const store = await openStore(spec);
// Registered as a QueueWorker registers (one that notes every end of data it writes, where the store takes notes).
const worker = await store.registerWorker(store.markWriting ? { writingNotes: true } : undefined);
const claims = await store.claim(worker, 1);
if (claims.length !== 1) {
  console.error(`expected one claim, got ${claims.length}`);
  process.exit(2);
}
const { id, attempts } = claims[0].message;
if (mode === 'claim-mark' || mode === 'claim-mark-write') await store.markCommitting(worker, id, attempts + 1);
if (mode === 'claim-mark-write') store.markWriting?.(worker, id, attempts + 1);
process.stdout.write(`${id}\n`, () => process.kill(process.pid, 'SIGKILL'));
