// Path policy end to end (issue 8's tiers and caps, applied by the engine): three carriers,
// lte-a primary, lte-b primary with a data cap, lte-c backup. The policy is the cloud's (its
// policy file), streamed to the edge (braid.v1.PolicyService) and put in force there with
// Session.setPathPolicy; the edge counts the cap in its state file (dataPlane.capStateFile),
// and the cloud's own session follows the tiers the edge advertises in-band.
//   1. A download that needs more than lte-b's cap: traffic moves off lte-b when the cap is
//      reached, the transfer completes byte-identical, lte-b's counters stop near the cap, the
//      count is in the state file, and the backup carried no data.
//   2. A download during which lte-a (the last primary) blacks out: the backup carries it on.
// Needs root (namespaces, TUN).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot, requireRoot } from './harness/root.js';
import type { Topology } from './harness/topology.js';
import type { GatewayStatus } from './harness/gateways.js';
import { curlDownload, sleep } from './harness/apps.js';
import { startTunnelFixture, type TunnelFixture } from './harness/fixture.js';
import { untilValue } from '../gateway-core/test/wait.js';

const MB = 1024 * 1024;
const CAP = 6 * MB;

async function blackout(topo: Topology, i: number, on: boolean): Promise<void> {
  const ns = topo.ns.carriers[i] as string;
  if (on) {
    await topo.exec(ns, ['nft', '-f', '-'], { input: 'table inet blackout {\n chain cut {\n  type filter hook forward priority 0; policy drop;\n }\n}\n' });
  } else {
    await topo.exec(ns, ['nft', 'delete', 'table', 'inet', 'blackout'], { allowFailure: true });
  }
}

/** Wire bytes both ways on the edge's carrier `name` (what a carrier bills). */
function carrierBytes(st: GatewayStatus, name: string): number {
  const p = st.paths.find((x) => x.name === name);
  assert.ok(p, `edge has a path ${name}`);
  return p.txBytes + p.rxBytes;
}

describe('path policy: a data cap and a backup carrier', { skip: !isRoot() && process.env.CI !== 'true' ? 'needs root (network namespaces, TUN)' : false }, () => {
  let fx: TunnelFixture;
  let stateDir = '';
  let capFile = '';

  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'braid-caps-'));
    capFile = join(stateDir, 'caps.json');
    const policyFile = join(stateDir, 'policy.json');
    await writeFile(policyFile, JSON.stringify({ carriers: { 'lte-b': { dataCap: { bytes: CAP } }, 'lte-c': { tier: 'backup' } } }));
    fx = await startTunnelFixture({
      name: 'braid-pathpolicy',
      carriers: [{ name: 'lte-a', rateMbit: 20 }, { name: 'lte-b', rateMbit: 20 }, { name: 'lte-c', rateMbit: 20 }],
      files: { 'capped.bin': 24 * MB, 'backup.bin': 16 * MB },
      gateways: () => ({
        cloud: { policy: { file: policyFile } },
        edge: { dataPlane: { capStateFile: capFile } },
      }),
    });
    // The cloud's policy reaches the edge over the policy stream shortly after the session.
    let tier: string | undefined;
    await untilValue('the cloud\'s policy at the edge (lte-c tier backup)', async () => {
      const st = await fx.gw.edgeStatus();
      tier = (st.paths.find((p) => p.name === 'lte-c') as unknown as { tier?: string } | undefined)?.tier;
      return tier === 'backup' ? true : undefined;
    }, 15_000, 200, () => `lte-c tier ${String(tier)}`);
  });

  after(async () => {
    await fx?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  test('root is available', (t) => {
    requireRoot(t);
  });

  test('a data cap reached mid-transfer moves traffic off the carrier; the transfer is intact', async () => {
    const { topo, gw, nginx } = fx;
    const start = await gw.edgeStatus();
    const backupStart = carrierBytes(start, 'lte-c');
    const r = await curlDownload(topo, nginx.url('capped.bin'), { timeoutS: 60 });
    assert.ok(r.ok, r.error);
    assert.equal(r.sha256, fx.sha['capped.bin']);
    await sleep(1500); // the state file is written about once a second
    const end = await gw.edgeStatus();
    const usedB = carrierBytes(end, 'lte-b');
    const usedA = carrierBytes(end, 'lte-a');
    const backup = carrierBytes(end, 'lte-c') - backupStart;
    console.log(`lte-a ${(usedA / MB).toFixed(2)} MB, lte-b ${(usedB / MB).toFixed(2)} MB (cap ${CAP / MB} MB), lte-c (backup) ${(backup / 1024).toFixed(1)} KB`);
    // The cap was reached (the download needed more than lte-b may carry) and lte-b stopped
    // near it: what was in flight when the cloud learned of the cap, then keepalives only.
    assert.ok(usedB >= CAP, `lte-b reached its cap: ${usedB} B`);
    assert.ok(usedB <= CAP * 1.1, `lte-b stopped near its cap: ${usedB} B, cap ${CAP} B`);
    assert.ok(usedA > 24 * MB - CAP, `lte-a carried the rest: ${usedA} B`);
    assert.ok(backup < 64 * 1024, `the backup carried no data while primaries were up: ${backup} B`);
    const state = JSON.parse(await readFile(capFile, 'utf8')) as { carriers: Record<string, { bytes: number }> };
    assert.ok((state.carriers['lte-b']?.bytes ?? 0) >= CAP, `state file counts lte-b at its cap: ${JSON.stringify(state.carriers['lte-b'])}`);
    const edgePath = end.paths.find((p) => p.name === 'lte-b') as unknown as { tier?: string };
    assert.equal(edgePath.tier, 'never', 'lte-b is reported at its cap');
  });

  test('the backup carries nothing until the primaries are gone, then it carries the transfer', async () => {
    const { topo, gw, nginx } = fx;
    const s0 = await gw.edgeStatus();
    const dl = curlDownload(topo, nginx.url('backup.bin'), { timeoutS: 60 });
    await sleep(1500);
    const s1 = await gw.edgeStatus();
    const beforeCut = carrierBytes(s1, 'lte-c') - carrierBytes(s0, 'lte-c');
    await blackout(topo, 0, true);
    try {
      const r = await dl;
      assert.ok(r.ok, r.error);
      assert.equal(r.sha256, fx.sha['backup.bin']);
      const s2 = await gw.edgeStatus();
      const afterCut = carrierBytes(s2, 'lte-c') - carrierBytes(s1, 'lte-c');
      const aBefore = carrierBytes(s1, 'lte-a') - carrierBytes(s0, 'lte-a');
      console.log(`before the cut: lte-a ${(aBefore / MB).toFixed(2)} MB, lte-c ${(beforeCut / 1024).toFixed(1)} KB; after: lte-c ${(afterCut / MB).toFixed(2)} MB`);
      assert.ok(aBefore > 1 * MB, `lte-a carried the start: ${aBefore} B`);
      assert.ok(beforeCut < 32 * 1024, `backup carried nothing while lte-a was up: ${beforeCut} B`);
      assert.ok(afterCut > 16 * MB - aBefore - 2 * MB, `backup carried the rest: ${afterCut} B`);
      assert.equal(s2.paths.find((p) => p.name === 'lte-a')?.state, 'down');
    } finally {
      await blackout(topo, 0, false);
    }
  });
});
