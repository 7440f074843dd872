#!/usr/bin/env bash
# Postfix on 127.0.0.1:$DKIM_SMTP_PORT with the OpenDKIM milter (Debian
# opendkim) in verify mode: every message it accepts is stored in a Maildir
# with OpenDKIM's Authentication-Results field. The public keys come from a
# file (TestPublicKeys), not DNS; the keys are made here, and the tests read
# the private halves from $STATE/keys. Private configs, own ports: it never
# touches /etc/postfix, /etc/opendkim.conf or the interop servers.
#   servers.sh setup|start|stop|status
# Exit 1 when it cannot set itself up (never a quiet skip).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/../interop/servers/postfix-config.sh"
STATE="${DKIM_E2E_STATE:-$HERE/.state}"
SMTP_PORT="${DKIM_SMTP_PORT:-2635}"
MILTER_PORT="${DKIM_MILTER_PORT:-2636}"
P="$STATE/postfix"
O="$STATE/opendkim"
K="$STATE/keys"
MAIL="$STATE/mail"
MAIL_UID=65534  # nobody: owns the Maildirs
DOMAIN=example.com

fail() { echo "dkim-e2e: $*" >&2; exit 1; }

setup() {
  [ "$(id -u)" = 0 ] || fail "must run as root (Postfix and OpenDKIM are started from private configs)"
  for bin in /usr/sbin/postfix /usr/sbin/opendkim /usr/bin/openssl; do [ -x "$bin" ] || fail "$bin is missing (Debian postfix, opendkim, openssl; see .ci/apt-packages)"; done
  id opendkim > /dev/null 2>&1 || fail "the opendkim user is missing (Debian opendkim creates it)"
  mkdir -p "$P/etc" "$P/spool" "$P/lib" "$O" "$K" "$MAIL/bob"/{new,cur,tmp}
  chown postfix:postfix "$P/lib"; chmod 700 "$P/lib"
  chown -R "$MAIL_UID:$MAIL_UID" "$MAIL"
  chown opendkim:opendkim "$O"
  # Keys: RSA 2048 and Ed25519, published for OpenDKIM in its test key file.
  [ -f "$K/rsa.pem" ] || openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$K/rsa.pem" 2> /dev/null
  [ -f "$K/ed25519.pem" ] || openssl genpkey -algorithm ED25519 -out "$K/ed25519.pem"
  chmod 600 "$K"/*.pem
  local rsa_p ed_p
  rsa_p=$(openssl pkey -in "$K/rsa.pem" -pubout -outform DER 2> /dev/null | base64 -w0)
  # RFC 8463 §4: the raw 32-byte key, the last 32 bytes of the DER SubjectPublicKeyInfo.
  ed_p=$(openssl pkey -in "$K/ed25519.pem" -pubout -outform DER | tail -c 32 | base64 -w0)
  {
    echo "rsa._domainkey.$DOMAIN v=DKIM1; k=rsa; p=$rsa_p"
    echo "ed._domainkey.$DOMAIN v=DKIM1; k=ed25519; p=$ed_p"
  } > "$O/keys.txt"
  chmod 644 "$O/keys.txt"
  cat > "$O/opendkim.conf" <<CONF
# private OpenDKIM for the DKIM end-to-end suite: verify only
Mode v
Socket inet:$MILTER_PORT@127.0.0.1
PidFile $O/opendkim.pid
UserID opendkim:opendkim
Background yes
Syslog no
AuthservID mail.example.test
AlwaysAddARHeader yes
# Loopback is "internal" by default, and internal mail is not verified: name no one.
InternalHosts 192.0.2.255
TestPublicKeys $O/keys.txt
CONF
  echo "bob@example.test bob/" > "$P/etc/vmailbox"
  { postfix_main_base "$P" "dkim e2e"; cat <<CONF
mynetworks = 127.0.0.0/8
message_size_limit = 0
smtputf8_enable = yes
virtual_mailbox_base = $MAIL
virtual_mailbox_maps = texthash:$P/etc/vmailbox
virtual_minimum_uid = $MAIL_UID
virtual_uid_maps = static:$MAIL_UID
virtual_gid_maps = static:$MAIL_UID
virtual_mailbox_limit = 0
smtpd_milters = inet:127.0.0.1:$MILTER_PORT
# A milter that is down must not let mail through unverified.
milter_default_action = tempfail
CONF
  } > "$P/etc/main.cf"
  { cat <<CONF
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
CONF
    postfix_master_services; } > "$P/etc/master.cf"
  /usr/sbin/postfix -c "$P/etc" check > "$P/check.log" 2>&1 || { cat "$P/check.log" >&2; fail "postfix check failed"; }
}

wait_port() {
  for _ in $(seq 1 60); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2> /dev/null && return 0
    sleep 0.25
  done
  return 1
}

start() {
  setup
  stop
  /usr/sbin/opendkim -x "$O/opendkim.conf" > "$O/startup.log" 2>&1 || { cat "$O/startup.log" >&2; fail "opendkim did not start"; }
  wait_port "$MILTER_PORT" || fail "opendkim did not listen on $MILTER_PORT"
  /usr/sbin/postfix -c "$P/etc" start < /dev/null > "$P/startup.log" 2>&1 || { cat "$P/startup.log" >&2; fail "postfix did not start"; }
  wait_port "$SMTP_PORT" || { tail -20 "$P/maillog" >&2; fail "postfix did not listen on $SMTP_PORT"; }
  echo "dkim-e2e: postfix 127.0.0.1:$SMTP_PORT + opendkim milter 127.0.0.1:$MILTER_PORT, Maildir $MAIL/bob"
}

stop() {
  [ -f "$P/etc/main.cf" ] && /usr/sbin/postfix -c "$P/etc" stop > /dev/null 2>&1 || true
  if [ -f "$O/opendkim.pid" ]; then
    kill "$(cat "$O/opendkim.pid")" 2> /dev/null || true
    for _ in $(seq 1 40); do kill -0 "$(cat "$O/opendkim.pid")" 2> /dev/null || break; sleep 0.1; done
    rm -f "$O/opendkim.pid"
  fi
}

case "${1:-}" in
  setup) setup ;;
  start) start ;;
  stop) stop ;;
  status) /usr/sbin/postfix -c "$P/etc" status || true; [ -f "$O/opendkim.pid" ] && echo "opendkim running" || echo "opendkim stopped" ;;
  *) echo "usage: $0 setup|start|stop|status" >&2; exit 2 ;;
esac
