// NAT rebinding: a carrier whose public address/port changes mid-transfer is followed by the
// cloud as soon as authenticated packets arrive from the new address (CloudGateway.learnPath ->
// UdpPeerPath.moveTo). The carrier's namespace NATs the edge's data-plane UDP like a CGNAT would;
// the rebinding moves the flow to a new conntrack zone with a new SNAT port, so its next packet
// gets a fresh mapping (what a CGNAT timing out a binding does). Needs root.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot, requireRoot } from './harness/root.js';
import { createTopology, type Topology } from './harness/topology.js';
import { nft } from './harness/netns.js';
import { curlDownload, makeRandomFile, sleep, startNginx, type Nginx } from './harness/apps.js';
import { startGateways, type Gateways, type GatewayStatus } from './harness/gateways.js';

const MB = 1024 * 1024;
const NATTED = 1;
type CloudStatus = GatewayStatus & { paths: (GatewayStatus['paths'][number] & { transport: string | null })[] };

/** The carrier's NAT: flows to the cloud's data port in conntrack `zone`, SNATed to `port`. */
function natRules(carrierCloudSide: string, zone: number, port: number): string {
  return [
    'flush table ip cgnat',
    'table ip cgnat {',
    '  chain pre {',
    '    type filter hook prerouting priority raw; policy accept;',
    `    iifname "edge" udp dport 7000 ct zone set ${zone}`,
    `    iifname "cloud" udp sport 7000 ct zone set ${zone}`,
    '  }',
    '  chain post {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    oifname "cloud" udp dport 7000 snat to ${carrierCloudSide}:${port}`,
    '  }',
    '}',
  ].join('\n');
}

describe('NAT rebinding on a carrier', { skip: !isRoot() && process.env.CI !== 'true' ? 'needs root (network namespaces, TUN)' : false }, () => {
  let dir: string;
  let topo: Topology;
  let gw: Gateways;
  let nginx: Nginx;
  let sha: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'braid-nat-'));
    topo = await createTopology({ carriers: [{ name: 'lte-a', rateMbit: 20 }, { name: 'lte-b', rateMbit: 20 }] });
    nginx = await startNginx(topo, dir);
    sha = await makeRandomFile(nginx.root, 'file.bin', 16 * MB);
    await nft(topo.ns.carriers[NATTED]!, 'table ip cgnat {}');
    await nft(topo.ns.carriers[NATTED]!, natRules(topo.addr.carrierCloudSide(NATTED), 1, 40000));
    gw = await startGateways(topo, { dir });
    await gw.waitReady(30_000);
  });

  after(async () => {
    await gw?.stop();
    await nginx?.stop();
    await topo?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('root is available', (t) => {
    requireRoot(t);
  });

  test('the cloud follows the new address mid-download; the download is byte-identical and the carrier keeps carrying', async () => {
    const nat = topo.addr.carrierCloudSide(NATTED);
    const st0 = (await gw.cloudStatus()) as CloudStatus;
    assert.equal(st0.paths[NATTED]?.transport, `udp peer ${nat}:40000`, 'the cloud sees the carrier through its NAT');

    const dl = curlDownload(topo, nginx.url('file.bin'), { timeoutS: 60 });
    await sleep(1000);
    await nft(topo.ns.carriers[NATTED]!, natRules(nat, 2, 40001));
    const r = await dl;
    assert.ok(r.ok, r.error);
    assert.equal(r.sha256, sha);

    const st1 = (await gw.cloudStatus()) as CloudStatus;
    assert.equal(st1.paths[NATTED]?.transport, `udp peer ${nat}:40001`, 'the cloud answers at the new binding');
    assert.equal(st1.paths[NATTED]?.state, 'up');
    const log = await readFile(gw.logs.cloud, 'utf8');
    assert.match(log, new RegExp(`"from":"${nat.replace(/\./g, '\\.')}:40000","to":"${nat.replace(/\./g, '\\.')}:40001".*path moved \\(NAT rebinding\\)`));

    // After the move the carrier carries its share again.
    const before = (await gw.cloudStatus()) as CloudStatus;
    const d2 = await curlDownload(topo, nginx.url('file.bin'), { timeoutS: 60 });
    assert.ok(d2.ok, d2.error);
    assert.equal(d2.sha256, sha);
    const afterS = (await gw.cloudStatus()) as CloudStatus;
    const sent = (afterS.paths[NATTED]?.txBytes ?? 0) - (before.paths[NATTED]?.txBytes ?? 0);
    assert.ok(sent > 2 * MB, `the rebound carrier sent ${sent} bytes of the 16 MB download`);
  });
});
