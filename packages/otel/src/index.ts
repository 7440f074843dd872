// OpenTelemetry for smtplib, on top of its node:diagnostics_channel events.
//
// Nothing happens until enable(): smtplib publishes an event only when its
// channel has a subscriber, so an application that never enables this pays
// one property read per event. Enabled, it subscribes to five coarse
// channels (connect, auth, send, error, close; never the per-command ones)
// and turns each event into spans and measurements.
//
// Spans (kind CLIENT, tracer "smtplib-otel"), each created when its event
// arrives with the start time the event reports:
//   smtp connect   server.address, server.port, url.scheme, tls.* (protocol, cipher, resumed), smtp.tls.verified
//   smtp auth      smtp.auth.mechanism, smtp.status_code, smtp.enhanced_status_code
//   smtp send      one per message: smtp.recipients.accepted/refused, the final reply's status codes,
//                  an "smtp.recipient" event per recipient with its outcome and status codes
// A failure ends its span with status ERROR and error.type.
//
// Metrics (meter "smtplib-otel"), after MailKit's SMTP telemetry, plus
// Postfix's delay split (postconf(5) "delays=a/b/c/d": c = connection setup,
// d = transmission):
//   smtp.client.connection.duration  histogram, s     a connection's life
//   smtp.client.operation.count      counter          network.operation = connect | authenticate | send, error.type on failure
//   smtp.client.operation.duration   histogram, ms    same attributes
//   smtp.client.delay                histogram, s     smtp.delay.phase = connection_setup | transmission
//   smtp.client.recipients           counter          smtp.recipient.outcome = accepted | refused
//
// Privacy: addresses are recorded as their domain only (the local part names
// a person) unless `recordAddresses: true`; message content is never seen
// (the events carry none).

