#!/usr/bin/env bash
# smtplib-email: a 1 GiB attachment streamed through sendMessage with RSS growth < 64 MB.
set -euo pipefail
npx vitest run --project email-stream
