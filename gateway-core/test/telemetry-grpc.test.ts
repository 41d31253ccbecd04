// OTEL_EXPORTER_OTLP_PROTOCOL=grpc works with what is installed (sdk-node brings the gRPC OTLP
// exporters): a gRPC server standing in for a collector receives Export calls for traces and
// metrics, with the OTEL_EXPORTER_OTLP_HEADERS as metadata. The payload is not decoded here
// (no OTLP .proto files in the repository); the JSON receiver in telemetry.test.ts checks
// content.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Telemetry } from '../src/telemetry/telemetry.js';
import { poll } from './wait.js';

const TRACES = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const METRICS = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';

const server = new grpc.Server();
const calls: { path: string; bytes: number; header: string }[] = [];
let tm: Telemetry;

before(async () => {
  const raw = (b: Buffer) => b;
  for (const path of [TRACES, METRICS]) {
    server.register<Buffer, Buffer>(path, (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      calls.push({ path, bytes: call.request.length, header: String(call.metadata.get('x-braid-test')[0] ?? '') });
      cb(null, Buffer.alloc(0)); // an empty Export*ServiceResponse
    }, raw, raw, 'unary');
  }
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  Object.assign(process.env, {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    OTEL_EXPORTER_OTLP_HEADERS: 'x-braid-test=grpc',
    OTEL_METRIC_EXPORT_INTERVAL: '200',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  tm = Telemetry.start({
    role: 'cloud', id: 'c', version: '0.1.0', settings: { prometheus: false, dashboard: false },
    view: { sessions: () => [], drops: () => ({}), tunnel: () => ({ rxPackets: 0, txPackets: 0, rxBytes: 0, txBytes: 0 }) },
  });
});

after(async () => {
  await tm?.shutdown();
  server.forceShutdown();
});

test('traces and metrics are exported over OTLP/gRPC with the configured headers', async () => {
  tm.startSpan('grpc-export-check', {}).end();
  await poll(() => calls.some((c) => c.path === TRACES) && calls.some((c) => c.path === METRICS), 10_000, 100);
  const traces = calls.find((c) => c.path === TRACES);
  const metrics = calls.find((c) => c.path === METRICS);
  assert.ok(traces && traces.bytes > 0, 'a trace export arrived');
  assert.ok(metrics && metrics.bytes > 0, 'a metrics export arrived');
  assert.equal(traces.header, 'grpc');
});
