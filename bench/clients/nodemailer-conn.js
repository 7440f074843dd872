// Adapter for nodemailer's low-level SMTPConnection (one message at a time on one connection).
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { FROM, TO } from '../lib/messages.js';

export const label = 'nodemailer SMTPConnection';
// SMTPConnection.send() must not be called again before the previous callback: no queued mode.
export const modes = ['awaited'];

export async function unavailable() {
  return typeof SMTPConnection === 'function' ? null : 'nodemailer/lib/smtp-connection not found';
}

export async function open({ host, port }) {
  const conn = new SMTPConnection({ host, port, secure: false, ignoreTLS: true, name: 'bench.local', logger: false });
  await new Promise((resolve, reject) => {
    conn.once('error', reject);
    conn.connect((err) => (err ? reject(err) : resolve()));
  });
  conn.on('error', () => {});
  return {
    send(msg) {
      return new Promise((resolve, reject) =>
        conn.send({ from: FROM, to: [TO] }, msg, (err, info) => (err ? reject(err) : resolve(info))),
      );
    },
    close() {
      return new Promise((resolve) => {
        conn.once('end', resolve);
        conn.quit();
      });
    },
  };
}
