# Sends one message with Python's smtplib and prints what it saw as JSON:
# {"accepted": [...], "refused": {addr: code}, "error": {"phase": ..., "code": ...}}
# Usage: python3 py_client.py '{"port": 1025, "from": "...", "to": [...], "msg": "...",
#         "starttls": false, "cafile": null, "user": null, "password": null, "lmtp": false}'
import json, smtplib, ssl, sys

a = json.loads(sys.argv[1])
out = {"accepted": [], "refused": {}}
try:
    cls = smtplib.LMTP if a.get("lmtp") else smtplib.SMTP
    s = cls("127.0.0.1", a["port"], local_hostname="python.test", timeout=10)
    if a.get("starttls"):
        s.starttls(context=ssl.create_default_context(cafile=a["cafile"]))
    if a.get("user"):
        s.login(a["user"], a["password"])
    refused = s.sendmail(a["from"], a["to"], a["msg"].encode("utf-8"))
    out["refused"] = {k: v[0] for k, v in refused.items()}
    out["accepted"] = [t for t in a["to"] if t not in refused]
    try:
        s.quit()
    except smtplib.SMTPServerDisconnected:
        pass
except smtplib.SMTPSenderRefused as e:
    out["error"] = {"phase": "MAIL", "code": e.smtp_code}
except smtplib.SMTPRecipientsRefused as e:
    out["error"] = {"phase": "RCPT", "code": list(e.recipients.values())[0][0]}
    out["refused"] = {k: v[0] for k, v in e.recipients.items()}
except smtplib.SMTPDataError as e:
    out["error"] = {"phase": "DATA", "code": e.smtp_code}
except smtplib.SMTPServerDisconnected:
    out["error"] = {"phase": "CONN"}
print(json.dumps(out))
