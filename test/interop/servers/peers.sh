#!/usr/bin/env bash
# peers.sh start|stop|restart|status|clean-mail [all|postfix|dovecot|exim|opensmtpd|aiosmtpd ...]
# Starts/stops the interop mail servers detached, on fixed loopback high ports, with the
# private configs that setup.sh wrote under $STATE (default test/interop/.state).
# Logs: $STATE/<server>/... (see README.md). No systemd, no syslog.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

cmd=${1:-status}; shift || true
names=("$@"); [ ${#names[@]} -eq 0 ] && names=(all)
if [ "${names[0]}" = all ]; then names=(dovecot postfix exim opensmtpd aiosmtpd); fi

if [ -f "$STATE/SKIP" ]; then
  echo "INTEROP-SKIP: $(cat "$STATE/SKIP")"; exit 0
fi
if [ "$cmd" = start ] && [ "$(id -u)" != 0 ]; then
  echo "INTEROP-SKIP: peers.sh start needs root" | tee "$STATE/SKIP"; exit 0
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2> /dev/null; }
wait_port() { # port seconds
  local i=0 n=$(( ${2:-15} * 20 ))
  while ! port_open "$1"; do
    i=$((i + 1)); [ $i -ge $n ] && return 1; sleep 0.05
  done
}
wait_sock() { local i=0; while [ ! -S "$1" ]; do i=$((i + 1)); [ $i -ge 300 ] && return 1; sleep 0.05; done; }
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2> /dev/null; }
ms() { date +%s%3N; }
as_peer() { runuser -u "$PEER_USER" -- "$@"; }

ports_of() {
  case $1 in
    postfix) echo "$P_POSTFIX_SMTP $P_POSTFIX_SMTPS $P_POSTFIX_SUBMISSION" ;;
    dovecot) echo "$P_DOVECOT_LMTP" ;;
    exim) echo "$P_EXIM_SMTP $P_EXIM_SMTPS" ;;
    opensmtpd) echo "$P_OPENSMTPD_SMTP" ;;
    aiosmtpd) echo "$P_AIO_SMTP $P_AIO_SMTPS $P_AIO_EXPIRED $P_AIO_WRONGNAME" ;;
  esac
}
pidfile_of() {
  case $1 in
    postfix) echo "$STATE/postfix/spool/pid/master.pid" ;;
    dovecot) echo "$STATE/dovecot/run/master.pid" ;;
    *) echo "$STATE/$1/daemon.pid" ;;
  esac
}
owned() { local f; f=$(pidfile_of "$1"); [ -f "$f" ] && kill -0 "$(tr -d ' ' < "$f")" 2> /dev/null; }
running() { local p; owned "$1" || return 1; for p in $(ports_of "$1"); do port_open "$p" || return 1; done; }
busy() { local p; for p in $(ports_of "$1"); do port_open "$p" && { echo "$p"; return 0; }; done; return 1; }

fail() { # name logfile
  echo "peers: $1 failed to start; last lines of $2:" >&2
  tail -n 30 "$2" >&2 || true
  return 1
}

start_dovecot() {
  local D="$STATE/dovecot"
  mkdir -p "$D/log"
  /usr/sbin/dovecot -c "$D/dovecot.conf" < /dev/null > "$D/log/startup.log" 2>&1 || { fail dovecot "$D/log/startup.log"; return 1; }
  wait_sock "$LMTP_SOCKET" && wait_sock "$AUTH_SOCKET" && wait_port "$P_DOVECOT_LMTP" 10 \
    || { fail dovecot "$D/log/dovecot.log"; return 1; }
}
stop_dovecot() {
  /usr/sbin/dovecot -c "$STATE/dovecot/dovecot.conf" stop > /dev/null 2>&1 || true
  local i=0; while [ -S "$LMTP_SOCKET" ] && port_open "$P_DOVECOT_LMTP" && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
}

start_postfix() {
  running dovecot || start_dovecot
  local P="$STATE/postfix"
  if ! /usr/sbin/postfix -c "$P/etc" start < /dev/null > "$P/startup.log" 2>&1; then
    # postfix logs to syslog until its postlogd runs: re-run the checks on a pty to see why
    script -qec "/usr/sbin/postfix -c '$P/etc' check" /dev/null >> "$P/startup.log" 2>&1 || true
    fail postfix "$P/startup.log"; return 1
  fi
  for p in $(ports_of postfix); do wait_port "$p" 15 || { fail postfix "$P/maillog"; return 1; }; done
}
stop_postfix() {
  /usr/sbin/postfix -c "$STATE/postfix/etc" stop > /dev/null 2>&1 || true
  local i=0; while port_open "$P_POSTFIX_SMTP" && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
}

