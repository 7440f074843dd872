#!/usr/bin/env python3
"""Proves the interop peers work, with Python's own smtplib (any python3 >= 3.8).

For every endpoint in $STATE/env.json: connect (plain / STARTTLS / implicit TLS, verifying
the throw-away CA), EHLO, AUTH with every offered mechanism (SCRAM implemented here),
send one message, then read the Maildir back and compare it byte for byte (after the
server's trace headers, CRLF normalised to LF). Also: unknown recipient 550, relay refused,
LMTP per-recipient replies (alice ok, full 552 after DATA). Saves each EHLO reply to
$STATE/ehlo/<endpoint>.txt. Prints PASS/FAIL lines and "N passed, N failed"; exit 1 on FAIL.
"""
import base64
import glob
import hashlib
import hmac
import json
import os
import smtplib
import socket
import ssl
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
STATE = os.environ.get("INTEROP_STATE") or os.path.join(HERE, "..", ".state")
STATE = os.path.abspath(STATE)
ENV = json.load(open(os.path.join(STATE, "env.json"), encoding="utf-8"))
CA = ENV["tls"]["ca"]
results = []


def ok(name, cond, detail=""):
    results.append((name, bool(cond)))
    print(("PASS " if cond else "FAIL ") + name + (("  -- " + detail) if detail and not cond else ""), flush=True)


def ctx():
    c = ssl.create_default_context(cafile=CA)
    return c


def scram(mech, user, password):
    hname = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}[mech]
    nonce = base64.b64encode(os.urandom(18)).decode()
    bare = "n=%s,r=%s" % (user, nonce)
    state = {}

    def step(challenge=None):
        if challenge is None:
            return "n,," + bare
        ch = challenge.decode()
        if "server_first" not in state:
            state["server_first"] = ch
            f = dict(kv.split("=", 1) for kv in ch.split(","))
            assert f["r"].startswith(nonce)
            salted = hashlib.pbkdf2_hmac(hname, password.encode(), base64.b64decode(f["s"]), int(f["i"]))
            ckey = hmac.new(salted, b"Client Key", hname).digest()
            skey = hmac.new(salted, b"Server Key", hname).digest()
            without = "c=biws,r=" + f["r"]
            auth_msg = ",".join([bare, ch, without]).encode()
            sig = hmac.new(hashlib.new(hname, ckey).digest(), auth_msg, hname).digest()
            proof = bytes(a ^ b for a, b in zip(ckey, sig))
            state["server_sig"] = base64.b64encode(hmac.new(skey, auth_msg, hname).digest()).decode()
            return without + ",p=" + base64.b64encode(proof).decode()
        # server-final
        assert ch == "v=" + state["server_sig"], "bad server signature"
        state["verified"] = True
        return ""

    return step, state


def connect(ep):
    if ep["tls"] == "implicit":
        s = smtplib.SMTP_SSL(ep["host"], ep["port"], local_hostname="client.example.test",
                             timeout=30, context=ctx())
    else:
        s = smtplib.SMTP(ep["host"], ep["port"], local_hostname="client.example.test", timeout=30)
    s.ehlo()
    if ep["tls"].startswith("starttls"):
        s.starttls(context=ctx())
        s.ehlo()
    return s


def make_msg(tag, rcpt):
    mid = "<%s@client.example.test>" % uuid.uuid4()
    body = "".join("line %d of %s: the quick brown fox\r\n" % (i, tag) for i in range(40))
    msg = ("From: Alice <alice@example.test>\r\nTo: <%s>\r\nSubject: interop %s\r\n"
           "Message-ID: %s\r\nDate: %s\r\n\r\n%s" % (rcpt, tag, mid,
                                                     time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()), body))
    return mid, msg.encode()


def find_in_maildir(server, user, mid, timeout=10.0):
    pattern = ENV["servers"][server]["maildir"].replace("{user}", user)
    end = time.time() + timeout
    while time.time() < end:
        for f in glob.glob(pattern + "/new/*") + glob.glob(pattern + "/cur/*"):
            try:
                data = open(f, "rb").read()
            except OSError:
                continue
            if mid.encode() in data:
                return data
        time.sleep(0.05)
    return None


def stored_matches(stored, sent):
    s = stored.replace(b"\r\n", b"\n")
    m = sent.replace(b"\r\n", b"\n")
    i = s.find(b"From: Alice")
    return i >= 0 and s[i:] == m


def check_send(server, ep, s, tag):
    mid, msg = make_msg(tag, "alice@example.test")
    refused = s.sendmail("alice@example.test", ["alice@example.test"], msg)
    ok("%s %s: accepted" % (ep["name"], tag), refused == {}, repr(refused))
    stored = find_in_maildir(server, "alice", mid)
    ok("%s %s: Maildir byte-for-byte" % (ep["name"], tag), stored is not None and stored_matches(stored, msg),
       "not found" if stored is None else repr(stored[:300]))


