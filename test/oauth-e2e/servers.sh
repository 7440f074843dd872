#!/usr/bin/env bash
# Postfix submission + Dovecot SASL whose passdb is `oauth2`: every XOAUTH2 /
# OAUTHBEARER token is checked by RFC 7662 introspection at the OAuth server
# the test starts on 127.0.0.1:$OAUTH_ISSUER_PORT (oidc-provider). Packages,
# the peer user and the CA come from test/interop/servers/setup.sh (run with
# our own state dir); the configs below are this suite's own, on its own
# ports, so it never disturbs the interop servers.
#   servers.sh setup|start|stop|status
# Exit 1 when it cannot set itself up (never a quiet skip).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export INTEROP_STATE="${OAUTH_E2E_STATE:-$HERE/.state}"
mkdir -p "$INTEROP_STATE"
. "$ROOT/test/interop/servers/common.sh"
. "$ROOT/test/interop/servers/postfix-config.sh"

SUBMISSION_PORT="${OAUTH_SUBMISSION_PORT:-2687}"
ISSUER_PORT="${OAUTH_ISSUER_PORT:-2690}"
O="$STATE/oauth"
D="$O/dovecot"
P="$O/postfix"
SASL_SOCKET="$O/run/auth-oauth"

setup() {
  [ "$(id -u)" = 0 ] || { echo "oauth-e2e: must run as root (Postfix and Dovecot are started from private configs)" >&2; exit 1; }
  "$ROOT/test/interop/servers/setup.sh" > "$STATE/setup.log" 2>&1 || { cat "$STATE/setup.log" >&2; exit 1; }
  if [ -f "$STATE/SKIP" ]; then echo "oauth-e2e: setup could not run: $(cat "$STATE/SKIP")" >&2; exit 1; fi
  local uid gid
  uid=$(id -u "$PEER_USER"); gid=$(id -g "$PEER_USER")
  mkdir -p "$D/run" "$D/log" "$D/state" "$O/run" "$P/etc" "$P/spool" "$P/lib" "$STATE/mail/oauth"
  chmod 755 "$O" "$O/run"
  chown postfix:postfix "$P/lib"; chmod 700 "$P/lib"
  # Dovecot: SASL only, the oauth2 passdb validating by introspection.
  cat > "$D/oauth2.conf.ext" <<CONF
# RFC 7662: POST token=... with the mail server's client credentials (Basic, from the URL).
introspection_mode = post
introspection_url = http://mail-server:introspection-secret@127.0.0.1:$ISSUER_PORT/token/introspection
force_introspection = yes
# oidc-provider puts the account in "sub"; the SASL user must be the same address.
username_attribute = sub
active_attribute = active
active_value = true
scope = smtp
timeout_msecs = 5000
debug = no
CONF
  cat > "$D/dovecot.conf" <<CONF
# private Dovecot for the OAuth end-to-end suite (SASL for Postfix only)
base_dir = $D/run
instance_name = oauth-e2e-dovecot
state_dir = $D/state
log_path = $D/log/dovecot.log
info_log_path = $D/log/dovecot.log
protocols = none
listen = 127.0.0.1
default_internal_user = dovecot
default_login_user = dovenull
auth_mechanisms = xoauth2 oauthbearer
auth_username_format = %Lu
disable_plaintext_auth = no
auth_failure_delay = 0
auth_verbose = yes
ssl = no
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $D/oauth2.conf.ext
}
userdb {
  driver = static
  args = uid=$uid gid=$gid home=$STATE/mail/oauth/%n
}
service auth {
  unix_listener $SASL_SOCKET {
    mode = 0660
    user = postfix
    group = postfix
  }
}
service anvil {
  chroot =
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service stats {
  chroot =
}
CONF
  : > "$P/etc/vmailbox"
  for u in alice bob; do echo "$u@example.test $u/" >> "$P/etc/vmailbox"; done
  { postfix_main_base "$P" "oauth e2e"; cat <<CONF
mynetworks = 127.0.0.2/32
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_client_connection_rate_limit = 0
virtual_mailbox_base = $STATE/mail/oauth-postfix
virtual_mailbox_maps = texthash:$P/etc/vmailbox
virtual_minimum_uid = $uid
virtual_uid_maps = static:$uid
virtual_gid_maps = static:$gid
smtpd_tls_cert_file = $TLS_DIR/server.pem
smtpd_tls_key_file = $TLS_DIR/server.key
smtpd_sasl_type = dovecot
smtpd_sasl_path = $SASL_SOCKET
smtpd_sasl_auth_enable = yes
smtpd_sasl_authenticated_header = no
CONF
  } > "$P/etc/main.cf"
  { cat <<CONF
127.0.0.1:$SUBMISSION_PORT inet n - n - - smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
  -o smtpd_recipient_restrictions=reject_unlisted_recipient,permit_sasl_authenticated,reject
CONF
    postfix_master_services; } > "$P/etc/master.cf"
  for u in alice bob; do
    mkdir -p "$STATE/mail/oauth-postfix/$u"/{new,cur,tmp}
  done
  chown -R "$PEER_USER:$PEER_USER" "$STATE/mail/oauth-postfix"
  /usr/sbin/postfix -c "$P/etc" check > "$P/check.log" 2>&1 || { cat "$P/check.log" >&2; exit 1; }
  /usr/bin/doveconf -c "$D/dovecot.conf" -n > "$D/doveconf.log" 2>&1 || { cat "$D/doveconf.log" >&2; exit 1; }
  echo "oauth-e2e: configured in $O (submission 127.0.0.1:$SUBMISSION_PORT, introspection at 127.0.0.1:$ISSUER_PORT)"
}

