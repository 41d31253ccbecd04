// Contract of braid.v1.TelemetryService over real gRPC with mutual TLS on loopback (certificates
// from scripts/gen-dev-certs.sh): valid streams acknowledged and stored, each refusal with its
// status code and message, deadlines, stream replacement, and the edge's reporter reconnecting
// to a restarted cloud without losing a report. No root needed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { realClock } from '../src/clock.js';
import { ControlError } from '../src/control/errors.js';
import { startControlServer } from '../src/control/server.js';
import type { ControlServer, TlsFiles } from '../src/control/types.js';
import { Fleet } from '../src/fleet/fleet.js';
import { RecordingSink } from '../src/fleet/overlay.js';
import { telemetryService, type TelemetryServiceHandle } from '../src/fleet/service.js';
import { MemoryStateStore } from '../src/fleet/store.js';
import { grpcUplink } from '../src/uplink/grpc-stream.js';
import { reportMethod, TELEMETRY_SERVICE } from '../src/uplink/proto.js';
import { TelemetryReporter } from '../src/uplink/reporter.js';
import type { ReportRequest, TelemetryReport } from '../src/uplink/types.js';
import { until } from './wait.js';

const SCRIPT = new URL('../../scripts/gen-dev-certs.sh', import.meta.url).pathname;
let dir = '';

const tlsOf = (leaf: string, ca = 'ca'): TlsFiles => ({ ca: join(dir, `${ca}.pem`), cert: join(dir, `${leaf}.pem`), key: join(dir, `${leaf}.key`) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Cloud { server: ControlServer; fleet: Fleet; svc: TelemetryServiceHandle; target: string }

async function startCloud(opts: { maxStreams?: number; port?: number } = {}): Promise<Cloud> {
  const fleet = new Fleet({ store: new MemoryStateStore(), sink: new RecordingSink() });
  const svc = telemetryService({ fleet, ...(opts.maxStreams ? { maxStreams: opts.maxStreams } : {}) });
  const server = await startControlServer({
    listen: `127.0.0.1:${opts.port ?? 0}`,
    tls: tlsOf('cloud'),
    onHello: () => Promise.reject(new ControlError(grpc.status.UNIMPLEMENTED, 'not in this test')),
    services: [svc.service],
  });
  return { server, fleet, svc, target: `127.0.0.1:${server.port}` };
}

let cloud: Cloud;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'braid-telemetry-svc-'));
  // Two edge identities under one CA: edge-1, then the script re-issues edge.pem for edge-2.
  execFileSync('bash', [SCRIPT, dir, '--edge-id', 'edge-1']);
  copyFileSync(join(dir, 'edge.pem'), join(dir, 'edge1.pem'));
  copyFileSync(join(dir, 'edge.key'), join(dir, 'edge1.key'));
  execFileSync('bash', [SCRIPT, dir, '--edge-id', 'edge-2']);
  copyFileSync(join(dir, 'edge.pem'), join(dir, 'edge2.pem'));
  copyFileSync(join(dir, 'edge.key'), join(dir, 'edge2.key'));
  cloud = await startCloud();
});

