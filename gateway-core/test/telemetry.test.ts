// Telemetry in one process: the event ring, path transitions, and the real OpenTelemetry SDK
// exporting to a real OTLP/HTTP (JSON) receiver, plus /metrics, /events and /feed of the admin
// endpoint. The two-gateway trace is in test/observability.it.test.ts.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startAdminServer, type AdminServer } from '../src/admin/http.js';
import { traceMixin } from '../src/log.js';
import type { PathStatus } from '../src/session/session.js';
import { EventLog } from '../src/telemetry/events.js';
import { METRIC } from '../src/telemetry/metrics.js';
import { bucketCounts } from './bucket-counts.js';
import { PathWatcher, RaceWatcher, type PathTransition, type RaceDecision } from '../src/telemetry/path-watch.js';
import { Telemetry, contextFromHeaders, otlpRequested, traceHeaders } from '../src/telemetry/telemetry.js';
import type { RaceView, SessionView, TelemetryView } from '../src/telemetry/view.js';
import { startOtlpReceiver, type OtlpReceiver } from './telemetry-otlp-receiver.js';
import { poll } from './wait.js';


function path(id: number, name: string, state: PathStatus['state'], over: Partial<PathStatus> = {}): PathStatus {
  return {
    id, name, state, transport: 'udp', txBytes: 1000 * (id + 1), rxBytes: 500, txPackets: 10, rxPackets: 5, txDataBytes: 900, rxDataBytes: 400,
    rttMs: 20 + id, minRttMs: 18, rateMbps: 5, inflightBytes: 0, sendErrors: 0, ...over,
  };
}

function fakeView(state: { sessions: SessionView[] }): TelemetryView {
  return {
    sessions: () => state.sessions,
    drops: () => ({ 'bad-tag': 3, replayed: 1 }),
    tunnel: () => ({ rxPackets: 1, txPackets: 2, rxBytes: 3, txBytes: 4 }),
  };
}

const CARRIERS = [
  { name: 'lte-a', interface: 'wan0', operator: 'Telekom', mcc: '262', mnc: '01', technology: 'lte' },
  { name: 'lte-b', interface: 'wan1', operator: 'Vodafone', mcc: '262', mnc: '02', technology: 'nr' },
];

describe('event ring', () => {
  test('keeps the newest events up to its capacity, in order, with increasing seq', () => {
    const log = new EventLog(3);
    for (let i = 0; i < 5; i++) log.record({ kind: 'path.up', message: `e${i}`, path: 'a' });
    assert.equal(log.size, 3);
    assert.deepEqual(log.list().map((e) => e.message), ['e2', 'e3', 'e4']);
    assert.deepEqual(log.list(4).map((e) => e.seq), [5]);
    assert.deepEqual(log.list(0, 1).map((e) => e.message), ['e4']);
  });

  test('subscribers see each new event; unsubscribe stops it', () => {
    const log = new EventLog(10);
    const seen: string[] = [];
    const off = log.subscribe((e) => seen.push(e.message));
    log.record({ kind: 'session.established', message: 'one', sessionId: 7 });
    off();
    log.record({ kind: 'session.ended', message: 'two' });
    assert.deepEqual(seen, ['one']);
  });

  test('a capacity below 1 is refused', () => {
    assert.throws(() => new EventLog(0), /positive integer/);
  });
});

describe('path watcher', () => {
  test('reports up, down and recovered once each, not repeated states', () => {
    const st = { sessions: [{ id: 1, peer: 'cloud', paths: [path(0, 'a', 'probing')], carriers: [], reorder: null }] as SessionView[] };
    const seen: PathTransition[] = [];
    const w = new PathWatcher(fakeView(st), (t) => seen.push(t));
    w.poll();
    const set = (s: PathStatus['state']) => { st.sessions[0]!.paths = [path(0, 'a', s)]; w.poll(); };
    set('up');
    set('up');
    set('down');
    set('down');
    set('up');
    assert.deepEqual(seen.map((t) => t.kind), ['path.up', 'path.down', 'path.recovered']);
    assert.equal(seen[1]!.path, 'a');
  });
});

