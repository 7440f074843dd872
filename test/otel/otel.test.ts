// smtplib-otel against the real OpenTelemetry SDK (in-memory span and metric
// exporters) and real servers on loopback: smtp-server with AUTH, and an
// implicit-TLS front (node:tls) with a throw-away CA.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { context, SpanStatusCode } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SMTP, SMTP_SSL, SMTPConnectError, SMTPPool, diagnosticsChannels } from '../../packages/smtplib/src/index.js';
import { SmtplibInstrumentation } from '../../packages/otel/src/index.js';
import { message, startFaultServer, startSmtpServer } from '../pool/helpers.js';

let spans: InMemorySpanExporter;
let tracerProvider: BasicTracerProvider;
let metricExporter: InMemoryMetricExporter;
let reader: PeriodicExportingMetricReader;
let meterProvider: MeterProvider;
let instrumentation: SmtplibInstrumentation | undefined;
const closers: (() => Promise<void> | void)[] = [];

let dir: string;
let ca: string;
let key: string;
let cert: string;
beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  dir = mkdtempSync(join(tmpdir(), 'smtplib-otel-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=otel test CA');
  ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'server.ext');
  ca = readFileSync(join(dir, 'ca.pem'), 'utf8');
  key = readFileSync(join(dir, 'server.key'), 'utf8');
  cert = readFileSync(join(dir, 'server.pem'), 'utf8');
});
afterAll(() => {
  context.disable();
  rmSync(dir, { recursive: true, force: true });
});

function setUp(options: { recordAddresses?: boolean } = {}) {
  spans = new InMemorySpanExporter();
  tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 60_000 });
  meterProvider = new MeterProvider({ readers: [reader] });
  instrumentation = new SmtplibInstrumentation({ tracerProvider, meterProvider, ...options }).enable();
}

afterEach(async () => {
  instrumentation?.disable();
  instrumentation = undefined;
  for (const close of closers.splice(0)) await close();
  await tracerProvider?.shutdown();
  await meterProvider?.shutdown();
});

async function collect(): Promise<ResourceMetrics> {
  await reader.forceFlush();
  const all = metricExporter.getMetrics();
  return all[all.length - 1]!;
}

/** Data points of one metric, as { attributes, value } (sum, or histogram count). */
function points(resource: ResourceMetrics, name: string): { attributes: Record<string, unknown>; value: number }[] {
  for (const scope of resource.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name !== name) continue;
      return metric.dataPoints.map((p) => ({
        attributes: p.attributes as Record<string, unknown>,
        value: typeof p.value === 'number' ? p.value : (p.value as { count: number }).count,
      }));
    }
  }
  return [];
}

/** The sum of one histogram's values for one network.operation (one recording in these tests). */
function histogramSum(resource: ResourceMetrics, name: string, operation: string): number {
  for (const scope of resource.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name !== name) continue;
      const point = metric.dataPoints.find((p) => p.attributes['network.operation'] === operation);
      if (point) return (point.value as { sum: number }).sum;
    }
  }
  throw new Error(`no ${name} point for ${operation}`);
}

const byName = (name: string) => spans.getFinishedSpans().filter((s: ReadableSpan) => s.name === name);

