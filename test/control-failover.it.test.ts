// The control plane survives the death of the carrier it runs over (issue 8): an edge with two
// carriers (network namespaces, real mutual-TLS gRPC) follows the cloud's policy stream through
// the loopback CarrierRelay; carrier 0, which the kernel's default route prefers, is blackholed
// inside the carrier's namespace (its link stays up, like a dead bearer in the operator's
// network). The stream notices within three heartbeats, re-opens through the relay over carrier
// 1, and the next policy arrives; a Hello through the relay succeeds too. A second policy client
// and Hello that use the kernel's routing directly are the control: they stay cut off.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { requireRoot } from './harness/root.js';
import { createTopology, ADDR } from './harness/topology.js';
import { nft } from './harness/netns.js';
import type { ManagedProcess } from './harness/process.js';
import { untilValue } from '../gateway-core/test/wait.js';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const PEER = join(REPO, 'test/control-failover/peer.ts');
const CONTROL = `${ADDR.cloudPublic}:7443`;

/** Everything the carrier would forward is dropped; its links stay up, the edge's routes stay. */
async function blackhole(ns: string): Promise<void> {
  await nft(ns, 'table inet braid_dead {\n  chain drop_all {\n    type filter hook forward priority -300; policy drop;\n  }\n}');
}

/** Lines of `p` matching `re` that appeared after `from` characters of its output. */
function linesAfter(p: ManagedProcess, from: number, re: RegExp): string[] {
  return p.output().slice(from).split('\n').filter((l) => re.test(l));
}

const waitLine = (p: ManagedProcess, from: number, re: RegExp, ms: number): Promise<string> =>
  untilValue(`a line matching ${re}`, () => linesAfter(p, from, re)[0] || undefined, ms, 20, () => `output:\n${p.tail(30)}`);

test('control plane: policy stream and Hello move to a live carrier when theirs dies', { timeout: 60_000 }, async (t) => {
  if (!requireRoot(t)) return;
  const certs = mkdtempSync(join(tmpdir(), 'braid-ctlfail-'));
  execFileSync('bash', [join(REPO, 'scripts/gen-dev-certs.sh'), certs, '--cloud-san', `IP:${ADDR.cloudPublic},DNS:braid-cloud`]);
  const topo = await createTopology({ prefix: `cf${process.pid % 10000}`, carriers: [{ name: 'car0' }, { name: 'car1' }] });
  try {
    const node = (args: string[]): string[] => [process.execPath, '--conditions=source', '--import', 'tsx', PEER, ...args];
    const cloud = topo.spawn(topo.ns.cloud, node(['cloud', certs, CONTROL]), { name: 'cloud peer', cwd: REPO });
    await cloud.waitFor(/CLOUD listening/, 20_000);
    const edge = topo.spawn(topo.ns.edge, node(['edge', certs, CONTROL, 'wan0,wan1']), { name: 'edge peer', cwd: REPO });
    await edge.waitFor(/EDGE relay/, 20_000);

    // Both clients get version 1; both streams run over carrier 0 (the relay prefers it, the kernel's default route is wan0).
    await waitLine(edge, 0, /APPLIED via=relay version=1 beta=1 carrier=wan0/, 15_000);
    await waitLine(edge, 0, /APPLIED via=direct version=1/, 15_000);
    await waitLine(cloud, 0, new RegExp(`ACK edge=edge-1 result=POLICY_RESULT_APPLIED version=1 from=${ADDR.edgeWan(0).replace(/\./g, '\\.')}:`), 5_000);

    const edgeMark = edge.output().length;
    const cloudMark = cloud.output().length;
    const died = Date.now();
    await blackhole(topo.ns.carriers[0]!);
    // Let the streams notice (3 heartbeats of 300 ms), then change the policy.
    await new Promise((r) => setTimeout(r, 1500));
    process.kill(cloud.pid!, 'SIGUSR2');
    await waitLine(cloud, cloudMark, /SET version=2 beta=2/, 5_000);
    const applied = await waitLine(edge, edgeMark, /APPLIED via=relay version=2 beta=2/, 15_000);
    const took = Date.now() - died;
    t.diagnostic(`policy version 2 applied over the relay ${took} ms after carrier 0 died: ${applied}`);
    assert.match(applied, /carrier=wan1/);
    await waitLine(cloud, cloudMark, new RegExp(`ACK edge=edge-1 result=POLICY_RESULT_APPLIED version=2 from=${ADDR.edgeWan(1).replace(/\./g, '\\.')}:`), 5_000);

    // Hello: through the relay it succeeds over carrier 1; by the kernel's routing it times out.
    process.kill(edge.pid!, 'SIGUSR2');
    const helloRelay = await waitLine(edge, edgeMark, /HELLO via=relay /, 10_000);
    assert.match(helloRelay, /HELLO via=relay ok session=7 .*carrier=wan1/);
    const helloDirect = await waitLine(edge, edgeMark, /HELLO via=direct /, 10_000);
    assert.match(helloDirect, /HELLO via=direct failed .*DEADLINE_EXCEEDED|UNAVAILABLE/);
    await waitLine(cloud, cloudMark, new RegExp(`HELLO edge=edge-1 from=${ADDR.edgeWan(1).replace(/\./g, '\\.')}:`), 5_000);
    // The control: the client without the relay never got version 2.
    assert.deepEqual(linesAfter(edge, edgeMark, /APPLIED via=direct version=2/), []);
    await topo.release(edge);
    await topo.release(cloud);
  } finally {
    await topo.destroy();
    rmSync(certs, { recursive: true, force: true });
  }
});