start_exim() {
  local E="$STATE/exim"
  # unprivileged: runs as $PEER_USER from a -C config, so it logs to stderr -> exim.log
  setsid runuser -u "$PEER_USER" -- "$EXIM_BIN" -C "$E/exim.conf" -bdf \
    < /dev/null >> "$E/log/exim.log" 2>&1 &
  echo $! > "$E/daemon.pid"
  for p in $(ports_of exim); do wait_port "$p" 10 || { fail exim "$E/log/exim.log"; return 1; }; done
}
stop_exim() { stop_pidfile "$STATE/exim/daemon.pid"; }

start_opensmtpd() {
  local O="$STATE/opensmtpd"
  setsid "$SMTPD_BIN" -d -f "$O/smtpd.conf" < /dev/null >> "$O/smtpd.log" 2>&1 &
  echo $! > "$O/daemon.pid"
  wait_port "$P_OPENSMTPD_SMTP" 10 || { fail opensmtpd "$O/smtpd.log"; return 1; }
}
stop_opensmtpd() { stop_pidfile "$STATE/opensmtpd/daemon.pid"; }

start_aiosmtpd() {
  local A="$STATE/aiosmtpd"
  setsid runuser -u "$PEER_USER" -- "$SYS_PY" "$SERVERS_DIR/aiosmtpd_peer.py" --state "$STATE" \
    --smtp "$P_AIO_SMTP" --smtps "$P_AIO_SMTPS" --expired "$P_AIO_EXPIRED" --wrongname "$P_AIO_WRONGNAME" \
    < /dev/null >> "$A/aiosmtpd.log" 2>&1 &
  echo $! > "$A/daemon.pid"
  for p in $(ports_of aiosmtpd); do wait_port "$p" 10 || { fail aiosmtpd "$A/aiosmtpd.log"; return 1; }; done
}
stop_aiosmtpd() { stop_pidfile "$STATE/aiosmtpd/daemon.pid"; }

stop_pidfile() { # kills the process group started by setsid
  local f=$1 pid i=0
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2> /dev/null; then
    kill -TERM -- "-$pid" 2> /dev/null || kill -TERM "$pid" 2> /dev/null || true
    while kill -0 "$pid" 2> /dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
    kill -KILL -- "-$pid" 2> /dev/null || true
  fi
  rm -f "$f"
}

rc=0
case $cmd in
  start)
    [ -f "$STATE/env.json" ] || { echo "peers: run setup.sh first ($STATE/env.json missing)" >&2; exit 1; }
    for n in "${names[@]}"; do
      if running "$n"; then echo "$n: already running"; continue; fi
      if ! owned "$n" && p=$(busy "$n"); then
        echo "$n: FAILED: port $p is in use by something not started from $STATE (another state dir?)"; rc=1; continue
      fi
      t=$(ms)
      if "start_$n"; then echo "$n: started in $(( $(ms) - t )) ms"; else echo "$n: FAILED"; rc=1; fi
    done ;;
  stop)
    for ((i=${#names[@]}-1; i>=0; i--)); do n=${names[$i]}; "stop_$n"; echo "$n: stopped"; done ;;
  restart)
    "$0" stop "${names[@]}"; exec "$0" start "${names[@]}" ;;
  status)
    for n in "${names[@]}"; do
      if running "$n"; then echo "$n: running ($(ports_of "$n"))"; else echo "$n: stopped"; rc=3; fi
    done ;;
  clean-mail)
    for n in "${names[@]}"; do
      find "$STATE/mail/$n" -path '*/new/*' -type f -delete 2> /dev/null || true
      find "$STATE/mail/$n" -path '*/cur/*' -type f ! -name 'seed.*' -delete 2> /dev/null || true
      [ "$n" = aiosmtpd ] && : > "$STATE/mail/aiosmtpd/envelopes.jsonl"
    done ;;
  *) echo "usage: $0 start|stop|restart|status|clean-mail [all|postfix|dovecot|exim|opensmtpd|aiosmtpd ...]" >&2; exit 2 ;;
esac
exit $rc
