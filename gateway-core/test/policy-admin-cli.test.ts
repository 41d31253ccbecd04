// `braid policy get|set` against real admin gRPC servers (mTLS, operator certificate) of a cloud
// with a policy store and PolicyService, and of an edge whose PolicyClient follows that cloud.
// Checks the human output, --json, refusals with their status codes and reasons (invalid policy,
// set on an edge, unauthorised certificate, unreachable gateway, deadline). No root needed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runBraidCli } from '../src/cli/braid.js';
import { adminApiFrom } from '../src/control/admin-api.js';
import { cloudPolicyAdmin, edgePolicyAdmin } from '../src/control/admin-policy.js';
import { startAdminGrpcServer } from '../src/control/admin-server.js';
import { startCloudPolicy, type CloudPolicy } from '../src/control/policy-cloud.js';
import { startControlServer } from '../src/control/server.js';
import type { ControlServer, TlsFiles } from '../src/control/types.js';
import { PolicyClient } from '../src/policy/client.js';
import { EventLog } from '../src/telemetry/events.js';
import { until } from './wait.js';

const REPO = new URL('../../', import.meta.url).pathname;

describe('braid policy get|set', () => {
  let dir: string;
  let cloudPlane: CloudPolicy;
  let control: ControlServer;
  let cloudAdmin: ControlServer;
  let edgeAdmin: ControlServer;
  let edgeClient: PolicyClient;
  let cloudTarget = '';
  let edgeTarget = '';
  const tls = (name: string): TlsFiles => ({ ca: join(dir, 'ca.pem'), cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) });
  const emptyView = { sessions: () => [], drops: () => ({}), tunnel: () => ({ rxPackets: 0, txPackets: 0, rxBytes: 0, txBytes: 0 }) };

  const cli = async (args: string[]) => {
    let out = '';
    let err = '';
    const code = await runBraidCli(args, { out: (s) => { out += s; }, err: (s) => { err += s; }, env: {} });
    return { code, out, err };
  };
  const on = (target: string) => ['--target', target, '--certs', dir, '--server-name', 'braid-admin'];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'braid-policy-cli-'));
    execFileSync('bash', [join(REPO, 'scripts/gen-dev-certs.sh'), dir]);
    writeFileSync(join(dir, 'start.yaml'), 'schedule:\n  pinBytes: 200000\ncarriers:\n  lte-a: { tier: primary }\n  lte-b: { tier: backup }\n');
    cloudPlane = await startCloudPolicy({ file: join(dir, 'start.yaml'), stateFile: join(dir, 'state.json'), heartbeatMs: 1000 });
    control = await startControlServer({ listen: '127.0.0.1:0', tls: tls('cloud'), onHello: async () => { throw new Error('no hello here'); }, services: [cloudPlane.service.service] });
    const ev = new EventLog(10);
    cloudAdmin = await startAdminGrpcServer({
      listen: '127.0.0.1:0', operatorOu: 'operator', tls: tls('admin'),
      api: { ...adminApiFrom({ role: 'cloud', id: 'cloud-1', version: '0', ready: () => true }, emptyView, ev), policy: cloudPolicyAdmin(cloudPlane.store, () => cloudPlane.service.edges()) },
    });
    cloudTarget = `127.0.0.1:${cloudAdmin.port}`;
    edgeClient = new PolicyClient({ target: `127.0.0.1:${control.port}`, tls: tls('edge'), serverName: 'localhost', apply: () => undefined });
    edgeClient.start();
    edgeAdmin = await startAdminGrpcServer({
      listen: '127.0.0.1:0', operatorOu: 'operator', tls: tls('admin'),
      api: { ...adminApiFrom({ role: 'edge', id: 'edge-1', version: '0', ready: () => true }, emptyView, ev), policy: edgePolicyAdmin(() => edgeClient.status()) },
    });
    edgeTarget = `127.0.0.1:${edgeAdmin.port}`;
    await until('the edge applied version 1', () => edgeClient.status().version === 1);
  });

  after(async () => {
    edgeClient?.stop();
    await edgeAdmin?.close();
    await cloudAdmin?.close();
    await control?.close();
    await cloudPlane?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('policy get on the cloud: version, summary, carriers and every edge\'s acknowledgement', async () => {
    await until('the ack reached the cloud', () => cloudPlane.service.edges()[0]?.appliedVersion === 1);
    const r = await cli([...on(cloudTarget), 'policy', 'get']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^policy {6}version 1$/m);
    assert.match(r.out, /^sources {5}global@1$/m);
    assert.match(r.out, /^schedule {4}alpha 0\.02, beta 0\.1, retransmit F 1000, first-bytes pinning 200000 bytes$/m);
    assert.match(r.out, /^CARRIER +TIER +CAP +BILLING DAY +CUT-OFF ms\nlte-a +primary +- +- +-\nlte-b +backup +- +- +-$/m);
    assert.match(r.out, /^EDGE +STREAM +SENT +APPLIED +REJECTED\nedge-1 +up +1 +1 +-$/m);
  });

  test('policy set FILE on the cloud: stored, pushed, applied by the edge; policy get on the edge shows it', async () => {
    writeFileSync(join(dir, 'new.json'), JSON.stringify({ schedule: { beta: 0.5 }, carriers: { 'lte-a': { tier: 'primary', dataCap: { bytes: 1000000000, billingDay: 3 } } } }));
    const s = await cli([...on(cloudTarget), 'policy', 'set', join(dir, 'new.json')]);
    assert.equal(s.code, 0, s.err);
    assert.equal(s.out, 'global policy stored: version 2 (global@2); pushed to 1 connected edge\n');
    await until('the edge applied version 2', () => edgeClient.status().version === 2);
    const g = await cli([...on(edgeTarget), 'policy', 'get']);
    assert.equal(g.code, 0, g.err);
    assert.match(g.out, /^policy {6}version 2 from the cloud, applied \d{4}-\d\d-\d\dT/m);
    assert.match(g.out, /^stream {6}up$/m);
    assert.match(g.out, /^lte-a +primary +1000000000 B +3 +-$/m);
    const j = await cli([...on(edgeTarget), '--json', 'policy', 'get']);
    const doc = JSON.parse(j.out) as { role: string; version: number; policy: { schedule: { beta: number } } };
    assert.deepEqual([doc.role, doc.version, doc.policy.schedule.beta], ['edge', 2, 0.5]);
  });

  test('an edge override, shown with --edge, and removed with --clear', async () => {
    writeFileSync(join(dir, 'edge.yaml'), 'carriers:\n  lte-b: { tier: secondary }\n');
    const s = await cli([...on(cloudTarget), 'policy', 'set', join(dir, 'edge.yaml'), '--edge', 'edge-1']);
    assert.equal(s.code, 0, s.err);
    assert.match(s.out, /^override of edge edge-1 stored: version 3 \(global@2, edge@3\); pushed to 1 connected edge\n$/);
    await until('version 3 on the edge', () => edgeClient.status().version === 3);
    assert.equal(edgeClient.status().policy?.carriers['lte-b']?.tier, 'secondary');
    const g = await cli([...on(cloudTarget), '--json', 'policy', 'get', '--edge', 'edge-1']);
    const doc = JSON.parse(g.out) as { document: unknown; sources: string[] };
    assert.deepEqual(doc.document, { carriers: { 'lte-b': { tier: 'secondary' } } });
    const c = await cli([...on(cloudTarget), 'policy', 'set', '--edge', 'edge-1', '--clear']);
    assert.equal(c.code, 0, c.err);
    assert.match(c.out, /^override of edge edge-1 removed: version 4 \(global@2\)/);
    await until('version 4 on the edge', () => edgeClient.status().version === 4);
  });

  test('refusals: an invalid policy (INVALID_ARGUMENT naming the fields), set on an edge, bad input', async () => {
    writeFileSync(join(dir, 'bad.yaml'), 'schedule:\n  alpha: -1\ncarriers:\n  lte-a: { tier: gold }\n');
    const r = await cli([...on(cloudTarget), 'policy', 'set', join(dir, 'bad.yaml')]);
    assert.equal(r.code, 1);
    assert.equal(r.err, 'braid: admin call to ' + cloudTarget + ' failed: INVALID_ARGUMENT: invalid global policy: schedule.alpha: expected a number between 0 and 100, got -1; '
      + 'carriers.lte-a.tier: expected one of primary|secondary|backup|never, got "gold"\n');
    assert.equal(edgeClient.status().version, 4, 'nothing was pushed');
    const e = await cli([...on(edgeTarget), 'policy', 'set', join(dir, 'new.json')]);
    assert.equal(e.code, 1);
    assert.match(e.err, /FAILED_PRECONDITION: an edge's policy comes from the cloud/);
    const bad = await cli([...on(cloudTarget), 'policy', 'get', '--edge', 'no way']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /INVALID_ARGUMENT: edge_id "no way" is not an edge id/);
    writeFileSync(join(dir, 'broken.yaml'), 'schedule: [1, 2\n');
    const broken = await cli([...on(cloudTarget), 'policy', 'set', join(dir, 'broken.yaml')]);
    assert.equal(broken.code, 2);
    assert.match(broken.err, /^braid: cannot use .*broken\.yaml: .* is not YAML or JSON/);
    const missing = await cli([...on(cloudTarget), 'policy', 'set', join(dir, 'nope.yaml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /ENOENT/);
    assert.equal((await cli([...on(cloudTarget), 'policy', 'set'])).code, 2);
    assert.equal((await cli([...on(cloudTarget), 'policy', 'set', '--clear'])).code, 2);
    assert.match((await cli([...on(cloudTarget), '--edge', 'x', 'status'])).err, /--edge and --clear belong to "policy get\|set"/);
  });

  test('unauthorised, unreachable, and a gateway that never answers (deadline)', async () => {
    const u = await cli(['--target', cloudTarget, '--server-name', 'braid-admin', '--ca', join(dir, 'ca.pem'), '--cert', join(dir, 'edge.pem'), '--key', join(dir, 'edge.key'), 'policy', 'get']);
    assert.equal(u.code, 1);
    assert.match(u.err, /^braid: the gateway at .* refused this certificate \(PERMISSION_DENIED: certificate CN=edge-1 is not an operator certificate/);
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const n = await cli(['--target', `127.0.0.1:${closedPort}`, '--certs', dir, '--timeout', '2000', 'policy', 'get']);
    assert.equal(n.code, 1);
    assert.match(n.err, /^braid: cannot reach the gateway's admin API at 127\.0\.0\.1:\d+ \(UNAVAILABLE: /);
    // Accepts TCP, never speaks TLS: the call ends at its deadline, not later.
    const held: net.Socket[] = [];
    const silent = net.createServer((s) => { held.push(s); });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const t0 = Date.now();
    const d = await cli(['--target', `127.0.0.1:${(silent.address() as net.AddressInfo).port}`, '--certs', dir, '--timeout', '700', 'policy', 'get']);
    const took = Date.now() - t0;
    for (const s of held) s.destroy();
    silent.close();
    assert.equal(d.code, 1);
    assert.match(d.err, /\((DEADLINE_EXCEEDED|UNAVAILABLE): /);
    assert.ok(took < 2500, `the call took ${took} ms with a 700 ms deadline`);
  });
});
