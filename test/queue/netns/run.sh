#!/usr/bin/env bash
# Several hosts on one machine (issue 13): three network namespaces joined by
# veth pairs, addresses in 10.213.0.0/16 (made here, removed on exit even when
# the test fails):
#
#   qh<pid>-h1  10.213.1.2/30 --veth-- 10.213.1.1/30 \
#                                                     qh<pid>-srv  redis-server + SMTP server + hosts.mjs
#   qh<pid>-h2  10.213.2.2/30 --veth-- 10.213.2.1/30 /
#
# Queue workers run in h1 and h2; hosts.mjs (in srv) cuts h1's link mid-run.
#   bash test/queue/netns/run.sh [--messages N] [--heal --down S] [--doc docs/queue.md]
# Needs root and iproute2 (`ip`). Exit 2 when it cannot set up (the CI suite turns that into a failure).
set -euo pipefail
cd "$(dirname "$0")/../../.."
if [ "$(id -u)" != 0 ]; then echo "netns hosts test: needs root (ip netns add)" >&2; exit 2; fi
command -v ip >/dev/null || { echo "netns hosts test: ip (iproute2) is not installed" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "netns hosts test: redis-server is not installed" >&2; exit 2; }
P="qh$$"
SRV="$P-srv"; H1="$P-h1"; H2="$P-h2"
cleanup() {
  for ns in "$H1" "$H2" "$SRV"; do
    # Any process still in the namespace (a worker left behind by a failure) goes with it.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap cleanup EXIT INT TERM
setup() {
  ip netns add "$SRV" && ip netns add "$H1" && ip netns add "$H2" || return 1
  for ns in "$SRV" "$H1" "$H2"; do ip -n "$ns" link set lo up || return 1; done
  local i ns
  for i in 1 2; do
    ns="$P-h$i"
    # The pair is made in srv and one end moved into the host's namespace (names are per namespace).
    ip -n "$SRV" link add "s$i" type veth peer name "h$i" || return 1
    ip -n "$SRV" link set "h$i" netns "$ns" || return 1
    ip -n "$SRV" addr add "10.213.$i.1/30" dev "s$i" || return 1
    ip -n "$ns" addr add "10.213.$i.2/30" dev "h$i" || return 1
    ip -n "$SRV" link set "s$i" up && ip -n "$ns" link set "h$i" up || return 1
  done
}
if ! setup; then echo "netns hosts test: could not create the namespaces and veth pairs" >&2; exit 2; fi
ip netns exec "$SRV" node test/queue/netns/hosts.mjs --hosts "$H1=10.213.1.1,h1 $H2=10.213.2.1,h2" "$@"
