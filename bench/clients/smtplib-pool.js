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

export async function open({ host, port, maxConnections }) {
  const { SMTPPool } = await import('smtplib');
  const pool = new SMTPPool({ host, port, tlsPolicy: 'none', maxConnections, localHostname: 'bench.local' });
  return {
    async send(msg) {
      const refused = await pool.sendmail(FROM, [TO], msg);
      const n = refused instanceof Map ? refused.size : refused ? Object.keys(refused).length : 0;
      if (n) throw new Error('recipients refused');
    },
    async close() {
      await pool.close();
    },
  };
}
