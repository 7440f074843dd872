// Shared helpers for the SASL mechanism tests (not a test file itself).
import { Buffer } from 'node:buffer';
import type { SaslContext, SaslMechanism } from '../../../packages/smtplib/src/auth/mechanism.js';

export function ctx(over: Partial<SaslContext> = {}): SaslContext {
  return {
    host: 'mail.example.com',
    port: 587,
    secure: true,
    tlsVersion: 'TLSv1.3',
    channelBinding: () => undefined,
    ...over,
  };
}

export const text = (bytes: Uint8Array | undefined): string | undefined =>
  bytes === undefined ? undefined : Buffer.from(bytes).toString('utf8');

export const bytes = (s: string): Uint8Array => Buffer.from(s, 'utf8');

export async function start(m: SaslMechanism, c: SaslContext = ctx()): Promise<string | undefined> {
  return text(await m.start(c));
}

export async function step(m: SaslMechanism, challenge: string): Promise<string> {
  return text(await m.step(bytes(challenge)))!;
}
