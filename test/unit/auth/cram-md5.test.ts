import { describe, expect, it } from 'vitest';
import { cramMd5Mechanism } from '../../../packages/smtplib/src/auth/cram-md5.js';
import { SaslMechanismError } from '../../../packages/smtplib/src/auth/common.js';
import { bytes, ctx, step } from './helpers.js';

describe('CRAM-MD5 (RFC 2195)', () => {
  it('RFC 2195 §2 example', async () => {
    const m = cramMd5Mechanism({ user: 'tim', password: 'tanstaaftanstaaf' });
    expect(m.name).toBe('CRAM-MD5');
    expect(m.sendsCleartext).toBe(false);
    expect(await m.start(ctx())).toBeUndefined();
    expect(await step(m, '<1896.697170952@postoffice.reston.mci.net>')).toBe(
      'tim b913a602c7eda7a495b4e6e7334d3890',
    );
  });

  it('a different challenge gives a different digest', async () => {
    const m = cramMd5Mechanism({ user: 'tim', password: 'tanstaaftanstaaf' });
    const answer = await step(m, '<1897.697170952@postoffice.reston.mci.net>');
    expect(answer).toMatch(/^tim [0-9a-f]{32}$/);
    expect(answer).not.toBe('tim b913a602c7eda7a495b4e6e7334d3890');
  });

  it('refuses an empty challenge and a second challenge', async () => {
    expect(() => cramMd5Mechanism({ user: 'tim', password: 'x' }).step(bytes(''))).toThrow(SaslMechanismError);
    const m = cramMd5Mechanism({ user: 'tim', password: 'x' });
    await step(m, '<1@x>');
    expect(() => m.step(bytes('<2@x>'))).toThrow(/second/);
  });
});
