// S0 transport racing end to end, in network namespaces with the real gateways: one carrier's
// middlebox drops UDP to the cloud (nftables in that carrier's namespace), so after the switch
// threshold T the carrier comes into use over TCP; when TCP is dropped as well, the racer's
// re-establishment runs the cascade again and the carrier ends up on TLS. A download in the
// tunnel stays byte-identical throughout. Needs root; fails in CI without it, skips elsewhere.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isRoot, requireRoot } from './harness/root.js';
import type { Topology } from './harness/topology.js';
import { nft } from './harness/netns.js';
import { curlDownload, sleep, type Nginx } from './harness/apps.js';
import type { Gateways, GatewayStatus } from './harness/gateways.js';
import { startTunnelFixture, type TunnelFixture } from './harness/fixture.js';
import { untilValue } from '../gateway-core/test/wait.js';

const MB = 1024 * 1024;
const T_MS = 300;
const ANOMALY_MS = 1500;
const TLS_PORT = 8443;
const BLOCKED = 1; // the carrier whose middlebox drops UDP, then TCP

interface RacerStatusView {
  carrier: string;
  round: number;
  phase: string;
  active: { stream: number; kind: string; weight: number } | null;
  streams: { stream: number; kind: string; state: string; weight: number; requestedAtMs: number | null; connectedAtMs: number | null }[];
  events: { atMs: number; round: number; event: string }[];
}
type EdgeStatus = GatewayStatus & { racing: RacerStatusView[]; paths: (GatewayStatus['paths'][number] & { kind: string | null; transport: string | null })[] };

