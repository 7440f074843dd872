#!/usr/bin/env bash
# .ci/run on a clean Debian root (issue 12: "checked by running it in a clean
# container-like root at least once").
#
#   bash .ci/clean-root.sh [REF]        full run: a fresh root, a fresh clone of REF
#                                       (default HEAD) in /src, `bash .ci/run` in it,
#                                       then docs/ci-clean-root.md is (re)written
#   bash .ci/clean-root.sh exec 'CMD'   re-enter the root of the last run and run CMD
#                                       in /src (to iterate on one suite, e.g.
#                                       'bash .ci/suites/50-interop.sh')
#   bash .ci/clean-root.sh clean        remove the roots (never anything else)
# CLEAN_ROOT_NOTE='...' adds a line to the generated doc (e.g. how the commit
# relates to main).
#
# Needs root on a Debian/Ubuntu host with network access to the Debian mirror and
# the npm registry. Everything lives under CLEAN_ROOT_DIR (default /var/tmp/cleanroot):
#   base/  `debootstrap --variant=minbase bookworm` from the host's own mirror,
#          made once and never entered (CLEAN_ROOT_FRESH_BASE=1 makes it again);
#   root/  a copy of base/ made for each run: the clean root the run happens in;
#   logs/  one log per run.
# minbase is the smallest Debian (what a `debian:bookworm` container starts from):
# no ca-certificates, procps, iproute2, python3, gcc, ... so .ci/run has to install
# every one it needs itself.
#
# The ONE thing the root borrows from the host is Node.js 20: Debian bookworm ships
# Node 18 and the CI machine provides Node 20 itself, so the files of the host's
# `nodejs` package (node, npm, npx, headers) are copied in as they are. Everything
# else comes from `apt-get` run by .ci/run inside the root.
#
# What is specific to running in a chroot (and not a property of a fresh machine)
# is done here, each with its reason:
#   - /proc, /sys, a private /dev (device nodes, devpts, a tmpfs /dev/shm) and a
#     tmpfs /tmp are mounted, as a booted machine has them;
#   - /etc/resolv.conf, /etc/hosts and /etc/hostname are written (an installer
#     writes them; debootstrap leaves them to the host);
#   - the host's extra CA certificates (this farm's TLS-intercepting egress proxy)
#     are handed to npm through NODE_EXTRA_CA_CERTS: without them `npm ci` cannot
#     reach the registry from here; a normal machine does not need them;
#   - all mounts are made in a private mount namespace (`unshare --mount`), so
#     nothing propagates to the host and they vanish when the run ends; a trap
#     kills every process whose root is the clean root (postfix, dovecot, redis,
#     opendkim, chromium, ...) and unmounts before the script exits.
# The chroot shares the host's network namespace: tests use port 0 / random ports.
set -euo pipefail

DIR=${CLEAN_ROOT_DIR:-/var/tmp/cleanroot}
SUITE=bookworm
MIRROR=http://deb.debian.org/debian               # the host's apt mirror (/etc/apt/sources.list.d/debian.sources)
SECURITY_MIRROR=http://deb.debian.org/debian-security
BASE=$DIR/base
ROOT=$DIR/root
PATH_IN_ROOT=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "clean-root: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mounts)"
# rm -rf guard: only ever a directory named cleanroot* under /var/tmp or /work
case "$DIR" in
  /var/tmp/cleanroot*|/work/cleanroot*) ;;
  *) die "CLEAN_ROOT_DIR must be /var/tmp/cleanroot* or /work/cleanroot* (got $DIR)";;
