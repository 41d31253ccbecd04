// Edge-to-edge carrier sharing in network namespaces, real gateways: edge A (the usual edge
// namespace, one carrier of its own) borrows the carrier of edge B, a second edge on a LAN shared
// with A (its own namespace, its own carrier namespace to the cloud). A's clients' traffic goes
// out of both A's carrier and B's, byte-identical; B relays it (counters on both sides and on B's
// carrier link). Then B's firewall drops inbound connections: A's direct dial fails and the link
// comes up the other way, B dialling back through the cloud's rendezvous. Stale and forged
// intents are refused by B. Needs root; fails in CI without it, skips elsewhere.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, unlinkSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { isRoot } from './harness/root.js';
import { createTopology, type Topology } from './harness/topology.js';
import {
  addAddress, addNamespace, addVethPair, deleteNamespace, execIn, linkCounters, nft, replaceRoute, run, setTbf, sysctl,
} from './harness/netns.js';
import { REPO_ROOT, curlDownload, makeRandomFile, startNginx, type Nginx } from './harness/apps.js';
import { CLOUD_SERVER_NAME, EDGE_ADMIN, fetchStatus, startGateways, type Gateways } from './harness/gateways.js';
import type { ManagedProcess } from './harness/process.js';
import { untilValue } from '../gateway-core/test/wait.js';

const MB = 1024 * 1024;
const SCRIPT = join(REPO_ROOT, 'scripts', 'gen-dev-certs.sh');
/** The LAN between the two edges, and B's carrier. */
const LAN = { a: '10.12.0.1', b: '10.12.0.2' };
const B_WAN = { b: '10.25.0.2', car: '10.25.0.1', subnet: '10.25.0.0/24' };
const B_CAR_CLOUD = { car: '10.35.0.1', cloud: '10.35.0.2' };
const SHARE_PORT = 7600;

interface SharingStatus {
  lending: { links: number; carriers: { name: string; upBytes: number; downBytes: number; upPackets: number; downPackets: number }[]; malformed: number } | null;
  borrowing: { lender: string; direction: string | null; links: number; forward: number; reverse: number; failures: number }[];
  refused: Record<string, number>;
}
type EdgeView = { ready: boolean; paths: { name: string; state: string; rxDataBytes: number; txDataBytes: number; transport: string | null }[]; sharing: SharingStatus | null };

