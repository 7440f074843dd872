#!/usr/bin/env bash
# The capture server's web inbox in a real browser: Debian's Chromium
# (.ci/apt-packages) headless, driven by playwright-core. Under CI=true the
# tests fail, never skip, when Chromium is missing or does not start.
# Then the bounded-memory check: 10,000 messages of 100 KB with
# --max-messages 1000 must keep the server's RSS bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."
test -x /usr/bin/chromium || { echo "70-browser: /usr/bin/chromium is missing" >&2; exit 1; }
npm run build --silent
CI=true npx vitest run --project browser
node packages/capture/scripts/rss-bound.mjs
