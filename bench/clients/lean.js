// The lean legal client: the floor for CPU per message. It speaks a correct SMTP
// transaction and nothing more: EHLO once, then per message MAIL, RCPT and either
// BDAT <n> LAST with the body (CHUNKING offered) or DATA + the dot-stuffed body +
// "." (after the 354), in as few writes as the protocol allows, and it reads every
// reply (multi-line aware, codes checked). No options, no validation, no timers,
// no events: what any client must at least do.
import net from 'node:net';
import { FROM, TO, dotStuff } from '../lib/messages.js';

export const label = 'lean legal client';
export const modes = ['awaited'];

export async function unavailable() {
  return null;
}

class Lean {
  constructor(socket) {
    this.socket = socket;
    this.buf = '';
    this.waiters = [];
    this.current = [];
    socket.setEncoding('latin1');
    socket.on('data', (d) => this.#onData(d));
  }
  #onData(d) {
    this.buf += d;
    let i;
    while ((i = this.buf.indexOf('\r\n')) >= 0) {
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      this.current.push(line);
      if (line.charCodeAt(3) === 45 /* '-' */) continue;
      const lines = this.current;
      this.current = [];
      const w = this.waiters.shift();
      if (w) w(Number(line.slice(0, 3)), lines);
    }
  }
  reply() {
    return new Promise((resolve) => this.waiters.push((code, lines) => resolve({ code, lines })));
  }
  async expect(ok) {
    const r = await this.reply();
    if (!ok(r.code)) throw new Error(`unexpected reply ${r.code}: ${r.lines.join(' / ')}`);
    return r;
  }
}

export async function open({ host, port }) {
  const socket = net.connect({ host, port });
  socket.setNoDelay(true);
  await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  const c = new Lean(socket);
  await c.expect((x) => x === 220);
  socket.write('EHLO bench.local\r\n');
  const ehlo = await c.expect((x) => x === 250);
  const chunking = ehlo.lines.some((l) => /^250[ -]CHUNKING/i.test(l));
  const envelope = `MAIL FROM:<${FROM}>\r\nRCPT TO:<${TO}>\r\n`;
  return {
    async send(msg) {
      if (chunking) {
        const replies = [c.reply(), c.reply(), c.reply()];
        socket.cork(); // one segment: envelope, BDAT LAST and the body
        socket.write(`${envelope}BDAT ${msg.length} LAST\r\n`);
        socket.write(msg);
        socket.uncork();
        const [mail, rcpt, last] = await Promise.all(replies);
        if (mail.code !== 250 || rcpt.code !== 250 || last.code !== 250) throw new Error(`refused: ${mail.code} ${rcpt.code} ${last.code}`);
      } else {
        const replies = [c.reply(), c.reply(), c.reply()];
        socket.write(`${envelope}DATA\r\n`);
        const [mail, rcpt, data] = await Promise.all(replies);
        if (mail.code !== 250 || rcpt.code !== 250 || data.code !== 354) throw new Error(`refused: ${mail.code} ${rcpt.code} ${data.code}`);
        const end = c.reply();
        socket.cork();
        socket.write(dotStuff(msg));
        socket.write('.\r\n');
        socket.uncork();
        if ((await end).code !== 250) throw new Error('end of data refused');
      }
    },
    async close() {
      const bye = c.reply();
      socket.write('QUIT\r\n');
      await bye;
      socket.end();
    },
  };
}