describe('smtplib-otel', () => {
  it('connect, auth and send spans with status codes, a per-recipient event each, and no local part or content', async () => {
    setUp();
    const server = await startSmtpServer({ users: { user: 'pw-secret' }, rcptReply: (a) => (a.startsWith('gone') ? '550 5.1.1 no such user' : undefined) });
    closers.push(() => server.close());
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, localHostname: 'client.test' });
    await smtp.login('user', 'pw-secret', { mechanism: 'PLAIN' });
    await smtp.sendmail('alice@sender.test', ['bob@example.test', 'gone@example.test'], message('secret-body-text'));
    await smtp.quit();

    const [connect] = byName('smtp connect');
    expect(connect!.attributes).toMatchObject({ 'server.address': '127.0.0.1', 'server.port': server.port, 'url.scheme': 'smtp', 'smtp.greeting.status_code': 220 });
    const [auth] = byName('smtp auth');
    expect(auth!.attributes).toMatchObject({ 'smtp.auth.mechanism': 'PLAIN', 'smtp.status_code': 235 });
    expect(auth!.status.code).not.toBe(SpanStatusCode.ERROR);
    const [send] = byName('smtp send');
    expect(send!.attributes).toMatchObject({ 'smtp.mail_from': 'sender.test', 'smtp.recipients.accepted': 1, 'smtp.recipients.refused': 1, 'smtp.status_code': 250, 'server.port': server.port });
    expect(send!.events.map((e) => e.attributes)).toEqual([
      { 'smtp.recipient': 'example.test', 'smtp.recipient.outcome': 'accepted' },
      { 'smtp.recipient': 'example.test', 'smtp.recipient.outcome': 'refused', 'smtp.status_code': 550, 'smtp.enhanced_status_code': '5.1.1' },
    ]);
    // The spans' times come from the events: a connect takes time and ends before the send starts.
    const ms = (t: [number, number]) => t[0] * 1e3 + t[1] / 1e6;
    expect(ms(connect!.endTime)).toBeGreaterThan(ms(connect!.startTime));
    expect(ms(send!.startTime)).toBeGreaterThanOrEqual(ms(connect!.endTime) - 1);
    // Each span is exactly as long as the duration the metrics record for it
    // (start and end on one clock, to the microsecond, not Date.now()'s whole ms).
    const durations = await collect();
    for (const [span, operation] of [[connect!, 'connect'], [auth!, 'authenticate'], [send!, 'send']] as const) {
      const recorded = histogramSum(durations, 'smtp.client.operation.duration', operation);
      expect(Math.abs(ms(span.endTime) - ms(span.startTime) - recorded), operation).toBeLessThan(0.005);
    }
    const everything = JSON.stringify(spans.getFinishedSpans().map((s) => ({ a: s.attributes, e: s.events })));
    for (const leak of ['alice', 'bob', 'gone@', 'secret-body-text', 'pw-secret']) expect(everything).not.toContain(leak);
  });

  it('recordAddresses: true records whole addresses', async () => {
    setUp({ recordAddresses: true });
    const server = await startFaultServer();
    closers.push(() => server.close());
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, localHostname: 'client.test' });
    await smtp.sendmail('alice@sender.test', ['bob@example.test'], message(1));
    await smtp.quit();
    const [send] = byName('smtp send');
    expect(send!.attributes['smtp.mail_from']).toBe('alice@sender.test');
    expect(send!.events[0]!.attributes).toMatchObject({ 'smtp.recipient': 'bob@example.test' });
  });

  it('each send names its own domains (the last ones are kept, never reused for another address)', async () => {
    setUp();
    const server = await startFaultServer();
    closers.push(() => server.close());
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, localHostname: 'client.test' });
    await smtp.sendmail('alice@one.test', ['bob@two.test'], message(1));
    await smtp.sendmail('alice@one.test', ['bob@two.test', 'carol@Three.test'], message(2));
    await smtp.sendmail('dave@four.test', ['bob@two.test'], message(3));
    await smtp.quit();
    const sends = byName('smtp send');
    expect(sends.map((s) => s.attributes['smtp.mail_from'])).toEqual(['one.test', 'one.test', 'four.test']);
    expect(sends.map((s) => s.events.map((e) => e.attributes!['smtp.recipient']))).toEqual([['two.test'], ['two.test', 'three.test'], ['two.test']]);
    expect(sends[0]!.attributes).toMatchObject({ 'server.address': '127.0.0.1', 'server.port': server.port, 'url.scheme': 'smtp' });
  });

  it('TLS details on the connect span: protocol, cipher, resumed, verified', async () => {
    setUp();
    const smtpServer = await startFaultServer();
    const front = tls.createServer({ key, cert }, (secure) => {
      const upstream = net.connect(smtpServer.port, '127.0.0.1');
      secure.pipe(upstream).pipe(secure);
      secure.on('error', () => upstream.destroy());
      upstream.on('error', () => secure.destroy());
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', () => resolve()));
    closers.push(async () => {
      await new Promise<void>((resolve) => front.close(() => resolve()));
      await smtpServer.close();
    });
    const port = (front.address() as net.AddressInfo).port;
    const smtp = await SMTP_SSL.connect({ host: '127.0.0.1', port, tls: { ca }, localHostname: 'client.test' });
    await smtp.quit();
    const [connect] = byName('smtp connect');
    expect(connect!.attributes).toMatchObject({ 'url.scheme': 'smtps', 'tls.established': true, 'tls.protocol.version': '1.3', 'tls.resumed': false, 'smtp.tls.verified': true });
    expect(String(connect!.attributes['tls.cipher'])).toMatch(/^TLS_/);
  });

  it('failures end their span with ERROR and error.type, and count in operation metrics', async () => {
    setUp();
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await expect(SMTP.connect({ host: '127.0.0.1', port, localHostname: 'client.test' })).rejects.toBeInstanceOf(SMTPConnectError);
    const [connect] = byName('smtp connect');
    expect(connect!.status.code).toBe(SpanStatusCode.ERROR);
    expect(connect!.attributes).toMatchObject({ 'error.type': 'connection_refused', 'server.address': '127.0.0.1', 'server.port': port });

    const server = await startFaultServer({ fault: (c) => (c.verb === 'MAIL' ? { reply: '451 4.3.0 try later' } : undefined) });
    closers.push(() => server.close());
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, localHostname: 'client.test' });
    await expect(smtp.sendmail('a@example.test', ['b@example.test'], message(1))).rejects.toThrow();
    await smtp.quit();
    const [send] = byName('smtp send');
    expect(send!.status.code).toBe(SpanStatusCode.ERROR);
    expect(send!.attributes).toMatchObject({ 'error.type': 'SMTPSenderRefused', 'smtp.status_code': 451, 'smtp.enhanced_status_code': '4.3.0' });
    expect(send!.events[0]!.attributes).toMatchObject({ 'smtp.recipient': 'example.test', 'smtp.recipient.outcome': 'not_delivered' });

    const m = await collect();
    const ops = points(m, 'smtp.client.operation.count');
    expect(ops).toContainEqual({ attributes: expect.objectContaining({ 'network.operation': 'connect', 'error.type': 'connection_refused' }), value: 1 });
    expect(ops).toContainEqual({ attributes: expect.objectContaining({ 'network.operation': 'send', 'error.type': 'SMTPSenderRefused' }), value: 1 });
  });

  it("metrics after MailKit's and Postfix's delay split, through a pool of 2 connections", async () => {
    setUp();
    const server = await startSmtpServer({ rcptReply: (a) => (a.startsWith('gone') ? '550 5.1.1 no such user' : undefined) });
    closers.push(() => server.close());
    const pool = new SMTPPool({ host: '127.0.0.1', port: server.port, localHostname: 'client.test', maxConnections: 2, maxInFlightPerConnection: 1 });
    await Promise.all(Array.from({ length: 6 }, (_, i) => pool.sendmail('a@example.test', ['b@example.test', 'gone@example.test'], message(i))));
    await pool.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const m = await collect();
    const ops = points(m, 'smtp.client.operation.count');
    const count = (op: string) => ops.filter((p) => p.attributes['network.operation'] === op && !p.attributes['error.type']).reduce((a, p) => a + p.value, 0);
    expect(count('connect')).toBe(2);
    expect(count('send')).toBe(6);
    expect(points(m, 'smtp.client.operation.duration').reduce((a, p) => a + p.value, 0)).toBe(8);
    const delay = points(m, 'smtp.client.delay');
    expect(delay.find((p) => p.attributes['smtp.delay.phase'] === 'connection_setup')?.value).toBe(2);
    expect(delay.find((p) => p.attributes['smtp.delay.phase'] === 'transmission')?.value).toBe(6);
    // The phase alone (per server, the same durations are operation.duration's connect and send): one series per phase.
    expect(delay.map((p) => p.attributes).sort((x, y) => String(x['smtp.delay.phase']).localeCompare(String(y['smtp.delay.phase'])))).toEqual([
      { 'smtp.delay.phase': 'connection_setup' },
      { 'smtp.delay.phase': 'transmission' },
    ]);
    const recipients = points(m, 'smtp.client.recipients');
    expect(recipients.find((p) => p.attributes['smtp.recipient.outcome'] === 'accepted')?.value).toBe(6);
    expect(recipients.find((p) => p.attributes['smtp.recipient.outcome'] === 'refused')?.value).toBe(6);
    expect(points(m, 'smtp.client.connection.duration').reduce((a, p) => a + p.value, 0)).toBe(2);
  });

  it('counters are running totals read at each collection, kept across disable()/enable(), never doubled', async () => {
    setUp();
    const server = await startSmtpServer({ rcptReply: (a) => (a.startsWith('gone') ? '550 5.1.1 no such user' : undefined) });
    closers.push(() => server.close());
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, localHostname: 'client.test' });
    const sends = () => (m: ResourceMetrics) => points(m, 'smtp.client.operation.count').filter((p) => p.attributes['network.operation'] === 'send');
    const recipients = (m: ResourceMetrics, outcome: string) => points(m, 'smtp.client.recipients').find((p) => p.attributes['smtp.recipient.outcome'] === outcome)?.value;
    await smtp.sendmail('a@example.test', ['b@example.test', 'gone@example.test'], message(1));
    await smtp.sendmail('a@example.test', ['b@example.test'], message(2));
    let m = await collect();
    expect(sends()(m)).toEqual([{ attributes: { 'server.address': '127.0.0.1', 'server.port': server.port, 'url.scheme': 'smtp', 'network.operation': 'send' }, value: 2 }]);
    expect(recipients(m, 'accepted')).toBe(2);
    expect(recipients(m, 'refused')).toBe(1);
    // Off: nothing is counted. On again: the same totals go on (no second callback, no reset).
    instrumentation!.disable();
    await smtp.sendmail('a@example.test', ['b@example.test'], message(3));
    instrumentation!.enable();
    const again = await SMTP.connect({ host: '127.0.0.1', port: server.port, localHostname: 'client.test' });
    await again.sendmail('a@example.test', ['b@example.test'], message(4));
    m = await collect();
    expect(sends()(m).map((p) => p.value)).toEqual([3]);
    expect(recipients(m, 'accepted')).toBe(3);
    expect(points(m, 'smtp.client.operation.duration').filter((p) => p.attributes['network.operation'] === 'send').reduce((a, p) => a + p.value, 0)).toBe(3);
    await again.quit();
    await smtp.quit();
  });

  it('a send inside an active span is its child', async () => {
    setUp();
    const server = await startFaultServer();
    closers.push(() => server.close());
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, localHostname: 'client.test' });
    const tracer = tracerProvider.getTracer('app');
    await tracer.startActiveSpan('signup', async (parent) => {
      await smtp.sendmail('a@example.test', ['b@example.test'], message(1));
      parent.end();
    });
    await smtp.quit();
    const [signup] = byName('signup');
    const [send] = byName('smtp send');
    expect(send!.spanContext().traceId).toBe(signup!.spanContext().traceId);
    expect(send!.parentSpanContext?.spanId).toBe(signup!.spanContext().spanId);
  });

  it('disabled (or never enabled): no channel has a subscriber, so smtplib publishes nothing and no span is made', async () => {
    setUp();
    instrumentation!.disable();
    for (const channel of Object.values(diagnosticsChannels)) expect(channel.hasSubscribers).toBe(false);
    const server = await startFaultServer();
    closers.push(() => server.close());
    const smtp = await SMTP.connect({ host: '127.0.0.1', port: server.port, localHostname: 'client.test' });
    await smtp.sendmail('a@example.test', ['b@example.test'], message(1));
    await smtp.quit();
    expect(spans.getFinishedSpans()).toHaveLength(0);
    instrumentation!.enable();
    expect(diagnosticsChannels.send.hasSubscribers).toBe(true);
  });
});
