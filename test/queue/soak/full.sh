#!/usr/bin/env bash
# The full-size crash soak (issue 13): 20,000 messages per store (every 100th
# large: 192 KiB..3 MiB, sent from its file by the spool), 4 worker
# processes, a SIGKILL of a random worker every 12-28 s (each restarted), a
# redis-server SIGKILL + restart at 30 %; writes the reconciliation into
# docs/queue.md. The two stores run at once. Measured on a 2-core machine at
# load average ~25: spool ~35 min, Redis over an hour.
# The soak runs the built packages: do not rebuild while it runs (a worker
# restarted during a build cannot load them; the soak counts that as a crash).
set -euo pipefail
cd "$(dirname "$0")/../../.."
npm run build --silent
N="${SOAK_MESSAGES:-20000}"
T="${SOAK_TIMEOUT:-5400}"
node test/queue/soak/crash-soak.mjs --store spool --messages "$N" --workers 4 --timeout "$T" --kill-min 12000 --kill-spread 16000 --large-every 100 --doc docs/queue.md &
spool=$!
node test/queue/soak/crash-soak.mjs --store redis --messages "$N" --workers 4 --timeout "$T" --kill-min 12000 --kill-spread 16000 --large-every 100 --doc docs/queue.md &
redis=$!
rc=0
wait "$spool" || rc=1
wait "$redis" || rc=1
exit "$rc"
