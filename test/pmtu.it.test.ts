// Path MTU discovery end to end, in network namespaces with the real gateways: carrier 0 has a
// 1280-byte MTU in the middle (the veth from its router towards the cloud) and its router sends no
// ICMP "fragmentation needed" (dropped by nftables), so big datagrams vanish in both directions.
// Padded probes find that path's MTU, the edge's TUN and the cloud's route to the edge follow the
// smaller path, one event per path MTU change is recorded, and large TCP transfers (both ways) and
// 1400-byte UDP datagrams still get through byte-identical. TCP is clamped (MSS) so neither the
// client nor the edge has to fragment or signal anything. Needs root; fails in CI without it,
// skips elsewhere.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { isRoot } from './harness/root.js';
import type { Topology } from './harness/topology.js';
import { nft } from './harness/netns.js';
import { curlDownload, curlUpload, makeRandomFile, sleep, startUploadSink, type UploadSink } from './harness/apps.js';
import { EDGE_ADMIN, type Gateways } from './harness/gateways.js';
import { startTunnelFixture, type TunnelFixture } from './harness/fixture.js';

const MB = 1024 * 1024;
const LINK_MTU = 1280;
/** Largest datagram (UDP payload) the narrow carrier passes edge -> cloud ... */
const PATH_LIMIT = LINK_MTU - 28;
/** ... and cloud -> edge (the veth's receive check allows a VLAN tag's 4 bytes more). */
const DOWN_LIMIT = PATH_LIMIT + 4;
/** The discovery stops within this many bytes of the limit (path/mtu.ts precision). */
const PRECISION = 8;
const OVERHEAD = 44; // wire/header.ts DATA_OVERHEAD
const NARROW = 0;

interface TimelineEvent { kind: string; path: string | null; attributes: Record<string, number | string | boolean> }

/** A UDP echo on the server: every datagram goes back to its sender unchanged. */
const ECHO = `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m, r) => s.send(m, r.port, r.address));
s.bind(9999, process.argv[2], () => console.log('echo ready'));
`;

/**
 * The client's side: N datagrams of 1400 random bytes, each re-sent until its echo comes back
 * (the first try of a size may be refused with ICMP by the edge, which teaches the client's kernel
 * to fragment it), each echo compared byte for byte.
 */
const CLIENT = `
const dgram = require('node:dgram');
const { randomBytes } = require('node:crypto');
const [host, n, size] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const s = dgram.createSocket('udp4');
let ok = 0, tries = 0, mismatched = 0;
async function one(i) {
  const buf = randomBytes(size);
  buf.writeUInt32BE(i, 0);
  for (let k = 0; k < 20; k++) {
    tries++;
    const got = await new Promise((res) => {
      const t = setTimeout(() => { s.off('message', on); res(undefined); }, 300);
      function on(m) { if (m.length >= 4 && m.readUInt32BE(0) === i) { clearTimeout(t); s.off('message', on); res(m); } }
      s.on('message', on);
      s.send(buf, 9999, host);
    });
    if (got) { if (Buffer.compare(got, buf) === 0) ok++; else mismatched++; return; }
  }
}
s.bind(0, async () => { for (let i = 0; i < n; i++) await one(i); console.log(JSON.stringify({ ok, tries, mismatched })); s.close(); });
`;

