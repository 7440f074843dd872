#!/usr/bin/env bash
# The benchmark's smoke run (small counts; writes to bench/.work/, never RESULTS.md).
set -euo pipefail
BENCH_QUICK=1 npm run bench --silent
