// A 1 GB message is DKIM-signed (RSA relaxed/relaxed and Ed25519
// simple/simple at once) and sent with the sender's RSS growing by less than
// 64 MB: from a file (read twice) and from a one-shot stream (spooled to a
// temporary file). A receiver in another process stores it (sent by BDAT);
// OpenDKIM verifies both stored gigabytes, mailauth the first. (dkimpy reads
// a whole message into memory several times over: left out at this size.)
// Run by .ci/suites/55-dkim.sh: npx vitest run --project dkim-slow

import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, mkdtempSync, openSync, closeSync, rmSync, writeSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMTP, type DkimOptions, type MessageInput } from 'smtplib';
import { DOMAIN, makeKeys, verifierGate, type TestKeys } from '../dkim/verifiers.js';
import { sampleRssGrowth } from '../support/rss.js';
import { execFileSync } from 'node:child_process';

const GB = 1024 * 1024 * 1024;
const HEAD = 'From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: one gigabyte\r\nDate: Sat, 05 Dec 2026 21:00:00 +0000\r\n\r\n';
// The slow path of relaxed canonicalization on every line, and dot-stuffing on every line.
const LINE = '.a dotted line  with \t whitespace runs and trailing space   \r\n';
const gate = verifierGate();

describe.skipIf(gate.skip)('a 1 GB message, DKIM-signed in bounded memory', () => {
  let dir: string;
  let file: string;
  let keys: TestKeys;
  let sink: ChildProcess;
  let port: number;
  const stored: string[] = [];
  const report: { kind: string; seconds: number; growthMB: number; verifiedBy: string[] }[] = [];
  const waiters: ((path: string) => void)[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dkim-1gb-'));
    file = join(dir, 'message.eml');
    const fd = openSync(file, 'w');
    writeSync(fd, HEAD);
    const block = Buffer.from(LINE.repeat(Math.floor(65536 / LINE.length)));
    for (let n = 0; n < GB; n += block.length) writeSync(fd, block);
    closeSync(fd);
    keys = makeKeys();
    sink = spawn(process.execPath, [join(import.meta.dirname, 'sink.mjs'), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: sink.stdout! });
    port = await new Promise<number>((resolve) => {
      lines.on('line', (line) => {
        const [word, value] = line.split(' ');
        if (word === 'port') resolve(Number(value));
        if (word === 'stored') {
          stored.push(value!);
          waiters.splice(0).forEach((w) => w(value!));
        }
      });
    });
  }, 300_000);

  afterAll(() => {
    sink?.kill();
    keys?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const dkim = (): DkimOptions[] => [
    { domain: DOMAIN, selector: keys.rsa.selector, privateKey: keys.rsa.pem, canonicalization: 'relaxed/relaxed' },
    { domain: DOMAIN, selector: keys.ed25519.selector, privateKey: keys.ed25519.pem, canonicalization: 'simple/simple' },
  ];

  async function sendMeasured(input: MessageInput): Promise<{ growth: number; seconds: number; path: string }> {
    const smtp = await SMTP.connect({ host: '127.0.0.1', port, dkim: dkim(), timeout: 600_000 });
    const rss = sampleRssGrowth();
    const started = performance.now();
    const storedNow = new Promise<string>((resolve) => waiters.push(resolve));
    await smtp.deliver('alice@example.com', ['bob@example.org'], input);
    const growth = rss.stop();
    const seconds = (performance.now() - started) / 1000;
    await smtp.quit();
    return { growth, seconds, path: await storedNow };
  }

  function verify(path: string): { opendkim: string[]; mailauth?: string[] } {
    const out = execFileSync('/usr/sbin/opendkim', ['-x', join(keys.dir, 'opendkim.conf'), '-vvv', '-t', path], { encoding: 'utf8', maxBuffer: 1 << 24 });
    return { opendkim: [...out.matchAll(/^\s*dkim=(\w+)/gm)].map((m) => m[1]!) };
  }

  async function mailauth(path: string): Promise<string[]> {
    const { dkimVerify } = (await import('mailauth/lib/dkim/verify.js')) as { dkimVerify: (m: unknown, o: object) => Promise<{ results: { status: { result: string } }[] }> };
    const resolver = async (name: string): Promise<string[][]> => {
      const record = keys.records.get(name);
      if (record) return [[record]];
      throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    };
    const { results } = await dkimVerify(createReadStream(path), { resolver });
    return results.map((r) => r.status.result);
  }

  for (const kind of ['file (read twice)', 'one-shot stream (spooled)'] as const) {
    it(`${kind}: RSS grows by less than 64 MB, and the stored message verifies`, async () => {
      const input: MessageInput = kind === 'file (read twice)' ? { path: file } : createReadStream(file, { highWaterMark: 64 * 1024 });
      const { growth, seconds, path } = await sendMeasured(input);
      const size = statSync(path).size;
      console.log(`dkim 1 GB ${kind}: ${seconds.toFixed(1)} s, RSS growth ${(growth / 1048576).toFixed(1)} MB, stored ${size} bytes`);
      expect(size).toBeGreaterThan(GB);
      expect(growth).toBeLessThan(64 * 1024 * 1024);
      const verifiedBy = ['OpenDKIM'];
      let t = performance.now();
      expect(verify(path).opendkim).toEqual(['pass', 'pass']);
      console.log(`opendkim verified it in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      if (kind === 'file (read twice)') {
        t = performance.now();
        expect(await mailauth(path)).toEqual(['pass', 'pass']);
        console.log(`mailauth verified it in ${((performance.now() - t) / 1000).toFixed(1)} s`);
        verifiedBy.push('mailauth');
      }
      report.push({ kind, seconds, growthMB: growth / 1048576, verifiedBy });
      // `DKIM_SLOW=1 node test/dkim/report.mjs` puts this in docs/dkim.md.
      if (process.env.DKIM_SLOW_REPORT) writeFileSync(process.env.DKIM_SLOW_REPORT, JSON.stringify(report));
      rmSync(path);
    });
  }
});
