#!/usr/bin/env bash
# Fault soak of SMTPPool (issue 12, principle 7), CI size: the fault server
# drops 5% of connections (mid-data, or right after delivering and before the
# reply) and answers 5% of commands 421/451, in each mode: DATA; CHUNKING with
# chained BDAT LAST groups; STARTTLS + AUTH on every connection (CHUNKING too).
# Two seeds x 3 modes x 4,000 messages. Fails on any lost, duplicated, phantom
# or stray delivery, a send settled twice or never, an unknown outcome that
# the dropped connections cannot explain, or heap growth.
# Full size (docs/sending-at-scale.md): bash test/soak/full.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v openssl >/dev/null || { echo "61-pool-soak: openssl is needed for the tls-auth mode's certificates" >&2; exit 1; }
npm run build --silent
for seed in 4242 7; do
  SOAK_MESSAGES=4000 SOAK_WINDOW=1000 SOAK_SEED=$seed SOAK_MODES=data,chunking,tls-auth node test/soak/run.js | grep -v '^SOAK_RESULT'
done
