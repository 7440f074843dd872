// The example program of Python's smtplib documentation, ported: prompts for
// the envelope addresses and the message, then sends it with debug output.
// SMTP_HOST / SMTP_PORT choose the server (default: localhost:25).
import { createInterface } from 'node:readline';
import { SMTP } from 'smtplib';

const rl = createInterface({ input: process.stdin, terminal: false });
const lines = rl[Symbol.asyncIterator]();
async function prompt(text) {
  process.stdout.write(text);
  const { value, done } = await lines.next();
  return done ? '' : value.trim();
}

const fromaddr = await prompt('From: ');
const toaddrs = (await prompt('To: ')).split(/\s+/).filter(Boolean);
console.log('Enter message, end with ^D (Unix) or ^Z (Windows):');

// Add the From: and To: headers at the start!
let msg = `From: ${fromaddr}\r\nTo: ${toaddrs.join(', ')}\r\n\r\n`;
for (;;) {
  const { value: line, done } = await lines.next();
  if (done || !line) break;
  msg += line + '\r\n';
}
console.log('Message length is ' + msg.length);

const server = new SMTP({ host: process.env.SMTP_HOST ?? 'localhost', port: Number(process.env.SMTP_PORT ?? 25) });
await server.connect();
server.setDebugLevel(1);
await server.sendmail(fromaddr, toaddrs, msg);
await server.quit();