describe('S0 racing: a carrier that drops UDP, then TCP', { skip: !isRoot() && process.env.CI !== 'true' ? 'needs root (network namespaces, TUN)' : false }, () => {
  let fx: TunnelFixture;
  let topo: Topology;
  let gw: Gateways;
  let nginx: Nginx;
  let sha: string;

  const edge = async (): Promise<EdgeStatus> => (await gw.edgeStatus()) as EdgeStatus;
  const waitEdge = async (what: string, cond: (s: EdgeStatus) => boolean, timeoutMs: number): Promise<EdgeStatus> => {
    let last: EdgeStatus | undefined;
    // A probe that throws (the admin endpoint may be slow to answer under load) is tried again.
    return untilValue(`edge: ${what}`, async () => {
      last = await edge();
      return cond(last) ? last : undefined;
    }, timeoutMs, 100, () => `last racing status: ${JSON.stringify(last?.racing[BLOCKED])}\n--- edge log tail ---\n${gw.edge.tail(30)}`);
  };
  /** In the blocked carrier's namespace: drop edge->cloud packets of one protocol to the data port. */
  const block = (proto: 'udp' | 'tcp'): Promise<unknown> =>
    nft(topo.ns.carriers[BLOCKED]!, `add rule inet racing blockdata ip daddr ${topo.addr.cloudPublic} ${proto} dport 7000 drop`);

  before(async () => {
    fx = await startTunnelFixture({
      name: 'braid-racing',
      carriers: [{ name: 'lte-a', rateMbit: 20 }, { name: 'lte-b', rateMbit: 20 }],
      files: { 'file.bin': 16 * MB },
      beforeGateways: async (t) => {
        topo = t;
        await nft(t.ns.carriers[BLOCKED]!, 'table inet racing {\n  chain blockdata {\n    type filter hook forward priority 0; policy accept;\n  }\n}');
        await block('udp');
      },
      gateways: (t) => ({
        edge: {
          dataPlane: {
            keepaliveMs: 200,
            racing: { switchThresholdMs: T_MS, anomalyThresholdMs: ANOMALY_MS, tlsPort: TLS_PORT, weights: { p1: 20, p2: 10, p3: 30 } },
          },
        },
        // The cloud announces the keepalive both ends use; the edge keeps its anomaly threshold above three of them.
        cloud: { dataPlane: { keepaliveMs: 200, tcpListen: `${t.addr.cloudPublic}:7000`, tlsListen: `${t.addr.cloudPublic}:${TLS_PORT}` } },
      }),
    });
    ({ topo, gw, nginx } = fx);
    sha = fx.sha['file.bin'] as string;
  });

  after(async () => {
    await fx?.stop();
  });

  test('root is available', (t) => {
    requireRoot(t);
  });

  test('UDP blocked: the carrier connects over TCP after T, with weight P3; the other carrier stays on UDP with P1', async () => {
    const st = await waitEdge('carrier on tcp', (s) => s.racing[BLOCKED]?.active?.kind === 'tcp', 10_000);
    const r = st.racing[BLOCKED]!;
    assert.equal(r.round, 1);
    assert.deepEqual(r.active, { stream: 2, kind: 'tcp', weight: 30 });
    const tcp = r.streams[1]!;
    // Real timers: T after UDP, give or take the event loop's lateness on a busy machine.
    assert.ok(tcp.requestedAtMs !== null && tcp.requestedAtMs >= T_MS && tcp.requestedAtMs < T_MS + 150, `TCP requested at ${tcp.requestedAtMs} ms, T = ${T_MS}`);
    assert.ok(tcp.connectedAtMs !== null && tcp.connectedAtMs >= T_MS && tcp.connectedAtMs < T_MS + 2000, `TCP connected at ${tcp.connectedAtMs} ms`);
    assert.equal(r.streams[0]!.state, 'closed', 'E1 (UDP) closed: E2 connected and E1 did not (S0-4)');
    assert.equal(r.streams[2]!.state, 'placeholder', 'stream 3 never started: stream 2 connected before t0 + 2T');
    assert.equal(st.paths[BLOCKED]!.kind, 'tcp');
    assert.match(st.paths[BLOCKED]!.transport ?? '', /^tcp wan1 -> /);
    assert.equal(st.paths[BLOCKED]!.state, 'up');
    assert.deepEqual(st.racing[0]!.active, { stream: 1, kind: 'udp', weight: 20 });
    assert.equal(st.paths[0]!.kind, 'udp');
    // The TCP connection was pinned to the blocked carrier before it connected (SO_BINDTODEVICE):
    // the cloud sees it from that carrier's address, although the edge's default route is carrier 0.
    const cloud = (await gw.cloudStatus()) as GatewayStatus & { paths: { transport: string | null }[] };
    assert.match(cloud.paths[BLOCKED]?.transport ?? '', new RegExp(`^tcp peer ${topo.addr.edgeWan(BLOCKED).replace(/\./g, '\\.')}:`));
  });

  test('over TCP the carrier carries its share of a byte-identical download', async () => {
    const before = await gw.cloudStatus();
    const r = await curlDownload(topo, nginx.url('file.bin'), { timeoutS: 60 });
    assert.ok(r.ok, r.error);
    assert.equal(r.sha256, sha);
    const afterS = await gw.cloudStatus();
    const viaBlocked = (afterS.paths[BLOCKED]?.txBytes ?? 0) - (before.paths[BLOCKED]?.txBytes ?? 0);
    assert.ok(viaBlocked > 2 * MB, `the TCP carrier sent ${viaBlocked} bytes of the 16 MB download`);
  });

  test('TCP dropped too, mid-download: the carrier is re-established over TLS; the download stays byte-identical', async () => {
    const dl = curlDownload(topo, nginx.url('file.bin'), { timeoutS: 90 });
    await sleep(800);
    await block('tcp');
    const r = await dl;
    assert.ok(r.ok, r.error);
    assert.equal(r.sha256, sha);
    const st = await waitEdge('carrier on tls', (s) => s.racing[BLOCKED]?.active?.kind === 'tls', 20_000);
    const rc = st.racing[BLOCKED]!;
    assert.ok(rc.round >= 2, `re-established (round ${rc.round})`);
    assert.deepEqual(rc.active, { stream: 3, kind: 'tls', weight: 30 });
    const tls = rc.streams[2]!.requestedAtMs;
    assert.ok(tls !== null && tls >= 2 * T_MS && tls < 2 * T_MS + 300, `TLS requested at ${tls} ms of the new round, t0 + 2T = ${2 * T_MS}`);
    assert.ok(rc.events.some((e) => /abnormal for \d+ ms/.test(e.event)), JSON.stringify(rc.events));
    assert.equal(st.paths[BLOCKED]!.kind, 'tls');
    assert.match(st.paths[BLOCKED]!.transport ?? '', /^tls wan1 -> /);

    // And it carries traffic over TLS.
    await waitEdge('path up over tls', (s) => s.paths[BLOCKED]?.state === 'up', 5000);
    const before = await gw.cloudStatus();
    const d2 = await curlDownload(topo, nginx.url('file.bin'), { timeoutS: 60 });
    assert.ok(d2.ok, d2.error);
    assert.equal(d2.sha256, sha);
    const afterS = await gw.cloudStatus();
    const viaBlocked = (afterS.paths[BLOCKED]?.txBytes ?? 0) - (before.paths[BLOCKED]?.txBytes ?? 0);
    assert.ok(viaBlocked > 2 * MB, `the TLS carrier sent ${viaBlocked} bytes of the 16 MB download`);
  });
});
