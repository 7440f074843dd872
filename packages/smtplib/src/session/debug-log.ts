// The debug transcript, in smtplib's format so people who know it can read it:
//   send: 'EHLO client.example\r\n'
//   reply: '250-mail.example\r\n'
//   reply: retcode (250); Msg: 'mail.example\nPIPELINING'
// Level 2 prefixes each line with a timestamp. Secrets never reach it: AUTH
// arguments, SASL responses and challenges are replaced by "****" before a
// line is formatted (the caller passes the masked form).

import type { Reply } from '../protocol/reply.js';

export type DebugOutput = (line: string) => void;

/** How much of a message-data write is shown. */
const DATA_PREVIEW = 2048;

export const defaultDebugOutput: DebugOutput = (line) => {
  process.stderr.write(`${line}\n`);
};

export class DebugLog {
  level: number;
  output: DebugOutput;

  constructor(level = 0, output: DebugOutput = defaultDebugOutput) {
    this.level = level;
    this.output = output;
  }

  get enabled(): boolean {
    return this.level > 0;
  }

  print(text: string): void {
    if (this.level <= 0) return;
    this.output(this.level >= 2 ? `${timestamp()} ${text}` : text);
  }

  connect(where: string): void {
    this.print(`connect: ${where}`);
  }

  /** A command line as written (already masked by the caller if secret). */
  send(line: string): void {
    if (this.level > 0) this.print(`send: ${repr(`${line}\r\n`)}`);
  }

  /** Message data: shown up to a preview length. */
  data(chunks: readonly Buffer[]): void {
    if (this.level <= 0) return;
    let total = 0;
    for (const c of chunks) total += c.length;
    const shown = Buffer.concat(chunks.length === 1 ? [chunks[0]!] : chunks, total).subarray(0, DATA_PREVIEW).toString('utf8');
    this.print(`send: ${repr(shown)}${total > DATA_PREVIEW ? ` ... (${total - DATA_PREVIEW} more bytes)` : ''}`);
  }

  reply(reply: Reply, masked = false): void {
    if (this.level <= 0) return;
    reply.lines.forEach((text, i) => {
      const sep = i === reply.lines.length - 1 ? ' ' : '-';
      this.print(`reply: ${repr(`${reply.code}${sep}${masked ? '****' : text}\r\n`)}`);
    });
    this.print(`reply: retcode (${reply.code}); Msg: ${repr(masked ? '****' : reply.message)}`);
  }
}

/** Local time as smtplib prints it at level 2: HH:MM:SS.ffffff (microseconds). */
export function timestamp(epochMs = performance.timeOrigin + performance.now()): string {
  const now = new Date(Math.floor(epochMs));
  const micros = Math.floor((epochMs - Math.floor(epochMs / 1000) * 1000) * 1000);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}.${pad(Math.min(micros, 999_999), 6)}`;
}

/** A Python-like single-quoted repr with CR/LF and controls escaped. */
export function repr(text: string): string {
  const body = text.replace(/[\\'\x00-\x1f\x7f]/g, (c) => {
    switch (c) {
      case '\\': return '\\\\';
      case "'": return "\\'";
      case '\r': return '\\r';
      case '\n': return '\\n';
      case '\t': return '\\t';
      default: return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
    }
  });
  return `'${body}'`;
}
