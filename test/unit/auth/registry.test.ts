import { describe, expect, it } from 'vitest';
import {
  chooseMechanism,
  createMechanism,
  DEFAULT_MECHANISM_PREFERENCE,
  type ChooseOptions,
} from '../../../packages/smtplib/src/auth/index.js';
import { ctx, start } from './helpers.js';

const pw = { user: 'tim', password: 'secret' };
const tok = { user: 'tim@example.com', token: 'T0KEN' };
const tls = (credentials: ChooseOptions['credentials'], over: Partial<ChooseOptions> = {}): ChooseOptions => ({
  credentials,
  channelBindingAvailable: true,
  cleartextAllowed: true,
  ...over,
});

describe('DEFAULT_MECHANISM_PREFERENCE', () => {
  it('is strongest first and leaves out CRAM-MD5 and EXTERNAL', () => {
    expect(DEFAULT_MECHANISM_PREFERENCE[0]).toBe('SCRAM-SHA-256-PLUS');
    expect(DEFAULT_MECHANISM_PREFERENCE).not.toContain('CRAM-MD5');
    expect(DEFAULT_MECHANISM_PREFERENCE).not.toContain('EXTERNAL');
    expect(DEFAULT_MECHANISM_PREFERENCE.indexOf('SCRAM-SHA-256')).toBeLessThan(DEFAULT_MECHANISM_PREFERENCE.indexOf('PLAIN'));
    expect(DEFAULT_MECHANISM_PREFERENCE.indexOf('PLAIN')).toBeLessThan(DEFAULT_MECHANISM_PREFERENCE.indexOf('LOGIN'));
    expect(Object.isFrozen(DEFAULT_MECHANISM_PREFERENCE)).toBe(true);
  });
});

describe('createMechanism', () => {
  it('builds each mechanism, case-insensitively', () => {
    for (const name of ['plain', 'Login', 'cram-md5', 'SCRAM-SHA-1', 'scram-sha-256', 'SCRAM-SHA-1-PLUS', 'scram-sha-256-plus', 'EXTERNAL']) {
      expect(createMechanism(name, pw)?.name).toBe(name.toUpperCase());
    }
    for (const name of ['xoauth2', 'OAUTHBEARER']) expect(createMechanism(name, tok)?.name).toBe(name.toUpperCase());
  });

  it('returns undefined for unknown names and credentials that do not fit', () => {
    expect(createMechanism('DIGEST-MD5', pw)).toBeUndefined();
    expect(createMechanism('toString', pw)).toBeUndefined();
    expect(createMechanism('XOAUTH2', pw)).toBeUndefined();
    expect(createMechanism('OAUTHBEARER', pw)).toBeUndefined();
    expect(createMechanism('SCRAM-SHA-256', tok)).toBeUndefined();
    expect(createMechanism('PLAIN', tok)).toBeUndefined();
    expect(createMechanism('LOGIN', { user: 'tim', password: '' })).toBeUndefined();
    expect(createMechanism('XOAUTH2', { user: '', token: 't' })).toBeUndefined();
  });

  it('makes a fresh object every time and passes SCRAM options through', async () => {
    expect(createMechanism('PLAIN', pw)).not.toBe(createMechanism('PLAIN', pw));
    const m = createMechanism('SCRAM-SHA-256', pw, { clientNonce: 'abc' })!;
    expect(await start(m, ctx())).toBe('n,,n=tim,r=abc');
  });
});

