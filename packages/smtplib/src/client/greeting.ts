// Reading the server's greeting (RFC 5321 §3.1, §4.3.1), and explaining the
// usual reason it does not come: the wrong kind of port. Plaintext sent to an
// implicit-TLS port gets silence or TLS bytes back; a TLS-only port may just
// close. The error says what happened and what to use instead.

import { SMTPConnectError, SMTPProtocolError, SMTPServerDisconnected, SMTPTimeoutError } from '../errors.js';
import type { Reply } from '../protocol/reply.js';
import type { Session } from '../session/session.js';
import { SMTP_SSL_PORT, type Timeouts } from './options.js';

/** Ports where implicit TLS is the usual mode (SMTPS, and IMAPS for a mistyped port). */
const IMPLICIT_TLS_PORTS = new Set([SMTP_SSL_PORT, 993]);

export interface GreetingContext {
  where: string;
  port: number;
  implicitTls: boolean;
  timeouts: Timeouts;
  signal?: AbortSignal | undefined;
}

/** Waits for the greeting; SMTPConnectError unless it is 220 (after a 554, QUIT is sent first). */
export async function readGreeting(session: Session, context: GreetingContext): Promise<Reply> {
  const { where, timeouts } = context;
  let greeting: Reply;
  try {
    greeting = await session.await(session.expect({ command: 'the greeting', phase: 'greeting', timeout: timeouts.greeting }), context.signal);
  } catch (error) {
    session.destroy(error as Error);
    throw explainMissingGreeting(error, context);
  }
  if (greeting.code !== 220) {
    if (greeting.code === 554 && session.isOpen) {
      // RFC 5321 §3.1: after a 554 greeting the client should send QUIT.
      await session.command('QUIT', { phase: 'quit', timeout: timeouts.quit }).catch(() => undefined);
    }
    session.close();
    throw new SMTPConnectError(greeting.code, greeting.message, `${where} refused the session: ${greeting.code} ${greeting.message}`, {
      reply: greeting,
      command: 'connect',
    });
  }
  return greeting;
}

const USE_SMTP_SSL = 'use SMTP_SSL (implicit TLS, usually port 465) for this port';

function explainMissingGreeting(error: unknown, { where, port, implicitTls, timeouts }: GreetingContext): unknown {
  if (implicitTls) {
    return error instanceof SMTPServerDisconnected
      ? new SMTPConnectError(-1, `${where} closed the connection before greeting`, undefined, { cause: error })
      : error;
  }
  const guess = { diagnosis: 'implicit-tls-expected' as const, hint: USE_SMTP_SSL };
  if (error instanceof SMTPTimeoutError) {
    // Still a timeout (phase 'greeting'), with the likely reason in the message.
    const hint = IMPLICIT_TLS_PORTS.has(port)
      ? ' The port probably expects implicit TLS: use SMTP_SSL (or SMTP on port 465).'
      : ' If this port expects implicit TLS, use SMTP_SSL; otherwise check the host and port.';
    return new SMTPTimeoutError('greeting', timeouts.greeting, `no greeting from ${where} within ${timeouts.greeting} ms.${hint}`, { cause: error, ...guess });
  }
  if (error instanceof SMTPProtocolError) {
    return new SMTPConnectError(-1, `${where} did not send an SMTP greeting (${error.message}). If it speaks TLS from the start, use SMTP_SSL or port 465`, undefined, { cause: error, ...guess });
  }
  if (error instanceof SMTPServerDisconnected) {
    return new SMTPConnectError(-1, `${where} closed the connection before greeting (a TLS-only port closes on plaintext: try SMTP_SSL)`, undefined, { cause: error, ...guess });
  }
  return error;
}
