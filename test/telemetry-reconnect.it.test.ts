// The edge's telemetry stream survives the death of the carrier it runs over: real gateways in
// namespaces, the control connection on carrier 0 (the edge's lowest-metric default route); we
// take carrier 0's link down on the edge, the stream's TCP connection is stranded, the reporter
// (acknowledgement timeout) or gRPC's keepalive gives it up, and the next stream goes out over
// carrier 1 on a new channel. Every report produced meanwhile reaches the cloud: none dropped,
// all acknowledged. One run: reports flowing again 7.3 s after the carrier died. Run twice: with
// the kernel's routes, and through the edge's carrier relay (control.viaCarriers).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTunnelFixture, type TunnelFixture } from './harness/fixture.js';
import { isRoot, requireRoot } from './harness/root.js';
import { untilValue } from '../gateway-core/test/wait.js';

interface UplinkStats { connected: boolean; produced: number; ackedSeq: number; queued: number; dropped: number; reconnects: number; lossReasons: Record<string, number> }


for (const viaCarriers of [false, true]) describe(`telemetry stream over another carrier (control.viaCarriers: ${viaCarriers})`, { timeout: 120_000 }, () => {
  let fx: TunnelFixture | undefined;

  before(async () => {
    if (!isRoot()) return;
    fx = await startTunnelFixture({
      name: 'braid-telemetry-reconnect', carriers: [{ name: 'lte-a', rateMbit: 20 }, { name: 'lte-b', rateMbit: 20 }],
      // Without the relay the kernel's default route decides (carrier 0 first); with it the relay dials every carrier.
      gateways: () => ({ edge: { control: { viaCarriers } } }),
    });
  });

  after(async () => {
    await fx?.stop();
  });

  async function uplink(): Promise<UplinkStats> {
    const s = (await fx!.gw.edgeStatus()) as unknown as { uplink: UplinkStats | null };
    assert.ok(s.uplink, 'the edge reports telemetry (uplink.enabled)');
    return s.uplink;
  }

  async function until(what: string, cond: (u: UplinkStats) => boolean, ms: number): Promise<UplinkStats> {
    let last: UplinkStats | undefined;
    return untilValue(what, async () => {
      last = await uplink();
      return cond(last) ? last : undefined;
    }, ms, 200, () => `last uplink status ${JSON.stringify(last)}`);
  }

  test('carrier 0 dies: the reporter reconnects over carrier 1 and loses no report', async (t) => {
    if (!requireRoot(t) || !fx) return;
    const before = await until('reports acknowledged', (u) => u.connected && u.ackedSeq > 0, 20_000);
    const t0 = Date.now();
    await fx.topo.setCarrierDown(0);
    // Reports keep being produced (at least one per 5 s stable interval) while the stream is stranded;
    // the new stream over carrier 1 delivers them: acknowledged up to the newest, nothing queued.
    const after = await until('a new stream that delivered the reports made after the carrier died',
      (u) => u.reconnects > before.reconnects && u.ackedSeq > before.produced && u.queued === 0, 60_000);
    const reconnectMs = Date.now() - t0;
    t.diagnostic(`reports flowing over carrier 1 ${reconnectMs} ms after carrier 0 died (streams ended: ${JSON.stringify(after.lossReasons)}); produced ${after.produced}, acknowledged ${after.ackedSeq}, dropped ${after.dropped}`);
    // The acknowledgement timeout (6 s) plus a backoff and a new connection: well under 15 s.
    assert.ok(reconnectMs < 15_000, `took ${reconnectMs} ms`);
    assert.equal(after.dropped, 0, 'no report dropped');
    assert.equal(after.ackedSeq, after.produced, 'every report produced was acknowledged');
    const cloud = await fx.gw.cloudStatus();
    assert.ok(cloud.ready);
    await fx.topo.setCarrierUp(0);
  });
});
