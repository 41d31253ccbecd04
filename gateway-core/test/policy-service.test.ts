// Contract tests of braid.v1.PolicyService over real mTLS gRPC on loopback (certificates from
// scripts/gen-dev-certs.sh, the real control-plane server, the real PolicyClient): the first
// policy on connect, pushes on every store change, acknowledgements (applied / rejected with the
// reason), refusals with their status codes, an edge that never applies half a policy, a silent
// stream detected and re-opened, reconnection after a cloud restart. No root needed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  createPolicyService, startControlServer, watchPolicyMethod, POLICY_SERVICE, policyServiceDefinition,
  type ControlServer, type PolicyAckMsg, type PolicyServiceHandle, type PolicyUpdateMsg, type TlsFiles,
} from '../src/control/index.js';
import { FilePolicyStore, PolicyClient, backoffDelayMs, type ReceivedPolicy } from '../src/policy/index.js';
import { until } from './wait.js';

const SCRIPT = new URL('../../scripts/gen-dev-certs.sh', import.meta.url).pathname;
let dir = '';
const files = (name: string, ca = 'ca'): TlsFiles => ({ ca: join(dir, `${ca}.pem`), cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) });

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'braid-policy-svc-'));
  execFileSync('bash', [SCRIPT, dir]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const noHello = async (): Promise<never> => { throw new Error('not in this test'); };

async function cloud(store: FilePolicyStore, heartbeatMs = 200, port = 0): Promise<{ server: ControlServer; svc: PolicyServiceHandle; target: string }> {
  const svc = createPolicyService({ store, heartbeatMs });
  const server = await startControlServer({ listen: `127.0.0.1:${port}`, tls: files('cloud'), onHello: noHello, services: [svc.service] });
  return { server, svc, target: `127.0.0.1:${server.port}` };
}

/** A raw WatchPolicy stream, for what PolicyClient would never send. */
function rawStream(target: string, name = 'edge'): { call: grpc.ClientDuplexStream<PolicyAckMsg, PolicyUpdateMsg>; client: grpc.Client; result: Promise<grpc.StatusObject>; got: PolicyUpdateMsg[] } {
  const f = files(name);
  const client = new grpc.Client(target, grpc.credentials.createSsl(readFileSync(f.ca), readFileSync(f.key), readFileSync(f.cert)), { 'grpc.ssl_target_name_override': 'localhost' });
  const m = watchPolicyMethod();
  const call = client.makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, new grpc.Metadata()) as unknown as grpc.ClientDuplexStream<PolicyAckMsg, PolicyUpdateMsg>;
  const got: PolicyUpdateMsg[] = [];
  call.on('data', (d: PolicyUpdateMsg) => got.push(d));
  const result = new Promise<grpc.StatusObject>((resolve) => {
    call.on('status', (s) => resolve(s));
    call.on('error', () => undefined);
  });
  return { call, client, result, got };
}

