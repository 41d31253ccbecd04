// In-band failure detection: the carrier carrying most traffic blacks out (every packet
// silently dropped inside the carrier, as in a tunnel or a cutting) during a bulk download.
// The transfer goes on over the other carriers: the longest interval with no bytes reaching
// the client stays under 300 ms, the dead carrier is declared down, and the download is
// byte-identical. Needs root (namespaces, TUN).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isRoot, requireRoot } from './harness/root.js';
import type { Topology } from './harness/topology.js';
import { curlDownload, sleep } from './harness/apps.js';
import { startTunnelFixture, type TunnelFixture } from './harness/fixture.js';

const MB = 1024 * 1024;

async function blackout(topo: Topology, i: number, on: boolean): Promise<void> {
  const ns = topo.ns.carriers[i] as string;
  if (on) {
    await topo.exec(ns, ['nft', '-f', '-'], { input: 'table inet blackout {\n chain cut {\n  type filter hook forward priority 0; policy drop;\n }\n}\n' });
  } else {
    await topo.exec(ns, ['nft', 'delete', 'table', 'inet', 'blackout'], { allowFailure: true });
  }
}

describe('blackout of the busiest carrier during a bulk download', { skip: !isRoot() && process.env.CI !== 'true' ? 'needs root (network namespaces, TUN)' : false }, () => {
  let fx: TunnelFixture;

  before(async () => {
    fx = await startTunnelFixture({
      name: 'braid-failover',
      carriers: [20, 10, 5].map((r, i) => ({ name: `lte-${'abc'[i]}`, rateMbit: r })),
      files: { 'big.bin': 40 * MB },
    });
  });

  after(async () => {
    await fx?.stop();
  });

  test('root is available', (t) => {
    requireRoot(t);
  });

  test('longest zero-goodput gap <= 300 ms, carrier declared down, transfer byte-identical', async () => {
    const arrivals: number[] = [];
    const { topo, gw, nginx } = fx;
    const dl = curlDownload(topo, nginx.url('big.bin'), { timeoutS: 120, onBytes: () => arrivals.push(performance.now()) });
    await sleep(4000);
    const t0 = performance.now();
    await blackout(topo, 0, true);
    await sleep(3000);
    const edge = await gw.edgeStatus();
    const cloud = await gw.cloudStatus();
    const r = await dl;
    await blackout(topo, 0, false);
    assert.ok(r.ok, r.error);
    assert.equal(r.sha256, fx.sha['big.bin']);
    assert.equal(edge.paths[0]?.state, 'down', 'the edge declared the dead carrier down');
    assert.equal(cloud.paths[0]?.state, 'down', 'the cloud declared the dead carrier down');
    // Longest interval without bytes from one second before the blackout to three after.
    const win = arrivals.filter((t) => t >= t0 - 1000 && t <= t0 + 3000);
    let gap = 0;
    for (let i = 1; i < win.length; i++) gap = Math.max(gap, (win[i] as number) - (win[i - 1] as number));
    console.log(`longest gap around the blackout: ${gap.toFixed(0)} ms`);
    assert.ok(win.length > 10, 'bytes kept arriving around the blackout');
    assert.ok(gap <= 300, `longest zero-goodput gap ${gap.toFixed(0)} ms`);
  });
});
