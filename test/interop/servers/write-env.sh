#!/usr/bin/env bash
# Writes $STATE/env.json: every endpoint the interop tests can use.
# (test/interop/servers/env.json in git is the same description with "$STATE" unexpanded.)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

render() {
  local st=$1
  cat <<EOF
{
  "comment": "Endpoints of the interop peers (test/interop/servers). Paths are under the state dir.",
  "stateDir": "$st",
  "domain": "example.test",
  "hostname": "mail.example.test",
  "users": { "alice": "alice-pass", "bob": "bob-pass" },
  "lmtpOnlyUsers": { "full": "full-pass" },
  "utf8Mailbox": "pelé",
  "tls": {
    "ca": "$st/tls/ca.pem",
    "otherCa": "$st/tls/other-ca.pem",
    "serverCert": "$st/tls/server.pem",
    "expiredCert": "$st/tls/expired.pem",
    "wrongNameCert": "$st/tls/wrongname.pem",
    "servername": "mail.example.test",
    "wrongServername": "wrong.example.test"
  },
  "servers": {
    "postfix": {
      "version": "3.7.11",
      "maildir": "$st/mail/postfix/{user}",
      "endpoints": [
        { "name": "postfix-smtp", "protocol": "smtp", "host": "127.0.0.1", "port": $P_POSTFIX_SMTP, "tls": "starttls", "auth": ["PLAIN","LOGIN","CRAM-MD5","SCRAM-SHA-1","SCRAM-SHA-256"], "authAfterTls": true, "sizeLimit": 10485760 },
        { "name": "postfix-smtps", "protocol": "smtp", "host": "127.0.0.1", "port": $P_POSTFIX_SMTPS, "tls": "implicit", "auth": ["PLAIN","LOGIN","CRAM-MD5","SCRAM-SHA-1","SCRAM-SHA-256"], "sizeLimit": 10485760 },
        { "name": "postfix-submission", "protocol": "smtp", "host": "127.0.0.1", "port": $P_POSTFIX_SUBMISSION, "tls": "starttls-required", "auth": ["PLAIN","LOGIN","CRAM-MD5","SCRAM-SHA-1","SCRAM-SHA-256"], "authAfterTls": true, "authRequired": true, "sizeLimit": 41943040 }
      ]
    },
    "dovecot": {
      "version": "2.3.19.1",
      "maildir": "$st/mail/dovecot/{user}",
      "endpoints": [
        { "name": "dovecot-lmtp-unix", "protocol": "lmtp", "host": "$st/run/lmtp.sock", "tls": "none", "auth": [] },
        { "name": "dovecot-lmtp-tcp", "protocol": "lmtp", "host": "127.0.0.1", "port": $P_DOVECOT_LMTP, "tls": "starttls", "auth": [] }
      ]
    },
    "exim": {
      "version": "4.96",
      "maildir": "$st/mail/exim/{user}",
      "endpoints": [
        { "name": "exim-smtp", "protocol": "smtp", "host": "127.0.0.1", "port": $P_EXIM_SMTP, "tls": "starttls", "auth": ["PLAIN","LOGIN","CRAM-MD5"], "authAfterTls": true, "sizeLimit": 10485760 },
        { "name": "exim-smtps", "protocol": "smtp", "host": "127.0.0.1", "port": $P_EXIM_SMTPS, "tls": "implicit", "auth": ["PLAIN","LOGIN","CRAM-MD5"], "sizeLimit": 10485760 }
      ]
    },
    "opensmtpd": {
      "version": "6.8.0p2",
      "maildir": "$st/mail/opensmtpd/{user}",
      "note": "TLS not offered: OpenSMTPD 6.8.0p2 fails every handshake under OpenSSL 3",
      "endpoints": [
        { "name": "opensmtpd-smtp", "protocol": "smtp", "host": "127.0.0.1", "port": $P_OPENSMTPD_SMTP, "tls": "none", "auth": [], "sizeLimit": 10485760 }
      ]
    },
    "aiosmtpd": {
      "version": "1.4.3",
      "maildir": "$st/mail/aiosmtpd/{user}",
      "envelopes": "$st/mail/aiosmtpd/envelopes.jsonl",
      "endpoints": [
        { "name": "aiosmtpd-smtp", "protocol": "smtp", "host": "127.0.0.1", "port": $P_AIO_SMTP, "tls": "starttls", "auth": ["PLAIN","LOGIN","CRAM-MD5"], "authAfterTls": true, "sizeLimit": 10485760 },
        { "name": "aiosmtpd-smtps", "protocol": "smtp", "host": "127.0.0.1", "port": $P_AIO_SMTPS, "tls": "implicit", "auth": ["PLAIN","LOGIN","CRAM-MD5"], "sizeLimit": 10485760 },
        { "name": "aiosmtpd-expired-cert", "protocol": "smtp", "host": "127.0.0.1", "port": $P_AIO_EXPIRED, "tls": "implicit", "negative": "expired certificate", "auth": [] },
        { "name": "aiosmtpd-wrong-name", "protocol": "smtp", "host": "127.0.0.1", "port": $P_AIO_WRONGNAME, "tls": "implicit", "negative": "certificate for wrong.example.test only", "auth": [] }
      ]
    }
  }
}
EOF
}
render "$STATE" > "$STATE/env.json"
render '$STATE' > "$SERVERS_DIR/env.json"
