"""Reads messages (one base64 line each) on stdin; writes, per message, one JSON
line describing what Python's email package (BytesParser, policy.default)
sees: every part of walk() with its type, filename, charset, disposition,
decoded content, and the headers' decoded values and addresses."""
import base64
import json
import sys
from email import policy
from email.parser import BytesParser

ADDRESS_HEADERS = {'from', 'to', 'cc', 'bcc', 'reply-to', 'sender'}


def fix(text):
    # 8-bit header bytes arrive as surrogate escapes; read them as UTF-8.
    try:
        return text.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')
    except Exception:
        return text


def describe(msg):
    parts = []
    for part in msg.walk():
        info = {
            'type': part.get_content_type(),
            'filename': fix(part.get_filename()) if part.get_filename() is not None else None,
            'disposition': part.get_content_disposition(),
            'charset': part.get_content_charset(),
            'cid': str(part['content-id']) if part['content-id'] is not None else None,
            'defects': sorted(type(d).__name__ for d in part.defects),
        }
        if not part.is_multipart():
            try:
                content = part.get_content()
                if isinstance(content, str):
                    info['text'] = fix(content)
                elif isinstance(content, bytes):
                    info['bytes'] = base64.b64encode(content).decode('ascii')
            except Exception as error:  # damaged parts: report, do not stop
                info['error'] = type(error).__name__
        parts.append(info)
    headers = []
    for name, value in msg.items():
        entry = {'name': name}
        try:
            if name.lower() in ADDRESS_HEADERS:
                entry['addresses'] = [[fix(a.display_name), fix(a.addr_spec)] for a in value.addresses]
            else:
                entry['value'] = fix(str(value))
        except Exception as error:
            entry['error'] = type(error).__name__
        headers.append(entry)
    return {'headers': headers, 'parts': parts, 'defects': sorted(type(d).__name__ for d in msg.defects)}


for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    try:
        msg = BytesParser(policy=policy.default).parsebytes(base64.b64decode(line))
        out = describe(msg)
    except Exception as error:
        out = {'crash': f'{type(error).__name__}: {error}'}
    sys.stdout.write(json.dumps(out) + '\n')
    sys.stdout.flush()
