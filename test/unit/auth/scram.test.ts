import { describe, expect, it } from 'vitest';
import { Buffer } from 'node:buffer';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { scramMechanism, type ScramMechanismName } from '../../../packages/smtplib/src/auth/scram.js';
import { SaslMechanismError } from '../../../packages/smtplib/src/auth/common.js';
import type { SaslContext } from '../../../packages/smtplib/src/auth/mechanism.js';
import { ctx, start, step } from './helpers.js';

const RFC5802 = {
  nonce: 'fyko+d2lbbFgONRv9qkxdawL',
  clientFirst: 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL',
  serverFirst: 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096',
  clientFinal: 'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
  serverFinal: 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=',
};

const RFC7677 = {
  nonce: 'rOprNGfwEbeRWgbNEkqO',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

/** An independent server-side computation (RFC 5802 §3) for exchanges beyond the RFC vectors. */
function serverSide(hash: 'sha1' | 'sha256', password: string, salt: Buffer, iterations: number) {
  const size = hash === 'sha1' ? 20 : 32;
  const salted = pbkdf2Sync(password, salt, iterations, size, hash);
  const hmac = (k: Buffer, d: string) => createHmac(hash, k).update(d).digest();
  const storedKey = createHash(hash).update(hmac(salted, 'Client Key')).digest();
  const serverKey = hmac(salted, 'Server Key');
  return {
    /** Checks the client proof and returns the server-final message. */
    finish(clientFirstBare: string, serverFirst: string, clientFinal: string): string {
      const withoutProof = clientFinal.replace(/,p=[^,]*$/, '');
      const proof = Buffer.from(/,p=([^,]*)$/.exec(clientFinal)![1]!, 'base64');
      const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
      const clientSig = hmac(storedKey, authMessage);
      const clientKey = Buffer.from(proof.map((b, i) => b ^ clientSig[i]!));
      if (!createHash(hash).update(clientKey).digest().equals(storedKey)) throw new Error('bad proof');
      return `v=${hmac(serverKey, authMessage).toString('base64')}`;
    },
  };
}

async function runVector(name: ScramMechanismName, v: typeof RFC5802, password = 'pencil') {
  const m = scramMechanism(name, { user: 'user', password }, { clientNonce: v.nonce });
  expect(await start(m)).toBe(v.clientFirst);
  expect(await step(m, v.serverFirst)).toBe(v.clientFinal);
  expect(await step(m, v.serverFinal)).toBe('');
  m.verify!();
  return m;
}

describe('SCRAM test vectors', () => {
  it('RFC 5802 §5 (SCRAM-SHA-1)', async () => {
    const m = await runVector('SCRAM-SHA-1', RFC5802);
    expect(m.name).toBe('SCRAM-SHA-1');
    expect(m.sendsCleartext).toBe(false);
  });

  it('RFC 7677 §3 (SCRAM-SHA-256)', async () => {
    const m = await runVector('SCRAM-SHA-256', RFC7677);
    expect(m.name).toBe('SCRAM-SHA-256');
  });

  it('SASLprep maps the password (soft hyphen is mapped to nothing, RFC 4013 §2.1)', async () => {
    await runVector('SCRAM-SHA-256', RFC7677, 'pen\u00ADcil');
  });

  it('a wrong password gives a different proof', async () => {
    const m = scramMechanism('SCRAM-SHA-256', { user: 'user', password: 'pencil2' }, { clientNonce: RFC7677.nonce });
    await start(m);
    expect(await step(m, RFC7677.serverFirst)).not.toBe(RFC7677.clientFinal);
  });

  it('uses a random client nonce by default', async () => {
    const a = await start(scramMechanism('SCRAM-SHA-256', { user: 'user', password: 'p' }));
    const b = await start(scramMechanism('SCRAM-SHA-256', { user: 'user', password: 'p' }));
    expect(a).toMatch(/^n,,n=user,r=[\x21-\x2b\x2d-\x7e]{24,}$/);
    expect(a).not.toBe(b);
  });

  it('escapes "=" and "," in the user name and sends the authzid', async () => {
    const m = scramMechanism('SCRAM-SHA-1', { user: 'a=b,c', password: 'p', authzid: 'x,y' }, { clientNonce: 'abc' });
    expect(await start(m)).toBe('n,a=x=2Cy,n=a=3Db=2Cc,r=abc');
  });
});

describe('SCRAM negative cases', () => {
  async function afterFirst(v = RFC7677, options = {}) {
    const m = scramMechanism('SCRAM-SHA-256', { user: 'user', password: 'pencil' }, { clientNonce: v.nonce, ...options });
    await start(m);
    return m;
  }

  it('a challenge that arrives while the proof is being computed fails the exchange', async () => {
    const m = await afterFirst();
    const pending = m.step(Buffer.from(RFC7677.serverFirst));
    await expect(m.step(Buffer.from(RFC7677.serverFinal))).rejects.toThrow(SaslMechanismError);
    await expect(pending).rejects.toThrow(/aborted/);
    expect(() => m.verify!()).toThrow(/never verified/);
  });

  it('rejects a bad server signature', async () => {
    const m = await afterFirst();
    await step(m, RFC7677.serverFirst);
    const bad = RFC7677.serverFinal.replace('6rri', '6rrj');
    await expect(step(m, bad)).rejects.toThrow(SaslMechanismError);
    expect(() => m.verify!()).toThrow(/never verified/);
  });

  it('rejects a server signature of the wrong length or bad base64', async () => {
    let m = await afterFirst();
    await step(m, RFC7677.serverFirst);
    await expect(step(m, 'v=AAAA')).rejects.toThrow(/does not match/);
    m = await afterFirst();
    await step(m, RFC7677.serverFirst);
    await expect(step(m, 'v=!!!')).rejects.toThrow(/base64/);
  });

  it('throws on a server-final e= error', async () => {
    const m = await afterFirst();
    await step(m, RFC7677.serverFirst);
    await expect(step(m, 'e=invalid-proof')).rejects.toThrow(/server error: invalid-proof/);
  });

  it('verify() throws before the server-final message', async () => {
    const m = await afterFirst();
    expect(() => m.verify!()).toThrow(SaslMechanismError);
    await step(m, RFC7677.serverFirst);
    expect(() => m.verify!()).toThrow(/never verified/);
  });

  it('rejects a server nonce that does not start with the client nonce', async () => {
    const m = await afterFirst();
    await expect(step(m, RFC7677.serverFirst.replace('r=rOpr', 'r=XOpr'))).rejects.toThrow(/nonce/);
  });

  it('rejects a server nonce equal to the client nonce (no server part)', async () => {
    const m = await afterFirst();
    await expect(step(m, `r=${RFC7677.nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`)).rejects.toThrow(/nonce/);
  });

  it('rejects an iteration count below the floor (default 4096, configurable)', async () => {
    const low = RFC7677.serverFirst.replace('i=4096', 'i=4095');
    await expect(step(await afterFirst(), low)).rejects.toThrow(/below the minimum 4096/);
    await expect(step(await afterFirst(RFC7677, { minIterations: 10000 }), RFC7677.serverFirst)).rejects.toThrow(
      /below the minimum 10000/,
    );
  });

  it('a lowered floor accepts small counts', async () => {
    const salt = Buffer.from('salty');
    const server = serverSide('sha256', 'pencil', salt, 1);
    const m = scramMechanism('SCRAM-SHA-256', { user: 'user', password: 'pencil' }, { clientNonce: 'cn', minIterations: 1 });
    await start(m);
    const serverFirst = `r=cnSRV,s=${salt.toString('base64')},i=1`;
    const clientFinal = await step(m, serverFirst);
    expect(await step(m, server.finish('n=user,r=cn', serverFirst, clientFinal))).toBe('');
    m.verify!();
  });

  it('rejects an absurd iteration count', async () => {
    const huge = RFC7677.serverFirst.replace('i=4096', 'i=10000001');
    await expect(step(await afterFirst(), huge)).rejects.toThrow(/above the maximum/);
    await expect(step(await afterFirst(), RFC7677.serverFirst.replace('i=4096', 'i=0'))).rejects.toThrow(/iteration/);
    await expect(step(await afterFirst(), RFC7677.serverFirst.replace('i=4096', 'i=4e4'))).rejects.toThrow(/iteration/);
  });

  it('rejects bad base64 and empty salts', async () => {
    await expect(step(await afterFirst(), RFC7677.serverFirst.replace(/s=[^,]*/, 's=W22ZaJ0S*Y7soEsUEjb6gQ=='))).rejects.toThrow(
      /salt/,
    );
    await expect(step(await afterFirst(), RFC7677.serverFirst.replace(/s=[^,]*/, 's=W22'))).rejects.toThrow(/salt/);
    await expect(step(await afterFirst(), RFC7677.serverFirst.replace(/s=[^,]*/, 's='))).rejects.toThrow(/salt/);
  });

  it('rejects malformed server-first messages and mandatory extensions', async () => {
    await expect(step(await afterFirst(), 'garbage')).rejects.toThrow(SaslMechanismError);
    await expect(step(await afterFirst(), `m=ext,${RFC7677.serverFirst}`)).rejects.toThrow(/mandatory extension/);
    await expect(step(await afterFirst(), 's=QSXCR+Q6sek8bf92,r=rOprNGfwEbeRWgbNEkqOx,i=4096')).rejects.toThrow(/malformed/);
  });

  it('refuses challenges out of order and a challenge after the final one', async () => {
    const fresh = scramMechanism('SCRAM-SHA-1', { user: 'user', password: 'pencil' });
    await expect(fresh.step(Buffer.from(RFC5802.serverFirst))).rejects.toThrow(/start\(\)/);
    const m = await runVector('SCRAM-SHA-1', RFC5802);
    await expect(m.step(Buffer.from('v=x'))).rejects.toThrow(SaslMechanismError);
  });

  it('rejects control characters in the password (SASLprep) before sending anything', () => {
    const m = scramMechanism('SCRAM-SHA-256', { user: 'user', password: 'pen\u0007cil' });
    expect(() => m.start(ctx())).toThrow(TypeError);
  });

  it('the factory needs a password and a known name', () => {
    expect(() => scramMechanism('SCRAM-SHA-256', { user: 'u' })).toThrow(TypeError);
    expect(() => scramMechanism('SCRAM-SHA-512' as ScramMechanismName, { user: 'u', password: 'p' })).toThrow(TypeError);
  });
});

describe('SCRAM channel binding', () => {
  const cbData = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
  const tls = (version: string, available: Record<string, Buffer>): SaslContext =>
    ctx({ tlsVersion: version, channelBinding: (type) => available[type] });

  async function plusExchange(name: ScramMechanismName, context: SaslContext, expectedType: string) {
    const salt = Buffer.from('NaCl-salt');
    const hash = name.includes('256') ? 'sha256' : 'sha1';
    const server = serverSide(hash, 'pencil', salt, 4096);
    const m = scramMechanism(name, { user: 'user', password: 'pencil' }, { clientNonce: 'clientnonce' });
    const first = await start(m, context);
    expect(first).toBe(`p=${expectedType},,n=user,r=clientnonce`);
    const serverFirst = `r=clientnonceSERVER,s=${salt.toString('base64')},i=4096`;
    const clientFinal = await step(m, serverFirst);
    const c = /^c=([^,]*),/.exec(clientFinal)![1]!;
    // RFC 5802 §7: c = base64(gs2-header + channel-binding data).
    expect(Buffer.from(c, 'base64').equals(Buffer.concat([Buffer.from(`p=${expectedType},,`), cbData]))).toBe(true);
    expect(await step(m, server.finish('n=user,r=clientnonce', serverFirst, clientFinal))).toBe('');
    m.verify!();
  }

  it('SCRAM-SHA-256-PLUS uses tls-exporter on TLS 1.3 (RFC 9266)', async () => {
    await plusExchange('SCRAM-SHA-256-PLUS', tls('TLSv1.3', { 'tls-exporter': cbData, 'tls-unique': Buffer.from('x') }), 'tls-exporter');
  });

  it('SCRAM-SHA-1-PLUS uses tls-unique on TLS 1.2', async () => {
    await plusExchange('SCRAM-SHA-1-PLUS', tls('TLSv1.2', { 'tls-unique': cbData, 'tls-exporter': Buffer.from('x') }), 'tls-unique');
  });

  it('-PLUS throws in start() when no channel binding is available', () => {
    const m = scramMechanism('SCRAM-SHA-256-PLUS', { user: 'user', password: 'pencil' });
    expect(() => m.start(tls('TLSv1.3', {}))).toThrow(/channel binding/);
    const onTls13WithUniqueOnly = scramMechanism('SCRAM-SHA-256-PLUS', { user: 'user', password: 'pencil' });
    expect(() => onTls13WithUniqueOnly.start(tls('TLSv1.3', { 'tls-unique': cbData }))).toThrow(/channel binding/);
    const plaintext = scramMechanism('SCRAM-SHA-1-PLUS', { user: 'user', password: 'pencil' });
    expect(() => plaintext.start(ctx({ secure: false, channelBinding: () => cbData }))).toThrow(/channel binding/);
  });

  it('non-PLUS sends "y" only when binding is possible and the known AUTH list has no -PLUS', async () => {
    const creds = { user: 'user', password: 'pencil' };
    const bindable = tls('TLSv1.3', { 'tls-exporter': cbData });
    const y = scramMechanism('SCRAM-SHA-256', creds, { clientNonce: 'n1', advertised: ['PLAIN', 'SCRAM-SHA-256'] });
    expect(await start(y, bindable)).toBe('y,,n=user,r=n1');
    // "y" is also what goes into c= (base64 of "y,,").
    const final = await step(y, 'r=n1S,s=QSXCR+Q6sek8bf92,i=4096');
    expect(final.startsWith('c=eSws,')).toBe(true);

    const serverCanBind = scramMechanism('SCRAM-SHA-256', creds, { clientNonce: 'n1', advertised: ['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS'] });
    expect(await start(serverCanBind, bindable)).toBe('n,,n=user,r=n1');
    const unknownList = scramMechanism('SCRAM-SHA-256', creds, { clientNonce: 'n1' });
    expect(await start(unknownList, bindable)).toBe('n,,n=user,r=n1');
    const noBinding = scramMechanism('SCRAM-SHA-256', creds, { clientNonce: 'n1', advertised: ['SCRAM-SHA-256'] });
    expect(await start(noBinding, tls('TLSv1.3', {}))).toBe('n,,n=user,r=n1');
  });
});
