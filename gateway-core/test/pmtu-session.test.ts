// Path MTU discovery wired to real sessions over simulated links on a deterministic clock: a
// link that silently drops datagrams above its MTU (a middlebox that eats ICMP) is measured by
// padded probes and ProbeEcho acks, the tunnel MTU is the smallest live path's, lost big probes
// do not make a path look dead, and a path that goes down stops constraining the tunnel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimClock } from '../src/clock.js';
import { SimLink } from '../src/sim/link.js';
import type { Session } from '../src/session/session.js';
import { PmtuDiscovery, type PmtuChange } from '../src/path/pmtu.js';
import { DATA_OVERHEAD } from '../src/wire/header.js';
import type { Path } from '../src/path/path.js';
import { simSessionPair } from './sim-session-pair.js';

/** A path that loses, silently, every datagram above `mtu` bytes (no ICMP, no error). */
class MtuLimited implements Path {
  dropped = 0;
  constructor(private readonly inner: Path, public mtu: number) {}
  get description(): string { return `mtu ${this.mtu} ${this.inner.description}`; }
  send(d: Buffer): boolean {
    if (d.length > this.mtu) {
      this.dropped++;
      return true;
    }
    return this.inner.send(d);
  }
  onDatagram(cb: (d: Buffer) => void): void { this.inner.onDatagram(cb); }
  onError(cb: (e: Error) => void): void { this.inner.onError(cb); }
  close(): void { this.inner.close(); }
}

function setup(linkMtus: number[]) {
  const clock = new SimClock();
  const links = linkMtus.map((_, i) => new SimLink(clock, `l${i}`, { rateMbps: 20, delayMs: 20, queueBytes: 150_000 }));
  const tunnel: number[] = [];
  const changes: PmtuChange[] = [];
  // The discovery exists before the session it probes through (the session takes its hooks).
  const ref: { a?: Session } = {};
  const pmtu = new PmtuDiscovery({
    clock, pathNames: links.map((l) => l.name), floor: 1000, ceiling: 1400 + DATA_OVERHEAD, probeTimeoutMs: 200,
    fallbackTunnelMtu: 1400, sendProbe: (i, size) => ref.a?.sendPaddedProbe(i, size),
    onTunnelMtu: (m) => tunnel.push(m), onPathMtu: (c) => changes.push(c),
  });
  const limited = links.map((l, i) => new MtuLimited(l.a, linkMtus[i] as number));
  const { a, b } = simSessionPair(clock, links, { a: { pmtu }, pathA: (_, i) => limited[i] as MtuLimited });
  ref.a = a;
  return { clock, a, b, pmtu, tunnel, changes, limited, links };
}

test('padded probes find each path MTU; the tunnel MTU is the smallest live path minus the overhead', () => {
  const s = setup([1300, 1500]);
  s.clock.advance(15_000_000);
  const st = s.pmtu.status();
  const small = st[0]!.mtu;
  assert.ok(small > 1000 && small <= 1300 && small >= 1300 - 8, `path 0 settled at ${small}, link passes 1300`);
  assert.equal(st[1]!.mtu, 1444, 'the clean path is confirmed at the ceiling');
  assert.equal(s.pmtu.tunnelMtu, small - DATA_OVERHEAD);
  assert.equal(s.tunnel.at(-1), small - DATA_OVERHEAD, 'the last tunnel MTU applied');
  assert.ok(s.limited[0]!.dropped > 0, 'too-big probes were sent and lost');
  // One change per settled path MTU (floor -> found), for each path.
  assert.equal(s.changes.length, 2);
  assert.deepEqual(Object.fromEntries(s.changes.map((c) => [c.name, [c.previous, c.pathMtu]])), { l0: [1000, small], l1: [1000, 1444] });
  // Lost big probes did not make the path look dead.
  assert.deepEqual(s.a.status().map((p) => p.state), ['up', 'up']);
  s.a.close();
  s.b.close();
  s.pmtu.stop();
});

test('a path that goes down stops constraining the tunnel; back up it keeps its last MTU while searched again', () => {
  const s = setup([1300, 1500]);
  s.clock.advance(15_000_000);
  const small = s.pmtu.status()[0]!.mtu;
  assert.equal(s.pmtu.tunnelMtu, small - DATA_OVERHEAD);
  s.links[0]!.up = false;
  s.clock.advance(5_000_000);
  assert.equal(s.a.status()[0]!.state, 'down');
  assert.equal(s.pmtu.tunnelMtu, 1400, 'only the clean path is live: the configured tunnel MTU');
  s.links[0]!.up = true;
  s.clock.advance(300_000);
  assert.equal(s.a.status()[0]!.state, 'up');
  assert.equal(s.pmtu.tunnelMtu, small - DATA_OVERHEAD, 'back at its last settled MTU at once');
  s.clock.advance(15_000_000);
  assert.equal(s.pmtu.status()[0]!.mtu, small);
  s.a.close();
  s.b.close();
  s.pmtu.stop();
});

test('small traffic acknowledged on the path during the search does not confirm the big probes it lost', () => {
  const s = setup([1200, 1500]);
  // Small data packets on every path all along: their acks must not be taken for the probes'.
  const ip = Buffer.alloc(200);
  ip[0] = 0x45;
  ip.writeUInt16BE(200, 2);
  for (let ms = 0; ms < 15_000; ms++) {
    if (ms % 2 === 0) s.a.send(ip);
    s.clock.advance(1000);
  }
  const mtu = s.pmtu.status()[0]!.mtu;
  assert.ok(mtu <= 1200 && mtu >= 1192, `settled at ${mtu} for a 1200-byte link`);
  assert.ok(s.a.status()[0]!.txDataBytes > 100_000, 'the small path carried data during the search');
  s.a.close();
  s.b.close();
  s.pmtu.stop();
});
