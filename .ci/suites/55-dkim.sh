#!/usr/bin/env bash
# DKIM beyond the unit suite (test/dkim runs there):
#  - end to end: Postfix with the OpenDKIM milter in verify mode stores our
#    RSA and Ed25519 signed messages with Authentication-Results dkim=pass;
#  - a 1 GB message signed and sent with the sender's RSS growing < 64 MB.
# Needs root (Postfix/OpenDKIM from private configs); fails, never skips, when
# it cannot set itself up (CI=true makes the tests fail instead of skipping).
#   bash .ci/suites/55-dkim.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export CI=true
t0=$(date +%s)
trap 'bash test/dkim-e2e/servers.sh stop > /dev/null 2>&1 || true' EXIT
npm run build -w smtplib --silent > /dev/null
npx vitest run --project dkim-e2e
echo "dkim-e2e: done in $(( $(date +%s) - t0 )) s"
npx vitest run --project dkim-slow
echo "dkim: done in $(( $(date +%s) - t0 )) s"
