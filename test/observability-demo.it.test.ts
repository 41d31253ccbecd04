// The demo hands the OTEL_* variables it was started with to its gateways, and their telemetry
// reaches an OTLP endpoint on the host's loopback from inside the demo's namespaces (the demo
// forwards that port into them, test/demo/observability.ts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { REPO_ROOT } from './harness/apps.js';
import { isRoot, requireRoot } from './harness/root.js';
import { loopbackOtlpPorts } from './demo/observability.js';
import { startOtlpReceiver, type OtlpReceiver } from '../gateway-core/test/telemetry-otlp-receiver.js';

test('OTLP endpoints on the host loopback are the ones the demo forwards', () => {
  assert.deepEqual(loopbackOtlpPorts({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }), [4318]);
  assert.deepEqual(loopbackOtlpPorts({
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://localhost:4317', OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://localhost:4317/v1/metrics',
  }), [4317]);
  assert.deepEqual(loopbackOtlpPorts({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector.example:4318' }), []);
  assert.deepEqual(loopbackOtlpPorts({ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' }), []);
});

let receiver: OtlpReceiver | undefined;
before(async () => {
  if (isRoot()) receiver = await startOtlpReceiver('127.0.0.1');
});
after(async () => {
  await receiver?.close();
});

test('npm run demo with OTEL_EXPORTER_OTLP_ENDPOINT on the host: both gateways\' telemetry arrives there', { timeout: 150_000 }, async (t) => {
  if (!requireRoot(t) || !receiver) return;
  const r = receiver;
  const env = {
    ...process.env,
    OTEL_EXPORTER_OTLP_ENDPOINT: r.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '200',
  };
  // No OTEL_METRIC_EXPORT_INTERVAL: the default is a minute, so the metrics that arrive in this
  // short run are the ones the gateways flush when the demo stops them.
  const demo = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'test/demo/main.ts', '--duration', '6', '--json', '--carriers', 'tbf'], {
    cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  demo.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  demo.stdout.resume();
  const code = await new Promise<number | null>((resolve) => demo.once('exit', resolve));
  assert.equal(code, 0, stderr.slice(-3000));
  assert.match(stderr, new RegExp(`OTLP: gateways export to the host's 127\\.0\\.0\\.1:${r.port}`));
  const services = new Set(r.spans.map((s) => s.service));
  assert.ok(services.has('braid-edge') && services.has('braid-cloud'), `spans from ${[...services].join(', ')}`);
  const establish = r.spans.find((s) => s.service === 'braid-edge' && s.name === 'braid.session.establish');
  assert.ok(establish);
  assert.ok(r.spans.some((s) => s.service === 'braid-cloud' && s.traceId === establish.traceId), 'one trace across the demo\'s gateways');
  for (const service of ['braid-edge', 'braid-cloud']) {
    const carriers = new Set(r.points.filter((p) => p.service === service && p.metric === 'braid.path.sent.bytes').map((p) => p.attributes['network.carrier.name']));
    assert.deepEqual([...carriers].sort(), ['lte-a', 'lte-b', 'lte-c'], `${service}: flushed metrics for every carrier`);
  }
});
