#!/usr/bin/env bash
# OAuth 2 end to end: Postfix submission + Dovecot (oauth2 passdb, RFC 7662
# introspection) + oidc-provider on loopback. Needs root (Postfix/Dovecot from
# private configs); fails, never skips, when it cannot set itself up.
#   bash .ci/suites/56-oauth.sh        (OAUTH_E2E_REPORT=file writes the result lines)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
t0=$(date +%s)
trap 'bash test/oauth-e2e/servers.sh stop > /dev/null 2>&1 || true' EXIT
bash test/oauth-e2e/servers.sh setup
npx vitest run --project oauth-e2e
echo "oauth-e2e: done in $(( $(date +%s) - t0 )) s"
