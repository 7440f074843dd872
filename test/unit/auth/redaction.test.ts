import { describe, expect, it } from 'vitest';
import { inspect } from 'node:util';
import { Buffer } from 'node:buffer';
import {
  cramMd5Mechanism,
  externalMechanism,
  loginMechanism,
  oauthBearerMechanism,
  plainMechanism,
  scramMechanism,
  xoauth2Mechanism,
  type SaslMechanism,
} from '../../../packages/smtplib/src/auth/index.js';
import { ctx, step } from './helpers.js';

const SECRET = 'hunter2-S3CRET';
const pw = { user: 'tim', password: SECRET, authzid: 'boss' };
const tok = { user: 'tim', token: SECRET };

function textForms(m: SaslMechanism): string[] {
  return [
    inspect(m),
    inspect(m, { showHidden: true, depth: Infinity, getters: true }),
    inspect({ wrapper: [m] }, { depth: Infinity }),
    JSON.stringify(m),
    JSON.stringify({ m }),
    String(m),
    `${m}`,
    Object.keys(m).join(','),
    JSON.stringify({ ...m }),
  ];
}

function expectRedacted(m: SaslMechanism) {
  for (const form of textForms(m)) {
    expect(form).not.toContain(SECRET);
    expect(form).not.toContain(Buffer.from(SECRET).toString('base64'));
  }
  expect(inspect(m)).toContain(m.name);
  expect(JSON.parse(JSON.stringify(m))).toEqual({ name: m.name });
  expect(String(m)).toBe(`[SaslMechanism ${m.name}]`);
}

describe('mechanisms never expose secrets in their textual forms', () => {
  it.each([
    ['PLAIN', () => plainMechanism(pw)],
    ['LOGIN', () => loginMechanism(pw)],
    ['CRAM-MD5', () => cramMd5Mechanism(pw)],
    ['XOAUTH2', () => xoauth2Mechanism(tok)],
    ['OAUTHBEARER', () => oauthBearerMechanism({ ...tok, token: () => SECRET })],
    ['SCRAM-SHA-256', () => scramMechanism('SCRAM-SHA-256', pw)],
    ['SCRAM-SHA-1-PLUS', () => scramMechanism('SCRAM-SHA-1-PLUS', pw)],
    ['EXTERNAL', () => externalMechanism({ authzid: SECRET })],
  ])('%s, before and after start()', async (_name, make) => {
    const m = make();
    expectRedacted(m);
    try {
      await m.start(ctx({ tlsVersion: 'TLSv1.2', channelBinding: () => Buffer.from('cb') }));
    } catch {
      // not relevant here
    }
    expectRedacted(m);
  });

  it('SCRAM mid-exchange (derived keys held) and its errors carry no secret', async () => {
    const m = scramMechanism('SCRAM-SHA-256', { user: 'user', password: SECRET }, { clientNonce: 'abc' });
    m.start(ctx());
    await step(m, 'r=abcdef,s=QSXCR+Q6sek8bf92,i=4096');
    expectRedacted(m);
    const error = await Promise.resolve(m.step(Buffer.from('v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(inspect(error)).not.toContain(SECRET);
  });

  it('PLAIN NUL errors do not echo the password', () => {
    const m = plainMechanism({ user: 'tim', password: `${SECRET}\0` });
    let message = '';
    try {
      m.start(ctx());
    } catch (e) {
      message = inspect(e);
    }
    expect(message).toContain('NUL');
    expect(message).not.toContain(SECRET);
  });
});
