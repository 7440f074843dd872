#!/usr/bin/env bash
# Crash soak of the durable queue (issue 13), CI size: 4 worker processes deliver
# 1,200 (spool) and 500 (Redis) messages through the fault-injecting server while a chaos loop SIGKILLs and
# restarts them; once on the spool, once on Redis (with a redis-server SIGKILL and
# restart in the middle, AOF on), and 600 on the spool with the server offering
# CHUNKING (BDAT). Every 20th message is large (192 KiB to 3 MiB: most past the
# spool's 256 KiB in-memory bound, so sent from its file), with drops inside them.
# Fails on any lost, twice-delivered, corrupt (the server's sha256 of each delivery
# against the enqueued bytes), unfinished or unexplained-unknown message (an unknown
# needs a kill, or a connection lost after the client's end of data arrived: see
# crash-soak.mjs's header), on a delivered message's body still stored after the
# soak's own recover() (which removes those a killed worker left; killed or not, one
# left after it fails) or another's body lost or changed, and when redis-server
# cannot start.
# Full size (20,000 each, written into docs/queue.md): bash test/queue/soak/full.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v redis-server >/dev/null || { echo "60-queue-soak: redis-server is not installed (.ci/apt-packages lists it)" >&2; exit 1; }
npm run build --silent
node test/queue/soak/crash-soak.mjs --store spool --messages 1200 --workers 4 --timeout 300 --large-every 20
node test/queue/soak/crash-soak.mjs --store spool --messages 600 --workers 4 --timeout 300 --large-every 20 --chunking
node test/queue/soak/crash-soak.mjs --store redis --messages 500 --workers 4 --timeout 300 --kill-min 600 --kill-spread 1500 --large-every 20
