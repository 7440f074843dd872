#!/usr/bin/env bash
# A fresh clone, the README's set-up commands, then its command-line examples as written.
set -euo pipefail
npx vitest run --project first-day
