// OpenTelemetry end to end: both gateways in their network namespaces export OTLP/HTTP (JSON) to
// a real receiver started by this test on the host's loopback, reached from inside the
// namespaces through test/harness/forward.ts. One trace must hold the edge's and the cloud's
// spans of the session establishment; metric points for every carrier must arrive with the
// carrier attributes; a carrier blackout must show up as a path.down event and span.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot, requireRoot } from './harness/root.js';
import { createTopology, type Topology } from './harness/topology.js';
import { REPO_ROOT } from './harness/apps.js';
import { bridgeIntoNamespace, type Bridge } from './harness/forward.js';
import { startGateways, EDGE_ADMIN, type Gateways } from './harness/gateways.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../gateway-core/test/telemetry-otlp-receiver.js';
import { untilValue } from '../gateway-core/test/wait.js';

const CARRIERS = [
  { name: 'lte-a', rateMbit: 20, metadata: { operator: 'Telekom', mcc: '262', mnc: '01', technology: 'lte' } },
  { name: 'lte-b', rateMbit: 10, metadata: { operator: 'Vodafone', mcc: '262', mnc: '02', technology: 'nr' } },
  { name: 'lte-c', rateMbit: 5, metadata: { operator: 'O2', mcc: '262', mnc: '07', technology: 'lte' } },
];
const OTLP_NS_PORT = 4318;
const EDGE_ADMIN_API = '127.0.0.1:9466';
const CLOUD_ADMIN_API = '127.0.0.1:9467';