wait_port() {
  for _ in $(seq 1 60); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.25
  done
  return 1
}

start() {
  setup > /dev/null
  stop
  # Every run starts with empty Maildirs: the tests count deliveries.
  find "$STATE/mail/oauth-postfix" -type f -path '*/new/*' -delete 2>/dev/null || true
  find "$STATE/mail/oauth-postfix" -type f -path '*/cur/*' -delete 2>/dev/null || true
  : > "$D/log/dovecot.log"
  /usr/sbin/dovecot -c "$D/dovecot.conf" < /dev/null > "$D/log/startup.log" 2>&1 || { cat "$D/log/startup.log" "$D/log/dovecot.log" >&2; exit 1; }
  for _ in $(seq 1 40); do [ -S "$SASL_SOCKET" ] && break; sleep 0.1; done
  [ -S "$SASL_SOCKET" ] || { echo "oauth-e2e: dovecot auth socket missing" >&2; cat "$D/log/dovecot.log" >&2; exit 1; }
  /usr/sbin/postfix -c "$P/etc" start < /dev/null > "$P/startup.log" 2>&1 || { cat "$P/startup.log" >&2; exit 1; }
  wait_port "$SUBMISSION_PORT" || { echo "oauth-e2e: postfix did not listen on $SUBMISSION_PORT" >&2; tail -20 "$P/maillog" >&2; exit 1; }
  echo "oauth-e2e: postfix + dovecot up"
}

stop() {
  [ -f "$P/etc/main.cf" ] && /usr/sbin/postfix -c "$P/etc" stop > /dev/null 2>&1 || true
  [ -f "$D/dovecot.conf" ] && /usr/sbin/dovecot -c "$D/dovecot.conf" stop > /dev/null 2>&1 || true
  for _ in $(seq 1 40); do [ -f "$D/run/master.pid" ] && kill -0 "$(cat "$D/run/master.pid")" 2>/dev/null || break; sleep 0.1; done
}

TLS_DIR="$STATE/tls"
case "${1:-}" in
  setup) setup ;;
  start) start ;;
  stop) stop ;;
  status) /usr/sbin/postfix -c "$P/etc" status || true; [ -f "$D/run/master.pid" ] && echo "dovecot running" || echo "dovecot stopped" ;;
  *) echo "usage: $0 setup|start|stop|status" >&2; exit 2 ;;
esac