import dc from 'node:diagnostics_channel';
import {
  metrics,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Counter,
  type Histogram,
  type MeterProvider,
  type Span,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { domainOf, errorType, statusOf, tlsVersion } from './attributes.js';
import { CHANNELS, type AuthEvent, type CloseEvent, type ConnectEvent, type ErrorEvent, type SendEvent } from './events.js';

export type { AuthEvent, CloseEvent, ConnectEvent, ErrorEvent, SendEvent } from './events.js';
export { errorType, domainOf } from './attributes.js';

export interface SmtplibInstrumentationOptions {
  /** Default: the global tracer provider (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider;
  /** Default: the global meter provider (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProvider;
  /** Record whole addresses (local parts included) instead of their domain. Default false. */
  recordAddresses?: boolean;
  /** Emit spans. Default true. */
  traces?: boolean;
  /** Record metrics. Default true. */
  metrics?: boolean;
}

const NAME = 'smtplib-otel';
const VERSION = '0.1.0';

interface Instruments {
  connectionDuration: Histogram;
  operationCount: Counter;
  operationDuration: Histogram;
  delay: Histogram;
  recipients: Counter;
}

/** Where each open connection goes (from its connect event), for the attributes of later events. */
interface Peer {
  attributes: Attributes;
}

export class SmtplibInstrumentation {
  readonly #options: SmtplibInstrumentationOptions;
  #tracer: Tracer | undefined;
  #instruments: Instruments | undefined;
  #peers = new Map<number, Peer>();
  #enabled = false;
  readonly #handlers = {
    [CHANNELS.connect]: (event: unknown) => this.#onConnect(event as ConnectEvent),
    [CHANNELS.auth]: (event: unknown) => this.#onAuth(event as AuthEvent),
    [CHANNELS.send]: (event: unknown) => this.#onSend(event as SendEvent),
    [CHANNELS.error]: (event: unknown) => this.#onError(event as ErrorEvent),
    [CHANNELS.close]: (event: unknown) => this.#onClose(event as CloseEvent),
  };

  constructor(options: SmtplibInstrumentationOptions = {}) {
    this.#options = { ...options };
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  /** Subscribes to smtplib's channels. Idempotent. */
  enable(): this {
    if (this.#enabled) return this;
    this.#enabled = true;
    if (this.#options.traces !== false) {
      this.#tracer = (this.#options.tracerProvider ?? trace.getTracerProvider()).getTracer(NAME, VERSION);
    }
    if (this.#options.metrics !== false) {
      const meter = (this.#options.meterProvider ?? metrics.getMeterProvider()).getMeter(NAME, VERSION);
      this.#instruments = {
        connectionDuration: meter.createHistogram('smtp.client.connection.duration', { unit: 's', description: 'How long each SMTP connection lived' }),
        operationCount: meter.createCounter('smtp.client.operation.count', { unit: '{operation}', description: 'SMTP operations (connect, authenticate, send)' }),
        operationDuration: meter.createHistogram('smtp.client.operation.duration', { unit: 'ms', description: 'Duration of SMTP operations' }),
        delay: meter.createHistogram('smtp.client.delay', { unit: 's', description: "Postfix's delay split: connection setup (c) and transmission (d)" }),
        recipients: meter.createCounter('smtp.client.recipients', { unit: '{recipient}', description: 'Recipients by outcome' }),
      };
    }
    for (const [name, handler] of Object.entries(this.#handlers)) dc.subscribe(name, handler);
    return this;
  }

  /** Unsubscribes; smtplib goes back to publishing nothing. */
  disable(): this {
    if (!this.#enabled) return this;
    this.#enabled = false;
    for (const [name, handler] of Object.entries(this.#handlers)) dc.unsubscribe(name, handler);
    this.#peers.clear();
    return this;
  }

  // --- events ---------------------------------------------------------------

  #address(address: string): string {
    return this.#options.recordAddresses ? address : domainOf(address);
  }

  #peer(connectionId: number | undefined): Attributes {
    return (connectionId !== undefined && this.#peers.get(connectionId)?.attributes) || {};
  }

  #span(name: string, durationMs: number, attributes: Attributes): Span | undefined {
    if (!this.#tracer) return undefined;
    const startTime = performance.timeOrigin + performance.now() - durationMs;
    return this.#tracer.startSpan(name, { kind: SpanKind.CLIENT, startTime, attributes });
  }

  #operation(operation: 'connect' | 'authenticate' | 'send', durationMs: number, attributes: Attributes, error?: unknown): void {
    const i = this.#instruments;
    if (!i) return;
    const attrs: Attributes = { ...attributes, 'network.operation': operation };
    if (error !== undefined) attrs['error.type'] = errorType(error);
    i.operationCount.add(1, attrs);
    i.operationDuration.record(durationMs, attrs);
  }

  #fail(span: Span | undefined, error: unknown): void {
    if (!span) return;
    span.setAttribute('error.type', errorType(error));
    const { code, enhanced } = statusOf(error);
    if (code !== undefined) span.setAttribute('smtp.status_code', code);
    if (enhanced !== undefined) span.setAttribute('smtp.enhanced_status_code', enhanced);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    span.end();
  }

  #onConnect(event: ConnectEvent): void {
    const peer: Attributes = event.path
      ? { 'server.address': event.path, 'network.transport': 'unix' }
      : { 'server.address': event.host, 'server.port': event.port };
    peer['url.scheme'] = event.tls ? 'smtps' : 'smtp';
    this.#peers.set(event.connectionId, { attributes: peer });
    const attributes: Attributes = { ...peer, 'smtp.greeting.status_code': event.greeting.code };
    if (event.tls) {
      attributes['tls.established'] = true;
      const version = tlsVersion(event.tls.protocol);
      if (version) attributes['tls.protocol.version'] = version;
      if (event.tls.cipher) attributes['tls.cipher'] = event.tls.cipher;
      attributes['tls.resumed'] = event.tls.resumed;
      attributes['smtp.tls.verified'] = event.tls.authorized;
    }
    this.#span('smtp connect', event.durationMs, attributes)?.end();
    this.#operation('connect', event.durationMs, peer);
    this.#instruments?.delay.record(event.durationMs / 1000, { ...peer, 'smtp.delay.phase': 'connection_setup' });
  }

  #onAuth(event: AuthEvent): void {
    const peer = this.#peer(event.connectionId);
    const attributes: Attributes = { ...peer, 'smtp.auth.mechanism': event.mechanism };
    if (event.code > 0) attributes['smtp.status_code'] = event.code;
    if (event.enhancedStatus) attributes['smtp.enhanced_status_code'] = event.enhancedStatus;
    const span = this.#span('smtp auth', event.durationMs, attributes);
    if (event.error) this.#fail(span, event.error);
    else span?.end();
    this.#operation('authenticate', event.durationMs, peer, event.error);
  }

  #onSend(event: SendEvent): void {
    const peer = this.#peer(event.connectionId);
    const span = this.#span('smtp send', event.durationMs, {
      ...peer,
      'smtp.mail_from': this.#address(event.from),
      'smtp.recipients.accepted': event.accepted.length,
      'smtp.recipients.refused': event.refused.length,
      'smtp.status_code': event.code,
      ...(event.enhancedStatus ? { 'smtp.enhanced_status_code': event.enhancedStatus } : {}),
    });
    if (span) {
      for (const address of event.accepted) {
        span.addEvent('smtp.recipient', { 'smtp.recipient': this.#address(address), 'smtp.recipient.outcome': 'accepted' });
      }
      for (const r of event.refusedReplies) {
        span.addEvent('smtp.recipient', {
          'smtp.recipient': this.#address(r.address),
          'smtp.recipient.outcome': 'refused',
          'smtp.status_code': r.code,
          ...(r.enhancedStatus ? { 'smtp.enhanced_status_code': r.enhancedStatus } : {}),
        });
      }
      span.end();
    }
    this.#operation('send', event.durationMs, peer);
    const i = this.#instruments;
    if (i) {
      i.delay.record(event.durationMs / 1000, { ...peer, 'smtp.delay.phase': 'transmission' });
      if (event.accepted.length) i.recipients.add(event.accepted.length, { ...peer, 'smtp.recipient.outcome': 'accepted' });
      if (event.refused.length) i.recipients.add(event.refused.length, { ...peer, 'smtp.recipient.outcome': 'refused' });
    }
  }

  #onError(event: ErrorEvent): void {
    if (event.scope === 'connection') return; // the operation that was under way reports it
    const durationMs = event.durationMs ?? 0;
    if (event.scope === 'connect') {
      const peer: Attributes = { 'server.address': event.host ?? '' };
      if (event.port) peer['server.port'] = event.port;
      this.#fail(this.#span('smtp connect', durationMs, peer), event.error);
      this.#operation('connect', durationMs, peer, event.error);
      return;
    }
    const peer = this.#peer(event.connectionId);
    const attributes: Attributes = { ...peer };
    if (event.from !== undefined) attributes['smtp.mail_from'] = this.#address(event.from);
    const span = this.#span('smtp send', durationMs, attributes);
    if (span && event.to) {
      const refused = (event.error as { recipients?: Iterable<[string, { code: number; enhancedStatus?: string }]> }).recipients;
      const replies = new Map(refused && typeof refused[Symbol.iterator] === 'function' ? [...refused] : []);
      for (const address of event.to) {
        const reply = replies.get(address);
        span.addEvent('smtp.recipient', {
          'smtp.recipient': this.#address(address),
          'smtp.recipient.outcome': reply ? 'refused' : 'not_delivered',
          ...(reply ? { 'smtp.status_code': reply.code } : {}),
          ...(reply?.enhancedStatus ? { 'smtp.enhanced_status_code': reply.enhancedStatus } : {}),
        });
      }
    }
    this.#fail(span, event.error);
    this.#operation('send', durationMs, peer, event.error);
  }

  #onClose(event: CloseEvent): void {
    const peer = this.#peer(event.connectionId);
    this.#peers.delete(event.connectionId);
    this.#instruments?.connectionDuration.record(event.durationMs / 1000, peer);
  }
}

/** `enable()`s a new SmtplibInstrumentation and returns it. */
export function instrumentSmtplib(options?: SmtplibInstrumentationOptions): SmtplibInstrumentation {
  return new SmtplibInstrumentation(options).enable();
}
