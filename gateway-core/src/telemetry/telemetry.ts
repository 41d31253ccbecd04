// OpenTelemetry for one gateway process: traces and metrics through @opentelemetry/sdk-node,
// configured by the standard OTEL_* environment variables (OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_EXPORTER_OTLP_PROTOCOL = http/protobuf | http/json | grpc, OTEL_EXPORTER_OTLP_HEADERS,
// OTEL_TRACES_SAMPLER, OTEL_RESOURCE_ATTRIBUTES, OTEL_METRIC_EXPORT_INTERVAL, ...), plus a
// Prometheus view of the same metrics for the admin endpoint's /metrics.
//
// Why the SDK is started even when no OTLP endpoint is set: spans still get ids, so the edge
// sends a real traceparent to the cloud and both logs carry the same trace_id; nothing is
// exported (a no-op span processor, no metric reader). Exporting without an endpoint would
// mean retrying against localhost:4318 forever.
//
// The SDK registers process-global providers: one Telemetry per process (shutdown() releases
// them so that tests may start another).
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  context, metrics, propagation, trace, ROOT_CONTEXT, SpanKind, SpanStatusCode,
  type Attributes, type Context, type Span, type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { detectResources, envDetector, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { NodeSDK, type NodeSDKConfiguration } from '@opentelemetry/sdk-node';
import { silentLogger, type Logger } from '../log.js';
import { EventLog, type EventInput, type GatewayEvent } from './events.js';
import { SampleHistory } from './history.js';
import { registerGatewayMetrics, type GatewayInstruments } from './metrics.js';
import { PathWatcher, RaceWatcher, type PathTransition, type RaceDecision } from './path-watch.js';
import type { RaceView } from './view.js';
import type { TelemetryView } from './view.js';

export interface TelemetrySettings {
  /** service.name; default braid-edge / braid-cloud (OTEL_SERVICE_NAME wins over the default, not over this). */
  serviceName?: string | undefined;
  /** Serve Prometheus text at the admin endpoint's /metrics. */
  prometheus: boolean;
  /** Serve the dashboard page and its feeds at the admin endpoint. */
  dashboard: boolean;
  /** Events kept in the timeline ring. */
  eventCapacity: number;
  /** How often path states are compared for up/down/recovered events. */
  pathPollMs: number;
  /** Dashboard samples: one per sampleIntervalMs, kept for historySeconds. */
  sampleIntervalMs: number;
  historySeconds: number;
}

export const DEFAULT_TELEMETRY: TelemetrySettings = {
  prometheus: true, dashboard: true, eventCapacity: 1000, pathPollMs: 250, sampleIntervalMs: 1000, historySeconds: 600,
};

export interface TelemetryOptions {
  role: 'edge' | 'cloud';
  /** Gateway id (also the resource attribute service.instance.id). */
  id: string;
  version: string;
  settings?: Partial<TelemetrySettings>;
  view: TelemetryView;
  logger?: Logger;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

export type SpanRole = 'internal' | 'client' | 'server';
const SPAN_KIND: Record<SpanRole, SpanKind> = { internal: SpanKind.INTERNAL, client: SpanKind.CLIENT, server: SpanKind.SERVER };

type SpanProcessors = NonNullable<NodeSDKConfiguration['spanProcessors']>;
const noExport: SpanProcessors[number] = {
  onStart: () => undefined,
  onEnd: () => undefined,
  forceFlush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
};

/** True when the environment asks for OTLP export of traces or metrics. */
export function otlpRequested(env: NodeJS.ProcessEnv): boolean {
  if (String(env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true') return false;
  return ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT',
    'OTEL_TRACES_EXPORTER', 'OTEL_METRICS_EXPORTER'].some((k) => (env[k] ?? '').trim() !== '');
}

const w3c = new W3CTraceContextPropagator();

/** traceparent/tracestate headers of the span in `ctx` (empty when it has none). */
export function traceHeaders(ctx: Context): Record<string, string> {
  const carrier: Record<string, string> = {};
  w3c.inject(ctx, carrier, { set: (c, k, v) => { c[k] = v; } });
  return carrier;
}

/** The remote span context carried by traceparent/tracestate headers, as a parent context. */
export function contextFromHeaders(headers: Record<string, string | string[] | undefined>): Context {
  return w3c.extract(ROOT_CONTEXT, headers, {
    get: (c, k) => c[k],
    keys: (c) => Object.keys(c),
  });
}

export class Telemetry {
  readonly events: EventLog;
  readonly history: SampleHistory;
  readonly tracer: Tracer;
  readonly settings: TelemetrySettings;
  readonly exporting: boolean;
  private readonly instruments: GatewayInstruments[] = [];
  private readonly sessionContexts = new Map<number, Context>();
  private readonly log: Logger;
  private readonly watcher: PathWatcher;
  private readonly raceWatcher: RaceWatcher;
  private readonly raceSpans = new Map<string, Span>();
  private pollTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly opts: TelemetryOptions,
    private readonly sdk: NodeSDK,
    private readonly prom: { exporter: PrometheusExporter; provider: MeterProvider } | undefined,
    exporting: boolean,
  ) {
    this.settings = { ...DEFAULT_TELEMETRY, ...opts.settings };
    this.log = (opts.logger ?? silentLogger).child({ component: 'telemetry' });
    this.exporting = exporting;
    this.events = new EventLog(this.settings.eventCapacity);
    this.history = new SampleHistory(opts.view, {
      intervalMs: this.settings.sampleIntervalMs,
      keep: Math.max(1, Math.ceil((this.settings.historySeconds * 1000) / this.settings.sampleIntervalMs)),
      multiSession: opts.role === 'cloud',
    });
    this.tracer = trace.getTracer('braid', opts.version);
    if (exporting) this.instruments.push(registerGatewayMetrics(metrics.getMeter('braid', opts.version), opts.view));
    if (prom) this.instruments.push(registerGatewayMetrics(prom.provider.getMeter('braid', opts.version), opts.view));
    if (this.settings.dashboard) this.history.start();
    this.watcher = new PathWatcher(opts.view, (t) => this.pathEvent(t));
    this.raceWatcher = new RaceWatcher(opts.view, (d) => this.raceDecision(d), (c, round, what, r) => this.raceRound(c, round, what, r));
    this.pollTimer = setInterval(() => this.pollPaths(), this.settings.pathPollMs);
    this.pollTimer.unref();
  }

  /** A race round is one span; its decisions are span events (and timeline entries). */
  private raceRound(carrier: string, round: number, what: 'start' | 'end', r: RaceView): void {
    if (what === 'start') {
      const parent = (r.sessionId !== undefined ? this.sessionContexts.get(r.sessionId) : undefined) ?? ROOT_CONTEXT;
      this.raceSpans.set(carrier, this.tracer.startSpan('braid.path.race', { attributes: { 'braid.path.name': carrier, 'braid.race.round': round } }, parent));
      return;
    }
    const span = this.raceSpans.get(carrier);
    if (!span) return;
    span.setAttribute('braid.race.phase', r.phase);
    span.end();
    this.raceSpans.delete(carrier);
  }

  private raceDecision(d: RaceDecision): void {
    this.raceSpans.get(d.carrier)?.addEvent(d.event, { 'braid.race.round': d.round });
    this.events.record({
      kind: 'path.race', sessionId: d.sessionId ?? null, path: d.carrier, message: `race ${d.carrier} round ${d.round}: ${d.event}`,
      attributes: { 'braid.race.round': d.round, 'braid.race.phase': d.phase },
    });
    for (const i of this.instruments) i.countEvent('path.race');
  }

  private pathEvent(t: PathTransition): void {
    const what = t.kind === 'path.up' ? 'up' : t.kind === 'path.down' ? 'down' : 'recovered';
    this.event({
      kind: t.kind,
      sessionId: t.sessionId,
      path: t.path,
      message: `path ${t.path} ${what}${this.opts.role === 'cloud' ? ` (edge ${t.peer})` : ''}`,
      attributes: { 'braid.path.id': t.pathId, 'braid.peer': t.peer, 'braid.path.state.previous': t.from },
    });
    const line = { session: t.sessionId, path: t.path, peer: t.peer };
    if (t.kind === 'path.down') this.log.debug(line, 'event: path down');
    else this.log.debug(line, `event: ${t.kind}`);
  }

  /** Checks path states now (tests; the watcher also runs on its own). */
  pollPaths(): void {
    this.watcher.poll();
    this.raceWatcher.poll();
  }

  static start(opts: TelemetryOptions): Telemetry {
    const env = opts.env ?? process.env;
    const settings = { ...DEFAULT_TELEMETRY, ...opts.settings };
    const exporting = otlpRequested(env);
    const defaultName = `braid-${opts.role}`;
    const base = resourceFromAttributes({
      'service.name': defaultName,
      'service.version': opts.version,
      'service.instance.id': opts.id,
      'braid.role': opts.role,
    });
    const config: Partial<NodeSDKConfiguration> = {
      resource: base,
      // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (k8s.* from the Downward API) come in through
      // the env detector and override the defaults above; an explicit config value wins over both.
      ...(settings.serviceName ? { serviceName: settings.serviceName } : {}),
      instrumentations: [],
      logRecordProcessors: [],
    };
    if (!exporting) {
      config.spanProcessors = [noExport];
      config.metricReaders = [];
    }
    // The SDK reads process.env; a caller-provided env is for otlpRequested only (tests).
    const sdk = new NodeSDK(config);
    sdk.start();
    let prom: { exporter: PrometheusExporter; provider: MeterProvider } | undefined;
    if (settings.prometheus) {
      const exporter = new PrometheusExporter({ preventServerStart: true });
      let resource: Resource = base.merge(detectResources({ detectors: [envDetector] }));
      if (settings.serviceName) resource = resource.merge(resourceFromAttributes({ 'service.name': settings.serviceName }));
      prom = { exporter, provider: new MeterProvider({ resource, readers: [exporter] }) };
    }
    const t = new Telemetry(opts, sdk, prom, exporting);
    t.log.info({
      otlp: exporting ? (env.OTEL_EXPORTER_OTLP_ENDPOINT ?? 'per-signal endpoints') : 'off (no OTEL_EXPORTER_OTLP_ENDPOINT)',
      protocol: exporting ? (env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf') : undefined,
      prometheus: settings.prometheus,
    }, 'telemetry started');
    return t;
  }

  /** Handler for GET /metrics (Prometheus text format); undefined when disabled. */
  get prometheusHandler(): ((req: IncomingMessage, res: ServerResponse) => void) | undefined {
    const p = this.prom;
    return p ? (req, res) => p.exporter.getMetricsRequestHandler(req, res) : undefined;
  }

  recordRpc(method: string, side: 'client' | 'server', seconds: number, grpcStatus: number): void {
    for (const i of this.instruments) i.recordRpc(method, side, seconds, grpcStatus);
  }

  /** Starts a span; a parent context without a span starts a new trace. */
  startSpan(name: string, attributes: Attributes, parent: Context = context.active(), kind: SpanRole = 'internal'): Span {
    return this.tracer.startSpan(name, { attributes, kind: SPAN_KIND[kind] }, parent);
  }

  /** `parent` with `span` as its current span. */
  contextOf(span: Span, parent: Context = context.active()): Context {
    return trace.setSpan(parent, span);
  }

  /** Runs fn with ctx active (log lines inside carry its trace_id/span_id). */
  run<T>(ctx: Context, fn: () => T): T {
    return context.with(ctx, fn);
  }

  /** Ends a span with an error status. */
  fail(span: Span, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    span.recordException(err instanceof Error ? err : new Error(message));
    span.setStatus({ code: SpanStatusCode.ERROR, message });
    span.end();
  }

  /** Later events of this session become spans in the trace of its establishment. */
  bindSession(sessionId: number, ctx: Context): void {
    this.sessionContexts.set(sessionId, ctx);
  }

  unbindSession(sessionId: number): void {
    this.sessionContexts.delete(sessionId);
  }

  sessionContext(sessionId: number): Context | undefined {
    return this.sessionContexts.get(sessionId);
  }

  /** Records a timeline event, counts it, and emits it as a short span (never per packet). */
  event(input: EventInput): GatewayEvent {
    const e = this.events.record(input);
    for (const i of this.instruments) i.countEvent(e.kind);
    const parent = (e.sessionId !== null ? this.sessionContexts.get(e.sessionId) : undefined) ?? ROOT_CONTEXT;
    const attrs: Attributes = { 'braid.event.kind': e.kind, ...e.attributes };
    if (e.sessionId !== null) attrs['braid.session.id'] = String(e.sessionId);
    if (e.path !== null) attrs['braid.path.name'] = e.path;
    const span = this.tracer.startSpan(e.kind, { attributes: attrs, startTime: e.time }, parent);
    span.addEvent(e.message, attrs, e.time);
    span.end(e.time);
    return e;
  }

  /**
   * Exports what is pending now (spans, and one metric collection of the current state): a
   * gateway calls it before tearing its sessions down, so the last export still shows them.
   */
  async flush(): Promise<void> {
    if (this.closed || !this.exporting) return;
    const mp = metrics.getMeterProvider() as { forceFlush?: () => Promise<void> };
    const tp = (trace.getTracerProvider() as { getDelegate?: () => { forceFlush?: () => Promise<void> } }).getDelegate?.();
    // Bounded: an unreachable collector must not hold up a gateway's stop.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([mp.forceFlush?.(), tp?.forceFlush?.()]),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, 2000); timer.unref(); }),
    ]);
    clearTimeout(timer);
  }

  /** Flushes and stops exporting; releases the process-global OpenTelemetry registrations. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.history.stop();
    if (this.pollTimer) clearInterval(this.pollTimer);
    for (const s of this.raceSpans.values()) s.end();
    this.raceSpans.clear();
    await Promise.allSettled([
      this.sdk.shutdown().catch((err: Error) => this.log.warn({ err: err.message }, 'telemetry flush failed')),
      this.prom?.provider.shutdown(),
    ]);
    trace.disable();
    metrics.disable();
    propagation.disable();
    context.disable();
  }
}
