// Bounds: memory while a server floods an endless reply (G1/G2) or drips
// bytes (H2), and an absolute deadline for every phase that a slow drip
// cannot extend. Memory is sampled every 5 ms (after global.gc when exposed)
// and compared with the level before the connection.

import { afterEach, describe, expect, it } from 'vitest';
import { SMTP, SMTP_SSL, SMTPTimeoutError } from 'smtplib';
import { clientOptions, esmtp, hostileServer, rejection, shape, type HostileServer } from './kit.js';
import { LATE_MS } from '../support/timing.js';

let server: HostileServer | undefined;
let client: SMTP | undefined;
afterEach(async () => {
  client?.close();
  client = undefined;
  await server?.close();
  server = undefined;
});

const MB = 1024 * 1024;
const HEAP_BOUND = 32 * MB;
const RSS_BOUND = 64 * MB;
const T = 300;

interface Measure { heapGrowth: number; rssGrowth: number }

/** Runs `work` while sampling memory; returns the peak growth over the starting level. */
async function measure(work: () => Promise<unknown>): Promise<Measure> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  await new Promise((r) => setTimeout(r, 20));
  const base = process.memoryUsage();
  let heap = base.heapUsed;
  let rss = base.rss;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    heap = Math.max(heap, m.heapUsed);
    rss = Math.max(rss, m.rss);
  }, 5);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  const m = process.memoryUsage();
  return { heapGrowth: Math.max(heap, m.heapUsed) - base.heapUsed, rssGrowth: Math.max(rss, m.rss) - base.rss };
}

function report(name: string, m: Measure, extra = ''): void {
  console.log(`[bounds] ${name}: heap +${(m.heapGrowth / MB).toFixed(1)} MB, rss +${(m.rssGrowth / MB).toFixed(1)} MB${extra}`);
}

describe('bounds: memory under an endless reply and a drip', () => {
  it('G1 memory: an endless reply line (up to 256 MB offered) stays under +32 MB heap / +64 MB rss', async () => {
    let offered = 0;
    server = await hostileServer(esmtp({
      on: async (line, peer) => {
        if (line !== 'NOOP') return undefined;
        await peer.send('250 ');
        offered = await peer.flood(() => Buffer.alloc(256 * 1024, 0x41), 256 * MB);
        return '';
      },
    }));
    client = await SMTP.connect(clientOptions(server, { timeout: 5000 }));
    let error: Error & Record<string, unknown> = new Error('none') as Error & Record<string, unknown>;
    const m = await measure(async () => { error = await rejection(client!.noop()); });
    expect(shape(error)).toMatchObject({ name: 'SMTPProtocolError', code: 'ERR_SMTP_PROTOCOL' });
    await server.settled();
    report('G1 endless line', m, `, server wrote ${(offered / MB).toFixed(1)} MB before the client hung up`);
    expect(m.heapGrowth).toBeLessThan(HEAP_BOUND);
    expect(m.rssGrowth).toBeLessThan(RSS_BOUND);
    expect(offered).toBeLessThan(256 * MB);
  });

  it('G2 memory: an endless multi-line reply is cut at the 10,000-line / 1 MiB caps, under +32 MB heap', async () => {
    let offered = 0;
    server = await hostileServer(esmtp({
      on: async (line, peer) => {
        if (line !== 'NOOP') return undefined;
        offered = await peer.flood(() => Buffer.from('250-a capability line of moderate length\r\n'.repeat(2048)), 256 * MB);
        return '';
      },
    }));
    client = await SMTP.connect(clientOptions(server, { timeout: 5000 }));
    let error: Error & Record<string, unknown> = new Error('none') as Error & Record<string, unknown>;
    const m = await measure(async () => { error = await rejection(client!.noop()); });
    expect(shape(error)).toMatchObject({ name: 'SMTPProtocolError', code: 'ERR_SMTP_PROTOCOL' });
    await server.settled();
    report('G2 endless multi-line', m, `, server wrote ${(offered / MB).toFixed(1)} MB`);
    expect(m.heapGrowth).toBeLessThan(HEAP_BOUND);
    expect(m.rssGrowth).toBeLessThan(RSS_BOUND);
  });

  it('H2 memory and time: 50 parallel connections dripping a long EHLO end at the deadline, under +32 MB heap', async () => {
    server = await hostileServer(esmtp({
      on: async (line, peer) => {
        if (!line.startsWith('EHLO')) return undefined;
        await peer.drip(`250-${'x'.repeat(100_000)}\r\n`, 2);
        return '';
      },
    }));
    const clients = await Promise.all(Array.from({ length: 50 }, () => SMTP.connect(clientOptions(server!, { timeout: T }))));
    const started = performance.now();
    let errors: unknown[] = [];
    const m = await measure(async () => { errors = await Promise.all(clients.map((c) => rejection(c.ehlo()))); });
    const elapsed = performance.now() - started;
    report('H2 drip x50', m, `, all timed out after ${elapsed.toFixed(0)} ms`);
    for (const e of errors) expect(shape(e)).toMatchObject({ name: 'SMTPTimeoutError', phase: 'command', timeout: T });
    expect(elapsed).toBeLessThan(T + 700 + LATE_MS);
    expect(m.heapGrowth).toBeLessThan(HEAP_BOUND);
    for (const c of clients) expect(c.isConnected).toBe(false);
  });
});