describe('path MTU discovery: a carrier with a 1280-byte hop and no ICMP', { skip: !isRoot() && process.env.CI !== 'true' ? 'needs root (network namespaces, TUN)' : false }, () => {
  let fx: TunnelFixture;
  let topo: Topology;
  let gw: Gateways;
  let sink: UploadSink;
  let tunnelAddress = '';

  const linkMtu = async (ns: string, dev: string): Promise<number> => {
    const r = await topo.exec(ns, ['ip', '-j', 'link', 'show', 'dev', dev]);
    return (JSON.parse(r.stdout) as { mtu: number }[])[0]!.mtu;
  };
  const routeMtu = async (): Promise<number | undefined> => {
    const r = await topo.exec(topo.ns.cloud, ['ip', '-j', '-d', 'route', 'show', `${tunnelAddress}/32`]);
    const routes = JSON.parse(r.stdout) as { metrics?: { mtu?: number }[] }[];
    return routes[0]?.metrics?.find((m) => m.mtu !== undefined)?.mtu;
  };
  const nstat = async (ns: string, key: string): Promise<number> => {
    const r = await topo.exec(ns, ['nstat', '-az', '--json', key]);
    const kernel = (JSON.parse(r.stdout) as { kernel: Record<string, number> }).kernel;
    return kernel[key] ?? 0;
  };
  /** ICMP "fragmentation needed" a gateway sent (to a client or a server: a segment that did not fit). */
  const fragNeededSent = async (ns: string): Promise<number> => {
    const r = await topo.exec(ns, ['nft', '-j', 'list', 'counter', 'inet', 'pmtucount', 'fragneeded']);
    const items = (JSON.parse(r.stdout) as { nftables: { counter?: { packets: number } }[] }).nftables;
    return items.find((i) => i.counter)?.counter?.packets ?? 0;
  };
  const events = async (): Promise<TimelineEvent[]> => {
    const r = await topo.exec(topo.ns.edge, ['curl', '-sS', '--fail', '--max-time', '2', `http://${EDGE_ADMIN}/events`]);
    return (JSON.parse(r.stdout) as { events: TimelineEvent[] }).events;
  };

  before(async () => {
    fx = await startTunnelFixture({
      name: 'braid-pmtu',
      carriers: [{ name: 'lte-a', rateMbit: 20 }, { name: 'lte-b', rateMbit: 20 }],
      files: { 'big.bin': 8 * MB },
      beforeGateways: async (t) => {
        topo = t;
        for (const ns of [t.ns.edge, t.ns.cloud]) {
          await nft(ns, 'table inet pmtucount {\n  counter fragneeded {}\n  chain out {\n    type filter hook output priority 0; policy accept;\n    icmp type destination-unreachable icmp code frag-needed counter name "fragneeded"\n  }\n}');
        }
        const car = t.ns.carriers[NARROW]!;
        // The hop in the middle of the carrier: its router's link towards the cloud. Edge->cloud
        // packets above 1280 are too big to route out of it; cloud->edge datagrams above it are
        // dropped as they enter it (a veth takes 4 bytes more, VLAN room: UP_LIMIT). The
        // gateways' own TCP (control plane) still passes: its segments travel as GSO packets
        // and are cut to size on the way.
        await t.exec(car, ['ip', 'link', 'set', 'dev', t.iface.carrierCloudSide, 'mtu', String(LINK_MTU)]);
        // ... and nothing says so: a black hole, as behind many carrier middleboxes.
        await nft(car, 'table inet blackhole {\n  chain out {\n    type filter hook output priority 0; policy accept;\n    icmp type destination-unreachable icmp code frag-needed drop\n  }\n}');
      },
      gateways: () => ({
        // A floor well below the narrow path's limit: the MTU is found, not assumed.
        edge: { dataPlane: { pmtu: { floor: 1000, probeTimeoutMs: 200 } } },
        cloud: { dataPlane: { pmtu: { floor: 1000, probeTimeoutMs: 200 } } },
      }),
    });
    ({ topo, gw } = fx);
    tunnelAddress = ((await gw.edgeStatus()) as unknown as { tunnelAddress: string }).tunnelAddress;
    sink = await startUploadSink(topo);
  });

  after(async () => {
    await sink?.stop();
    await fx?.stop();
  });

  test('the narrow path is measured; the TUN and the cloud route to the edge follow it; one event per change', async () => {
    const lo = PATH_LIMIT - PRECISION - OVERHEAD;
    const hi = PATH_LIMIT - OVERHEAD;
    const downLo = DOWN_LIMIT - PRECISION - OVERHEAD;
    const downHi = DOWN_LIMIT - OVERHEAD;
    let tun = 0;
    let route: number | undefined;
    const end = Date.now() + 30_000;
    while (Date.now() < end) {
      tun = await linkMtu(topo.ns.edge, 'braid0');
      route = await routeMtu();
      if (tun >= lo && tun <= hi && route !== undefined && route >= downLo && route <= downHi) break;
      await sleep(250);
    }
    assert.ok(tun >= lo && tun <= hi, `edge TUN MTU ${tun}, expected ${lo}..${hi} (narrow path limit ${PATH_LIMIT} minus the tunnel's ${OVERHEAD})\n${gw.edge.tail(30)}`);
    assert.ok(route !== undefined && route >= downLo && route <= downHi, `cloud route to ${tunnelAddress}: MTU ${route}, expected ${downLo}..${downHi}\n${gw.cloud.tail(30)}`);
    const mtuEvents = (await events()).filter((e) => e.kind === 'path.mtu');
    const narrow = mtuEvents.filter((e) => e.path === 'lte-a');
    const wide = mtuEvents.filter((e) => e.path === 'lte-b');
    assert.equal(narrow.length, 1, `one path.mtu event for lte-a: ${JSON.stringify(mtuEvents)}`);
    assert.equal(wide.length, 1, `one path.mtu event for lte-b: ${JSON.stringify(mtuEvents)}`);
    const found = narrow[0]!.attributes['braid.path.mtu'] as number;
    assert.ok(found > 1000 && found <= PATH_LIMIT && found >= PATH_LIMIT - PRECISION, `lte-a MTU ${found}, limit ${PATH_LIMIT}`);
    assert.equal(wide[0]!.attributes['braid.path.mtu'], 1400 + OVERHEAD, 'lte-b passes the full configured size');
    assert.equal(tun, found - OVERHEAD);
    // Both gateways report it in /status.
    const es = (await gw.edgeStatus()) as unknown as { pathMtu: { tunnelMtu: number; paths: { name: string; mtu: number; live: boolean }[] } };
    assert.equal(es.pathMtu.tunnelMtu, tun);
    assert.deepEqual(es.pathMtu.paths.map((p) => [p.name, p.mtu, p.live]), [['lte-a', found, true], ['lte-b', 1400 + OVERHEAD, true]]);
    const cs = (await gw.cloudStatus()) as unknown as { sessions: { tunnelMtu: number | null }[] };
    assert.equal(cs.sessions[0]?.tunnelMtu, route);
  });

  test('large TCP transfers both ways are byte-identical, clamped: the client never fragments and is never told to', async () => {
    const fragsBefore = await nstat(topo.ns.client, 'IpFragCreates');
    const toldBefore = [await fragNeededSent(topo.ns.edge), await fragNeededSent(topo.ns.cloud)];
    const narrowBefore = (await gw.edgeStatus()).paths[NARROW]!.txBytes;
    const down = await curlDownload(topo, `http://${topo.addr.server}/big.bin`, { timeoutS: 60 });
    assert.ok(down.ok, `download: ${down.error}`);
    assert.equal(down.sha256, fx.sha['big.bin']);
    const file = join(fx.dir, 'up.bin');
    await makeRandomFile(fx.dir, 'up.bin', 4 * MB);
    const up = await curlUpload(topo, sink.url(), file, { timeoutS: 60 });
    assert.ok(up.ok, `upload: ${up.error}`);
    assert.equal(await nstat(topo.ns.client, 'IpFragCreates'), fragsBefore, 'the client fragmented TCP segments');
    assert.deepEqual([await fragNeededSent(topo.ns.edge), await fragNeededSent(topo.ns.cloud)], toldBefore, 'a gateway had to refuse segments with ICMP (edge to the client, cloud to the server): MSS not clamped to the tunnel');
    const narrowAfter = (await gw.edgeStatus()).paths[NARROW]!.txBytes;
    assert.ok(narrowAfter - narrowBefore > 256 * 1024, `the narrow carrier carried ${narrowAfter - narrowBefore} bytes of the upload`);
  });

  test('1400-byte UDP datagrams get through both ways byte-identical', async () => {
    const script = join(fx.dir, 'echo.cjs');
    await writeFile(script, ECHO);
    const echo = topo.spawn(topo.ns.server, [process.execPath, script, topo.addr.server], { name: 'udp-echo' });
    try {
      await echo.waitFor(/echo ready/, 10_000);
      const r = await topo.exec(topo.ns.client, [process.execPath, '-e', CLIENT, topo.addr.server, '50', '1400'], { timeoutMs: 60_000 });
      const res = JSON.parse(r.stdout.trim()) as { ok: number; tries: number; mismatched: number };
      assert.equal(res.mismatched, 0);
      assert.equal(res.ok, 50, `echoed ${res.ok} of 50 in ${res.tries} tries`);
      // The first datagram of the size teaches each end's kernel (ICMP on its own LAN); after that
      // no datagram needs a second try.
      assert.ok(res.tries <= 50 + 4, `${res.tries} tries for 50 datagrams`);
    } finally {
      await topo.release(echo);
    }
  });
});
