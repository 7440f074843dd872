// Our client with smtplib-otel enabled and the real OpenTelemetry SDK exporting every span
// and metric to memory: what the instrumentation costs per message when it is on.
// Spans go through the BatchSpanProcessor, the processor OpenTelemetry's SDK documentation
// recommends outside of debugging (the SimpleSpanProcessor exports each span on its own as
// it ends); close() checks that every message's span reached the exporter, so a processor
// that dropped spans (its queue holds 2,048) would fail the cell instead of looking cheap.
// The exporter is the SDK's InMemorySpanExporter, which keeps what it is given: each batch
// it exports (512 spans, the processor's default) is counted and let go as it arrives, as
// a network exporter lets a batch go once sent. (Keeping 5,000 exported spans until a reset
// made the garbage collector copy and promote every one of them: `node --trace-gc` on the
// cell, 35,000 messages, about 200 ms of scavenges against 85-125 ms, and 3 Mark-Compacts
// against 1; `node bench/compare.js` with COMPARE_WARMUP=15000, 4 rounds, timed part
// 38.2 -> 31.3 us per message, peak RSS 126 -> 91 MB: none of it the instrumentation's.)
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import * as single from './smtplib.js';

export const label = 'smtplib (ours) + smtplib-otel, SDK (BatchSpanProcessor) exporting to memory';
export const modes = ['awaited'];

export async function unavailable() {
  const why = await single.unavailable();
  if (why) return why;
  try {
    await import('../../packages/otel/dist/index.js');
  } catch {
    return 'packages/otel/dist not built yet';
  }
  return null;
}

/**
 * The SDK's in-memory exporter, counting each exported batch's transaction spans and then
 * letting the batch go (unless `holding`: packages/otel/scripts/cost.mjs measures what a
 * held span keeps alive). Also used by that script, so both configure the SDK alike.
 */
export class CountingExporter extends InMemorySpanExporter {
  sends = 0;
  holding = false;
  export(spans, resultCallback) {
    super.export(spans, resultCallback);
    if (this.holding) return;
    for (const span of this.getFinishedSpans()) if (span.name === 'smtp send') this.sends++;
    this.reset();
  }
}

export async function open(options) {
  const { SmtplibInstrumentation } = await import('../../packages/otel/dist/index.js');
  const spans = new CountingExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(spans)] });
  const reader = new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE), exportIntervalMillis: 1000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const instrumentation = new SmtplibInstrumentation({ tracerProvider, meterProvider }).enable();
  const session = await single.open(options);
  let sent = 0;
  return {
    async send(msg) {
      await session.send(msg);
      sent++;
    },
    async close() {
      await session.close();
      await tracerProvider.forceFlush();
      const exported = spans.sends; // transaction spans that reached the exporter
      instrumentation.disable();
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
      if (exported < sent) throw new Error(`smtplib-otel: ${sent} messages sent but only ${exported} transaction spans exported (spans dropped)`);
    },
  };
}
