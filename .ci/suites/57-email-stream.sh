#!/usr/bin/env bash
# smtplib-email: a 1 GiB attachment streamed through sendMessage, and a message with a 1 GiB
# attachment parsed from a stream (spilled to a temporary file), each with RSS growth < 64 MB.
set -euo pipefail
npx vitest run --project email-stream
