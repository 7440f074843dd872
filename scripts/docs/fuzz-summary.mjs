// The README's fuzzing sentence: runs `npm run fuzz` for a short, fixed time
// against the built library and reports what its FUZZ_RESULT line says.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const SECONDS = 20;

export default async function fuzzSummary({ root }) {
  const output = execFileSync(process.execPath, ['--expose-gc', join(root, 'test', 'fuzz', 'run.js')], {
    cwd: root, encoding: 'utf8', env: { ...process.env, FUZZ_SECONDS: String(SECONDS) }, maxBuffer: 16 * 1024 * 1024,
  });
  const line = /^FUZZ_RESULT (.*)$/m.exec(output);
  if (!line) throw new Error(`test/fuzz/run.js printed no FUZZ_RESULT line:\n${output}`);
  const result = JSON.parse(line[1]);
  const total = result.executions.total.toLocaleString('en-US');
  return `\`FUZZ_SECONDS=${SECONDS} node --expose-gc test/fuzz/run.js\` on ${new Date().toISOString().slice(0, 16)}Z: ${total} executions in ${result.seconds} s (parser, encoder and whole sessions), heap ${result.heap.baselineMB} MB at the start and ${result.heap.maxMB} MB at most, ${result.failures.length} failures.\n`;
}
