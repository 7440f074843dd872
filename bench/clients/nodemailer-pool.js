// Adapter for nodemailer's pooled SMTP transport. With maxConnections 1 this is nodemailer's
// "queued" mode: all sendMail() calls are issued at once and the pool feeds them to its connection.
import nodemailer from 'nodemailer';
import { FROM, TO } from '../lib/messages.js';

export const label = 'nodemailer pool';
export const modes = ['awaited', 'queued'];

export async function unavailable() {
  return typeof nodemailer.createTransport === 'function' ? null : 'nodemailer not found';
}

export async function open({ host, port, maxConnections = 1, maxMessages }) {
  const transport = nodemailer.createTransport({
    pool: true,
    host,
    port,
    secure: false,
    ignoreTLS: true,
    name: 'bench.local',
    maxConnections,
    maxMessages: maxMessages ?? Infinity, // default 100 would reconnect every 100 messages
    logger: false,
  });
  return {
    send(msg) {
      return transport.sendMail({ envelope: { from: FROM, to: [TO] }, raw: msg });
    },
    async close() {
      transport.close();
    },
  };
}