describe('OpenTelemetry from both gateways to an OTLP/HTTP receiver', { skip: !isRoot() && process.env.CI !== 'true' ? 'needs root (network namespaces, TUN)' : false }, () => {
  let dir: string;
  let topo: Topology;
  let gw: Gateways;
  let receiver: OtlpReceiver;
  const bridges: Bridge[] = [];
  const saved = { ...process.env };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'braid-otel-'));
    receiver = await startOtlpReceiver('127.0.0.1');
    topo = await createTopology({ carriers: CARRIERS.map(({ name, rateMbit }) => ({ name, rateMbit })) });
    for (const ns of [topo.ns.edge, topo.ns.cloud]) {
      bridges.push(await bridgeIntoNamespace(topo, ns, { hostPort: receiver.port, nsPort: OTLP_NS_PORT, dir }));
    }
    // The gateways inherit this process's environment (harness spawn): the standard variables.
    Object.assign(process.env, {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${OTLP_NS_PORT}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_METRIC_EXPORT_INTERVAL: '500',
      OTEL_BSP_SCHEDULE_DELAY: '200',
      OTEL_RESOURCE_ATTRIBUTES: 'k8s.namespace.name=braid-it,deployment.environment.name=test',
    });
    const certs = join(dir, 'certs');
    gw = await startGateways(topo, {
      dir,
      edge: {
        carriers: CARRIERS.map((c, i) => ({ name: c.name, interface: topo.iface.edgeWan(i), metadata: c.metadata })),
        admin: { grpcListen: EDGE_ADMIN_API, tls: { ca: join(certs, 'ca.pem'), cert: join(certs, 'admin.pem'), key: join(certs, 'admin.key') } },
      },
      // The cloud serves its admin API with its control-plane certificate (no admin.tls).
      cloud: { admin: { grpcListen: CLOUD_ADMIN_API } },
    });
    await gw.waitReady(30_000);
  });

  after(async () => {
    process.env = saved;
    await gw?.stop();
    for (const b of bridges) await b.close().catch(() => undefined);
    await topo?.destroy();
    await receiver?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('root is available', (t) => {
    requireRoot(t);
  });

  test('one trace holds the edge\'s and the cloud\'s spans of the session establishment', async () => {
    const find = (service: string, name: string, kind?: number): ReceivedSpan | undefined =>
      receiver.spans.find((s) => s.service === service && s.name === name && (kind === undefined || s.kind === kind));
    // OTLP span kinds: 2 server, 3 client.
    const establish = await untilValue('the edge establish span', () => find('braid-edge', 'braid.session.establish'), 20_000, 200);
    const client = await untilValue('the edge Hello client span', () => receiver.spans.find((s) => s.service === 'braid-edge' && s.kind === 3 && s.traceId === establish.traceId && !s.events.some((e) => e.name === 'exception')), 5_000, 200);
    const server = await untilValue('the cloud Hello server span', () => receiver.spans.find((s) => s.service === 'braid-cloud' && s.kind === 2 && s.traceId === establish.traceId), 20_000, 200);
    assert.equal(client.parentSpanId, establish.spanId, 'edge Hello is a child of the establishment');
    assert.equal(server.parentSpanId, client.spanId, 'cloud Hello continues the edge call (traceparent over gRPC)');
    assert.equal(server.name, 'braid.v1.SessionService/Hello');
    assert.equal(server.attributes['braid.edge.id'], 'demo-edge');
    const sessionId = server.attributes['braid.session.id'];
    assert.ok(sessionId, 'the cloud span names the session');
    assert.equal(client.attributes['braid.session.id'], sessionId);
    const cloudEstablished = await untilValue('the cloud session.established span', () => find('braid-cloud', 'session.established'), 10_000, 200);
    assert.equal(cloudEstablished.traceId, establish.traceId, 'the cloud\'s session event is in the same trace');
    for (const s of [establish, server]) {
      assert.equal(s.resource['k8s.namespace.name'], 'braid-it', 'OTEL_RESOURCE_ATTRIBUTES reach the resource');
      assert.equal(s.resource['service.version'], '0.1.0');
    }
    // The logs of both sides carry the trace: a log line leads to the trace and back.
    const line = async (file: string, msg: string) => {
      const found = (await readFile(file, 'utf8')).split('\n').filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg?: string; trace_id?: string; span_id?: string }).find((o) => o.msg === msg);
      assert.ok(found, `"${msg}" in ${file}`);
      return found;
    };
    const cloudLine = await line(gw.logs.cloud, 'session established');
    assert.equal(cloudLine.trace_id, establish.traceId);
    assert.equal(cloudLine.span_id, server.spanId);
    const edgeLine = await line(gw.logs.edge, 'edge started');
    assert.equal(edgeLine.trace_id, establish.traceId);
  });

  test('each carrier\'s S0 transport race is a span of the session trace with its decisions as span events', async () => {
    const establish = await untilValue('the edge establish span', () =>
      receiver.spans.find((s) => s.service === 'braid-edge' && s.name === 'braid.session.establish'), 10_000, 200);
    for (const c of CARRIERS) {
      const race = await untilValue(`the race span of ${c.name}`, () => receiver.spans.find((s) =>
        s.service === 'braid-edge' && s.name === 'braid.path.race' && s.attributes['braid.path.name'] === c.name), 10_000, 200);
      assert.equal(race.traceId, establish.traceId);
      assert.ok(race.events.length > 0, `${c.name}: race decisions as span events`);
    }
  });

  test('metric points for every carrier arrive from both gateways with the carrier attributes', async () => {
    for (const service of ['braid-edge', 'braid-cloud']) {
      for (const c of CARRIERS) {
        const pt = await untilValue(`${service} braid.path.sent.bytes for ${c.name}`, () => receiver.points.find((p) =>
          p.service === service && p.metric === 'braid.path.sent.bytes' && p.attributes['braid.path.name'] === c.name && (p.value ?? 0) > 0), 20_000, 200);
        assert.equal(pt.attributes['network.carrier.name'], c.metadata.operator, `${service} ${c.name}`);
        assert.equal(pt.attributes['network.carrier.mcc'], c.metadata.mcc);
        assert.equal(pt.attributes['network.carrier.mnc'], c.metadata.mnc);
        assert.equal(pt.attributes['network.connection.subtype'], c.metadata.technology);
        assert.match(String(pt.attributes['network.interface.name']), /^wan\d$/);
      }
    }
    const rtt = await untilValue('an RTT point', () => receiver.points.find((p) => p.metric === 'braid.path.rtt' && (p.value ?? 0) > 0), 10_000, 200);
    assert.ok(rtt.value! < 1000, `RTT ${rtt.value} ms`);
    await untilValue('the Hello latency histogram from both sides', () => {
      const sides = new Set(receiver.points.filter((p) => p.metric === 'braid.control.rpc.duration').map((p) => p.attributes['braid.rpc.side']));
      return sides.has('client') && sides.has('server') ? true : undefined;
    }, 10_000, 200);
  });

  test('Prometheus /metrics of the edge has the same series', async () => {
    const r = await topo.exec(topo.ns.edge, ['curl', '-sS', '--fail', '--max-time', '3', `http://${EDGE_ADMIN}/metrics`]);
    for (const c of CARRIERS) {
      assert.match(r.stdout, new RegExp(`braid_path_sent_bytes_total\\{[^}]*braid_path_name="${c.name}"[^}]*network_carrier_name="${c.metadata.operator}"`));
    }
  });

  test('a carrier blackout is a path.down event in the timeline and a span in the session trace', async () => {
    const establish = receiver.spans.find((s) => s.service === 'braid-edge' && s.name === 'braid.session.establish');
    assert.ok(establish);
    await topo.setCarrierDown(2);
    try {
      const down = await untilValue('path.down of lte-c from the edge', () =>
        receiver.spans.find((s) => s.service === 'braid-edge' && s.name === 'path.down' && s.attributes['braid.path.name'] === 'lte-c'), 20_000, 200);
      assert.equal(down.traceId, establish.traceId);
      const r = await topo.exec(topo.ns.edge, ['curl', '-sS', '--fail', '--max-time', '3', `http://${EDGE_ADMIN}/events`]);
      const events = (JSON.parse(r.stdout) as { events: { kind: string; path: string | null }[] }).events;
      assert.ok(events.some((e) => e.kind === 'session.established'));
      assert.ok(events.some((e) => e.kind === 'path.down' && e.path === 'lte-c'), JSON.stringify(events));
    } finally {
      await topo.setCarrierUp(2);
    }
    await untilValue('path.recovered of lte-c', () =>
      receiver.spans.find((s) => s.service === 'braid-edge' && s.name === 'path.recovered' && s.attributes['braid.path.name'] === 'lte-c'), 20_000, 200);
  });

  test('the braid CLI reads paths, sessions and events over the admin gRPC API of both gateways', async () => {
    const braid = (ns: string, target: string, serverName: string, ...args: string[]) => topo.exec(ns,
      [process.execPath, join(REPO_ROOT, 'gateway-core/bin/braid.mjs'), '--target', target, '--certs', gw.certsDir, '--server-name', serverName, ...args],
      { timeoutMs: 30_000 });
    const paths = await braid(topo.ns.edge, EDGE_ADMIN_API, 'braid-admin', 'paths');
    const rows = paths.stdout.trimEnd().split('\n');
    assert.match(rows[0]!, /^SESSION +PEER +PATH +CARRIER/);
    for (const c of CARRIERS) {
      assert.ok(rows.some((r) => new RegExp(` ${c.name} +${c.metadata.operator} +${c.metadata.technology} +wan\\d +(up|down) `).test(r)), paths.stdout);
    }
    const sessions = await braid(topo.ns.cloud, CLOUD_ADMIN_API, 'braid-cloud', 'sessions');
    assert.match(sessions.stdout, /^\d+ +demo-edge +\d\/3 /m);
    const events = JSON.parse((await braid(topo.ns.edge, EDGE_ADMIN_API, 'braid-admin', 'events', '--json')).stdout) as { kind: string; path: string }[];
    assert.ok(events.some((e) => e.kind === 'session.established'));
    assert.ok(events.some((e) => e.kind === 'path.down' && e.path === 'lte-c'));
  });
});
