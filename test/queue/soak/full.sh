#!/usr/bin/env bash
# The full-size crash soak (issue 13): 20,000 messages per store, 4 worker
# processes, SIGKILLs all along, a Redis SIGKILL + restart; writes the
# reconciliation into docs/queue.md. About 10-20 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../../.."
npm run build --silent
N="${SOAK_MESSAGES:-20000}"
node test/queue/soak/crash-soak.mjs --store spool --messages "$N" --workers 4 --timeout 1800 --doc docs/queue.md
node test/queue/soak/crash-soak.mjs --store redis --messages "$N" --workers 4 --timeout 1800 --doc docs/queue.md
