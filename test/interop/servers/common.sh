# Shared settings for setup.sh / peers.sh. Sourced, not executed.
# shellcheck shell=bash
INTEROP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVERS_DIR="$INTEROP_DIR/servers"
STATE="${INTEROP_STATE:-$INTEROP_DIR/.state}"
mkdir -p "$STATE" 2>/dev/null || true
STATE="$(cd "$STATE" && pwd)"
PEER_USER="${INTEROP_PEER_USER:-peermail}"
SYS_PY=/usr/bin/python3            # Debian's python (has aiosmtpd); NOT pyenv's python3
EXIM_BIN="$STATE/opt/exim/usr/sbin/exim4"
SMTPD_BIN="$STATE/opt/opensmtpd/usr/sbin/smtpd"
MAIL_USERS="alice bob postmaster pelé"
# user:password (all servers); `full` exists only on Dovecot LMTP
PASSWORDS="alice:alice-pass bob:bob-pass postmaster:postmaster-pass full:full-pass"

# fixed loopback ports
P_POSTFIX_SMTP=2525; P_POSTFIX_SMTPS=4465; P_POSTFIX_SUBMISSION=2587
P_DOVECOT_LMTP=2424
P_EXIM_SMTP=2526;    P_EXIM_SMTPS=4466
P_OPENSMTPD_SMTP=2527
P_AIO_SMTP=2528;     P_AIO_SMTPS=4468; P_AIO_EXPIRED=4469; P_AIO_WRONGNAME=4470
LMTP_SOCKET="$STATE/run/lmtp.sock"
AUTH_SOCKET="$STATE/run/dovecot-auth"

log() { printf '[interop %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
