import { describe, expect, it } from 'vitest';
import { Buffer } from 'node:buffer';
import { plainMechanism } from '../../../packages/smtplib/src/auth/plain.js';
import { loginMechanism } from '../../../packages/smtplib/src/auth/login.js';
import { externalMechanism } from '../../../packages/smtplib/src/auth/external.js';
import { SaslMechanismError } from '../../../packages/smtplib/src/auth/common.js';
import { bytes, ctx, start, step } from './helpers.js';

describe('PLAIN (RFC 4616)', () => {
  it('RFC 4616 §4 example 1: no authzid', async () => {
    const m = plainMechanism({ user: 'tim', password: 'tanstaaftanstaaf' });
    expect(m.name).toBe('PLAIN');
    expect(m.sendsCleartext).toBe(true);
    expect(await start(m)).toBe('\0tim\0tanstaaftanstaaf');
  });

  it('RFC 4616 §4 example 2: authzid Ursel, authcid Kurt', async () => {
    const m = plainMechanism({ user: 'Kurt', password: 'xipj3plmq', authzid: 'Ursel' });
    const ir = await m.start(ctx());
    expect(Buffer.from(ir!).toString('latin1')).toBe('Ursel\0Kurt\0xipj3plmq');
    // RFC 4954 style: the client would send it base64-encoded.
    expect(Buffer.from(ir!).toString('base64')).toBe('VXJzZWwAS3VydAB4aXBqM3BsbXE=');
  });

  it('encodes non-ASCII fields as UTF-8', async () => {
    const m = plainMechanism({ user: 'jürgen', password: 'pässwörd€' });
    const ir = Buffer.from((await m.start(ctx()))!);
    expect(ir.equals(Buffer.from('\0jürgen\0pässwörd€', 'utf8'))).toBe(true);
  });

  it.each([
    ['user', { user: 'ti\0m', password: 'secret' }],
    ['password', { user: 'tim', password: 'sec\0ret' }],
    ['authzid', { user: 'tim', password: 'secret', authzid: 'ad\0min' }],
  ])('rejects NUL in the %s with a TypeError before producing any bytes', (_field, creds) => {
    const m = plainMechanism(creds);
    expect(() => m.start(ctx())).toThrow(TypeError);
    expect(() => m.start(ctx())).toThrow(/NUL/);
  });

  it('rejects an empty user name', () => {
    expect(() => plainMechanism({ user: '', password: 'x' }).start(ctx())).toThrow(TypeError);
  });

  it('refuses a challenge after the initial response', async () => {
    const m = plainMechanism({ user: 'tim', password: 'secret' });
    await start(m);
    expect(() => m.step(bytes(''))).toThrow(SaslMechanismError);
  });

  it('the factory needs a password', () => {
    expect(() => plainMechanism({ user: 'tim' })).toThrow(TypeError);
  });

  it('rejects lone surrogates instead of silently changing the password', () => {
    const m = plainMechanism({ user: 'tim', password: 'ab\uD800c' });
    expect(() => m.start(ctx())).toThrow(/surrogate/);
  });
});

describe('LOGIN', () => {
  it('waits for the server, then answers user name and password regardless of the prompt text', async () => {
    const m = loginMechanism({ user: 'tim@example.com', password: 'pa ss€' });
    expect(m.name).toBe('LOGIN');
    expect(m.sendsCleartext).toBe(true);
    expect(await m.start(ctx())).toBeUndefined();
    expect(await step(m, 'Password:')).toBe('tim@example.com'); // prompt text is ignored
    expect(await step(m, 'whatever')).toBe('pa ss€');
  });

  it('a third challenge is an error', async () => {
    const m = loginMechanism({ user: 'tim', password: 'secret' });
    m.start(ctx());
    await step(m, 'Username:');
    await step(m, 'Password:');
    expect(() => m.step(bytes('Password:'))).toThrow(SaslMechanismError);
    expect(() => m.step(bytes('Password:'))).toThrow(/third/);
  });
});

describe('EXTERNAL (RFC 4422 App. A)', () => {
  it('sends an empty initial response without authzid', async () => {
    const m = externalMechanism({});
    expect(m.name).toBe('EXTERNAL');
    expect(m.sendsCleartext).toBe(false);
    const ir = await m.start(ctx());
    expect(ir).toBeInstanceOf(Uint8Array);
    expect(ir!.length).toBe(0);
  });

  it('sends the authzid when given', async () => {
    expect(await start(externalMechanism({ authzid: 'fred@example.com' }))).toBe('fred@example.com');
  });

  it('refuses further challenges', async () => {
    const m = externalMechanism({});
    await m.start(ctx());
    expect(() => m.step(bytes(''))).toThrow(SaslMechanismError);
  });
});
