// Path MTU discovery without ICMP, on a simulated clock: a test link acknowledges probes up to its
// MTU after one RTT and silently drops larger ones (a middlebox eating ICMP), optionally losing
// some probes at random sizes to show one loss does not shrink the MTU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimClock } from '../src/clock.js';
import { PathMtuSearch, tunnelMtu, type PathMtuOptions } from '../src/path/mtu.js';
import { DATA_OVERHEAD } from '../src/wire/header.js';

const UDP_IP = 28;

function run(linkMtu: number, over: Partial<PathMtuOptions> & { lose?: (n: number, size: number) => boolean; rttMs?: number } = {}) {
  const clock = new SimClock();
  let n = 0;
  const sizes: number[] = [];
  const mtus: number[] = [];
  let link = linkMtu;
  const search: PathMtuSearch = new PathMtuSearch({
    clock,
    floor: 1252,
    ceiling: 1472,
    probeTimeoutMs: 200,
    sendProbe: (size) => {
      const token = ++n;
      sizes.push(size);
      const lost = over.lose?.(token, size) ?? false;
      if (size + UDP_IP <= link && !lost) clock.setTimer((over.rttMs ?? 40) * 1000, () => search.acked(token));
      return token;
    },
    onMtu: (m) => mtus.push(m),
    ...over,
  });
  return { clock, search, sizes, mtus, setLink: (m: number) => { link = m; } };
}

test('a full 1500-byte path is confirmed with one probe at the ceiling', () => {
  const r = run(1500);
  r.search.start();
  r.clock.advance(1_000_000);
  assert.equal(r.search.mtu, 1472);
  assert.deepEqual(r.sizes, [1472]);
  assert.equal(r.search.searching, false);
  r.search.stop();
});

test('binary search finds a 1400-byte path MTU within the precision, without ICMP', () => {
  const r = run(1400);
  r.search.start();
  r.clock.advance(10_000_000);
  const st = r.search.status();
  assert.ok(st.mtu <= 1400 - UDP_IP && st.mtu >= 1400 - UDP_IP - 8, `mtu ${st.mtu}`);
  assert.equal(st.searching, false);
  // Ceiling first, then about log2(220 / 8) = 5 bisections, each too-big size probed twice.
  assert.ok(r.sizes.length <= 1 + 2 + 6 * 2, `${r.sizes.length} probes: ${r.sizes.join(' ')}`);
  // Every probe above the path MTU went unanswered; none below it did.
  assert.ok(r.sizes.every((s) => s > st.mtu || s <= 1400 - UDP_IP));
  r.search.stop();
});

test('a carrier with a 1280-byte MTU: the search ends at the floor-side of 1252 and the tunnel MTU follows the smallest live path', () => {
  const small = run(1280);
  small.search.start();
  small.clock.advance(10_000_000);
  assert.equal(small.search.mtu, 1252);
  const big = run(1500);
  big.search.start();
  big.clock.advance(1_000_000);
  assert.equal(tunnelMtu([big.search.mtu, small.search.mtu], DATA_OVERHEAD, 1400), 1252 - DATA_OVERHEAD);
  assert.equal(tunnelMtu([big.search.mtu], DATA_OVERHEAD, 1400), 1472 - DATA_OVERHEAD);
  assert.equal(tunnelMtu([], DATA_OVERHEAD, 1400), 1400);
  small.search.stop();
  big.search.stop();
});

test('one lost probe of a size that fits does not shrink the MTU (a size is too big only after every attempt)', () => {
  const r = run(1500, { lose: (n) => n === 1 });
  r.search.start();
  r.clock.advance(2_000_000);
  assert.equal(r.search.mtu, 1472);
  assert.deepEqual(r.sizes, [1472, 1472]);
  assert.equal(r.search.status().probesLost, 1);
  r.search.stop();
});

test('EMSGSIZE from the local stack caps the search at once', () => {
  const r = run(1500, { sendProbe: () => undefined });
  r.search.start();
  r.search.tooBig(1472);
  r.clock.advance(100_000);
  assert.equal(r.search.status().high, 1471);
  r.search.stop();
});

test('reset after big packets stop passing: the search starts again from the floor and finds the smaller MTU', () => {
  const r = run(1500);
  r.search.start();
  r.clock.advance(1_000_000);
  assert.equal(r.search.mtu, 1472);
  r.setLink(1350);
  r.search.reset();
  assert.equal(r.search.mtu, 1252);
  r.clock.advance(10_000_000);
  assert.ok(r.search.mtu <= 1350 - UDP_IP && r.search.mtu >= 1350 - UDP_IP - 8, `mtu ${r.search.mtu}`);
  assert.deepEqual(r.mtus.slice(0, 2), [1472, 1252]);
  r.search.stop();
});

test('a path that grew is found by the periodic re-search', () => {
  const r = run(1300, { researchIntervalMs: 60_000 });
  r.search.start();
  r.clock.advance(10_000_000);
  assert.ok(r.search.mtu <= 1300 - UDP_IP && r.search.mtu >= 1300 - UDP_IP - 8, `mtu ${r.search.mtu}`);
  r.setLink(1500);
  r.clock.advance(61_000_000);
  assert.equal(r.search.mtu, 1472);
  r.search.stop();
  assert.equal(r.clock.pendingTimers(), 0);
});

test('options are validated', () => {
  assert.throws(() => new PathMtuSearch({ clock: new SimClock(), floor: 1500, ceiling: 1400, sendProbe: () => 1 }), /floor <= ceiling/);
});