def smtp_endpoint(server, ep):
    name = ep["name"]
    if ep.get("negative"):
        try:
            s = smtplib.SMTP_SSL(ep["host"], ep["port"], timeout=10, context=ctx())
            s.quit()
            ok(name + ": TLS handshake refused (" + ep["negative"] + ")", False, "handshake succeeded")
        except ssl.SSLCertVerificationError as e:
            ok(name + ": TLS handshake refused (" + ep["negative"] + ")", True)
        return
    s = connect(ep)
    ehlo = s.ehlo_resp.decode("utf-8", "replace")
    with open(os.path.join(STATE, "ehlo", name + ".txt"), "w", encoding="utf-8") as f:
        f.write(ehlo + "\n")
    offered = set((s.esmtp_features.get("auth") or "").upper().split())
    ok(name + ": AUTH offers " + " ".join(ep["auth"]), set(ep["auth"]) <= offered, repr(offered))
    # unknown recipient and relay: refused at RCPT
    if ep.get("authRequired"):
        s.login("alice", "alice-pass")
    s.mail("alice@example.test")
    code, _ = s.rcpt("nosuchuser@example.test")
    ok(name + ": unknown recipient 550", code == 550, str(code))
    s.rset()
    s.mail("alice@example.test")
    code, resp = s.rcpt("someone@elsewhere.invalid")
    ok(name + ": relay refused at RCPT", code in (550, 554), "%s %r" % (code, resp))
    s.rset()
    if not ep.get("authRequired"):
        check_send(server, ep, s, "no-auth")
    s.quit()
    for mech in ep["auth"]:
        s = connect(ep)
        try:
            if mech.startswith("SCRAM"):
                step, st = scram(mech, "alice", "alice-pass")
                s.auth(mech, step, initial_response_ok=True)
                ok("%s: AUTH %s (server signature verified)" % (name, mech), st.get("verified"))
            else:
                s.login("alice", "alice-pass") if False else None
                s.user, s.password = "alice", "alice-pass"
                method = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login, "CRAM-MD5": s.auth_cram_md5}[mech]
                s.auth(mech, method, initial_response_ok=(mech != "CRAM-MD5"))
                ok("%s: AUTH %s" % (name, mech), True)
            check_send(server, ep, s, "auth-" + mech)
        except smtplib.SMTPException as e:
            ok("%s: AUTH %s" % (name, mech), False, repr(e))
        finally:
            try:
                s.quit()
            except Exception:
                pass
    # wrong password is refused
    if ep["auth"]:
        s = connect(ep)
        try:
            s.login("alice", "wrong-pass")
            ok(name + ": wrong password refused", False, "login succeeded")
        except smtplib.SMTPAuthenticationError as e:
            ok(name + ": wrong password refused", 500 <= e.smtp_code < 600, str(e.smtp_code))
        finally:
            s.close()


def lmtp_endpoint(server, ep):
    name = ep["name"]
    if ep["host"].startswith("/"):
        s = smtplib.LMTP(ep["host"])
    else:
        s = smtplib.LMTP(ep["host"], ep["port"])
    s.ehlo()  # LMTP's ehlo sends LHLO
    ehlo = s.ehlo_resp.decode("utf-8", "replace")
    with open(os.path.join(STATE, "ehlo", name + ".txt"), "w", encoding="utf-8") as f:
        f.write(ehlo + "\n")
    if ep["tls"] == "starttls":
        s.starttls(context=ctx())
        s.ehlo()
    mid, msg = make_msg("lmtp", "alice@example.test")
    msg = msg + b"padding to exceed the 1 KB quota " + b"x" * 1200 + b"\r\n"
    s.mail("alice@example.test")
    c1, _ = s.rcpt("alice@example.test")
    c2, _ = s.rcpt("full@example.test")
    c3, _ = s.rcpt("nosuchuser@example.test")
    ok(name + ": RCPT alice 250, full 250, unknown 550", (c1, c2, c3) == (250, 250, 550), repr((c1, c2, c3)))
    code, resp = s.data(msg)          # reply for the first accepted recipient
    code2, resp2 = s.getreply()       # reply for the second accepted recipient
    ok(name + ": LMTP per-recipient: alice 250 after DATA", code == 250, "%s %r" % (code, resp))
    ok(name + ": LMTP per-recipient: full 552 after DATA", code2 == 552, "%s %r" % (code2, resp2))
    stored = find_in_maildir(server, "alice", mid)
    ok(name + ": Maildir byte-for-byte", stored is not None and stored_matches(stored, msg),
       "not found" if stored is None else repr(stored[:300]))
    s.quit()


def main():
    os.makedirs(os.path.join(STATE, "ehlo"), exist_ok=True)
    only = sys.argv[1:]
    for server, info in ENV["servers"].items():
        if only and server not in only:
            continue
        for ep in info["endpoints"]:
            try:
                (lmtp_endpoint if ep["protocol"] == "lmtp" else smtp_endpoint)(server, ep)
            except Exception as e:  # noqa
                ok(ep["name"] + ": endpoint usable", False, repr(e))
    passed = sum(1 for _, r in results if r)
    failed = len(results) - passed
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
