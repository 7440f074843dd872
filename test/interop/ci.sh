#!/usr/bin/env bash
# Interop stage for .ci/run: install + start the real mail servers, run the
# interop vitest project against them, always stop them again.
#   bash test/interop/ci.sh
# Exit status: vitest's. Without root on a machine lacking the servers, setup.sh
# prints INTEROP-SKIP and every interop test reports itself skipped.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

t0=$(date +%s)
stop() { "$HERE/servers/peers.sh" stop all > /dev/null 2>&1 || true; }
trap stop EXIT

"$HERE/servers/setup.sh" || { echo "interop: setup.sh failed" >&2; exit 1; }
"$HERE/servers/peers.sh" start all || { echo "interop: peers.sh start failed" >&2; exit 1; }
echo "interop: servers ready in $(( $(date +%s) - t0 )) s"

npm run build -w smtplib --silent > /dev/null || { echo "interop: build failed" >&2; exit 1; }
npx vitest run --project interop
rc=$?
echo "interop: done in $(( $(date +%s) - t0 )) s (vitest exit $rc)"
exit $rc
