#!/usr/bin/env bash
# Writes every server's private configuration under $STATE (called by setup.sh; cheap, idempotent).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
. "$(dirname "${BASH_SOURCE[0]}")/postfix-config.sh"

PEER_UID=$(id -u "$PEER_USER"); PEER_GID=$(id -g "$PEER_USER")
TLS="$STATE/tls"

# ================================================================ Dovecot (LMTP + SASL for Postfix)
D="$STATE/dovecot"
mkdir -p "$D/run" "$D/log"
chown root:root "$D/run"; chmod 755 "$D/run"
: > "$D/passwd"
for up in $PASSWORDS; do
  u=${up%%:*}; p=${up#*:}
  extra=""
  [ "$u" = full ] && extra="userdb_quota_rule=*:storage=1K"
  # user:password:uid:gid:(gecos):home:(shell):extra_fields
  echo "$u:{PLAIN}$p:$PEER_UID:$PEER_GID::$STATE/mail/dovecot/$u::$extra" >> "$D/passwd"
done
chown root:dovecot "$D/passwd"; chmod 640 "$D/passwd"
cat > "$D/dovecot.conf" <<EOF
# private Dovecot instance for the smtplib interop suite (never /etc/dovecot)
base_dir = $D/run
instance_name = interop-dovecot
state_dir = $D/state
log_path = $D/log/dovecot.log
info_log_path = $D/log/dovecot.log
protocols = lmtp
listen = 127.0.0.1
hostname = mail.example.test
login_greeting = mail.example.test Dovecot ready.
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = $PEER_UID
last_valid_uid = $PEER_UID
first_valid_gid = $PEER_GID
mail_location = maildir:$STATE/mail/dovecot/%n
mail_uid = $PEER_USER
mail_gid = $PEER_USER
auth_username_format = %Ln
auth_mechanisms = plain login cram-md5 scram-sha-1 scram-sha-256
disable_plaintext_auth = no
auth_failure_delay = 0
ssl = yes
ssl_cert = <$TLS/server.pem
ssl_key = <$TLS/server.key
ssl_min_protocol = TLSv1.2
mail_plugins = quota
lmtp_save_to_detail_mailbox = no
lmtp_rcpt_check_quota = no
quota_full_tempfail = no
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%Ln $D/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%Ln $D/passwd
}
plugin {
  quota = maildir:User quota
  quota_exceeded_message = Quota exceeded (mailbox for user is full)
}
protocol lmtp {
  mail_plugins = quota
}
service lmtp {
  unix_listener $LMTP_SOCKET {
    mode = 0666
  }
  inet_listener lmtp {
    address = 127.0.0.1
    port = $P_DOVECOT_LMTP
  }
}
service auth {
  unix_listener $AUTH_SOCKET {
    mode = 0660
    user = postfix
    group = postfix
  }
  unix_listener auth-userdb {
    mode = 0600
  }
}
service anvil {
  chroot =
  # mode 0 = the auth process cannot reach anvil = no auth penalty (else each failed
  # login delays the next ones from 127.0.0.1 by 2..15 s)
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service stats {
  chroot =
}
EOF
mkdir -p "$D/state"
# seed the 1 KB-quota user with a 2 KB message so any delivery to full@ exceeds the quota
FULLMD="$STATE/mail/dovecot/full"
if [ ! -f "$FULLMD/cur/seed.2048:2,S" ]; then
  mkdir -p "$FULLMD"/{new,cur,tmp}
  { printf 'From: seed@example.test\nSubject: quota filler\n\n'; head -c 1500 /dev/zero | tr '\0' 'x' | fold -w 70; echo; } > "$FULLMD/cur/seed.2048:2,S"
  rm -f "$FULLMD/maildirsize"
  chown -R "$PEER_USER:$PEER_USER" "$FULLMD"
fi

# ================================================================ Postfix
P="$STATE/postfix"
mkdir -p "$P/etc" "$P/spool" "$P/lib"
chown postfix:postfix "$P/lib"; chmod 700 "$P/lib"
: > "$P/etc/vmailbox"
for u in $MAIL_USERS; do echo "$u@example.test $u/" >> "$P/etc/vmailbox"; done
{ postfix_main_base "$P" "interop harness"; cat <<EOF
# loopback is NOT trusted: nobody may relay
mynetworks = 127.0.0.2/32
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_junk_command_limit = 1000
disable_vrfy_command = no
smtputf8_enable = yes
# cleanup(8) enforces this global limit; the 2525/4465 smtpd advertise and enforce 10 MiB via -o
message_size_limit = 41943040
virtual_mailbox_limit = 0
mailbox_size_limit = 0
virtual_mailbox_base = $STATE/mail/postfix
virtual_mailbox_maps = texthash:$P/etc/vmailbox
virtual_minimum_uid = $PEER_UID
virtual_uid_maps = static:$PEER_UID
virtual_gid_maps = static:$PEER_GID
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = reject_unlisted_recipient, permit
maximal_queue_lifetime = 1h
smtpd_tls_cert_file = $TLS/server.pem
smtpd_tls_key_file = $TLS/server.key
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_loglevel = 1
smtpd_sasl_type = dovecot
smtpd_sasl_path = $AUTH_SOCKET
smtpd_sasl_auth_enable = yes
smtpd_sasl_authenticated_header = no
broken_sasl_auth_clients = no
EOF
} > "$P/etc/main.cf"
{ cat <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:$P_POSTFIX_SMTP inet n - n - - smtpd
  -o message_size_limit=10485760
127.0.0.1:$P_POSTFIX_SMTPS inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
  -o message_size_limit=10485760
  -o smtpd_tls_security_level=encrypt
127.0.0.1:$P_POSTFIX_SUBMISSION inet n - n - - smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
  -o message_size_limit=41943040
  -o smtpd_recipient_restrictions=reject_unlisted_recipient,permit_sasl_authenticated,reject
EOF
  postfix_master_services; } > "$P/etc/master.cf"

# ================================================================ Exim (unprivileged, private -C config)
E="$STATE/exim"
mkdir -p "$E/spool" "$E/log"
: > "$E/passwd"
for up in $PASSWORDS; do [ "${up%%:*}" = full ] || echo "${up%%:*}: ${up#*:}" >> "$E/passwd"; done
: > "$E/localusers"
for u in $MAIL_USERS; do echo "$u: $u" >> "$E/localusers"; done
cat > "$E/exim.conf" <<EOF
# private Exim instance for the smtplib interop suite (never /etc/exim4)
exim_path = $EXIM_BIN
exim_user = $PEER_USER
exim_group = $PEER_USER
never_users = root
primary_hostname = mail.example.test
smtp_banner = \$smtp_active_hostname ESMTP Exim \$version_number (interop harness) \$tod_full
spool_directory = $E/spool
log_file_path = $E/log/%slog
pid_file_path = $E/exim.pid
daemon_smtp_ports = $P_EXIM_SMTP : $P_EXIM_SMTPS
tls_on_connect_ports = $P_EXIM_SMTPS
local_interfaces = <; 127.0.0.1
domainlist local_domains = example.test
message_size_limit = 10485760
tls_advertise_hosts = *
tls_certificate = $TLS/server.pem
tls_privatekey = $TLS/server.key
auth_advertise_hosts = \${if eq{\$tls_in_cipher}{}{}{*}}
chunking_advertise_hosts = *
pipelining_advertise_hosts = *
dsn_advertise_hosts = *
smtputf8_advertise_hosts = *
prdr_enable = true
host_lookup =
rfc1413_hosts =
acl_smtp_rcpt = acl_check_rcpt
acl_smtp_data = acl_check_data
received_header_text = Received: from \$sender_rcvhost by \$primary_hostname with \$received_protocol id \$message_exim_id\n\tfor \$received_for; \$tod_full
queue_only = false
split_spool_directory = false
keep_environment =
timeout_frozen_after = 1h
ignore_bounce_errors_after = 0s
smtp_accept_max = 200
smtp_accept_queue_per_connection = 0
smtp_enforce_sync = false

begin acl
acl_check_rcpt:
  deny    message = 5.7.1 relay not permitted
          domains = !+local_domains
  deny    message = 5.1.1 <\$local_part@\$domain>: recipient unknown
          !verify = recipient
  accept

acl_check_data:
  accept

begin routers
localuser:
  driver = accept
  domains = +local_domains
  local_parts = lsearch;$E/localusers
  transport = maildir_delivery
  no_more

begin transports
maildir_delivery:
  driver = appendfile
  directory = $STATE/mail/exim/\$local_part_data
  maildir_format
  create_directory
  delivery_date_add
  envelope_to_add
  return_path_add
  user = $PEER_USER
  group = $PEER_USER
  mode = 0644

begin retry
*   *   F,1h,5m

begin authenticators
PLAIN:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = \${if and {{!eq{\$auth2}{}}{eq{\$auth3}{\${lookup{\$auth2}lsearch{$E/passwd}{\$value}fail}}}}}
  server_set_id = \$auth2
LOGIN:
  driver = plaintext
  public_name = LOGIN
  server_prompts = Username:: : Password::
  server_condition = \${if and {{!eq{\$auth1}{}}{eq{\$auth2}{\${lookup{\$auth1}lsearch{$E/passwd}{\$value}fail}}}}}
  server_set_id = \$auth1
CRAM:
  driver = cram_md5
  public_name = CRAM-MD5
  server_secret = \${lookup{\$auth1}lsearch{$E/passwd}{\$value}fail}
  server_set_id = \$auth1
EOF
chown -R "$PEER_USER:$PEER_USER" "$E"
chmod 644 "$E/exim.conf"

# ================================================================ OpenSMTPD (plaintext: TLS broken under OpenSSL 3)
O="$STATE/opensmtpd"
mkdir -p "$O"
: > "$O/virtual"; : > "$O/recipients"
for u in $MAIL_USERS; do echo "$u@example.test $PEER_USER" >> "$O/virtual"; echo "$u@example.test" >> "$O/recipients"; done
{
  echo "pki mail.example.test cert \"$TLS/server.pem\""
  echo "pki mail.example.test key \"$TLS/server.key\""
  echo "table vusers file:$O/virtual"
  echo "table vrcpts file:$O/recipients"
  echo "smtp max-message-size 10485760"
  if [ "${OPENSMTPD_TLS:-0}" = 1 ]; then
    echo "listen on 127.0.0.1 port $P_OPENSMTPD_SMTP hostname mail.example.test tls pki mail.example.test"
    echo "listen on 127.0.0.1 port 4467 hostname mail.example.test smtps pki mail.example.test"
  else
    echo "listen on 127.0.0.1 port $P_OPENSMTPD_SMTP hostname mail.example.test"
  fi
  echo "action \"deliver\" maildir \"$STATE/mail/opensmtpd/%{rcpt.user}\" virtual <vusers>"
  echo "match from any for domain \"example.test\" rcpt-to <vrcpts> action \"deliver\""
} > "$O/smtpd.conf"
chmod 644 "$O/smtpd.conf" "$O/virtual" "$O/recipients"

# ================================================================ aiosmtpd
A="$STATE/aiosmtpd"
mkdir -p "$A"
chown "$PEER_USER:$PEER_USER" "$A"
: > "$A/passwd"
for up in $PASSWORDS; do [ "${up%%:*}" = full ] || echo "$up" >> "$A/passwd"; done
chmod 644 "$A/passwd"
touch "$STATE/mail/aiosmtpd/envelopes.jsonl"; chown "$PEER_USER:$PEER_USER" "$STATE/mail/aiosmtpd/envelopes.jsonl"

"$SERVERS_DIR/write-env.sh"
