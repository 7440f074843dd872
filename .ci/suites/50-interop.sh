#!/usr/bin/env bash
# The real-MTA interop matrix (Postfix, Dovecot LMTP, Exim, OpenSMTPD, aiosmtpd).
set -euo pipefail
bash test/interop/ci.sh
