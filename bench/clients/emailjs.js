// Adapter for emailjs' SMTPClient. emailjs cannot send a pre-built message: it composes its own
// MIME from headers + text, so it is given the same headers and body text (composition is part of
// its cost, and its bytes on the wire differ from the other clients').
import { SMTPClient, Message } from 'emailjs';
import { FROM, TO } from '../lib/messages.js';

export const label = 'emailjs SMTPClient';
export const modes = ['awaited', 'queued'];

export async function unavailable() {
  return typeof SMTPClient === 'function' ? null : 'emailjs not found';
}

const texts = new WeakMap();
function bodyText(msg) {
  let t = texts.get(msg);
  if (t === undefined) {
    const s = msg.toString('latin1');
    t = s.slice(s.indexOf('\r\n\r\n') + 4);
    texts.set(msg, t);
  }
  return t;
}

export async function open({ host, port }) {
  const client = new SMTPClient({ host, port, ssl: false, tls: false, domain: 'bench.local', timeout: 120000 });
  return {
    send(msg) {
      const m = new Message({ from: `Bench <${FROM}>`, to: `Sink <${TO}>`, subject: 'bench message', text: bodyText(msg) });
      return client.sendAsync(m);
    },
    close() {
      return new Promise((resolve) => client.smtp.quit(() => resolve()));
    },
  };
}