describe('bounds: every phase has an absolute deadline a drip cannot extend', () => {
  // One byte every 40 ms of a reply that would take ~1.5 s: an idle timer would never fire.
  const DRIP = `250-${'d'.repeat(30)}\r\n250 end\r\n`;
  const cases: Array<{ label: string; phase: string; extensions?: string[]; drip: (line: string) => boolean; run: (s: HostileServer) => Promise<unknown> }> = [
    { label: 'reply to MAIL', phase: 'command', drip: (l) => l.startsWith('MAIL'), run: async (s) => (client = await SMTP.connect(clientOptions(s, { timeout: T, pipelining: false }))).sendmail('a@x.test', ['b@y.test'], 'x') },
    { label: 'AUTH 334 challenge', phase: 'command', extensions: ['AUTH LOGIN'], drip: (l) => l.startsWith('AUTH'), run: async (s) => (client = await SMTP.connect(clientOptions(s, { timeout: T }))).login('u', 'p', { mechanism: 'LOGIN' }) },
    { label: 'reply to the end of data', phase: 'data-end', drip: (l) => l === '.', run: async (s) => (client = await SMTP.connect(clientOptions(s, { timeout: T }))).sendmail('a@x.test', ['b@y.test'], 'x') },
    { label: 'reply to QUIT', phase: 'quit', drip: (l) => l === 'QUIT', run: async (s) => (client = await SMTP.connect(clientOptions(s, { timeout: T }))).quit() },
  ];
  for (const c of cases) {
    it(`H2 a drip in the ${c.phase} phase (${c.label}) ends at the ${T} ms deadline`, async () => {
      server = await hostileServer(async (peer) => {
        await peer.send('220 mx.test\r\n');
        for (;;) {
          const line = await peer.readLine();
          if (line === undefined) return;
          if (c.drip(line)) { await peer.drip(DRIP, 40); return; }
          if (line.startsWith('EHLO')) await peer.send(['mx.test', 'PIPELINING', ...(c.extensions ?? [])].map((l, i, a) => `250${i === a.length - 1 ? ' ' : '-'}${l}\r\n`).join(''));
          else if (line === 'DATA') {
            await peer.send('354 go\r\n');
            await peer.readData();
            if (c.drip('.')) { await peer.drip(DRIP, 40); return; }
            await peer.send('250 ok\r\n');
          } else await peer.send('250 ok\r\n');
        }
      });
      const start = performance.now();
      const error = await rejection(c.run(server));
      const ms = performance.now() - start;
      expect(error).toBeInstanceOf(SMTPTimeoutError);
      expect(shape(error)).toMatchObject({ name: 'SMTPTimeoutError', code: 'ERR_SMTP_TIMEOUT', phase: c.phase });
      // connect + greeting + EHLO take a few ms; the dripped reply gets exactly T.
      expect(ms).toBeLessThan(T + LATE_MS);
      expect(client!.isConnected).toBe(false);
    });
  }

  it('H2 a drip during the implicit TLS handshake ends at the tls deadline', async () => {
    server = await hostileServer((peer) => peer.drip(Buffer.from([0x16, 0x03, 0x03, 0x00, 0x40, ...Array(60).fill(0)]), 40));
    const start = performance.now();
    const error = await rejection(SMTP_SSL.connect(clientOptions(server, { timeout: T })));
    const ms = performance.now() - start;
    expect(shape(error)).toMatchObject({ name: 'SMTPTimeoutError', phase: 'tls', timeout: T });
    expect(ms).toBeLessThan(T + LATE_MS);
  });
});
