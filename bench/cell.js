// Runs ONE benchmark cell in its own process, so CPU time and peak RSS are the client's own.
// Usage: node bench/cell.js '<json spec>'   -> prints "RESULT <json>" on stdout.
// spec: { client, kind: 'small'|'large'|'raw', mode: 'awaited'|'queued', n, warmup,
//         host, port, ctrlPort, maxConnections, msgFile, bdat }
import { readFileSync } from 'node:fs';
import { SinkControl } from './lib/sink.js';

const spec = JSON.parse(process.argv[2]);

async function runMode(session, msg, n, mode) {
  if (n <= 0) return;
  if (mode === 'queued') {
    const all = new Array(n);
    for (let i = 0; i < n; i++) all[i] = session.send(msg);
    await Promise.all(all);
  } else {
    for (let i = 0; i < n; i++) await session.send(msg);
  }
}

async function main() {
  const msg = readFileSync(spec.msgFile);
  const ctl = await SinkControl.connect(spec.ctrlPort, spec.host);
  const out = { n: spec.n };
  if (spec.kind === 'raw') {
    const raw = await import('./clients/raw.js');
    let c0;
    const r = await raw.runRaw({
      host: spec.host, port: spec.port, n: spec.n, warmup: spec.warmup, msg, bdat: !!spec.bdat,
      beforeTimed: async () => {
        await ctl.reset();
        c0 = process.cpuUsage();
      },
    });
    const c = process.cpuUsage(c0);
    out.elapsedMs = r.elapsedMs;
    out.cpuMs = (c.user + c.system) / 1000;
    out.stats = await ctl.stats();
  } else {
    const adapter = await import(`./clients/${spec.client}.js`);
    const why = await adapter.unavailable();
    if (why) {
      out.skipped = why;
    } else {
      const session = await adapter.open({ host: spec.host, port: spec.port, maxConnections: spec.maxConnections, maxMessages: spec.maxMessages });
      if (spec.kind === 'small') {
        // warm-up on the same connection, bounded in count and time; its rate sizes the timed run
        // so that slow clients (emailjs: ~20 msg/s) keep the cell near spec.targetMs
        const tw = performance.now();
        let done = 0;
        let chunk = 5;
        while (done < spec.warmup && (done === 0 || performance.now() - tw < spec.warmupMs)) {
          const k = Math.min(chunk, spec.warmup - done);
          await runMode(session, msg, k, spec.mode);
          done += k;
          chunk *= 2;
        }
        const rate = done / Math.max(1, performance.now() - tw);
        if (spec.targetMs) out.n = spec.n = Math.max(Math.min(spec.n, Math.round(rate * spec.targetMs)), Math.min(spec.n, spec.minN));
      }
      out.baseRssKB = Math.round(process.memoryUsage().rss / 1024);
      await ctl.reset();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await runMode(session, msg, spec.n, spec.mode);
      out.elapsedMs = performance.now() - t0;
      const c = process.cpuUsage(c0);
      out.cpuMs = (c.user + c.system) / 1000;
      out.stats = await ctl.stats();
      await session.close();
    }
  }
  out.maxRssKB = process.resourceUsage().maxRSS;
  { const whole = process.cpuUsage(); out.processCpuMs = (whole.user + whole.system) / 1000; } // since the process started
  ctl.close();
  process.stdout.write('RESULT ' + JSON.stringify(out) + '\n');
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stdout.write('RESULT ' + JSON.stringify({ error: String(err?.stack || err) }) + '\n');
    process.exit(1);
  },
);