describe('PolicyService over mTLS', () => {
  test('the edge gets its effective policy at once, applies it, and the cloud records the ack; each store change is pushed', async () => {
    const store = await FilePolicyStore.open();
    await store.setGlobal({ schedule: { pinBytes: 100_000 }, carriers: { 'lte-a': { tier: 'primary' } } });
    const { server, svc, target } = await cloud(store);
    const applied: ReceivedPolicy[] = [];
    const client = new PolicyClient({ target, tls: files('edge'), serverName: 'localhost', apply: (r) => { applied.push(r); } });
    client.start();
    try {
      await until('the first policy', () => applied.length === 1);
      assert.equal(applied[0]?.policy.schedule.pinBytes, 100_000);
      assert.equal(applied[0]?.version, 1);
      await until('the ack', () => svc.edges().find((e) => e.edgeId === 'edge-1' && e.appliedVersion === 1));
      const st = svc.edges()[0];
      assert.equal(st?.connected, true);
      assert.equal(st?.appliedSha256, client.status().sha256);

      // Cloud-side intelligence demotes a carrier for this edge: pushed, applied, acknowledged.
      await store.setOverlay('edge-1', 'fleet.degradation', { carriers: { 'lte-a': { tier: 'backup' }, 'lte-b': { tier: 'primary' } } });
      await until('the overlay', () => applied.length === 2);
      assert.equal(applied[1]?.policy.carriers['lte-a']?.tier, 'backup');
      assert.deepEqual(applied[1]?.sources, ['global@1', 'overlay:fleet.degradation@2']);
      await until('the second ack', () => svc.edges()[0]?.appliedVersion === 2);
      // A change for another edge is not pushed to this one.
      await store.setOverlay('edge-9', 'fleet.degradation', { schedule: { beta: 3 } });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(applied.length, 2);
      assert.equal(client.status().version, 2);
    } finally {
      client.stop();
      await server.close();
    }
  });

  test('a policy the edge cannot apply is rejected with the reason; the previous one stays in force', async () => {
    const store = await FilePolicyStore.open();
    const { server, svc, target } = await cloud(store);
    let calls = 0;
    const client = new PolicyClient({
      target, tls: files('edge'), serverName: 'localhost',
      apply: (r) => {
        calls++;
        if (r.policy.schedule.alpha === 7) throw new Error('carrier lte-z unknown to this edge');
      },
    });
    client.start();
    try {
      await until('the default policy', () => client.status().version === 0 && calls === 1);
      await store.setGlobal({ schedule: { alpha: 7 } });
      await until('the rejection', () => svc.edges()[0]?.rejected);
      assert.deepEqual(svc.edges()[0]?.rejected, { version: 1, reason: 'carrier lte-z unknown to this edge' });
      assert.equal(svc.edges()[0]?.appliedVersion, 0);
      assert.equal(client.status().version, 0);
      assert.equal(client.status().lastRejected?.reason, 'carrier lte-z unknown to this edge');
      await store.setGlobal({ schedule: { alpha: 8 } });
      await until('the next version applied', () => svc.edges()[0]?.appliedVersion === 2);
      assert.equal(svc.edges()[0]?.rejected, undefined);
    } finally {
      client.stop();
      await server.close();
    }
  });

  test('refusals: a first message that is not RUNNING, a malformed ack, an untrusted certificate, a broken policy state', async () => {
    const store = await FilePolicyStore.open();
    const { server, target } = await cloud(store);
    try {
      const a = rawStream(target);
      a.call.write({ version: 3, result: 'POLICY_RESULT_APPLIED', reason: '', sha256: '' });
      const sa = await a.result;
      assert.equal(sa.code, grpc.status.INVALID_ARGUMENT);
      assert.equal(sa.details, 'invalid PolicyAck: the first message of a stream must have result POLICY_RESULT_RUNNING');
      a.client.close();

      const b = rawStream(target);
      b.call.write({ version: 0, result: 'POLICY_RESULT_RUNNING', reason: '', sha256: '' });
      b.call.write({ version: 1, result: 'POLICY_RESULT_REJECTED', reason: '', sha256: '' });
      const sb = await b.result;
      assert.equal(sb.code, grpc.status.INVALID_ARGUMENT);
      assert.equal(sb.details, 'invalid PolicyAck: a rejection needs a reason');
      assert.ok(b.got.some((u) => u.policy), 'the policy came before the refusal');
      b.client.close();

      const c = rawStream(target);
      c.call.write({ version: 0, result: 'POLICY_RESULT_RUNNING', reason: '', sha256: 'XYZ' });
      assert.equal((await c.result).details, 'invalid PolicyAck: sha256 must be empty or 64 lower-case hex digits');
      c.client.close();

      // A foreign CA's edge never reaches the service (the TLS listener drops it).
      const f = files('rogue-edge', 'ca');
      const rogue = new grpc.Client(target, grpc.credentials.createSsl(readFileSync(f.ca), readFileSync(join(dir, 'rogue-edge.key')), readFileSync(join(dir, 'rogue-edge.pem'))), { 'grpc.ssl_target_name_override': 'localhost' });
      const m = watchPolicyMethod();
      const rc = rogue.makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, new grpc.Metadata(), { deadline: Date.now() + 3000 });
      rc.on('data', () => assert.fail('a rogue edge got a policy'));
      rc.on('error', () => undefined);
      const rs = await new Promise<grpc.StatusObject>((r) => rc.on('status', r));
      assert.equal(rs.code, grpc.status.UNAVAILABLE);
      rogue.close();
    } finally {
      await server.close();
    }

    // A state file edited by hand into an invalid policy: the cloud refuses to serve it, with the reason.
    const file = join(dir, 'bad-state.json');
    writeFileSync(file, JSON.stringify({ format: 'braid.policy-store.v1', revision: 4, edges: {}, overlays: {}, touched: {}, global: { policy: { schedule: { alpha: -3 } }, revision: 4, updatedAtMs: 0 } }));
    const bad = await FilePolicyStore.open(file);
    const c2 = await cloud(bad);
    try {
      const d = rawStream(c2.target);
      d.call.write({ version: 0, result: 'POLICY_RESULT_RUNNING', reason: '', sha256: '' });
      const sd = await d.result;
      assert.equal(sd.code, grpc.status.FAILED_PRECONDITION);
      assert.match(sd.details, /^invalid policy of edge edge-1: schedule\.alpha: expected a number between 0 and 100, got -3$/);
      d.client.close();
    } finally {
      await c2.server.close();
    }
  });

  test('an edge never applies half a policy: bad JSON, a bad hash, an invalid field are rejected before apply', async () => {
    // A cloud stand-in that sends what the real one never would; same mTLS server.
    const sent: PolicyUpdateMsg[] = [];
    const acks: PolicyAckMsg[] = [];
    const evil = (json: string, sha256: string, version: number): PolicyUpdateMsg => ({ policy: { version, policyJson: json, sha256, sources: ['evil'], issuedUnixMs: 0 }, heartbeatIntervalMs: 1000 });
    const { createHash } = await import('node:crypto');
    const h = (s: string): string => createHash('sha256').update(s).digest('hex');
    const good = '{"schedule":{"pinBytes":5000}}';
    sent.push(evil('{"schedule":', h('{"schedule":'), 1));
    sent.push(evil(good, h('tampered'), 2));
    sent.push(evil('{"schedule":{"alpha":-1},"carriers":{"lte-a":{"tier":"gold"}}}', h('{"schedule":{"alpha":-1},"carriers":{"lte-a":{"tier":"gold"}}}'), 3));
    sent.push(evil(good, h(good), 4));
    sent.push(evil(good, h(good), 3));
    const server = await startControlServer({
      listen: '127.0.0.1:0', tls: files('cloud'), onHello: noHello,
      services: [{
        name: POLICY_SERVICE, definition: policyServiceDefinition(),
        implementation: {
          WatchPolicy: (call: grpc.ServerDuplexStream<PolicyAckMsg, PolicyUpdateMsg>) => {
            call.on('data', (a: PolicyAckMsg) => acks.push(a));
            for (const u of sent) call.write(u);
          },
        },
      }],
    });
    const applied: number[] = [];
    const client = new PolicyClient({ target: `127.0.0.1:${server.port}`, tls: files('edge'), serverName: 'localhost', apply: (r) => { applied.push(r.version); } });
    client.start();
    try {
      await until('five answers', () => acks.length >= 6);
      assert.equal(acks[0]?.result, 'POLICY_RESULT_RUNNING');
      const [a1, a2, a3, a4, a5] = acks.slice(1);
      assert.equal(a1?.result, 'POLICY_RESULT_REJECTED');
      assert.match(a1?.reason ?? '', /^invalid policy version 1: not JSON/);
      assert.equal(a2?.result, 'POLICY_RESULT_REJECTED');
      assert.match(a2?.reason ?? '', /sha256: does not match the policy text/);
      assert.equal(a3?.result, 'POLICY_RESULT_REJECTED');
      assert.match(a3?.reason ?? '', /schedule\.alpha: expected a number between 0 and 100, got -1; carriers\.lte-a\.tier: expected one of primary\|secondary\|backup\|never, got "gold"/);
      assert.equal(a4?.result, 'POLICY_RESULT_APPLIED');
      assert.equal(a4?.version, 4);
      assert.equal(a5?.result, 'POLICY_RESULT_REJECTED');
      assert.match(a5?.reason ?? '', /version 3 is older than version 4 sent before on this stream/);
      assert.deepEqual(applied, [4], 'apply ran only for the valid policy');
      assert.equal(client.status().policy?.schedule.pinBytes, 5000);
    } finally {
      client.stop();
      await server.close();
    }
  });

  test('a stream that goes silent (no heartbeat) is cancelled after three intervals and opened again', async () => {
    let opened = 0;
    const server = await startControlServer({
      listen: '127.0.0.1:0', tls: files('cloud'), onHello: noHello,
      services: [{
        name: POLICY_SERVICE, definition: policyServiceDefinition(),
        implementation: {
          // Says its heartbeat is 100 ms, then never sends another message (like a stream whose carrier died).
          WatchPolicy: (call: grpc.ServerDuplexStream<PolicyAckMsg, PolicyUpdateMsg>) => {
            opened++;
            call.write({ heartbeat: { version: 0 }, heartbeatIntervalMs: 100 });
            call.on('error', () => undefined);
          },
        },
      }],
    });
    const client = new PolicyClient({ target: `127.0.0.1:${server.port}`, tls: files('edge'), serverName: 'localhost', apply: () => undefined, backoff: { initialMs: 20, maxMs: 50 } });
    const t0 = Date.now();
    client.start();
    try {
      await until('a second stream', () => opened >= 2, 5000);
      const took = Date.now() - t0;
      assert.ok(took >= 300, `re-opened after ${took} ms, not before three 100 ms heartbeat intervals`);
      assert.match(client.status().lastError, /CANCELLED/);
    } finally {
      client.stop();
      await server.close();
    }
  });

  test('after a cloud restart the edge reconnects by itself and the versions carry on (file-backed store)', async () => {
    const file = join(dir, 'restart-state.json');
    const store = await FilePolicyStore.open(file);
    await store.setGlobal({ schedule: { beta: 0.5 } });
    const first = await cloud(store);
    const port = first.server.port;
    const versions: number[] = [];
    const client = new PolicyClient({ target: `127.0.0.1:${port}`, tls: files('edge'), serverName: 'localhost', apply: (r) => { versions.push(r.version); }, backoff: { initialMs: 50, maxMs: 200 } });
    client.start();
    try {
      await until('version 1', () => versions.includes(1));
      first.svc.close();
      await first.server.close();
      await store.close();
      await until('the stream noticed', () => !client.status().connected);
      const again = await FilePolicyStore.open(file);
      await again.setOverlay('edge-1', 'fleet.speed', { schedule: { beta: 0 } });
      const second = await cloud(again, 200, port);
      try {
        await until('version 2 after the restart', () => versions.includes(2), 8000);
        assert.equal(client.status().policy?.schedule.beta, 0);
        assert.ok(client.status().streams >= 2);
      } finally {
        await second.server.close();
        await again.close();
      }
    } finally {
      client.stop();
    }
  });
});

