// NAT rebinding: a carrier whose public address/port changes mid-transfer is followed by the
// cloud as soon as authenticated packets arrive from the new address (CloudGateway.learnPath ->
// UdpPeerPath.moveTo). The carrier's namespace NATs the edge's data-plane UDP like a CGNAT would;
// the rebinding moves the flow to a new conntrack zone with a new SNAT port, so its next packet
// gets a fresh mapping (what a CGNAT timing out a binding does). Needs root.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { isRoot, requireRoot } from './harness/root.js';
import { nft } from './harness/netns.js';
import { curlDownload, sleep } from './harness/apps.js';
import type { GatewayStatus } from './harness/gateways.js';
import { startTunnelFixture, type TunnelFixture } from './harness/fixture.js';

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
  let fx: TunnelFixture;

  before(async () => {
    fx = await startTunnelFixture({
      name: 'braid-nat',
      carriers: [{ name: 'lte-a', rateMbit: 20 }, { name: 'lte-b', rateMbit: 20 }],
      files: { 'file.bin': 16 * MB },
      beforeGateways: async (topo) => {
        await nft(topo.ns.carriers[NATTED]!, 'table ip cgnat {}');
        await nft(topo.ns.carriers[NATTED]!, natRules(topo.addr.carrierCloudSide(NATTED), 1, 40000));
      },
    });
  });

  after(async () => {
    await fx?.stop();
  });

  test('root is available', (t) => {
    requireRoot(t);
  });

  test('the cloud follows the new address mid-download; the download is byte-identical and the carrier keeps carrying', async () => {
    const { topo, gw, nginx } = fx;
    const sha = fx.sha['file.bin'];
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
