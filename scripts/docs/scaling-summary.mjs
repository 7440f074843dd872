// The README's "Scaling out" figures, read from docs/queue.md's measured blocks
// (each written by the script its command names): the Redis crash soak, the
// several-hosts runs and the global rate limit. Nothing here is typed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { measured } from './queue-summary.mjs';

export default async function scalingSummary({ root }) {
  const text = readFileSync(join(root, 'docs', 'queue.md'), 'utf8');
  return [
    ...measured(text, 'soak:redis', 'Crash soak (Redis): workers killed with SIGKILL at random moments and restarted, redis-server killed with SIGKILL mid-run and restarted from its AOF, reconciled against the SMTP server\'s own log.'),
    ...measured(text, 'hosts:cut', 'Several hosts: workers on two hosts (network namespaces), one host\'s link cut mid-run and left down.'),
    ...measured(text, 'hosts:heal', 'The same, the link up again after 8 s.'),
    ...measured(text, 'rate:100', 'The global rate limit, 100 msgs/s across 4 worker processes.'),
    ...measured(text, 'rate:10', 'The same at 10 msgs/s.'),
  ].join('\n').replace(/\n+$/, '\n');
}
