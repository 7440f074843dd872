"""Runs one differential scenario with CPython's smtplib.

Reads a JSON object on stdin:
  {"client": "SMTP" | "LMTP", "host": ..., "port": ..., "path": ... (LMTP over
   a Unix socket), "localHostname": ..., "caFile": ..., "steps": [...]}
and prints {"results": [...], "rendered": {step index: base64}} on stdout.

Each step calls smtplib exactly as its documentation describes; the result of
a step is its return value (tuples as {"code", "message"}, bytes decoded) or
the exception it raised ({"error": class name, "code", "message",
"recipients", "sender"}). "rendered" holds, for each send_message step, the
bytes of the message as send_message flattens it (before removing Bcc), so
that our client can be given the very same message.
"""

import base64
import email.generator
import email.policy
import email.utils
import io
import json
import smtplib
import ssl
import sys
from email.message import EmailMessage


def text(value):
    if isinstance(value, bytes):
        return value.decode('utf-8', 'replace')
    return value


def reply(value):
    code, message = value
    return {'code': code, 'message': text(message)}


def refused_map(mapping):
    return {addr: reply(value) for addr, value in mapping.items()}


def error(exc):
    out = {'error': type(exc).__name__}
    if isinstance(exc, smtplib.SMTPResponseException):
        out['code'] = exc.smtp_code
        out['message'] = text(exc.smtp_error)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        out['sender'] = exc.sender
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        out['recipients'] = refused_map(exc.recipients)
    return out


def build_message(step):
    msg = EmailMessage()
    for name, value in step['headers']:
        msg[name] = value
    msg.set_content(step['body'])
    return msg


def flatten_like_send_message(msg, step):
    """The bytes send_message would send, but with Bcc kept (see module doc)."""
    addresses = []
    for name in ('From', 'Sender', 'To', 'Cc', 'Bcc'):
        addresses += [a for _, a in email.utils.getaddresses(msg.get_all(name, []))]
    addresses += [step.get('from') or '', *(step.get('to') or [])]
    try:
        ''.join(addresses).encode('ascii')
        policy = msg.policy
    except UnicodeEncodeError:
        policy = msg.policy.clone(utf8=True)
    out = io.BytesIO()
    email.generator.BytesGenerator(out, policy=policy).flatten(msg, linesep='\r\n')
    return out.getvalue()


def make_authobject(smtp, step):
    spec = step['object']
    if spec == 'plain':
        return smtp.auth_plain
    if spec == 'login':
        return smtp.auth_login
    if spec == 'cram-md5':
        return smtp.auth_cram_md5
    responses = list(spec['responses'])

    def authobject(challenge=None):
        if challenge is None:
            return spec['initial']
        return responses.pop(0)
    return authobject


def main():
    job = json.load(sys.stdin)
    cls = smtplib.LMTP if job['client'] == 'LMTP' else smtplib.SMTP
    smtp = None
    results = []
    rendered = {}
    for index, step in enumerate(job['steps']):
        op = step['op']
        try:
            if op == 'open':
                # The documented constructor form: connects and checks the greeting.
                smtp = cls(job['path'] or job['host'], 0 if job['path'] else job['port'],
                           local_hostname=job['localHostname'], timeout=10)
                result = None
            elif op == 'connect':
                if smtp is None:
                    smtp = cls(local_hostname=job['localHostname'], timeout=10)
                if job['path']:
                    result = reply(smtp.connect(job['path']))
                else:
                    result = reply(smtp.connect(job['host'], job['port']))
            elif op == 'helo':
                result = reply(smtp.helo(step.get('name', '')))
            elif op == 'ehlo':
                result = reply(smtp.ehlo(step.get('name', '')))
            elif op == 'ehloOrHeloIfNeeded':
                result = smtp.ehlo_or_helo_if_needed()
            elif op == 'hasExtn':
                result = bool(smtp.has_extn(step['name']))
            elif op == 'state':
                result = {
                    'esmtpFeatures': dict(smtp.esmtp_features),
                    'doesEsmtp': bool(smtp.does_esmtp),
                    'ehloResp': text(smtp.ehlo_resp),
                    'heloResp': text(smtp.helo_resp),
                }
            elif op == 'help':
                result = text(smtp.help(step.get('args', '')))
            elif op == 'rset':
                result = reply(smtp.rset())
            elif op == 'noop':
                result = reply(smtp.noop())
            elif op == 'verify':
                result = reply(smtp.verify(step['address']))
            elif op == 'vrfy':
                result = reply(smtp.vrfy(step['address']))
            elif op == 'expn':
                result = reply(smtp.expn(step['address']))
            elif op == 'docmd':
                result = reply(smtp.docmd(step['cmd'], step.get('args', '')))
            elif op == 'putcmd':
                result = smtp.putcmd(step['cmd'], step.get('args', ''))
            elif op == 'send':
                result = smtp.send(step['data'])
            elif op == 'getreply':
                result = reply(smtp.getreply())
            elif op == 'mail':
                result = reply(smtp.mail(step['from'], step.get('options', ())))
            elif op == 'rcpt':
                result = reply(smtp.rcpt(step['to'], step.get('options', ())))
            elif op == 'data':
                msg = step['msg'].encode('utf-8') if step.get('binary') else step['msg']
                result = reply(smtp.data(msg))
            elif op == 'login':
                result = reply(smtp.login(step['user'], step['password']))
            elif op == 'auth':
                smtp.user, smtp.password = step.get('user', 'bob'), step.get('password', 'secret')
                result = reply(smtp.auth(step['mechanism'], make_authobject(smtp, step),
                                         initial_response_ok=step.get('initialResponseOk', True)))
            elif op == 'starttls':
                context = ssl.create_default_context(cafile=job['caFile'])
                result = reply(smtp.starttls(context=context))
            elif op == 'sendmail':
                msg = step['msg'].encode('utf-8') if step.get('binary') else step['msg']
                result = refused_map(smtp.sendmail(step['from'], step['to'], msg,
                                                   step.get('mailOptions', ()), step.get('rcptOptions', ())))
            elif op == 'sendMessage':
                msg = build_message(step)
                rendered[str(index)] = base64.b64encode(flatten_like_send_message(msg, step)).decode('ascii')
                result = refused_map(smtp.send_message(msg, step.get('from'), step.get('to'),
                                                       step.get('mailOptions', ()), step.get('rcptOptions', ())))
            elif op == 'quit':
                result = reply(smtp.quit())
            elif op == 'close':
                result = smtp.close()
            else:
                raise SystemExit(f'unknown op {op}')
            results.append({'ok': result})
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            results.append(error(exc))
    if smtp is not None:
        smtp.close()
    json.dump({'results': results, 'rendered': rendered}, sys.stdout)


if __name__ == '__main__':
    main()
