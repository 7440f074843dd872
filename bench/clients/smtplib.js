// Adapter for our library: `import { SMTP } from 'smtplib'` (packages/smtplib, built to dist/).
import { FROM, TO } from '../lib/messages.js';

export const label = 'smtplib (ours)';
export const modes = ['awaited', 'queued'];

let mod;
async function load() {
  if (mod !== undefined) return mod;
  try {
    mod = await import('smtplib');
  } catch (e) {
    if (e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
    mod = null;
  }
  return mod;
}

export async function unavailable() {
  const m = await load();
  if (!m) return 'packages/smtplib/dist/esm/index.js not built yet';
  if (typeof m.SMTP?.connect !== 'function') return "the built library exports no SMTP.connect";
  return null;
}

function checkRefused(refused) {
  const n = refused instanceof Map ? refused.size : refused ? Object.keys(refused).length : 0;
  if (n) throw new Error('recipients refused: ' + JSON.stringify(refused instanceof Map ? [...refused] : refused));
}

export async function open({ host, port }) {
  const { SMTP } = await load();
  const smtp = await SMTP.connect({ host, port, localHostname: 'bench.local', tlsPolicy: 'none' });
  return {
    async send(msg) {
      checkRefused(await smtp.sendmail(FROM, [TO], msg));
    },
    async close() {
      await smtp.quit();
    },
  };
}
