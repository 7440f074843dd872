#!/usr/bin/env bash
# The packages as published: npm pack, the tarballs installed into a scratch project
# (typescript@5.9.3 installed there), type-checked with TS 5 node10 and TS 7 nodenext
# (CommonJS and ESM) and run against a real SMTP server. Needs the build of `npm test`
# and the npm registry; fails (never skips) when it cannot set itself up.
set -euo pipefail
npm run build --silent
npx vitest run --project packaging