describe('race watcher', () => {
  test('each new S0 decision once; a round starts, and ends when the race settles or a new round begins', () => {
    const race: RaceView = { carrier: 'lte-a', round: 1, phase: 'racing', events: [{ atMs: 0, round: 1, event: 'udp started' }], sessionId: 9 };
    const view: TelemetryView = { ...fakeView({ sessions: [] }), races: () => [race] };
    const decisions: RaceDecision[] = [];
    const rounds: string[] = [];
    const w = new RaceWatcher(view, (d) => decisions.push(d), (c, r, what) => rounds.push(`${c} ${r} ${what}`));
    w.poll();
    w.poll();
    race.events = [...race.events, { atMs: 40, round: 1, event: 'udp won' }];
    race.phase = 'connected';
    w.poll();
    race.round = 2;
    race.phase = 'racing';
    race.events = [...race.events, { atMs: 900, round: 2, event: 're-racing: abnormal' }];
    w.poll();
    assert.deepEqual(decisions.map((d) => d.event), ['udp started', 'udp won', 're-racing: abnormal']);
    assert.equal(decisions[0]!.sessionId, 9);
    assert.deepEqual(rounds, ['lte-a 1 start', 'lte-a 1 end', 'lte-a 2 start']);
  });
});

describe('trace context headers', () => {
  test('a traceparent survives inject and extract', async () => {
    const headers = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
    const ctx = contextFromHeaders(headers);
    assert.deepEqual(traceHeaders(ctx), headers);
    assert.deepEqual(traceHeaders(contextFromHeaders({})), {});
  });

  test('OTLP export is on only when the environment asks for it', () => {
    assert.equal(otlpRequested({}), false);
    assert.equal(otlpRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x:4318' }), true);
    assert.equal(otlpRequested({ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://x:4318/v1/metrics' }), true);
    assert.equal(otlpRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x:4318', OTEL_SDK_DISABLED: 'true' }), false);
  });
});


describe('OpenTelemetry SDK to a real OTLP/HTTP JSON receiver', () => {
  let receiver: OtlpReceiver;
  let tm: Telemetry;
  let admin: AdminServer;
  const st = {
    sessions: [{ id: 42, peer: '198.18.0.1:7443', paths: [path(0, 'lte-a', 'up'), path(1, 'lte-b', 'up')], carriers: CARRIERS, reorder: {
      delivered: 10, deliveredLate: 1, skipped: 2, heldNow: 0, heldBytes: 0,
      delayCounts: bucketCounts({ '0.5': 7, '5': 2, overflow: 1 }),
      spreadUs: 61_500, spreadCounts: bucketCounts({ '0.5': 3, '60': 5, '65': 20 }),
    }, redundantCopies: { s2: 3, s4: 40 },
    relay: { active: 2, opened: 5, resets: { refused: 1 }, bytesSent: 9000, bytesResent: 120, bytesReceived: 4000 } }] as SessionView[],
  };
  const get = async (p: string) => {
    const r = await fetch(`http://127.0.0.1:${admin.port}${p}`);
    return { status: r.status, type: r.headers.get('content-type') ?? '', text: await r.text() };
  };

  before(async () => {
    receiver = await startOtlpReceiver();
    Object.assign(process.env, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-braid-test=yes',
      OTEL_METRIC_EXPORT_INTERVAL: '300',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_RESOURCE_ATTRIBUTES: 'k8s.pod.name=edge-0,k8s.namespace.name=braid',
    });
    tm = Telemetry.start({ role: 'edge', id: 'edge-1', version: '9.9.9', view: fakeView(st), settings: { pathPollMs: 20, sampleIntervalMs: 50 } });
    admin = await startAdminServer('127.0.0.1', 0, {
      status: () => ({ role: 'edge' }), ready: () => true, started: () => true,
      telemetry: { prometheus: tm.prometheusHandler, events: tm.events, history: tm.history, dashboard: true },
    });
  });

  after(async () => {
    await admin?.close();
    await tm?.shutdown();
    await receiver?.close();
  });

  test('metric points for every carrier arrive with the carrier attributes and the resource', async () => {
    const rtt = () => receiver.points.filter((p) => p.metric === METRIC.pathRtt);
    await poll(() => new Set(rtt().map((p) => p.attributes['braid.path.name'])).size >= 2, 10_000, 100);
    for (const [i, c] of CARRIERS.entries()) {
      const pt = rtt().find((p) => p.attributes['braid.path.name'] === c.name);
      assert.ok(pt, `an RTT point for ${c.name}`);
      assert.equal(pt.value, 20 + i);
      assert.deepEqual(
        [pt.attributes['network.carrier.name'], pt.attributes['network.carrier.mcc'], pt.attributes['network.carrier.mnc'],
          pt.attributes['network.connection.subtype'], pt.attributes['network.interface.name']],
        [c.operator, c.mcc, c.mnc, c.technology, c.interface]);
      assert.equal(pt.resource['service.name'], 'braid-edge');
      assert.equal(pt.resource['service.version'], '9.9.9');
      assert.equal(pt.resource['k8s.pod.name'], 'edge-0');
    }
    const names = new Set(receiver.points.map((p) => p.metric));
    for (const m of [METRIC.pathSentBytes, METRIC.pathUp, METRIC.sessions, METRIC.drops, METRIC.reorderSkipped, METRIC.tunnelBytes,
      METRIC.reorderDelay, METRIC.delaySpread, METRIC.delaySpreadPackets, METRIC.redundantCopies]) {
      assert.ok(names.has(m), `${m} exported; got ${[...names].join(', ')}`);
    }
    // The reorder-delay histogram is cumulative over its buckets, with +Inf holding everything.
    const le = (b: string) => receiver.points.filter((p) => p.metric === METRIC.reorderDelay && p.attributes['braid.reorder.delay.le_ms'] === b).at(-1)?.value;
    assert.equal(le('0.5'), 7);
    assert.equal(le('5'), 9);
    assert.equal(le('+Inf'), 10);
    // The delay spread: its value now (ms), and the per-packet histogram in the same buckets.
    assert.equal(receiver.points.filter((p) => p.metric === METRIC.delaySpread).at(-1)?.value, 61.5);
    const spreadLe = (b: string) => receiver.points.filter((p) => p.metric === METRIC.delaySpreadPackets && p.attributes['braid.reorder.spread.le_ms'] === b).at(-1)?.value;
    assert.equal(spreadLe('0.5'), 3);
    assert.equal(spreadLe('55'), 3);
    assert.equal(spreadLe('60'), 8);
    assert.equal(spreadLe('65'), 28);
    assert.equal(spreadLe('2000'), 28);
    assert.equal(spreadLe('+Inf'), 28);
    const copies = (k: string) => receiver.points.filter((p) => p.metric === METRIC.redundantCopies && p.attributes['braid.redundancy.kind'] === k).at(-1)?.value;
    assert.equal(copies('s2'), 3);
    assert.equal(copies('s4'), 40);
    // Split TCP: relayed connections now and opened, resets by reason, stream bytes by kind.
    const last = (m: string, k?: string, v?: string) => receiver.points.filter((p) => p.metric === m && (k === undefined || p.attributes[k] === v)).at(-1)?.value;
    assert.equal(last(METRIC.relayStreams), 2);
    assert.equal(last(METRIC.relayOpened), 5);
    assert.equal(last(METRIC.relayResets, 'braid.relay.reason', 'refused'), 1);
    assert.equal(last(METRIC.relayBytes, 'braid.relay.kind', 'sent'), 9000);
    assert.equal(last(METRIC.relayBytes, 'braid.relay.kind', 'resent'), 120);
    assert.equal(last(METRIC.relayBytes, 'braid.relay.kind', 'received'), 4000);
    assert.equal(receiver.requests.find((r) => r.path === '/v1/metrics')?.headers['x-braid-test'], 'yes', 'OTEL_EXPORTER_OTLP_HEADERS sent');
  });

  test('a path going down becomes an event, a span in the session trace, and a timeline entry', async () => {
    const root = tm.startSpan('braid.session.establish', {});
    const ctx = tm.contextOf(root);
    tm.bindSession(42, ctx);
    root.end();
    tm.pollPaths();
    st.sessions[0]!.paths = [path(0, 'lte-a', 'down'), path(1, 'lte-b', 'up')];
    tm.pollPaths();
    const ev = tm.events.list().find((e) => e.kind === 'path.down');
    assert.ok(ev, 'path.down in the timeline');
    assert.equal(ev.path, 'lte-a');
    const r = await get('/events');
    assert.equal(r.status, 200);
    assert.ok((JSON.parse(r.text) as { events: { kind: string }[] }).events.some((e) => e.kind === 'path.down'));
    const traceId = root.spanContext().traceId;
    await poll(() => receiver.spans.some((s) => s.name === 'path.down'), 5000, 100);
    const span = receiver.spans.find((s) => s.name === 'path.down');
    assert.ok(span, 'path.down exported as a span');
    assert.equal(span.traceId, traceId, 'in the trace of the session');
    assert.equal(span.parentSpanId, root.spanContext().spanId);
    assert.equal(span.attributes['braid.path.name'], 'lte-a');
  });

  test('log lines inside a span carry its trace_id and span_id', () => {
    const span = tm.startSpan('unit', {});
    const ids = tm.run(tm.contextOf(span), () => traceMixin());
    span.end();
    assert.deepEqual(ids, { trace_id: span.spanContext().traceId, span_id: span.spanContext().spanId });
    assert.deepEqual(traceMixin(), {}, 'outside any span: nothing');
  });

  test('/metrics serves Prometheus text with the carrier labels', async () => {
    tm.recordRpc('Hello', 'client', 0.012, 0);
    const r = await get('/metrics');
    assert.equal(r.status, 200);
    assert.match(r.type, /text\/plain/);
    assert.match(r.text, /braid_path_rtt\S*\{[^}]*network_carrier_name="Telekom"[^}]*\} 20/);
    assert.match(r.text, /braid_control_rpc_duration\S*_bucket\{/);
    assert.match(r.text, /braid_drops\S*\{[^}]*braid_drop_reason="bad-tag"[^}]*\} 3/);
  });

  test('/feed streams the history, the timeline and new samples as server-sent events', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      let buf = '';
      const req = http.get(`http://127.0.0.1:${admin.port}/feed`, (res) => {
        assert.equal(res.headers['content-type'], 'text/event-stream');
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          buf += d;
          if ((buf.match(/event: sample/g) ?? []).length >= 2) {
            req.destroy();
            resolve(buf);
          }
        });
      });
      req.on('error', reject);
      setTimeout(() => { req.destroy(); reject(new Error(`feed: only ${buf.length} bytes in 5 s`)); }, 5000).unref();
    });
    const hello = /event: hello\ndata: (.*)\n/.exec(text);
    assert.ok(hello);
    const h = JSON.parse(hello[1]!) as { history: { paths: { key: string }[] }[]; events: unknown[] };
    assert.ok(h.history.length > 0 && h.history[0]!.paths.some((p) => p.key === 'lte-a'));
    assert.ok(h.events.length > 0);
  });

  test('/dashboard serves the page; unknown paths list the endpoints', async () => {
    const r = await get('/dashboard');
    assert.equal(r.status, 200);
    assert.match(r.type, /text\/html/);
    assert.match(r.text, /<title>Braid/);
    const n = await get('/nope');
    assert.equal(n.status, 404);
    assert.match(n.text, /\/metrics/);
  });
});