after(async () => {
  await cloud?.server.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function client(target: string, leaf: string, ca = 'ca'): grpc.Client {
  const t = tlsOf(leaf, ca);
  return new grpc.Client(target, grpc.credentials.createSsl(readFileSync(t.ca), readFileSync(t.key), readFileSync(t.cert)));
}

function report(seq: number, over: Partial<TelemetryReport> = {}): TelemetryReport {
  return {
    seq, atUnixMs: Date.now(), sessionId: 3,
    paths: [{ carrier: 'lte-a', state: 'PATH_STATE_UP', transport: 'udp', rttMs: 40, congestionMode: 'CONGESTION_MODE_WINDOW', lossRate: 0.01, goodputMbps: 12, queueBytes: 3000, txBytes: 1, rxBytes: 2 }],
    carriers: [{ carrier: 'lte-a', operatorName: 'Orange', mcc: '208', mnc: '01', technology: 'lte', rsrpDbm: -95, rsrqDb: -10, sinrDb: 12, cellId: '1A2B', radioAtUnixMs: Date.now() }],
    motion: { latitude: 48.8, longitude: 2.3, speedKmh: 250, atUnixMs: Date.now() },
    ...over,
  };
}

/** One Report stream: send batches, collect acknowledgements and the final status. */
function openStream(c: grpc.Client, deadlineMs = 10_000) {
  const m = reportMethod();
  const call = c.makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, new grpc.Metadata(), { deadline: Date.now() + deadlineMs });
  const acks: number[] = [];
  const status = new Promise<{ code: number; details: string }>((resolve) => {
    call.on('data', (msg: { ackedSeq: number }) => acks.push(msg.ackedSeq));
    call.on('error', (e: grpc.ServiceError) => resolve({ code: e.code, details: e.details }));
    call.on('status', (s: grpc.StatusObject) => { if (s.code === grpc.status.OK) resolve({ code: 0, details: s.details }); });
  });
  return { call, acks, status, send: (req: ReportRequest) => call.write(req) };
}

test('health reports the telemetry service SERVING', async () => {
  const c = client(cloud.target, 'edge1');
  try {
    const check = healthService['Check'];
    assert.ok(check);
    const res = await new Promise<unknown>((resolve, reject) => c.makeUnaryRequest(check.path, check.requestSerialize, check.responseDeserialize,
      { service: TELEMETRY_SERVICE }, new grpc.Metadata(), { deadline: Date.now() + 3000 }, (e, v) => (e ? reject(e) : resolve(v))));
    assert.deepEqual(res, { status: 'SERVING' });
  } finally {
    c.close();
  }
});

test('a valid stream: every batch acknowledged with the highest stored sequence; reports reach the history; keepalives acknowledged', async () => {
  const c = client(cloud.target, 'edge1');
  const s = openStream(c);
  s.send({ edgeId: 'edge-1', bootId: 'boot-a', reports: [report(1), report(2)] });
  s.send({ edgeId: 'edge-1', bootId: 'boot-a', reports: [] });
  s.send({ edgeId: 'edge-1', bootId: 'boot-a', reports: [report(2), report(3)] });
  await until('three acks', () => s.acks.length === 3);
  assert.deepEqual(s.acks, [2, 2, 3]);
  const e = cloud.fleet.history.edges.get('edge-1');
  assert.equal(e?.ackedSeq, 3);
  assert.equal(e?.carriers.get('lte-a')?.length, 3, 'the duplicate of report 2 was not stored twice');
  assert.equal(e?.speedKmh, 250);
  assert.equal(e?.carriers.get('lte-a')?.newest()?.cell, '208-01-1A2B');
  assert.equal(cloud.svc.stats().streams, 1);
  s.call.end();
  assert.equal((await s.status).code, grpc.status.OK);
  await until('the cloud to free the stream', () => cloud.svc.stats().streams === 0);
  c.close();
});

test('PERMISSION_DENIED: a batch naming another edge than the certificate', async () => {
  const c = client(cloud.target, 'edge1');
  const s = openStream(c);
  s.send({ edgeId: 'edge-2', bootId: 'b', reports: [report(1)] });
  assert.deepEqual(await s.status, { code: grpc.status.PERMISSION_DENIED, details: 'edge id "edge-2" does not match its certificate (CN=edge-1)' });
  assert.equal(cloud.fleet.history.edges.get('edge-2'), undefined, 'nothing stored');
  c.close();
});

test('INVALID_ARGUMENT: out-of-range values, sequence going backwards, too many reports, empty boot id; each names the field', async () => {
  const cases: [ReportRequest, RegExp][] = [
    [{ edgeId: 'edge-1', bootId: 'b', reports: [report(1, { paths: [{ ...report(1).paths[0]!, lossRate: 1.5 }] })] }, /^invalid ReportRequest: reports\.0\.paths\.0\.lossRate: must be between 0 and 1$/],
    [{ edgeId: 'edge-1', bootId: 'b', reports: [report(5), report(4)] }, /reports\.1\.seq: must be greater than the previous report's \(5\)/],
    [{ edgeId: 'edge-1', bootId: 'b', reports: Array.from({ length: 257 }, (_, i) => report(i + 1)) }, /reports: Too big: expected array to have <=256 items/],
    [{ edgeId: 'edge-1', bootId: '', reports: [] }, /bootId: must not be empty/],
    [{ edgeId: 'edge-1', bootId: 'b', reports: [report(1, { carriers: [{ ...report(1).carriers[0]!, sinrDb: 99 }] })] }, /reports\.0\.carriers\.0\.sinrDb: must be between -23 and 40/],
    [{ edgeId: 'edge-1', bootId: 'b', reports: [report(0)] }, /reports\.0\.seq: must be >= 1/],
  ];
  const c = client(cloud.target, 'edge1');
  for (const [req, re] of cases) {
    const s = openStream(c);
    s.send(req);
    const st = await s.status;
    assert.equal(st.code, grpc.status.INVALID_ARGUMENT, st.details);
    assert.match(st.details, re);
  }
  c.close();
  assert.ok((cloud.svc.stats().refused['INVALID_ARGUMENT'] ?? 0) >= cases.length);
});

test('no trusted certificate: the connection is refused before the service sees a call', async () => {
  const before = cloud.svc.stats().batches;
  for (const [leaf, ca] of [['rogue-edge', 'ca'], ['edge1', 'rogue-ca']] as const) {
    const c = client(cloud.target, leaf, ca);
    const s = openStream(c, 3000);
    s.send({ edgeId: 'edge-1', bootId: 'b', reports: [report(1)] });
    const st = await s.status;
    assert.equal(st.code, grpc.status.UNAVAILABLE, `${leaf}/${ca}: ${st.details}`);
    c.close();
  }
  assert.equal(cloud.svc.stats().batches, before);
});

test('RESOURCE_EXHAUSTED: beyond maxStreams reporting edges', async () => {
  const small = await startCloud({ maxStreams: 1 });
  const c1 = client(small.target, 'edge1');
  const c2 = client(small.target, 'edge2');
  try {
    const s1 = openStream(c1);
    s1.send({ edgeId: 'edge-1', bootId: 'b', reports: [report(1)] });
    await until('the first stream\'s ack', () => s1.acks.length === 1);
    const s2 = openStream(c2);
    s2.send({ edgeId: 'edge-2', bootId: 'b', reports: [report(1)] });
    assert.deepEqual(await s2.status, { code: grpc.status.RESOURCE_EXHAUSTED, details: 'this cloud already serves 1 reporting edges' });
    s1.call.end();
    await s1.status;
    await until('the cloud to free the stream', () => small.svc.stats().streams === 0);
    const s3 = openStream(c2);
    s3.send({ edgeId: 'edge-2', bootId: 'b', reports: [report(1)] });
    await until('the third stream\'s ack', () => s3.acks.length === 1);
    s3.call.end();
    await s3.status;
  } finally {
    c1.close();
    c2.close();
    await small.server.close();
  }
});

test('a newer stream of the same edge replaces the older one (ABORTED with the reason)', async () => {
  const c = client(cloud.target, 'edge1');
  const s1 = openStream(c);
  s1.send({ edgeId: 'edge-1', bootId: 'r', reports: [report(1)] });
  await until('the first stream\'s ack', () => s1.acks.length === 1);
  const s2 = openStream(c);
  s2.send({ edgeId: 'edge-1', bootId: 'r', reports: [report(2)] });
  assert.deepEqual(await s1.status, { code: grpc.status.ABORTED, details: 'replaced by a newer telemetry stream of the same edge' });
  await until('the second stream\'s ack', () => s2.acks.length === 1);
  assert.deepEqual(s2.acks, [2]);
  s2.call.end();
  await s2.status;
  c.close();
});

test('deadline: a stream with a deadline ends with DEADLINE_EXCEEDED and the cloud frees its slot', async () => {
  const c = client(cloud.target, 'edge2');
  const s = openStream(c, 400);
  s.send({ edgeId: 'edge-2', bootId: 'd', reports: [report(1)] });
  await until('the ack', () => s.acks.length === 1);
  assert.equal(cloud.svc.stats().streams, 1);
  const st = await s.status;
  assert.equal(st.code, grpc.status.DEADLINE_EXCEEDED);
  await until('the cloud to free the stream', () => cloud.svc.stats().streams === 0);
  c.close();
});

test('the edge reporter over mTLS: reports flow, the cloud restarts on the same port, the reporter reconnects and no report is lost', async () => {
  const first = await startCloud();
  const port = first.server.port;
  let rtt = 20;
  const reporter = new TelemetryReporter({
    edgeId: 'edge-1',
    clock: realClock,
    transport: grpcUplink({ target: `127.0.0.1:${port}`, tls: tlsOf('edge1'), serverName: 'localhost' }),
    // Changing every sample: 10 reports per second.
    sample: () => ({ ...report(0), seq: undefined, paths: [{ ...report(0).paths[0]!, rttMs: (rtt = rtt > 400 ? 20 : rtt * 1.3) }] }),
    settings: { initialBackoffMs: 200, maxBackoffMs: 1000 },
  });
  reporter.start();
  try {
    await until('five reports acknowledged', () => (first.fleet.history.edges.get('edge-1')?.ackedSeq ?? 0) >= 5);
    await first.server.close();
    const storedBefore = first.fleet.history.edges.get('edge-1')?.ackedSeq ?? 0;
    await sleep(700); // reports pile up in the edge's queue meanwhile
    // The restarted replica resumes from the first one's state (as the file store would give it).
    const second = await startCloud({ port });
    second.fleet.history.restore(first.fleet.history.toDocument({}, Date.now()));
    try {
      await until('the reporter reconnected and caught up', () => reporter.stats().reconnects >= 1 && reporter.stats().ackedSeq >= reporter.stats().produced - 1, 10_000);
      const st = reporter.stats();
      assert.equal(st.dropped, 0);
      const e = second.fleet.history.edges.get('edge-1');
      assert.ok(e);
      assert.ok(e.ackedSeq > storedBefore, 'reports made while the cloud was down arrived after the reconnection');
      assert.equal(first.fleet.stats.gaps + second.fleet.stats.gaps, 0, 'no sequence number missing');
      assert.equal(first.fleet.stats.reportsStored + second.fleet.stats.reportsStored, e.ackedSeq, 'each report stored exactly once');
    } finally {
      reporter.stop();
      await second.server.close();
    }
  } finally {
    reporter.stop();
  }
});