esac
case "$DIR" in *..*|*//*) die "CLEAN_ROOT_DIR must be a plain path";; esac
case "$DIR/" in "$REPO"/*) die "CLEAN_ROOT_DIR must not be inside the git tree";; esac

safe_rm() { # safe_rm PATH: removes PATH only if it is $DIR/<name> and nothing is mounted below it
  local p=$1
  case "$p" in "$DIR"/[a-z]*) ;; *) die "refusing to remove $p";; esac
  case "$p" in *..*) die "refusing to remove $p";; esac
  if awk -v p="$p" '$2 == p || index($2, p "/") == 1 { found=1 } END { exit !found }' /proc/mounts; then
    die "refusing to remove $p: something is mounted below it"
  fi
  rm -rf --one-file-system -- "$p"
}

# ---- processes and mounts inside the root ----------------------------------
root_pids() { # every process whose root directory is the clean root
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    [ "$r" = "$ROOT" ] && echo "${p#/proc/}"
  done
  return 0
}
kill_root_procs() {
  local pids
  pids=$(root_pids)
  [ -n "$pids" ] || return 0
  echo "clean-root: stopping what is still running in the root: $(for p in $pids; do cat /proc/$p/comm 2>/dev/null; done | sort | uniq -c | tr -s ' \n' ' ')"
  kill -TERM $pids 2>/dev/null || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do [ -n "$(root_pids)" ] || return 0; sleep 0.5; done
  pids=$(root_pids); [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  sleep 0.5
}
unmount_root() {
  local m
  # deepest first
  for m in $(awk -v p="$ROOT" '$2 == p || index($2, p "/") == 1 { print $2 }' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "clean-root: could not unmount $m" >&2
  done
}
cleanup() {
  local rc=$?
  kill_root_procs
  unmount_root
  exit $rc
}

mount_root() {
  # The root a mount point of its own, as / is on a booted machine: `ip netns add`
  # (the several-hosts queue suite) runs `mount --make-rslave /`, which fails with
  # EINVAL in a chroot whose / is a plain directory.
  mount --bind "$ROOT" "$ROOT"
  mount -t proc proc "$ROOT/proc"
  mount -t sysfs -o ro sysfs "$ROOT/sys"
  # a private /dev rather than a bind of the host's: nothing made in it reaches the host
  mount -t tmpfs -o mode=755,nosuid dev "$ROOT/dev"
  local d
  for d in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
    IFS=: read -r name maj min <<< "$d"
    mknod -m 666 "$ROOT/dev/$name" c "$maj" "$min"
  done
  mkdir -p "$ROOT/dev/pts" "$ROOT/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$ROOT/dev/pts"
  ln -s pts/ptmx "$ROOT/dev/ptmx"
  mount -t tmpfs -o mode=1777,nosuid,nodev shm "$ROOT/dev/shm"
  ln -s /proc/self/fd "$ROOT/dev/fd"
  ln -s /proc/self/fd/0 "$ROOT/dev/stdin"; ln -s /proc/self/fd/1 "$ROOT/dev/stdout"; ln -s /proc/self/fd/2 "$ROOT/dev/stderr"
  mount -t tmpfs -o mode=1777,nosuid,nodev tmp "$ROOT/tmp"
}

in_root() { # in_root CMD: CMD in /src of the root, with an empty environment as a CI job has
  local extra=()
  [ -s "$ROOT/etc/clean-root-extra-ca.crt" ] && extra+=(NODE_EXTRA_CA_CERTS=/etc/clean-root-extra-ca.crt)
  chroot "$ROOT" /usr/bin/env -i CI=true HOME=/root PATH="$PATH_IN_ROOT" "${extra[@]}" \
    /bin/bash -lc "cd /src && $1"
}

# re-run inside a private mount namespace (mounts never propagate to the host and
# disappear with the namespace)
if [ -z "${CLEAN_ROOT_IN_NS:-}" ]; then
  exec unshare --mount --propagation private env CLEAN_ROOT_IN_NS=1 bash "${BASH_SOURCE[0]}" "$@"
fi

mkdir -p "$DIR/logs"

case "${1:-}" in
  clean)
    safe_rm "$ROOT"; safe_rm "$BASE"; echo "clean-root: removed $ROOT and $BASE"; exit 0;;
  exec)
    [ -d "$ROOT/src" ] || die "no root from a previous run at $ROOT"
    shift; [ $# -ge 1 ] || die "exec needs a command"
    trap cleanup EXIT INT TERM
    mount_root
    in_root "$*"
    exit $?;;
esac

REF=${1:-HEAD}
COMMIT=$(git -C "$REPO" rev-parse --verify "$REF^{commit}") || die "unknown ref $REF"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOG=$DIR/logs/run-$STAMP.log
t0=$(date +%s)
declare -A took

# ---- 1. the debootstrap base (once) -----------------------------------------
command -v debootstrap > /dev/null || { echo "clean-root: installing debootstrap on the host"; apt-get install -y -qq debootstrap > /dev/null; }
base_made="reused (made $(cat "$BASE/.clean-root-base" 2>/dev/null || echo never))"
if [ -n "${CLEAN_ROOT_FRESH_BASE:-}" ] || [ ! -f "$BASE/.clean-root-base" ]; then
  safe_rm "$BASE.tmp"; safe_rm "$BASE"
  s=$(date +%s)
  echo "clean-root: debootstrap --variant=minbase $SUITE $MIRROR"
  debootstrap --variant=minbase "$SUITE" "$BASE.tmp" "$MIRROR" > "$DIR/logs/debootstrap-$STAMP.log" 2>&1 \
    || { tail -20 "$DIR/logs/debootstrap-$STAMP.log"; die "debootstrap failed"; }
  date -u +%Y-%m-%dT%H:%M:%SZ > "$BASE.tmp/.clean-root-base"
  mv "$BASE.tmp" "$BASE"
  took[debootstrap]=$(( $(date +%s) - s ))
  base_made="made now ($(cat "$BASE/.clean-root-base"))"
fi

# ---- 2. a fresh root from the base ------------------------------------------
s=$(date +%s)
safe_rm "$ROOT"
cp -a "$BASE" "$ROOT"
rm -f "$ROOT/.clean-root-base"
# apt sources as a freshly installed bookworm has them (with updates and security)
cat > "$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
hostname > "$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$(hostname)" > "$ROOT/etc/hosts"
cat /usr/local/share/ca-certificates/*.crt > "$ROOT/etc/clean-root-extra-ca.crt" 2>/dev/null || true
# Node 20 from the host (see the header): the binary, the headers, the global
# node_modules (npm, corepack; npm may have updated itself since its package was
# installed, so the trees are copied, not the package's file list) and the
# /usr/bin links to them
node_bin=$(readlink -f "$(command -v node)")
node_prefix=$(dirname "$(dirname "$node_bin")")
[ -d "$node_prefix/lib/node_modules/npm" ] || die "no npm next to the host's node ($node_bin)"
mkdir -p "$ROOT$node_prefix/bin" "$ROOT$node_prefix/lib" "$ROOT$node_prefix/include"
cp -a "$node_bin" "$ROOT$node_prefix/bin/"
cp -a "$node_prefix/lib/node_modules" "$ROOT$node_prefix/lib/"
[ -d "$node_prefix/include/node" ] && cp -a "$node_prefix/include/node" "$ROOT$node_prefix/include/"
for b in npm npx corepack; do
  [ -L "$node_prefix/bin/$b" ] && cp -a "$node_prefix/bin/$b" "$ROOT$node_prefix/bin/"
done
node_version=$("$node_bin" --version)
# a fresh clone of the commit under test (never the worktree, its node_modules or dist)
git clone -q --no-local --no-checkout "$(git -C "$REPO" rev-parse --path-format=absolute --git-common-dir)" "$ROOT/src"
git -C "$ROOT/src" checkout -q --detach "$COMMIT"
took[root]=$(( $(date +%s) - s ))

# ---- 3. .ci/run inside the root ---------------------------------------------
trap cleanup EXIT INT TERM
mount_root
echo "clean-root: running .ci/run at $COMMIT in $ROOT (log: $LOG)"
s=$(date +%s)
set +e
in_root 'bash .ci/run' 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
took[ci]=$(( $(date +%s) - s ))
installed=$(comm -13 <(dpkg-query --admindir="$BASE/var/lib/dpkg" -W -f='${Package}\n' | sort) \
  <(dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f='${Package}\n' | sort) | wc -l)
wanted=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$ROOT/src/.ci/apt-packages" | grep -v '^$' | tr '\n' ' ')
kill_root_procs
unmount_root
trap - EXIT INT TERM

# ---- 4. the evidence ----------------------------------------------------------
doc=$REPO/docs/ci-clean-root.md
{
  echo "# CI on a clean Debian root"
  echo
  echo "Generated by \`bash .ci/clean-root.sh $REF\` (as root) on $(date -u +%Y-%m-%dT%H:%M:%SZ); do not edit by hand."
  echo "The script makes a \`debootstrap --variant=minbase $SUITE\` root from $MIRROR (+ $SUITE-updates, $SUITE-security),"
  echo "copies in a fresh \`git clone\` of the commit and the host's Node.js $node_version (Debian $SUITE ships Node 18),"
  echo "and runs \`bash .ci/run\` there with an empty environment (\`env -i CI=true HOME=/root PATH=...\`)."
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| commit | \`$COMMIT\` ($(git -C "$REPO" log -1 --format=%s "$COMMIT" | sed 's/|/\\|/g')) |"
  echo "| debootstrap base | $SUITE minbase from $MIRROR, $base_made |"
  echo "| machine | $(nproc) cores, load average at the end $(cut -d' ' -f1-3 /proc/loadavg) (shared with other work) |"
  echo "| final status | **$([ "$status" = 0 ] && echo "passed" || echo "FAILED (exit $status)")** |"
  [ -z "${CLEAN_ROOT_NOTE:-}" ] || echo "| note | $CLEAN_ROOT_NOTE |"
  echo
  echo "## Stages"
  echo
  echo "| stage | seconds |"
  echo "|---|---:|"
  [ -n "${took[debootstrap]:-}" ] && echo "| debootstrap (minbase) | ${took[debootstrap]} |"
  echo "| fresh root + Node copy + git clone | ${took[root]} |"
  # .ci/run prints "=== <stage> (<seconds since its start> s) ===": durations are the differences
  grep -E '^=== .* \([0-9]+ s\) ===$' "$LOG" | sed -E 's/^=== (.*) \(([0-9]+) s\) ===$/\2\t\1/' \
    | awk -F'\t' 'NR > 1 { printf "| .ci/run: %s | %d |\n", name, $1 - prev } { name = $2; prev = $1 }'
  echo "| .ci/run total | ${took[ci]} |"
  echo
  echo "## Result lines"
  echo
  echo '```'
  # the result lines each stage printed (vitest summaries, suite verdicts, .ci/run's summary)
  sed -E 's/\x1b\[[0-9;]*[A-Za-z]//g' "$LOG" \
    | grep -E '^=== |^ *(Test Files|Tests) |^(summary|CI passed|CI FAILED)|^  (ok|FAILED) |done in|^installing: |^ *(FAIL|×) ' \
    | cut -c1-220 | tail -n 150
  echo '```'
  echo
  echo "## Debian packages"
  echo
  echo ".ci/apt-packages lists: \`$wanted\`"
  echo
  echo "apt-get installed them with their dependencies: $installed packages on top of the minbase root."
  echo
  echo "Full log: \`$LOG\` on the machine that ran it."
} > "$doc"
echo "clean-root: .ci/run exited $status after ${took[ci]} s; wrote $doc"
exit "$status"
