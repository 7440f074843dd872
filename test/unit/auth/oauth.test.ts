import { describe, expect, it } from 'vitest';
import { Buffer } from 'node:buffer';
import { xoauth2Mechanism } from '../../../packages/smtplib/src/auth/xoauth2.js';
import { oauthBearerMechanism } from '../../../packages/smtplib/src/auth/oauthbearer.js';
import { SaslMechanismError } from '../../../packages/smtplib/src/auth/common.js';
import { bytes, ctx, start, text } from './helpers.js';

const ERROR_JSON = '{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}';

describe('XOAUTH2', () => {
  it('initial response has the exact documented bytes', async () => {
    const m = xoauth2Mechanism({ user: 'someuser@example.com', token: 'ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg' });
    expect(m.name).toBe('XOAUTH2');
    expect(m.sendsCleartext).toBe(true);
    const ir = Buffer.from((await m.start(ctx()))!);
    expect(ir.toString('latin1')).toBe(
      'user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg\x01\x01',
    );
    // The base64 form shown in Google's XOAUTH2 protocol documentation.
    expect(ir.toString('base64')).toBe(
      'dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2cBAQ==',
    );
  });

  it('calls an (async) token function exactly once per exchange', async () => {
    let calls = 0;
    const token = async () => `tok${++calls}`;
    const m = xoauth2Mechanism({ user: 'u@example.com', token });
    expect(await start(m)).toBe('user=u@example.com\x01auth=Bearer tok1\x01\x01');
    expect(await text(await m.step(bytes(ERROR_JSON)))).toBe('');
    expect(calls).toBe(1);
    const again = xoauth2Mechanism({ user: 'u@example.com', token });
    expect(await start(again)).toContain('Bearer tok2');
    expect(calls).toBe(2);
  });

  it('answers the error challenge with an empty response, then refuses more', async () => {
    const m = xoauth2Mechanism({ user: 'u', token: 't' });
    await m.start(ctx());
    const r = await m.step(bytes(ERROR_JSON)); // the decoded JSON challenge
    expect(r.length).toBe(0);
    expect(() => m.step(bytes(ERROR_JSON))).toThrow(SaslMechanismError);
  });

  it('rejects control characters in the user and an empty or bad token', async () => {
    await expect(xoauth2Mechanism({ user: 'u\x01auth=x', token: 't' }).start(ctx())).rejects.toThrow(TypeError);
    await expect(xoauth2Mechanism({ user: 'u', token: () => '' }).start(ctx())).rejects.toThrow(TypeError);
    await expect(xoauth2Mechanism({ user: 'u', token: 'a\x01b' }).start(ctx())).rejects.toThrow(TypeError);
    expect(() => xoauth2Mechanism({ user: 'u' })).toThrow(TypeError);
  });
});

describe('OAUTHBEARER (RFC 7628)', () => {
  it('RFC 7628 §4.1 example shape', async () => {
    const m = oauthBearerMechanism({ user: 'user@example.com', token: 'vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==' });
    expect(m.name).toBe('OAUTHBEARER');
    expect(m.sendsCleartext).toBe(true);
    const ir = await start(m, ctx({ host: 'server.example.com', port: 143 }));
    expect(ir).toBe(
      'n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01',
    );
  });

  it('prefers authzid over user, escapes it, and omits unknown host/port', async () => {
    const m = oauthBearerMechanism({ user: 'u', authzid: 'a,b=c', token: 'T' });
    expect(await start(m, ctx({ host: '', port: undefined }))).toBe('n,a=a=2Cb=3Dc,\x01auth=Bearer T\x01\x01');
  });

  it('omits the authzid when there is no identity', async () => {
    const m = oauthBearerMechanism({ user: '', token: 'T' });
    expect(await start(m, ctx({ host: 'h', port: 25 }))).toBe('n,,\x01host=h\x01port=25\x01auth=Bearer T\x01\x01');
  });

  it('answers the error challenge with a single 0x01 (RFC 7628 §3.2.3), then refuses more', async () => {
    const m = oauthBearerMechanism({ user: 'u', token: async () => 'T' });
    await m.start(ctx());
    const r = await m.step(bytes('{"status":"invalid_token"}'));
    expect(Array.from(r)).toEqual([1]);
    expect(() => m.step(bytes('{}'))).toThrow(SaslMechanismError);
  });
});
