# One writer for the parts of a private Postfix instance that every suite
# shares (interop, dkim-e2e, oauth-e2e): directories, names, logging, no
# aliases, no local delivery, no relaying, no bounces. Each suite appends the
# settings that make it what it is (ports, TLS, SASL, milters, mailboxes).
# Sourced, not executed.
# shellcheck shell=bash

# postfix_main_base DIR LABEL: the head of main.cf for an instance rooted at
# DIR ($DIR/etc, $DIR/spool, $DIR/lib); LABEL names the suite in the banner
# and in the reason given for refused relaying. Never /etc/postfix.
postfix_main_base() {
  local dir="$1" label="$2"
  cat <<CONF
# private Postfix instance for the smtplib $label suite (never /etc/postfix)
compatibility_level = 3.6
config_directory = $dir/etc
queue_directory = $dir/spool
data_directory = $dir/lib
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
daemon_directory = /usr/lib/postfix/sbin
command_directory = /usr/sbin
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.example.test
mydomain = example.test
myorigin = \$myhostname
mydestination =
local_recipient_maps =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtpd_banner = \$myhostname ESMTP Postfix ($label)
biff = no
maillog_file = $dir/maillog
maillog_file_prefixes = /var, /dev/stdout, $dir
alias_maps =
alias_database =
smtpd_error_sleep_time = 0
virtual_mailbox_domains = example.test
default_transport = error:relaying disabled in $label
relay_transport = error:relaying disabled in $label
notify_classes =
bounce_queue_lifetime = 0
smtp_tls_security_level = none
CONF
}

# postfix_master_services: the master.cf lines for Postfix's own services;
# the suite writes its smtpd listeners above them.
postfix_master_services() {
  cat <<'CONF'
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CONF
}
