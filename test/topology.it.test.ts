// The harness on its own, no Braid in the path: the client reaches the server over carrier 0
// (the edge's preferred default route, NATed by the edge), tbf shapes a carrier to its rate,
// carriers go down and up, and destroy() leaves nothing behind.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { curlDownload, curlUpload, iperfTcp, makeRandomFile, startIperfServer, startNginx, startUploadSink } from './harness/apps.js';
import { listNamespaces } from './harness/netns.js';
import { isRoot, requireRoot } from './harness/root.js';
import { createTopology, type Topology } from './harness/topology.js';

let topo: Topology | undefined;
let dir = '';

before(async () => {
  if (!isRoot()) return;
  dir = await mkdtemp(join(tmpdir(), 'braid-topo-'));
  topo = await createTopology({ carriers: [{ name: 'a', rateMbit: 20 }, { name: 'b', rateMbit: 10 }] });
});

after(async () => {
  await topo?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function need(t: import('node:test').TestContext): Topology | undefined {
  if (!requireRoot(t)) return undefined;
  assert.ok(topo, 'topology was not created');
  return topo;
}

test('client reaches both server addresses over carrier 0, files arrive intact', async (t) => {
  const tp = need(t);
  if (!tp) return;
  for (const host of [tp.addr.server, tp.addr.serverAlt]) {
    const ping = await tp.exec(tp.ns.client, ['ping', '-c', '2', '-i', '0.2', '-W', '2', host]);
    assert.match(ping.stdout, / 0% packet loss/);
  }
  const nginx = await startNginx(tp, join(dir, 'nginx'));
  const sha = await makeRandomFile(nginx.root, 'file-2m.bin', 2 * 1024 * 1024);
  const before0 = await tp.carrierCounters(0);
  const before1 = await tp.carrierCounters(1);
  const dl = await curlDownload(tp, nginx.url('file-2m.bin'), { timeoutS: 20 });
  assert.ok(dl.ok, dl.error);
  assert.equal(dl.bytes, 2 * 1024 * 1024);
  assert.equal(dl.sha256, sha);
  const alt = await curlDownload(tp, nginx.url('file-2m.bin', tp.addr.serverAlt), { timeoutS: 20 });
  assert.equal(alt.sha256, sha);

  // Everything went over carrier 0 (lowest-metric default route), nothing over carrier 1.
  const after0 = await tp.carrierCounters(0);
  const after1 = await tp.carrierCounters(1);
  assert.ok(after0.down.bytes - before0.down.bytes > 4 * 1024 * 1024, 'downloads crossed carrier 0');
  assert.ok(after1.down.bytes - before1.down.bytes < 64 * 1024, 'carrier 1 stayed idle');

  const sink = await startUploadSink(tp);
  const up = await curlUpload(tp, sink.url(), join(nginx.root, 'file-2m.bin'), { timeoutS: 20 });
  assert.ok(up.ok, up.error);
  assert.equal(up.serverSha256, sha);
  await sink.stop();
  await nginx.stop();
});

test('a 20 Mbit/s tbf carrier measures within 10% of 20 Mbit/s with iperf3, both directions', async (t) => {
  const tp = need(t);
  if (!tp) return;
  const server = await startIperfServer(tp);
  try {
    const up = await iperfTcp(tp, { seconds: 4, omitS: 1 });
    const down = await iperfTcp(tp, { seconds: 4, omitS: 1, reverse: true });
    t.diagnostic(`upload ${up.mbps.toFixed(2)} Mbit/s, download ${down.mbps.toFixed(2)} Mbit/s`);
    for (const r of [up, down]) assert.ok(Math.abs(r.mbps - 20) <= 2, `${r.mbps.toFixed(2)} Mbit/s is not within 10% of 20`);
  } finally {
    await server.stop();
  }
});

test('setCarrierDown moves traffic to the next default route, setCarrierUp restores carrier 0', async (t) => {
  const tp = need(t);
  if (!tp) return;
  await tp.setCarrierDown(0);
  const routes = await tp.exec(tp.ns.edge, ['ip', 'route', 'show', 'default']);
  assert.doesNotMatch(routes.stdout, /wan0/);
  const b1 = await tp.carrierCounters(1);
  await tp.exec(tp.ns.client, ['ping', '-c', '3', '-i', '0.2', '-W', '2', tp.addr.server]);
  const a1 = await tp.carrierCounters(1);
  assert.ok(a1.up.packets - b1.up.packets >= 3, 'pings crossed carrier 1 while carrier 0 was down');

  await tp.setCarrierUp(0);
  const restored = await tp.exec(tp.ns.edge, ['ip', 'route', 'show', 'default']);
  assert.match(restored.stdout, /default via 10\.20\.0\.1 dev wan0 metric 10/);
  const b0 = await tp.carrierCounters(0);
  await tp.exec(tp.ns.client, ['ping', '-c', '3', '-i', '0.2', '-W', '2', tp.addr.server]);
  const a0 = await tp.carrierCounters(0);
  assert.ok(a0.up.packets - b0.up.packets >= 3, 'pings cross carrier 0 again');
});

test('destroy() removes every namespace and is idempotent', async (t) => {
  if (!requireRoot(t)) return;
  const own = await createTopology({ prefix: `brd${process.pid % 10000}`, carriers: [{ name: 'x' }] });
  const names = Object.values(own.ns).flat();
  const listed = await listNamespaces();
  for (const n of names) assert.ok(listed.includes(n), `${n} exists`);
  const p = own.spawn(own.ns.server, ['sleep', '60']);
  await own.destroy();
  await own.destroy();
  assert.equal(p.running, false);
  const left = await listNamespaces();
  for (const n of names) assert.ok(!left.includes(n), `${n} is gone`);
  // The shared topology goes too; after() then has nothing left to do.
  if (topo) {
    const shared = Object.values(topo.ns).flat();
    await topo.destroy();
    const gone = await listNamespaces();
    for (const n of shared) assert.ok(!gone.includes(n), `${n} is gone`);
  }
});