describe('chooseMechanism', () => {
  it('never picks CRAM-MD5 by default', () => {
    expect(chooseMechanism(['CRAM-MD5', 'PLAIN'], tls(pw))).toBe('PLAIN');
    expect(chooseMechanism(['CRAM-MD5'], tls(pw))).toBeUndefined();
    expect(chooseMechanism(['CRAM-MD5', 'LOGIN'], tls(pw, { cleartextAllowed: false }))).toBeUndefined();
  });

  it('picks CRAM-MD5 or EXTERNAL when the caller names them', () => {
    expect(chooseMechanism(['CRAM-MD5', 'PLAIN'], tls(pw, { preference: ['CRAM-MD5', 'PLAIN'] }))).toBe('CRAM-MD5');
    expect(chooseMechanism(['EXTERNAL', 'PLAIN'], tls({ user: '' }, { preference: ['external'] }))).toBe('EXTERNAL');
  });

  it('does not pick PLAIN or LOGIN when cleartext is not allowed', () => {
    const noClear = tls(pw, { cleartextAllowed: false, channelBindingAvailable: false });
    expect(chooseMechanism(['PLAIN', 'LOGIN'], noClear)).toBeUndefined();
    expect(chooseMechanism(['LOGIN', 'PLAIN', 'SCRAM-SHA-1'], noClear)).toBe('SCRAM-SHA-1');
    expect(chooseMechanism(['XOAUTH2', 'OAUTHBEARER'], tls(tok, { cleartextAllowed: false }))).toBeUndefined();
  });

  it('picks -PLUS only with channel binding', () => {
    const adv = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS'];
    expect(chooseMechanism(adv, tls(pw))).toBe('SCRAM-SHA-256-PLUS');
    expect(chooseMechanism(adv, tls(pw, { channelBindingAvailable: false }))).toBe('SCRAM-SHA-256');
    expect(chooseMechanism(['SCRAM-SHA-1-PLUS', 'PLAIN'], tls(pw, { channelBindingAvailable: false }))).toBe('PLAIN');
  });

  it('prefers SCRAM over PLAIN over LOGIN, whatever order the server lists them in', () => {
    expect(chooseMechanism(['login', 'plain', 'scram-sha-1', 'scram-sha-256'], tls(pw))).toBe('SCRAM-SHA-256');
    expect(chooseMechanism(['LOGIN', 'PLAIN'], tls(pw))).toBe('PLAIN');
    expect(chooseMechanism(['LOGIN'], tls(pw))).toBe('LOGIN');
  });

  it('token credentials pick OAUTHBEARER, then XOAUTH2, never password mechanisms', () => {
    expect(chooseMechanism(['PLAIN', 'XOAUTH2', 'OAUTHBEARER', 'SCRAM-SHA-256'], tls(tok))).toBe('OAUTHBEARER');
    expect(chooseMechanism(['PLAIN', 'LOGIN', 'XOAUTH2'], tls(tok))).toBe('XOAUTH2');
    expect(chooseMechanism(['PLAIN', 'LOGIN', 'SCRAM-SHA-256'], tls(tok))).toBeUndefined();
  });

  it('password credentials never pick token mechanisms', () => {
    expect(chooseMechanism(['XOAUTH2', 'OAUTHBEARER'], tls(pw))).toBeUndefined();
  });

  it('follows the caller preference but still applies the policy', () => {
    expect(chooseMechanism(['PLAIN', 'SCRAM-SHA-256'], tls(pw, { preference: ['plain', 'scram-sha-256'] }))).toBe('PLAIN');
    expect(
      chooseMechanism(['PLAIN', 'SCRAM-SHA-256'], tls(pw, { preference: ['PLAIN', 'SCRAM-SHA-256'], cleartextAllowed: false })),
    ).toBe('SCRAM-SHA-256');
    expect(chooseMechanism(['XOAUTH2'], tls(pw, { preference: ['XOAUTH2'] }))).toBeUndefined();
  });

  it('returns a custom (unknown) mechanism name the caller listed and the server advertised', () => {
    expect(chooseMechanism(['X-CUSTOM', 'PLAIN'], tls(pw, { preference: ['X-Custom', 'PLAIN'] }))).toBe('X-Custom');
    expect(chooseMechanism(['PLAIN'], tls(pw, { preference: ['X-Custom'] }))).toBeUndefined();
  });

  it('returns undefined when nothing was advertised', () => {
    expect(chooseMechanism([], tls(pw))).toBeUndefined();
  });
});
