// The policy plane end to end with the real gateways (namespaces, TUN, mTLS gRPC): the cloud
// loads a policy file that makes carrier lte-a a backup; the edge, whose control connections go
// through the carrier relay (control.viaCarriers), receives it over the PolicyService stream,
// applies it to its running session and acknowledges it. A download then goes entirely over
// lte-b (lte-a carries probes only, in both directions); when lte-b dies the backup carries the
// next download, which arrives intact.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { curlDownload } from './harness/apps.js';
import { startTunnelFixture } from './harness/fixture.js';
import { requireRoot } from './harness/root.js';
import { until } from '../gateway-core/test/wait.js';

const MB = 1024 * 1024;

test('a backup-tier carrier from the cloud\'s policy carries nothing until the primary is gone', { timeout: 90_000 }, async (t) => {
  if (!requireRoot(t)) return;
  const pdir = mkdtempSync(join(tmpdir(), 'braid-policy-gw-'));
  const policyFile = join(pdir, 'policy.yaml');
  writeFileSync(policyFile, 'carriers:\n  lte-a: { tier: backup }\n  lte-b: { tier: primary }\nschedule:\n  pinBytes: 100000\n');
  const fx = await startTunnelFixture({
    name: 'braid-policy-gw',
    carriers: [{ name: 'lte-a', rateMbit: 20 }, { name: 'lte-b', rateMbit: 20 }],
    files: { 'one.bin': 3 * MB, 'two.bin': 2 * MB },
    gateways: () => ({ cloud: { policy: { file: policyFile, heartbeatMs: 500 } }, edge: { control: { viaCarriers: true } } }),
  });
  try {
    const { topo, gw, nginx } = fx;
    const tails = (): string => `--- edge ---\n${gw.edge.tail(30)}\n--- cloud ---\n${gw.cloud.tail(30)}`;
    await until('the edge applied policy version 1', () => /policy version 1 applied/.test(gw.edge.output()), 15_000, 50, tails);
    await until('the cloud got the ack', () => /edge demo-edge applied policy version 1/.test(gw.cloud.output()), 5_000, 50, tails);
    assert.match(gw.edge.output(), /control connection to 198\.18\.0\.1:7443 over lte-a/, 'control went through the relay');

    const before = [await topo.carrierCounters(0), await topo.carrierCounters(1)];
    const one = await curlDownload(topo, nginx.url('one.bin'), { timeoutS: 60 });
    assert.ok(one.ok, one.error);
    assert.equal(one.sha256, fx.sha['one.bin']);
    const after = [await topo.carrierCounters(0), await topo.carrierCounters(1)];
    const down = after.map((c, i) => c.down.bytes - before[i]!.down.bytes);
    const up = after.map((c, i) => c.up.bytes - before[i]!.up.bytes);
    t.diagnostic(`download of 3 MiB: lte-a down ${down[0]} B up ${up[0]} B, lte-b down ${down[1]} B up ${up[1]} B`);
    assert.ok(down[1]! > 3 * MB, 'the primary carried the download');
    // Probes and keepalives only on the backup (a few kB), in both directions.
    assert.ok(down[0]! < 100_000, `the backup carried ${down[0]} B downstream`);
    assert.ok(up[0]! < 100_000, `the backup carried ${up[0]} B upstream`);

    await topo.setCarrierDown(1);
    const two = await curlDownload(topo, nginx.url('two.bin'), { timeoutS: 60 });
    assert.ok(two.ok, `${two.error}\n${tails()}`);
    assert.equal(two.sha256, fx.sha['two.bin']);
    const last = await topo.carrierCounters(0);
    assert.ok(last.down.bytes - after[0]!.down.bytes > 2 * MB, 'with the primary gone the backup carried the second download');
  } finally {
    await fx.stop();
    rmSync(pdir, { recursive: true, force: true });
  }
});
