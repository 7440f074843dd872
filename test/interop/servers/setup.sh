#!/usr/bin/env bash
# Idempotent: installs the real mail servers used by the interop suite, creates a
# throw-away CA + certificates, the peer user and the Maildirs, and writes every
# server's private configuration under the state dir (default test/interop/.state,
# override with INTEROP_STATE). Never touches /etc/postfix, /etc/dovecot, /etc/exim4
# or any running service of the machine: every daemon is started by peers.sh with
# its own config file and loopback high ports.
#
# Not root and something missing -> prints "INTEROP-SKIP: <reason>", writes
# $STATE/SKIP (the reason) and exits 0, so the tests can skip with that reason.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

T0=$(date +%s.%N)
rm -f "$STATE/SKIP"

skip() {
  # Under CI a suite that cannot set itself up fails; it never skips quietly.
  if [ "${CI:-}" = true ]; then echo "INTEROP-FAIL (CI=true, cannot set up): $*" >&2; exit 1; fi
  echo "INTEROP-SKIP: $*"
  printf '%s\n' "$*" > "$STATE/SKIP"
  exit 0
}

APT_PKGS=(postfix dovecot-core dovecot-lmtpd python3-aiosmtpd openssl
  # libraries of the unpacked Exim (exim4-daemon-light) and OpenSMTPD binaries
  libdb5.3 libgnutls-dane0 libgnutls30 libidn12 libidn2-0 libnsl2 libpcre2-8-0 libcrypt1
  libevent-2.1-7 libssl3 zlib1g libpam0g
  # for peers.sh diagnostics (script(1)) and users
  bsdutils passwd)

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ "$(id -u)" != 0 ]; then
  [ ${#missing[@]} -eq 0 ] || skip "not root and packages missing: ${missing[*]}"
  [ -x "$EXIM_BIN" ] && [ -x "$SMTPD_BIN" ] && [ -f "$STATE/tls/ca.pem" ] \
    || skip "not root and $STATE not prepared (run test/interop/servers/setup.sh as root)"
  echo "setup: nothing to do (not root, everything present)"
  exit 0
fi

# ---------------------------------------------------------------- packages
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  # never let a maintainer script start the machine's own postfix/dovecot
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  if ! apt-get install -y --no-install-recommends "${missing[@]}" > "$STATE/apt.log" 2>&1; then
    log "apt-get install failed; retrying after apt-get update"
    apt-get update > "$STATE/apt-update.log" 2>&1 || true
    apt-get install -y --no-install-recommends "${missing[@]}" >> "$STATE/apt.log" 2>&1 \
      || { [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d; tail -20 "$STATE/apt.log"; exit 1; }
  fi
  [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
fi
T_APT=$(date +%s.%N)

# ------------------------------------------- Exim + OpenSMTPD, unpacked only
# (both Conflict with postfix as mail-transport-agent, so they are never dpkg-installed)
unpack() { # name dest debs...
  local name=$1 dest=$2; shift 2
  [ -f "$dest/.unpacked" ] && return 0
  log "apt-get download + dpkg-deb -x $*"
  rm -rf "$dest" "$STATE/opt/dl-$name"; mkdir -p "$dest" "$STATE/opt/dl-$name"
  (cd "$STATE/opt/dl-$name" && apt-get download "$@" > /dev/null 2>&1) \
    || { apt-get update > /dev/null 2>&1; (cd "$STATE/opt/dl-$name" && apt-get download "$@" > /dev/null); }
  for d in "$STATE/opt/dl-$name"/*.deb; do dpkg-deb -x "$d" "$dest"; done
  rm -rf "$STATE/opt/dl-$name"
  touch "$dest/.unpacked"
}
unpack exim "$STATE/opt/exim" exim4-daemon-light exim4-base
unpack opensmtpd "$STATE/opt/opensmtpd" opensmtpd
# OpenSMTPD has /usr/libexec/opensmtpd compiled in for its delivery helpers (no package owns it)
mkdir -p /usr/libexec/opensmtpd
for f in "$STATE/opt/opensmtpd/usr/libexec/opensmtpd/"*; do
  cmp -s "$f" "/usr/libexec/opensmtpd/$(basename "$f")" || cp -p "$f" /usr/libexec/opensmtpd/
done
# ... and /var/lib/opensmtpd/empty as its privsep chroot, /var/spool/smtpd as its queue
mkdir -p /var/lib/opensmtpd/empty /var/spool/smtpd
chmod 755 /var/lib/opensmtpd/empty; chmod 711 /var/spool/smtpd
T_UNPACK=$(date +%s.%N)

# ---------------------------------------------------------------- users
getent group "$PEER_USER" > /dev/null || groupadd --system "$PEER_USER"
getent passwd "$PEER_USER" > /dev/null \
  || useradd --system -g "$PEER_USER" -d /nonexistent -s /usr/sbin/nologin "$PEER_USER"
# Exim resolves its compiled-in user "Debian-exim" at start-up, even with exim_user set
for u in opensmtpd opensmtpq Debian-exim; do   # OpenSMTPD privsep users (its postinst never ran)
  getent passwd "$u" > /dev/null || useradd --system -U -d /nonexistent -s /usr/sbin/nologin "$u"
done
PEER_UID=$(id -u "$PEER_USER"); PEER_GID=$(id -g "$PEER_USER")

# ---------------------------------------------------------------- TLS material
TLS="$STATE/tls"
mkdir -p "$TLS"
if [ ! -f "$TLS/.done" ]; then
  log "creating throw-away CA and certificates in $TLS"
  (
    cd "$TLS"
    rm -rf ./*
    o() { openssl "$@" 2> /dev/null; }
    o req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
      -subj "/CN=smtplib interop test CA $(date +%s)" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    o req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days 3650 \
      -subj "/CN=smtplib interop UNRELATED CA" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    mkcert() { # name san startdate enddate
      local n=$1 san=$2
      o req -newkey rsa:2048 -nodes -keyout "$n.key" -out "$n.csr" -subj "/CN=${3:-mail.example.test}"
      cat > "$n.ext" <<EOT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san
EOT
      if [ -n "${4:-}" ]; then
        # expired certificate: `openssl ca` is the only 3.0 tool that takes explicit dates
        mkdir -p ca-db; : > ca-db/index.txt; echo 1000 > ca-db/serial
        cat > ca-db/ca.cnf <<EOT
[ca]
default_ca = d
[d]
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = p
copy_extensions = none
[p]
commonName = supplied
EOT
        o ca -batch -config ca-db/ca.cnf -in "$n.csr" -out "$n.pem" -notext \
          -startdate "$4" -enddate "$5" -extfile "$n.ext"
        rm -rf ca-db
      else
        o x509 -req -in "$n.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$n.pem" -days 3650 \
          -sha256 -extfile "$n.ext"
      fi
      rm -f "$n.csr" "$n.ext"
      cat "$n.pem" "$n.key" > "$n-combined.pem"
    }
    mkcert server "DNS:localhost,DNS:mail.example.test,IP:127.0.0.1,IP:::1"
    mkcert wrongname "DNS:wrong.example.test" wrong.example.test
    mkcert expired "DNS:localhost,DNS:mail.example.test,IP:127.0.0.1,IP:::1" mail.example.test \
      20200101000000Z 20210101000000Z
    rm -f ca.srl
  )
  for f in ca.pem other-ca.pem server.pem expired.pem wrongname.pem; do
    [ -s "$TLS/$f" ] || { echo "setup: failed to create $TLS/$f" >&2; exit 1; }
  done
  touch "$TLS/.done"
fi
chmod 755 "$TLS"; chmod 644 "$TLS"/*.pem; chmod 640 "$TLS"/*.key
chgrp "$PEER_USER" "$TLS"/*.key "$TLS"/*-combined.pem; chmod 640 "$TLS"/*-combined.pem
T_TLS=$(date +%s.%N)

# ---------------------------------------------------------------- dirs + Maildirs
mkdir -p "$STATE/run" "$STATE/ehlo"
chmod 755 "$STATE" "$STATE/run"
for srv in postfix dovecot exim opensmtpd aiosmtpd; do
  users="$MAIL_USERS"
  [ "$srv" = dovecot ] && users="alice bob postmaster full"
  for u in $users; do mkdir -p "$STATE/mail/$srv/$u"/{new,cur,tmp}; done
done
chown -R "$PEER_USER:$PEER_USER" "$STATE/mail"
chmod -R u+rwX,go+rX "$STATE/mail"

# ---------------------------------------------------------------- configs
"$SERVERS_DIR/write-configs.sh"
T_END=$(date +%s.%N)

awk -v t0="$T0" -v a="$T_APT" -v u="$T_UNPACK" -v t="$T_TLS" -v e="$T_END" -v st="$STATE" 'BEGIN {
  printf "setup: ok in %.1fs (apt %.1fs, unpack %.1fs, tls %.1fs, configs %.1fs); state %s\n", e-t0, a-t0, u-a, t-u, e-t, st }'
