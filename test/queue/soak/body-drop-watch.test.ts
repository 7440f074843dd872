// The crash soak tells an `unknown` from a loss inside a body apart by what the
// fault server saw after the drop: did the client's end of data arrive? These
// drive the server with a raw socket, so what the client wrote is known.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain JS module without types
import { startFaultServer } from '../../soak/fault-server.js';

interface BodyDrop {
  id: string;
  endOfData: boolean | undefined;
}

/** A server that drops inside every body (at its 3rd DATA line, or after a BDAT chunk that is not the last). */
async function dropper(chunking = false) {
  const drops: BodyDrop[] = [];
  const server = await startFaultServer({
    chunking,
    watchBodyDrops: true,
    onBodyDrop: (record: BodyDrop) => drops.push(record),
    fault: (ctx: { verb: string }) => (ctx.verb === 'DATA-LINE' || ctx.verb === 'BDAT-CHUNK' ? { drop: true } : undefined),
  });
  return { server, drops };
}

/** Connects, writes each of `writes` once the server has sent `waitFor[i]` (a reply's start), and resolves when the server closes. */
function client(port: number, steps: [string, string][]): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let seen = '';
    let next = 0;
    socket.on('data', (chunk) => {
      seen += chunk.toString('latin1');
      while (next < steps.length && seen.includes(steps[next]![0])) socket.write(steps[next++]![1]);
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve());
  });
}

const envelope: [string, string][] = [
  ['220 ', 'EHLO c\r\n'],
  ['250 SIZE', 'MAIL FROM:<a@example.test>\r\n'],
  ['2.1.0', 'RCPT TO:<x@example.test>\r\n'],
];
const body = (tag: string) => `From: a\r\nTo: x\r\nSubject: s\r\nX-Soak-Id: ${tag}\r\n\r\nline\r\n`;

async function settled(drops: BodyDrop[]): Promise<BodyDrop[]> {
  for (let i = 0; i < 100 && (drops.length === 0 || drops.some((d) => d.endOfData === undefined)); i++) await new Promise((r) => setTimeout(r, 20));
  return drops;
}

describe('fault server, watchBodyDrops', { timeout: 10_000 }, () => {
  it('a DATA body whose final dot the client had written: endOfData true', async () => {
    const { server, drops } = await dropper();
    await client(server.port, [...envelope, ['2.1.5', 'DATA\r\n'], ['354', `${body('s1')}.\r\n`]]);
    expect(await settled(drops)).toEqual([{ id: 's1', endOfData: true }]);
    expect(server.stats.messages).toBe(0);
    await server.close();
  });

  it('a DATA body cut before its final dot (the client writes no more after the close): endOfData false', async () => {
    const { server, drops } = await dropper();
    await client(server.port, [...envelope, ['2.1.5', 'DATA\r\n'], ['354', body('s2')]]);
    expect(await settled(drops)).toEqual([{ id: 's2', endOfData: false }]);
    await server.close();
  });

  it('BDAT: the LAST chunk written after the drop counts; a body that stops short of it does not', async () => {
    const first = body('s3');
    const whole = await dropper(true);
    await client(whole.server.port, [...envelope, ['2.1.5', `BDAT ${first.length}\r\n${first}BDAT 4 LAST\r\nend\n`]]);
    expect(await settled(whole.drops)).toEqual([{ id: 's3', endOfData: true }]);
    await whole.server.close();
    const cut = await dropper(true);
    await client(cut.server.port, [...envelope, ['2.1.5', `BDAT ${first.length}\r\n${first}BDAT 4 LAST\r\nen`]]);
    expect(await settled(cut.drops)).toEqual([{ id: 's3', endOfData: false }]);
    await cut.server.close();
  });
});
