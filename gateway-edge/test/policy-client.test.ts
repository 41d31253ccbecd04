// The edge's policy glue (src/policy-client.ts) against a real cloud PolicyService over mTLS:
// each policy change is one event on the timeline and one OpenTelemetry span (checked at a real
// OTLP/HTTP receiver), and a session attached later runs the policy in force. No root needed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  createPolicyService, FilePolicyStore, RateWeightedScheduler, Session, SimClock, silentLogger, startControlServer, Telemetry, type ControlServer, type TlsFiles,
} from '@braid/gateway-core';
import { startOtlpReceiver, type OtlpReceiver } from '../../gateway-core/test/telemetry-otlp-receiver.js';
import { EdgePolicy } from '../src/policy-client.js';
import { until } from '../../gateway-core/test/wait.js';

const REPO = new URL('../../', import.meta.url).pathname;
let dir = '';
let receiver: OtlpReceiver;
const tls = (name: string): TlsFiles => ({ ca: join(dir, 'ca.pem'), cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'braid-edge-policy-'));
  execFileSync('bash', [join(REPO, 'scripts/gen-dev-certs.sh'), dir]);
  receiver = await startOtlpReceiver();
  Object.assign(process.env, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '100' });
});
after(async () => {
  await receiver?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('each policy change is one timeline event and one span; a later session gets the policy in force', async () => {
  const store = await FilePolicyStore.open();
  await store.setGlobal({ carriers: { 'lte-a': { tier: 'backup' } }, schedule: { pinBytes: 1234 } });
  const svc = createPolicyService({ store, heartbeatMs: 500 });
  const server: ControlServer = await startControlServer({ listen: '127.0.0.1:0', tls: tls('cloud'), onHello: async () => { throw new Error('unused'); }, services: [svc.service] });
  const tm = Telemetry.start({ role: 'edge', id: 'edge-1', version: 't', view: { sessions: () => [], drops: () => ({}), tunnel: () => ({ rxPackets: 0, txPackets: 0, rxBytes: 0, txBytes: 0 }) } });
  const ep = new EdgePolicy({
    target: `127.0.0.1:${server.port}`, tls: tls('edge'), serverName: 'localhost', carriers: ['lte-a', 'lte-b'], telemetry: () => tm, logger: silentLogger,
  });
  ep.start();
  const clock = new SimClock();
  const k = randomBytes(32);
  const session = new Session({
    sessionId: 3, sendKey: k, recvKey: k, pathNames: ['lte-a', 'lte-b'], clock, scheduler: new RateWeightedScheduler(), lowLatency: false,
    keepaliveMs: 1000, ackIntervalMs: 10, ackEveryPackets: 8, pathDeadMs: 300, reorder: { holdMs: 100, maxPackets: 100, maxBytes: 1 << 20 }, replayWindow: 1024,
    deliver: () => undefined,
  });
  try {
    await until('version 1', () => ep.status().version === 1, 8000);
    ep.attach(session);
    assert.deepEqual(session.getPathPolicy(), { 'lte-a': { tier: 'backup' } }, 'the session attached after the policy runs it');
    await store.setOverlay('edge-1', 'fleet.speed', { carriers: { 'lte-a': { tier: 'primary' } } });
    await until('version 2', () => ep.status().version === 2, 8000);
    assert.deepEqual(session.getPathPolicy(), { 'lte-a': { tier: 'primary' } }, 'the running session took version 2');
    const events = tm.events.list().filter((e) => e.kind.startsWith('policy.'));
    assert.deepEqual(events.map((e) => [e.kind, e.attributes['braid.policy.version'], e.attributes['braid.policy.previous_version']]), [['policy.applied', 1, 0], ['policy.applied', 2, 1]]);
    assert.match(events[1]!.message, /^policy version 2 applied \(was 1; global@1, overlay:fleet\.speed@2\)$/);
    assert.equal(events[1]!.sessionId, 3);
    await tm.flush();
    await until('two policy spans at the collector', () => receiver.spans.filter((s) => s.name === 'policy.applied').length >= 2, 8000);
    const spans = receiver.spans.filter((s) => s.name === 'policy.applied');
    assert.equal(spans.length, 2, 'one span per change');
    assert.deepEqual(spans.map((s) => s.attributes['braid.policy.version']).sort(), [1, 2]);
  } finally {
    ep.stop();
    session.close();
    await server.close();
    await store.close();
    await tm.shutdown();
  }
});
