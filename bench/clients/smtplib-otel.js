// Our client with smtplib-otel enabled and the real OpenTelemetry SDK exporting every span
// and metric to memory: what the instrumentation costs per message when it is on.
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import * as single from './smtplib.js';

export const label = 'smtplib (ours) + smtplib-otel, SDK exporting to memory';
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
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const reader = new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE), exportIntervalMillis: 1000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const instrumentation = new SmtplibInstrumentation({ tracerProvider, meterProvider }).enable();
  const session = await single.open(options);
  let sent = 0;
  return {
    async send(msg) {
      await session.send(msg);
      // keep memory flat over long runs: the spans were exported (to memory) already
      if (++sent % 5000 === 0) spans.reset();
    },
    async close() {
      await session.close();
      instrumentation.disable();
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}
