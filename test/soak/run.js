// npm run soak: the soak of test/soak/soak.js against the built package, once per mode.
//   SOAK_MESSAGES (default 100000, per mode), SOAK_WINDOW (sends outstanding, 2000),
//   SOAK_SEED (fault PRNG seed), SOAK_HEAP_BOUND_MB (8), SOAK_DROP_RATE (0.05),
//   SOAK_REPLY_FAULT_RATE (0.05), SOAK_MODES (data,chunking,tls-auth).
//   Prints a summary and "SOAK_RESULT {json}" per mode; exits 1 if any invariant failed.

import { runSoak, SOAK_MODES } from './soak.js';

const env = process.env;
const { SMTPPool } = await import(env.SOAK_LIBRARY ?? '../../packages/smtplib/dist/esm/index.js');
const modes = env.SOAK_MODES ? env.SOAK_MODES.split(',') : SOAK_MODES;
let failed = 0;
for (const mode of modes) {
  const result = await runSoak({
    SMTPPool,
    mode,
    messages: Number(env.SOAK_MESSAGES ?? 100_000),
    window: Number(env.SOAK_WINDOW ?? 2000),
    seed: Number(env.SOAK_SEED ?? Date.now() % 1_000_000),
    heapBoundMB: Number(env.SOAK_HEAP_BOUND_MB ?? 8),
    dropRate: Number(env.SOAK_DROP_RATE ?? 0.05),
    replyFaultRate: Number(env.SOAK_REPLY_FAULT_RATE ?? 0.05),
  });
  console.log(`SOAK_RESULT ${JSON.stringify(result)}`);
  if (result.failures.length) failed++;
}
process.exitCode = failed ? 1 : 0;
