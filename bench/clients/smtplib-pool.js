// Adapter for our connection pool: `new SMTPPool({ host, port, tlsPolicy: 'none', maxConnections })`.
import { FROM, TO } from '../lib/messages.js';
import * as single from './smtplib.js';

export const label = 'smtplib SMTPPool (ours)';
export const modes = ['queued'];

export async function unavailable() {
  const why = await single.unavailable();
  if (why) return why;
  const m = await import('smtplib');
  if (typeof m.SMTPPool !== 'function') return 'the built library exports no SMTPPool yet';
  return null;
}

export async function open({ host, port, maxConnections, maxMessages }) {
  const { SMTPPool } = await import('smtplib');
  // maxMessages: retire each connection after that many messages (nodemailer's default is 100);
  // without it, no count limit, the same as nodemailer's maxMessages: Infinity
  const pool = new SMTPPool({ host, port, tlsPolicy: 'none', maxConnections, localHostname: 'bench.local', maxMessagesPerConnection: maxMessages ?? Number.MAX_SAFE_INTEGER });
  return {
    async send(msg) {
      const result = await pool.sendmail(FROM, [TO], msg);
      // PoolSendResult { accepted, refused, ... } (or a bare refused map)
      const refused = result && 'refused' in result ? result.refused : result;
      const n = refused instanceof Map ? refused.size : refused ? Object.keys(refused).length : 0;
      if (n) throw new Error('recipients refused: ' + JSON.stringify(refused));
    },
    async close() {
      await pool.close();
    },
  };
}
