#!/usr/bin/python3
"""Scriptable SMTP sink for the smtplib interop suite (run by Debian's /usr/bin/python3).

Listeners (127.0.0.1): --smtp PORT (STARTTLS offered, AUTH only after TLS),
--smtps PORT (implicit TLS), --expired PORT / --wrongname PORT (implicit TLS with a
bad certificate, for negative tests).

Recipients in example.test: alice, bob, postmaster, pelé -> stored to Maildir
<maildirs>/<user>; tempfail@ -> 451 at RCPT; rejectdata@ -> accepted at RCPT, then
554 after DATA; anything else @example.test -> 550; other domains -> 550 relay.
Every accepted transaction appends one JSON line to <maildirs>/envelopes.jsonl.
"""
import argparse
import asyncio
import hashlib
import hmac
import json
import os
import socket
import ssl
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, auth_mechanism

MAILBOXES = {"alice", "bob", "postmaster", "pelé"}
DOMAIN = "example.test"


class Handler:
    def __init__(self, maildirs, users):
        self.maildirs = maildirs
        self.users = users
        self.seq = 0

    # ---------- AUTH
    def authenticator(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode("utf-8", "replace")
            pw = auth_data.password.decode("utf-8", "replace")
            if self.users.get(user) == pw:
                return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)

    @auth_mechanism("CRAM-MD5")
    async def auth_CRAM_MD5(self, server, args):
        challenge = "<%d.%d@mail.example.test>" % (os.getpid(), time.time_ns())
        resp = await server.challenge_auth(challenge)
        if not isinstance(resp, bytes):
            return AuthResult(success=False, handled=False)
        try:
            user, digest = resp.decode("utf-8").rsplit(" ", 1)
        except ValueError:
            return AuthResult(success=False, handled=False)
        pw = self.users.get(user)
        if pw is None:
            return AuthResult(success=False, handled=False)
        want = hmac.new(pw.encode(), challenge.encode(), hashlib.md5).hexdigest()
        if hmac.compare_digest(want, digest.lower()):
            return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)

    # ---------- envelope
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "@" not in address:
            return "550 5.1.3 bad recipient address"
        local, _, domain = address.rpartition("@")
        if domain.lower() != DOMAIN:
            return "550 5.7.1 relay not permitted"
        local_l = local.lower()
        if local_l == "tempfail":
            return "451 4.3.0 <%s> temporary failure (interop harness)" % address
        if local_l not in MAILBOXES and local_l != "rejectdata":
            return "550 5.1.1 <%s> user unknown" % address
        envelope.rcpt_tos.append(address)
        if not hasattr(envelope, "per_rcpt_options"):
            envelope.per_rcpt_options = []
        envelope.per_rcpt_options.append(list(rcpt_options))
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(r.rpartition("@")[0].lower() == "rejectdata" for r in envelope.rcpt_tos):
            return "554 5.6.0 message rejected after DATA (interop harness)"
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        paths = []
        for rcpt in envelope.rcpt_tos:
            user = rcpt.rpartition("@")[0].lower()
            md = os.path.join(self.maildirs, user)
            for sub in ("tmp", "new", "cur"):
                os.makedirs(os.path.join(md, sub), exist_ok=True)
            self.seq += 1
            name = "%d.P%dQ%d.mail.example.test" % (time.time_ns(), os.getpid(), self.seq)
            head = ("Return-Path: <%s>\r\nDelivered-To: %s\r\n" % (envelope.mail_from, rcpt)).encode("utf-8")
            tmp = os.path.join(md, "tmp", name)
            with open(tmp, "wb") as f:
                f.write(head + content)
            final = os.path.join(md, "new", name)
            os.rename(tmp, final)
            paths.append(final)
        record = {
            "time": time.time(),
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "rcpt_options": getattr(envelope, "per_rcpt_options", []),
            "smtp_utf8": envelope.smtp_utf8,
            "size": len(content),
            "auth": session.auth_data if isinstance(session.auth_data, str) else None,
            "tls": session.ssl is not None,
            "helo": session.host_name,
            "paths": paths,
        }
        with open(os.path.join(self.maildirs, "envelopes.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        return "250 2.0.0 OK stored (interop harness)"


def ctx(cert, key):
    c = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    c.load_cert_chain(cert, key)
    return c


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True)
    ap.add_argument("--smtp", type=int, required=True)
    ap.add_argument("--smtps", type=int, required=True)
    ap.add_argument("--expired", type=int)
    ap.add_argument("--wrongname", type=int)
    a = ap.parse_args()
    tls = os.path.join(a.state, "tls")
    users = {}
    with open(os.path.join(a.state, "aiosmtpd", "passwd"), encoding="utf-8") as f:
        for line in f:
            if ":" in line:
                u, p = line.strip().split(":", 1)
                users[u] = p
    handler = Handler(os.path.join(a.state, "mail", "aiosmtpd"), users)
    good = ctx(os.path.join(tls, "server.pem"), os.path.join(tls, "server.key"))
    common = dict(
        hostname="mail.example.test",
        ident="aiosmtpd (interop harness)",
        data_size_limit=10485760,
        enable_SMTPUTF8=True,
        decode_data=False,
        authenticator=handler.authenticator,
    )
    loop = asyncio.get_running_loop()
    servers = [
        await loop.create_server(
            lambda: SMTP(handler, tls_context=good, require_starttls=False, auth_require_tls=True, **common),
            "127.0.0.1", a.smtp, reuse_address=True),
        await loop.create_server(
            lambda: SMTP(handler, auth_require_tls=False, **common),
            "127.0.0.1", a.smtps, ssl=good, reuse_address=True),
    ]
    for port, name in ((a.expired, "expired"), (a.wrongname, "wrongname")):
        if port:
            bad = ctx(os.path.join(tls, name + ".pem"), os.path.join(tls, name + ".key"))
            servers.append(await loop.create_server(
                lambda: SMTP(handler, auth_require_tls=False, **common),
                "127.0.0.1", port, ssl=bad, reuse_address=True))
    print("aiosmtpd peer listening", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main())
