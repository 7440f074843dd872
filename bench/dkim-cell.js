// One DKIM bench cell, in its own process (so its peak RSS is its own):
//   node bench/dkim-cell.js <client> <algorithm|none> <size> <count> <host> <port>
// client: smtplib | nodemailer. Sends `count` messages of `size` ('1k' or a
// byte count) to the bench sink on one connection, one after the other, each
// signed (rsa-sha256 relaxed/relaxed, or ed25519-sha256 for smtplib), after a
// warm-up; prints RESULT {"msgsPerSec":..,"peakRssMB":..,"ms":..}.
import { generateKeyPairSync } from 'node:crypto';
import { createRequire } from 'node:module';
import { smallMessage, largeMessage, FROM, TO } from './lib/messages.js';

const require = createRequire(import.meta.url);
const [client, algorithm, size, countArg, host, portArg] = process.argv.slice(2);
const count = Number(countArg);
const port = Number(portArg);
const message = size === '1k' ? smallMessage() : largeMessage(Number(size));
const keyType = algorithm === 'ed25519-sha256' ? 'ed25519' : 'rsa';
const { privateKey } = keyType === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const dkim = { domain: 'bench.local', selector: 'bench', privateKey: pem, algorithm, canonicalization: 'relaxed/relaxed' };

let send;
let close;
if (client === 'smtplib') {
  const { SMTP } = await import('../packages/smtplib/dist/esm/index.js');
  const smtp = await SMTP.connect({ host, port, tlsPolicy: 'none', ...(algorithm === 'none' ? {} : { dkim }) });
  send = () => smtp.sendmail(FROM, [TO], message);
  close = () => smtp.quit();
} else if (client === 'nodemailer') {
  const nodemailer = require('nodemailer');
  const transport = nodemailer.createTransport({
    host, port, secure: false, ignoreTLS: true, pool: true, maxConnections: 1,
    ...(algorithm === 'none' ? {} : { dkim: { domainName: dkim.domain, keySelector: dkim.selector, privateKey: pem } }),
  });
  send = () => transport.sendMail({ envelope: { from: FROM, to: [TO] }, raw: message });
  close = async () => transport.close();
} else {
  throw new Error(`unknown client ${client}`);
}

const warmup = Math.max(1, Math.min(50, Math.floor(count / 5)));
for (let i = 0; i < warmup; i++) await send();
const started = performance.now();
for (let i = 0; i < count; i++) await send();
const ms = performance.now() - started;
await close();
const peakRssMB = process.resourceUsage().maxRSS / 1024;
console.log(`RESULT ${JSON.stringify({ msgsPerSec: (count * 1000) / ms, peakRssMB, ms, count, bytes: message.length })}`);
process.exit(0);
