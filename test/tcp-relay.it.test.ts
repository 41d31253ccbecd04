// The TCP relay (split TCP, docs/tcp-relay.md) in network namespaces: real client and server
// kernels, real nftables redirect and SO_ORIGINAL_DST at the edge, the cloud dialing the real
// server, three tbf-shaped carriers between. Needs root (namespaces, TUN, nftables); fails
// loudly in CI without it, skips elsewhere.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot, requireRoot } from './harness/root.js';
import { createTopology, type Topology } from './harness/topology.js';
import { curlDownload, makeRandomFile, startNginx, startIperfServer, type IperfServer, type Nginx } from './harness/apps.js';
import { startGateways, type Gateways } from './harness/gateways.js';
import { until } from '../gateway-core/test/wait.js';

const MB = 1024 * 1024;
/** The port the test keeps end to end (dataPlane.tcpRelay.excludePorts). */
const EXCLUDED = 5201;

interface RelayStatus { accepted: number; refused: number; active: number; bytesReceived: number; resets: Record<string, number> }
interface CloudRelay { relay: { resets: Record<string, number>; opened: number } | null }

describe('TCP relay (split TCP) over three carriers', { skip: !isRoot() && process.env.CI !== 'true' ? 'needs root (network namespaces, TUN, nftables)' : false }, () => {
  let dir: string;
  let topo: Topology;
  let gw: Gateways;
  let nginx: Nginx;
  let iperf: IperfServer;
  let sha: string;
  const edgeRelay = async (): Promise<RelayStatus> => {
    const s = (await gw.edgeStatus()) as unknown as { tcpRelay: RelayStatus | null };
    assert.ok(s.tcpRelay, 'the edge relays TCP (both ends have it on)');
    return s.tcpRelay;
  };
  const cloudRelay = async (): Promise<NonNullable<CloudRelay['relay']>> => {
    const s = (await gw.cloudStatus()) as unknown as { sessions: CloudRelay[] };
    const r = s.sessions[0]?.relay;
    assert.ok(r, 'the cloud relays for the session');
    return r;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'braid-relay-'));
    topo = await createTopology({ carriers: [20, 10, 5].map((r, i) => ({ name: `lte-${'abc'[i]}`, rateMbit: r })) });
    nginx = await startNginx(topo, dir);
    sha = await makeRandomFile(nginx.root, 'file.bin', 20 * MB);
    iperf = await startIperfServer(topo, { port: EXCLUDED });
    gw = await startGateways(topo, {
      dir, multipathDestinations: [`${topo.addr.server}/32`],
      edge: { dataPlane: { tcpRelay: { excludePorts: [EXCLUDED] } } },
    });
    await gw.waitReady(30_000);
  });

  after(async () => {
    await gw?.stop();
    await iperf?.stop();
    await nginx?.stop();
    await topo?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('root is available', (t) => {
    requireRoot(t);
  });

  test('a download is relayed: the edge terminates it, every byte arrives, over every carrier', async () => {
    const r0 = await edgeRelay();
    const c0 = await gw.cloudStatus();
    const r = await curlDownload(topo, nginx.url('file.bin'), { timeoutS: 60 });
    assert.ok(r.ok, r.error);
    assert.equal(r.sha256, sha);
    const r1 = await edgeRelay();
    assert.equal(r1.accepted - r0.accepted, 1, 'one connection went through the relay listener');
    assert.ok(r1.bytesReceived - r0.bytesReceived >= 20 * MB, `the relay delivered ${r1.bytesReceived - r0.bytesReceived} bytes`);
    const c1 = await gw.cloudStatus();
    const sent = c1.paths.map((p, i) => p.txBytes - (c0.paths[i]?.txBytes ?? 0));
    assert.ok(sent.every((b) => b > 1 * MB), `every carrier carried the download: ${sent.join(', ')}`);
    console.log(`# relayed 20 MB in ${r.seconds.toFixed(2)} s (${((20 * MB * 8) / r.seconds / 1e6).toFixed(1)} Mbit/s over 35 Mbit/s of carriers); carriers ${sent.join(', ')}`);
  });

  test('an excluded port stays end to end: the listener never sees it, the TUN carries it', async () => {
    const r0 = await edgeRelay();
    const t0 = (await gw.edgeStatus()).tunnel.rxPackets;
    const res = await topo.exec(topo.ns.client, ['iperf3', '-c', topo.addr.server, '-p', String(EXCLUDED), '-t', '2', '-R', '-J'], { timeoutMs: 30_000 });
    assert.equal(res.code, 0, res.stderr);
    const r1 = await edgeRelay();
    assert.equal(r1.accepted, r0.accepted, 'the relay listener took none of it');
    const t1 = (await gw.edgeStatus()).tunnel.rxPackets;
    assert.ok(t1 - t0 > 100, `the edge's TUN took ${t1 - t0} packets of it`);
  });

  test('the relay port takes no connection that was not redirected', async () => {
    const r0 = await edgeRelay();
    const res = await topo.exec(topo.ns.client, ['curl', '-sS', '--max-time', '5', `http://${topo.addr.edgeLan}:7405/`], { timeoutMs: 15_000, allowFailure: true });
    assert.notEqual(res.code, 0, 'curl to the relay port itself failed');
    const r1 = await edgeRelay();
    assert.equal(r1.accepted, r0.accepted);
  });

  test('a server port nobody listens on: the client connection is reset at once, counted as refused', async () => {
    const c0 = await cloudRelay();
    const started = Date.now();
    const res = await topo.exec(topo.ns.client, ['curl', '-sS', '--max-time', '10', `http://${topo.addr.server}:81/`], { timeoutMs: 20_000, allowFailure: true });
    const tookMs = Date.now() - started;
    assert.notEqual(res.code, 0, 'curl failed');
    assert.match(res.stderr, /reset|Empty reply|Recv failure/i, res.stderr);
    assert.ok(tookMs < 5000, `the reset came after ${tookMs} ms`);
    await until('the cloud counted the refusal', async () => ((await cloudRelay()).resets['refused'] ?? 0) > (c0.resets['refused'] ?? 0), 5000);
  });

  test('after the transfers every relayed stream is closed on both sides', async () => {
    await until('no relayed stream left open', async () => (await edgeRelay()).active === 0 && (await cloudRelay()).opened > 0, 10_000);
  });
});
