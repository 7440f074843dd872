// The TLS policy step of connect(): what happens between the greeting and the
// first command the caller sends. Under 'required' every way of not getting
// TLS fails closed (RFC 3207 §4, RFC 8314); 'opportunistic' goes on in
// plaintext only when STARTTLS is missing or refused, never after a failed
// handshake; 'none' does nothing.

import { SMTPHeloError, SMTPResponseException, SMTPTLSError } from '../errors.js';
import type { Capabilities } from '../protocol/capabilities.js';
import type { Reply } from '../protocol/reply.js';
import { SMTP_SSL_PORT, type TlsPolicy } from './options.js';

/** The client operations the policy step drives. */
export interface PolicySteps {
  ehlo(): Promise<Reply>;
  helo(): Promise<Reply>;
  starttls(): Promise<unknown>;
  capabilities(): Capabilities;
  /** Closes the connection (the policy failed). */
  close(): void;
  /** EHLO or LHLO. */
  ehloVerb: string;
}

export async function applyTlsPolicy(policy: TlsPolicy, where: { host: string; port: number }, steps: PolicySteps): Promise<void> {
  if (policy === 'none') return;
  const ehlo = await steps.ehlo();
  if (!ehlo.isPositive) {
    if (policy === 'required') {
      steps.close();
      throw new SMTPTLSError(`TLS is required but the server refused EHLO (${ehlo.code} ${ehlo.message}), so STARTTLS cannot be negotiated; not falling back to HELO`);
    }
    // Opportunistic: STARTTLS needs EHLO, so go on in plaintext after HELO (RFC 5321 §4.1.1.1).
    const helo = await steps.helo();
    if (!helo.isPositive) throw new SMTPHeloError(helo.code, helo.message, undefined, { reply: helo, command: 'HELO' });
    return;
  }
  if (!steps.capabilities().has('starttls')) {
    if (policy === 'required') {
      steps.close();
      throw new SMTPTLSError(
        `TLS is required but ${where.host}:${where.port} does not offer STARTTLS; refusing to continue in plaintext. ` +
          (where.port === SMTP_SSL_PORT ? '' : `If the server expects implicit TLS, use SMTP_SSL (port 465); to send in plaintext on purpose, set tlsPolicy: 'none'`),
        {
          diagnosis: 'starttls-not-offered',
          hint: `if the server expects implicit TLS, use SMTP_SSL (port 465); to send in plaintext on purpose, set tlsPolicy: 'none'`,
        },
      );
    }
    return;
  }
  try {
    await steps.starttls();
  } catch (error) {
    if (policy === 'required' || !(error instanceof SMTPResponseException)) {
      steps.close();
      if (error instanceof SMTPTLSError) throw error;
      const text = error instanceof SMTPResponseException
        ? `the server refused STARTTLS (${error.smtpCode} ${error.smtpError}) [unauthenticated plaintext reply: do not trust or show its text as fact]`
        : (error as Error).message;
      throw new SMTPTLSError(`TLS is required but ${text}; not continuing in plaintext`, {
        cause: error,
        ...(error instanceof SMTPResponseException
          ? { diagnosis: 'starttls-refused' as const, ...(error.reply ? { reply: error.reply } : {}) }
          : {}),
      });
    }
    return; // opportunistic: the server refused; stay in plaintext.
  }
  const again = await steps.ehlo();
  if (!again.isPositive) {
    // No HELO fallback after STARTTLS: a server that refuses EHLO over TLS is not one to continue with.
    steps.close();
    throw new SMTPHeloError(again.code, again.message, `the server refused ${steps.ehloVerb} after STARTTLS: ${again.code} ${again.message}`, {
      reply: again,
      command: steps.ehloVerb,
    });
  }
}