test('a cloud restarted without a state file counts versions from 1 again: the edge runs its policy anyway', async () => {
  const first = await FilePolicyStore.open();
  for (const beta of [1, 2, 3]) await first.setGlobal({ schedule: { beta } });
  const a = await cloud(first);
  const port = a.server.port;
  const client = new PolicyClient({ target: `127.0.0.1:${port}`, tls: files('edge'), serverName: 'localhost', apply: () => undefined, backoff: { initialMs: 50, maxMs: 200 } });
  client.start();
  try {
    await until('version 3', () => client.status().version === 3);
    a.svc.close();
    await a.server.close();
    const second = await FilePolicyStore.open();
    await second.setGlobal({ schedule: { beta: 9 } });
    const b = await cloud(second, 200, port);
    try {
      await until('the restarted cloud\'s version 1', () => client.status().version === 1, 8000);
      assert.equal(client.status().policy?.schedule.beta, 9);
      await until('acknowledged as applied', () => b.svc.edges()[0]?.appliedVersion === 1);
    } finally {
      await b.server.close();
    }
  } finally {
    client.stop();
  }
});

test('backoff: exponential, capped, with jitter in [ceiling/2, ceiling]', () => {
  const b = { initialMs: 100, maxMs: 1000, multiplier: 2 };
  assert.equal(backoffDelayMs(0, b, () => 0), 50);
  assert.equal(backoffDelayMs(0, b, () => 1), 100);
  assert.equal(backoffDelayMs(3, b, () => 1), 800);
  assert.equal(backoffDelayMs(10, b, () => 1), 1000);
  assert.equal(backoffDelayMs(10, b, () => 0), 500);
  const spread = new Set(Array.from({ length: 50 }, () => Math.round(backoffDelayMs(2, b))));
  assert.ok(spread.size > 10, 'jitter spreads reconnections');
});
