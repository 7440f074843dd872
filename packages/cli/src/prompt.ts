// Terminal prompts: a password without echo, and the seed example's
// From / To / message dialogue.
import { openSync, closeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { ReadStream } from 'node:tty';
import { CliError, EX } from './exit-codes.js';

/** Reads a line from the terminal without echoing it. Uses /dev/tty when stdin is not one. */
export async function promptPassword(prompt: string): Promise<string> {
  let input: ReadStream;
  let fd: number | undefined;
  if (process.stdin.isTTY) {
    input = process.stdin as ReadStream;
  } else {
    try {
      fd = openSync('/dev/tty', 'r');
    } catch {
      throw new CliError('a password is needed but there is no terminal to ask on', EX.CONFIG, 'use --password-env VAR or --password-file FILE');
    }
    input = new ReadStream(fd);
  }
  process.stderr.write(prompt);
  const wasRaw = input.isRaw;
  input.setRawMode(true);
  input.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = '';
      const onData = (chunk: Buffer): void => {
        for (const ch of chunk.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            input.off('data', onData);
            process.stderr.write('\n');
            resolve(value);
            return;
          }
          if (ch === '\u0003') {
            input.off('data', onData);
            process.stderr.write('\n');
            reject(new CliError('interrupted', 130));
            return;
          }
          if (ch === '\u0004' && value === '') {
            input.off('data', onData);
            process.stderr.write('\n');
            resolve(value);
            return;
          }
          if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
          else if (ch === '\u0015') value = '';
          else if (ch >= ' ') value += ch;
        }
      };
      input.on('data', onData);
    });
  } finally {
    input.setRawMode(wasRaw);
    input.pause();
    if (fd !== undefined) {
      input.destroy();
      try {
        closeSync(fd);
      } catch {
        /* already closed by destroy() */
      }
    }
  }
}

export interface InteractiveMessage {
  from: string;
  to: string[];
  /** The text typed, lines joined with CRLF, each ending in CRLF. */
  body: string;
}

/**
 * The seed example's dialogue: "From: ", "To: ", then the message up to
 * end of input (^D). Prompts go to stdout, as in the original.
 */
export async function promptMessage(known: { from?: string | undefined; to?: string[] | undefined }): Promise<InteractiveMessage> {
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  const lines: string[] = [];
  let closed = false;
  const closedPromise = new Promise<void>((resolve) => rl.once('close', () => { closed = true; resolve(); }));
  const ask = (q: string): Promise<string> =>
    new Promise((resolve, reject) => {
      if (closed) return reject(new CliError('input ended before the message was complete', EX.NOINPUT));
      const onClose = (): void => reject(new CliError('input ended before the message was complete', EX.NOINPUT));
      rl.once('close', onClose);
      rl.question(q, (answer) => {
        rl.off('close', onClose);
        resolve(answer.trim());
      });
    });
  const from = known.from ?? (await ask('From: '));
  const to = known.to && known.to.length > 0 ? known.to : (await ask('To: ')).split(/[\s,]+/).filter(Boolean);
  process.stdout.write('Enter message, end with ^D (Unix) or ^Z (Windows):\n');
  rl.on('line', (line) => lines.push(line));
  await closedPromise;
  return { from, to, body: lines.map((l) => l + '\r\n').join('') };
}
