// Where the instrumentation's CPU goes, per message: the core's send event
// (smtplib's publishSend, built only when someone subscribes) through this
// package's handlers, with no SDK (the API's no-op providers) and with the
// real SDK configured as bench/clients/smtplib-otel.js configures it
// (BatchSpanProcessor -> the SDK's InMemorySpanExporter counting and letting go of
// each batch it exports, bench/clients/smtplib-otel.js's CountingExporter; a
// PeriodicExportingMetricReader -> InMemoryMetricExporter every second). Each configuration runs in a fresh
// process; the figure is the median of 7 blocks of 20,000 events after 3
// warm-up blocks: process CPU (all threads: GC and JIT helpers included) and
// the main thread's own (/proc/thread-self/schedstat).
//
//   npm run build && node packages/otel/scripts/cost.mjs [--doc docs/otel.md]
//
// With --doc the table replaces the block between the "otel-cost" markers.
import { spawnSync } from 'node:child_process';
import dc from 'node:diagnostics_channel';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const require = createRequire(join(ROOT, 'package.json'));

const CONFIGS = [
  { id: 'event', label: "the core's send event, one empty subscriber (no instrumentation)" },
  { id: 'noop', label: 'smtplib-otel enabled, API no-op providers (the package alone)' },
  { id: 'metrics', label: 'smtplib-otel, real SDK, metrics only (2 histogram records)' },
  { id: 'traces', label: 'smtplib-otel, real SDK, traces only (1 span, 8 attributes, 1 recipient event)' },
  { id: 'both', label: 'smtplib-otel, real SDK, traces and metrics (the bench cell)' },
];

async function measure(id) {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc');
  const { publishSend, publishConnect } = await import(join(ROOT, 'packages/smtplib/dist/esm/diagnostics.js'));
  let spans;
  let shutdown = async () => {};
  let flush = async () => {};
  if (id === 'event') {
    dc.subscribe('smtplib:send', () => {});
  } else {
    const { SmtplibInstrumentation } = await import(join(ROOT, 'packages/otel/dist/index.js'));
    let tracerProvider;
    let meterProvider;
    if (id === 'noop') {
      const api = require('@opentelemetry/api');
      tracerProvider = new api.ProxyTracerProvider();
      meterProvider = { getMeter: () => api.createNoopMeter() };
    } else {
      const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
      const { CountingExporter } = await import(join(ROOT, 'bench/clients/smtplib-otel.js'));
      const { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');
      spans = new CountingExporter();
      tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(spans)] });
      const reader = new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE), exportIntervalMillis: 1000 });
      meterProvider = new MeterProvider({ readers: [reader] });
      flush = () => tracerProvider.forceFlush();
      shutdown = async () => {
        await tracerProvider.shutdown();
        await meterProvider.shutdown();
      };
    }
    new SmtplibInstrumentation({ tracerProvider, meterProvider, traces: id !== 'metrics', metrics: id !== 'traces' }).enable();
  }
  const owner = {};
  publishConnect(owner, { host: '127.0.0.1', port: 25, secure: false, verified: false, greeting: { code: 220, message: 'ready' } }, performance.now(), undefined);
  const result = { accepted: ['sink@sink.example'], refused: new Map(), reply: { code: 250, message: '2.0.0 queued', enhancedStatus: '2.0.0' } };
  // Linux only; elsewhere the main-thread column reads n/a.
  const mainThreadNs = () => {
    try {
      return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
    } catch {
      return Number.NaN;
    }
  };
  const N = 20_000;
  const block = async () => {
    const c0 = process.cpuUsage();
    const t0 = mainThreadNs();
    for (let i = 0; i < N; i++) {
      publishSend(owner, 'bench@bench.example', result, performance.now() - 0.05);
      // let the SDK's promise callbacks and the metric reader's timer run, as between messages
      if (i % 200 === 199) await new Promise((resolve) => setImmediate(resolve));
    }
    const c = process.cpuUsage(c0);
    return { cpu: (c.user + c.system) / N, main: (mainThreadNs() - t0) / 1000 / N };
  };
  for (let i = 0; i < 3; i++) await block();
  const runs = [];
  for (let i = 0; i < 7; i++) runs.push(await block());
  const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
  // What one exported span keeps alive while an exporter holds it (a slow network exporter, or one that keeps them).
  let retained;
  if (spans) {
    spans.holding = true;
    spans.reset();
    await new Promise((resolve) => setTimeout(resolve, 20));
    gc();
    gc();
    const h0 = process.memoryUsage().heapUsed;
    for (let i = 0; i < 5000; i++) {
      publishSend(owner, 'bench@bench.example', result, performance.now() - 0.05);
      // the batch processor exports while the loop yields (it would drop spans past 2,048 queued)
      if (i % 200 === 199) await new Promise((resolve) => setImmediate(resolve));
    }
    await flush();
    await new Promise((resolve) => setTimeout(resolve, 20));
    gc();
    gc();
    if (id !== 'metrics') retained = (process.memoryUsage().heapUsed - h0) / 5000;
  }
  await shutdown();
  return { cpu: median(runs.map((r) => r.cpu)), main: median(runs.map((r) => r.main)), retained };
}

async function main() {
  const child = process.argv.indexOf('--child');
  if (child !== -1) {
    process.stdout.write(`RESULT ${JSON.stringify(await measure(process.argv[child + 1]))}\n`);
    return;
  }
  if (!existsSync(join(ROOT, 'packages/otel/dist/index.js'))) throw new Error('run `npm run build` first');
  const rows = [];
  for (const config of CONFIGS) {
    const run = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', config.id], { encoding: 'utf8' });
    const line = run.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) throw new Error(`${config.id}: ${run.stderr || run.stdout}`);
    rows.push({ ...config, ...JSON.parse(line.slice(7)) });
    process.stderr.write(`${config.id}: ${line}\n`);
  }
  const base = rows.find((r) => r.id === 'event');
  const fmt = (v) => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');
  const load = os.loadavg()[0].toFixed(2);
  const table = [
    '| configuration | µs per message, process CPU | µs per message, main thread | above the bare event, process CPU | heap kept per exported span |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.label} | ${fmt(r.cpu)} | ${fmt(r.main)} | ${r === base ? '' : fmt(r.cpu - base.cpu)} | ${r.retained === undefined ? '' : `${Math.round(r.retained)} B`} |`),
  ].join('\n');
  const block = [
    '<!-- otel-cost:begin (generated by `node packages/otel/scripts/cost.mjs --doc docs/otel.md`) -->',
    `Measured on ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${os.cpus().length} CPUs, load average ${load} at the end (figures carry that noise):`,
    '',
    table,
    '<!-- otel-cost:end -->',
  ].join('\n');
  process.stdout.write(`${block}\n`);
  const doc = process.argv.indexOf('--doc');
  if (doc !== -1) {
    const path = process.argv[doc + 1];
    const text = readFileSync(path, 'utf8');
    const re = /<!-- otel-cost:begin[\s\S]*?<!-- otel-cost:end -->/;
    if (!re.test(text)) throw new Error(`${path} has no otel-cost markers`);
    writeFileSync(path, text.replace(re, block));
  }
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
});
