// Our client with smtplib-otel enabled and the real OpenTelemetry SDK exporting every span
// and metric to memory: what the instrumentation costs per message when it is on.
// Spans go through the BatchSpanProcessor, the processor OpenTelemetry's SDK documentation
// recommends outside of debugging (the SimpleSpanProcessor exports each span on its own as
// it ends); close() checks that every message's span reached the exporter, so a processor
// that dropped spans (its queue holds 2,048) would fail the cell instead of looking cheap.
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

export async function open(options) {
  const { SmtplibInstrumentation } = await import('../../packages/otel/dist/index.js');
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(spans)] });
  const reader = new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE), exportIntervalMillis: 1000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const instrumentation = new SmtplibInstrumentation({ tracerProvider, meterProvider }).enable();
  const session = await single.open(options);
  let sent = 0;
  let exported = 0; // transaction spans that reached the exporter, over every reset
  const countAndReset = () => {
    exported += spans.getFinishedSpans().filter((span) => span.name === 'smtp send').length;
    spans.reset();
  };
  return {
    async send(msg) {
      await session.send(msg);
      // keep memory flat over long runs: what was exported (to memory) is counted and let go
      if (++sent % 5000 === 0) countAndReset();
    },
    async close() {
      await session.close();
      await tracerProvider.forceFlush();
      countAndReset();
      instrumentation.disable();
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
      if (exported < sent) throw new Error(`smtplib-otel: ${sent} messages sent but only ${exported} transaction spans exported (spans dropped)`);
    },
  };
}