describe('carrier sharing between two edges on one LAN', { skip: !isRoot() && process.env.CI !== 'true' ? 'needs root (network namespaces, TUN)' : false }, () => {
  let dir = '';
  let topo: Topology;
  let gw: Gateways;
  let nginx: Nginx;
  let sha = '';
  let edgeB: ManagedProcess | undefined;
  let nsB = '';
  let nsCarB = '';
  let configB = '';

  const statusA = async (): Promise<EdgeView> => (await gw.edgeStatus()) as unknown as EdgeView;
  const statusB = async (): Promise<EdgeView> => (await fetchStatus(topo, nsB, EDGE_ADMIN)) as unknown as EdgeView;
  const tails = (): string => `--- A ---\n${gw.edge.tail(25)}\n--- B ---\n${edgeB?.tail(25) ?? ''}`;
  const startB = (): void => {
    edgeB = topo.spawn(nsB, [process.execPath, '--conditions=source', '--import', 'tsx', join('gateway-edge', 'src', 'main.ts'), '--config', configB], {
      name: 'edge-b', cwd: REPO_ROOT, logFile: join(dir, `edge-b-${Date.now()}.log`),
    });
  };
  /** The borrowed carrier is up at A and carries data once a download ran. */
  const borrowedUp = (s: EdgeView): boolean => s.paths.some((p) => p.name === 'b-lte' && p.state === 'up');

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'braid-sharing-'));
    topo = await createTopology({ carriers: [{ name: 'lte-a', rateMbit: 8 }] });
    nsB = `${topo.prefix}-edgeb`;
    nsCarB = `${topo.prefix}-carb`;
    for (const n of [nsB, nsCarB]) {
      await deleteNamespace(n);
      await addNamespace(n);
    }
    await sysctl(nsCarB, { 'net.ipv4.ip_forward': 1 });
    // The LAN between the two edges.
    await addVethPair(topo.ns.edge, 'peer0', nsB, 'lan');
    await addAddress(topo.ns.edge, 'peer0', `${LAN.a}/24`);
    await addAddress(nsB, 'lan', `${LAN.b}/24`);
    // B's carrier: B -- carb -- cloud, shaped like A's own.
    await addVethPair(nsB, 'wanb', nsCarB, 'edge');
    await addVethPair(nsCarB, 'cloud', topo.ns.cloud, 'carb');
    await addAddress(nsB, 'wanb', `${B_WAN.b}/24`);
    await addAddress(nsCarB, 'edge', `${B_WAN.car}/24`);
    await addAddress(nsCarB, 'cloud', `${B_CAR_CLOUD.car}/24`);
    await addAddress(topo.ns.cloud, 'carb', `${B_CAR_CLOUD.cloud}/24`);
    await replaceRoute(nsB, { to: 'default', via: B_WAN.car });
    await replaceRoute(nsCarB, { to: 'default', via: B_CAR_CLOUD.cloud });
    await replaceRoute(topo.ns.cloud, { to: B_WAN.subnet, via: B_CAR_CLOUD.car });
    await sysctl(topo.ns.cloud, { 'net.ipv4.conf.carb.rp_filter': 0 });
    await setTbf(nsCarB, 'edge', { rateMbit: 8, queueMs: 50 });
    await setTbf(nsCarB, 'cloud', { rateMbit: 8, queueMs: 50 });

    nginx = await startNginx(topo, dir);
    sha = await makeRandomFile(nginx.root, 'big.bin', 8 * MB);
    // One CA for both edges: B's certificate first, then startGateways issues A's in the same place.
    const certs = join(dir, 'certs');
    mkdirSync(certs, { recursive: true });
    await run(['bash', SCRIPT, certs, '--cloud-san', `DNS:${CLOUD_SERVER_NAME},IP:${topo.addr.cloudPublic},IP:127.0.0.1`, '--edge-id', 'edge-b']);
    copyFileSync(join(certs, 'edge.pem'), join(certs, 'edge-b.pem'));
    copyFileSync(join(certs, 'edge.key'), join(certs, 'edge-b.key'));
    unlinkSync(join(certs, 'edge.key'));
    configB = join(dir, 'edge-b.yaml');
    await writeFile(configB, stringify({
      id: 'edge-b',
      control: {
        cloud: `${topo.addr.cloudPublic}:7443`, serverName: CLOUD_SERVER_NAME,
        tls: { ca: join(certs, 'ca.pem'), cert: join(certs, 'edge-b.pem'), key: join(certs, 'edge-b.key') },
      },
      carriers: [{ name: 'lte-b', interface: 'wanb' }],
      tunnel: { device: 'braid0' },
      interception: { clientSubnets: ['10.13.0.0/24'], multipathDestinations: [`${topo.addr.server}/32`] },
      sharing: { listen: `${LAN.b}:${SHARE_PORT}`, allow: ['edge-a'] },
      admin: { listen: EDGE_ADMIN },
      log: { level: 'info' },
    }));
    gw = await startGateways(topo, {
      dir, edgeId: 'edge-a',
      edge: {
        carriers: [
          { name: 'lte-a', interface: 'wan0' },
          { name: 'b-lte', interface: 'peer0', lentBy: { peer: 'edge-b', address: `${LAN.b}:${SHARE_PORT}`, carrier: 0 } },
        ],
        // B starts after A: A's first direct dial finds nobody and is repeated every second; the
        // window before B dials back is longer than that, so the direct link wins once B listens.
        sharing: { advertise: LAN.a, retryMs: 500, reverseAfterMs: 3000 },
      },
    });
    startB();
    await gw.waitReady(40_000);
  });

  after(async () => {
    if (edgeB) await topo?.release(edgeB);
    await gw?.stop();
    await nginx?.stop();
    for (const n of [nsB, nsCarB]) if (n) await deleteNamespace(n);
    await topo?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("A's clients use B's carrier: byte-identical download, relayed by B (both ends' counters and B's carrier link)", async () => {
    const a0 = await statusA();
    assert.ok(borrowedUp(a0), `b-lte up at A: ${JSON.stringify(a0.paths)}`);
    assert.equal(a0.sharing?.borrowing[0]?.direction, 'forward', 'the direct dial is tried first and works when nothing blocks it');
    const b0 = await statusB();
    const link0 = await linkCounters(nsCarB, 'edge');
    const down = await curlDownload(topo, `http://${topo.addr.server}/big.bin`, { timeoutS: 60 });
    assert.ok(down.ok, down.error);
    assert.equal(down.sha256, sha);
    const a1 = await statusA();
    const b1 = await statusB();
    const viaB = (a1.paths.find((p) => p.name === 'b-lte')?.rxDataBytes ?? 0) - (a0.paths.find((p) => p.name === 'b-lte')?.rxDataBytes ?? 0);
    assert.ok(viaB > 1 * MB, `A received ${viaB} bytes of the 8 MB over B's carrier`);
    const lent = b1.sharing?.lending?.carriers[0];
    const lent0 = b0.sharing?.lending?.carriers[0];
    const relayed = (lent?.downBytes ?? 0) - (lent0?.downBytes ?? 0);
    console.log(`# direct link: B relayed ${relayed} bytes of the 8 MB download in ${down.seconds.toFixed(1)} s`);
    assert.ok(lent && lent0 && relayed > 1 * MB, `B relayed ${JSON.stringify(lent)} (before ${JSON.stringify(lent0)})`);
    const link1 = await linkCounters(nsCarB, 'edge');
    assert.ok(link1.txBytes - link0.txBytes > 1 * MB, "the bytes went over B's carrier link");
  });

  test('stale and forged intents are refused by B', async () => {
    const certs = join(dir, 'certs');
    const r = await execIn(topo.ns.edge, [process.execPath, '--conditions=source', '--import', 'tsx', join(REPO_ROOT, 'test', 'harness', 'rendezvous-probe.ts'),
      `${topo.addr.cloudPublic}:7443`, join(certs, 'ca.pem'), join(certs, 'edge.pem'), join(certs, 'edge.key'), CLOUD_SERVER_NAME, 'edge-b', `${LAN.b}:${SHARE_PORT}`],
    { cwd: REPO_ROOT, timeoutMs: 30_000 });
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, { t: string; why?: string }[]>;
    assert.deepEqual(out['stale']?.at(-1), { t: 'refused', why: 'stale' }, JSON.stringify(out));
    assert.deepEqual(out['forged']?.at(-1), { t: 'refused', why: 'forged' }, JSON.stringify(out));
    assert.deepEqual(out['unknown']?.at(-1), { t: 'refused', why: 'unknown' }, JSON.stringify(out));
    const b = await statusB();
    assert.ok((b.sharing?.refused['stale'] ?? 0) >= 1 && (b.sharing?.refused['forged'] ?? 0) >= 1 && (b.sharing?.refused['unknown'] ?? 0) >= 1, JSON.stringify(b.sharing?.refused));
    // The real link was not disturbed.
    assert.ok(borrowedUp(await statusA()));
  });

  test("with inbound connections dropped at B, B dials back through the rendezvous and A's clients use its carrier again", async () => {
    await nft(nsB, `table inet fw {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    tcp dport ${SHARE_PORT} drop\n  }\n}`);
    // B restarts (the link breaks); A's direct dial now vanishes in B's firewall.
    if (edgeB) await topo.release(edgeB);
    startB();
    const a = await untilValue('the link back up, reverse', async () => {
      const s = await statusA();
      const br = s.sharing?.borrowing[0];
      return br && br.direction === 'reverse' && borrowedUp(s) ? s : undefined;
    }, 40_000, 200, tails);
    assert.ok((a.sharing?.borrowing[0]?.reverse ?? 0) >= 1);
    const b0 = await statusB();
    const down = await curlDownload(topo, `http://${topo.addr.server}/big.bin`, { timeoutS: 60 });
    assert.ok(down.ok, down.error);
    assert.equal(down.sha256, sha);
    const b1 = await statusB();
    const d = (b1.sharing?.lending?.carriers[0]?.downBytes ?? 0) - (b0.sharing?.lending?.carriers[0]?.downBytes ?? 0);
    console.log(`# reverse link: B relayed ${d} bytes of the 8 MB download in ${down.seconds.toFixed(1)} s`);
    const fleet = gw.cloud.output().split('\n').filter((l) => l.includes('"fleet"')).join('\n');
    assert.ok(d > 1 * MB, `B relayed ${d} bytes over the reverse link; A's paths then: ${JSON.stringify((await statusA()).paths)}\n--- cloud fleet ---\n${fleet}\n${tails()}`);
  });
});
