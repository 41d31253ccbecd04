// The delay spread between the paths in use (receive/delay-spread): known one-way delays with
// an arbitrary clock offset between sender and receiver (including offsets that wrap the 32-bit
// wire clock), paths dropping out after 500 ms idle, the per-packet histogram, and two Sessions
// over simulated 10 ms and 70 ms links reporting a ~60 ms spread in reorderStats().
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SimClock, wireTime, type Clock } from '../src/clock.js';
import { SimLink } from '../src/sim/link.js';
import { DelaySpread } from '../src/receive/delay-spread.js';
import { REORDER_DELAY_BUCKETS_MS } from '../src/receive/reorder.js';
import type { PathView, Scheduler } from '../src/schedule/scheduler.js';
import { udpPacket } from './ip-packets.js';
import { simSessionPair } from './sim-session-pair.js';

interface Pkt {
  path: number;
  /** Receiver-clock time the packet left the sender. */
  sentUs: number;
  owdUs: number;
}

/** One packet every `everyUs` on `path` from `fromUs` (inclusive) to `toUs` (exclusive). */
function periodic(path: number, fromUs: number, toUs: number, everyUs: number, owdUs: number): Pkt[] {
  const out: Pkt[] = [];
  for (let t = fromUs; t < toUs; t += everyUs) out.push({ path, sentUs: t, owdUs });
  return out;
}

/**
 * Feeds `pkts` to `ds` in arrival order, as a receiver sees them, from a sender whose clock
 * reads the receiver's plus `offsetUs` (two hosts' monotonic clocks have unrelated origins): TS1
 * is the sender's 32-bit wire clock at sending. `after` sees each arrival.
 */
function replay(ds: DelaySpread, offsetUs: number, pkts: readonly Pkt[], after?: (p: Pkt, arrivalUs: number) => void): void {
  const sorted = [...pkts].sort((x, y) => x.sentUs + x.owdUs - (y.sentUs + y.owdUs));
  for (const p of sorted) {
    const arrivalUs = p.sentUs + p.owdUs;
    ds.onData(p.path, wireTime(p.sentUs + offsetUs), arrivalUs);
    after?.(p, arrivalUs);
  }
}

/** Index of the histogram bucket a spread of `ms` falls in (upper bounds inclusive). */
function bucketOf(ms: number): number {
  const i = REORDER_DELAY_BUCKETS_MS.findIndex((b) => ms <= b);
  return i < 0 ? REORDER_DELAY_BUCKETS_MS.length : i;
}

const sum = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0);

// Receiver start times and sender offsets: plain, large positive and negative, a sender wire
// clock that wraps during the run, a receiver clock that wraps during the run, (arrival - TS1)
// straddling the signed 32-bit boundary, and clocks far past 2^32.
const CASES: { name: string; t0: number; offset: number }[] = [
  { name: 'no offset', t0: 1_000_000, offset: 0 },
  { name: 'sender 1234 s ahead', t0: 5_000_000, offset: 1_234_567_890 },
  { name: 'sender 3000 s behind', t0: 3_500_000_000, offset: -3_000_000_017 },
  { name: 'sender wire clock wraps mid-run', t0: 2_000_000, offset: 2 ** 32 - 2_000_000 - 150_000 },
  { name: 'receiver wire clock wraps mid-run', t0: 2 ** 32 - 150_000, offset: 777_777 },
  { name: 'arrival - TS1 wraps through 0 between the paths', t0: 10_000_000, offset: 40_000 },
  { name: 'arrival - TS1 crosses 2^31 between the paths', t0: 10_000_000, offset: 40_000 - 2 ** 31 },
  { name: 'both clocks past 2^32 several times', t0: 7 * 2 ** 32 + 12_345, offset: 3 * 2 ** 32 + 999 },
];

describe('DelaySpread: known one-way delays, any clock offset', () => {
  for (const c of CASES) {
    test(`two paths 10 ms and 70 ms give 60 ms (${c.name})`, () => {
      const ds = new DelaySpread();
      const seen = new Set<number>();
      // 600 ms of traffic, one packet per path every 2 ms: crosses the wraps set up above.
      replay(ds, c.offset, [...periodic(0, c.t0, c.t0 + 600_000, 2000, 10_000), ...periodic(1, c.t0 + 1000, c.t0 + 600_000, 2000, 70_000)],
        (p, at) => {
          seen.add(p.path);
          assert.equal(ds.stats.spreadUs, seen.size === 2 ? 60_000 : 0, `at +${at - c.t0} us`);
        });
      assert.equal(ds.spreadUs(c.t0 + 670_000), 60_000);
    });

    test(`three paths 5, 25 and 45 ms give 40 ms (${c.name})`, () => {
      const ds = new DelaySpread();
      replay(ds, c.offset, [
        ...periodic(2, c.t0, c.t0 + 300_000, 3000, 25_000),
        ...periodic(0, c.t0 + 1000, c.t0 + 300_000, 3000, 45_000),
        ...periodic(1, c.t0 + 2000, c.t0 + 300_000, 3000, 5_000),
      ]);
      assert.equal(ds.stats.spreadUs, 40_000);
    });
  }

  test('the spread follows a delay change smoothed (1/8 per sample), not at once', () => {
    const ds = new DelaySpread();
    const t0 = 1_000_000;
    replay(ds, 123_456, [...periodic(0, t0, t0 + 300_000, 1000, 10_000), ...periodic(1, t0, t0 + 200_000, 1000, 30_000)]);
    assert.equal(ds.stats.spreadUs, 20_000);
    // One packet 80 ms late on path 1 (a queue burst) moves its delay by a tenth of that.
    replay(ds, 123_456, [{ path: 1, sentUs: t0 + 200_000, owdUs: 110_000 }]);
    assert.equal(ds.stats.spreadUs, 30_000);
    // A lasting change is followed.
    replay(ds, 123_456, periodic(1, t0 + 201_000, t0 + 300_000, 1000, 110_000));
    assert.ok(Math.abs(ds.stats.spreadUs - 100_000) <= 10, `spread ${ds.stats.spreadUs}`);
  });
});

describe('DelaySpread: paths in use', () => {
  test('one path only gives 0, and so does no data at all', () => {
    const ds = new DelaySpread();
    assert.equal(ds.spreadUs(1_000_000), 0);
    // Jitter on the one path is not a spread between paths.
    const pkts = periodic(3, 1_000_000, 1_200_000, 1000, 0).map((p, k) => ({ ...p, owdUs: 10_000 + (k % 7) * 1000 }));
    replay(ds, 42_424_242, pkts, () => assert.equal(ds.stats.spreadUs, 0));
    assert.equal(ds.spreadUs(1_220_000), 0);
    assert.equal(sum(ds.stats.spreadCounts), pkts.length);
    assert.equal(ds.stats.spreadCounts[0], pkts.length);
  });

  test('a path idle for more than 500 ms drops out of the spread; back in use it counts at its new delay', () => {
    const ds = new DelaySpread();
    const off = -987_654;
    const t0 = 1_000_000;
    replay(ds, off, [
      ...periodic(0, t0, t0 + 200_000, 2000, 5_000),
      ...periodic(1, t0, t0 + 200_000, 2000, 25_000),
      ...periodic(2, t0, t0 + 200_000, 2000, 45_000),
    ]);
    const lastSlowUs = t0 + 198_000 + 45_000; // path 2's last arrival
    assert.equal(ds.stats.spreadUs, 40_000);
    // Path 2 stops; 0 and 1 carry on.
    replay(ds, off, [...periodic(0, t0 + 200_000, lastSlowUs + 600_000, 2000, 5_000), ...periodic(1, t0 + 200_000, lastSlowUs + 600_000, 2000, 25_000)],
      (_p, at) => assert.equal(ds.stats.spreadUs, at - lastSlowUs <= 500_000 ? 40_000 : 20_000, `${at - lastSlowUs} us after path 2's last packet`));
    assert.equal(ds.spreadUs(lastSlowUs + 500_001), 20_000, 'spreadUs(now) agrees');
    // Back after ~0.6 s idle with a 15 ms delay: taken as it is, not smoothed from the old 45 ms.
    replay(ds, off, [{ path: 2, sentUs: lastSlowUs + 600_000, owdUs: 15_000 }]);
    assert.equal(ds.stats.spreadUs, 20_000, 'spread of 5, 25 and 15 ms');
    // Nothing delivered for 500 ms: no path in use.
    assert.equal(ds.spreadUs(lastSlowUs + 600_000 + 15_000 + 500_001), 0);
  });

  test('the 500 ms limit is exact: a path last heard 500 ms ago still counts, 500.001 ms ago not', () => {
    const ds = new DelaySpread();
    replay(ds, 5, [{ path: 0, sentUs: 1_000_000, owdUs: 10_000 }, { path: 1, sentUs: 1_000_000, owdUs: 40_000 }]);
    assert.equal(ds.spreadUs(1_010_000 + 500_000), 30_000);
    assert.equal(ds.spreadUs(1_010_000 + 500_001), 0);
  });
});

describe('DelaySpread: histogram', () => {
  test('one count per arriving data packet, in the bucket of the spread it saw', () => {
    const ds = new DelaySpread();
    const off = 2 ** 32 - 1000;
    replay(ds, off, [{ path: 0, sentUs: 1_000_000, owdUs: 10_000 }]); // alone: spread 0
    replay(ds, off, periodic(1, 1_001_000, 1_051_000, 1000, 70_000)); // 60 ms
    replay(ds, off, periodic(2, 1_100_000, 1_130_000, 1000, 33_000)); // between the two: still 60 ms
    replay(ds, off, periodic(2, 1_130_000, 1_140_000, 1000, 33_000).map((p) => ({ ...p, path: 4, owdUs: 12_500 }))); // 57.5 ms
    const counts = ds.stats.spreadCounts;
    assert.equal(counts.length, REORDER_DELAY_BUCKETS_MS.length + 1);
    assert.equal(sum(counts), 91);
    assert.equal(counts[bucketOf(0)], 1);
    assert.equal(counts[bucketOf(60)], 90);
    // Spreads past the last bound go to the overflow bucket.
    replay(ds, off, [{ path: 0, sentUs: 4_090_000, owdUs: 10_000 }, { path: 3, sentUs: 1_105_000, owdUs: 3_000_000 }]);
    assert.equal(ds.stats.spreadUs, 2_990_000);
    assert.equal(ds.stats.spreadCounts[REORDER_DELAY_BUCKETS_MS.length], 1);
    assert.equal(sum(ds.stats.spreadCounts), 93);
  });
});

/** A clock that reads `offsetUs` more than `base` (another host's monotonic clock), same timers. */
function offsetClock(base: SimClock, offsetUs: number): Clock {
  return { nowUs: () => base.nowUs() + offsetUs, setTimer: (d, fn) => base.setTimer(d, fn) };
}

/** Round robin over the usable paths with room. */
function alternate(): Scheduler {
  let n = 0;
  return {
    name: 'test-alternate',
    pick: (paths: readonly PathView[]) => {
      const ok = paths.filter((p) => p.usable());
      return ok.length ? ok[n++ % ok.length] : undefined;
    },
  };
}

describe('DelaySpread in a session', () => {
  // The receiver's clock against the sender's: equal, and one where the sender's wire clock
  // wraps 1 s into the run.
  for (const senderOffset of [0, 2 ** 32 - 2_300_000]) {
    test(`two Sessions over 10 ms and 70 ms links report a ~60 ms spread (sender clock offset ${senderOffset} us)`, () => {
      const clock = new SimClock();
      const links = [
        new SimLink(clock, 'near', { rateMbps: 20, delayMs: 10, queueBytes: 100_000 }),
        new SimLink(clock, 'far', { rateMbps: 20, delayMs: 70, queueBytes: 100_000 }),
      ];
      let delivered = 0;
      const { a, b } = simSessionPair(clock, links, {
        // Alternate: both paths carry data whatever their delay and neither queues (the engine's
        // schedulers rightly keep a light load off the far path: no spread to measure).
        options: { scheduler: alternate() }, holdMs: 200,
        a: { clock: offsetClock(clock, senderOffset) },
        deliverB: () => { delivered++; },
      });
      clock.advance(200_000);
      // 2 x 1200 B per ms = 19.2 Mbit/s, half the two links' 40: no standing queue on either.
      let seq = 0;
      let warm: number[] = [];
      for (let ms = 0; ms < 3000; ms++) {
        // The first second is the start-up (windows still opening, the near path takes bursts
        // and queues): the histogram is checked over the two seconds after it.
        if (ms === 1000) warm = b.reorderStats().spreadCounts;
        // 32 flows (a single one would stay pinned to its first path, S2-7).
        for (let k = 0; k < 2; k++, seq++) a.send(udpPacket(seq, { sport: 40000 + (seq % 32) }));
        clock.advance(1000);
      }
      const st = b.reorderStats();
      const rx = b.status().map((p) => p.rxDataBytes);
      assert.ok(rx.every((x) => x > 1_000_000), `both paths carried data: ${rx.join(', ')}`);
      assert.ok(delivered > seq * 0.95, `delivered ${delivered} of ${seq}`);
      assert.ok(Math.abs(st.spreadUs - 60_000) <= 3_000, `spread now ${st.spreadUs} us`);
      // One count per data packet that arrived (delivered ones, plus any duplicate or late one).
      assert.ok(sum(st.spreadCounts) >= delivered && sum(st.spreadCounts) <= sum(b.status().map((p) => p.rxPackets)),
        `${sum(st.spreadCounts)} counted, ${delivered} delivered`);
      // After the start-up nearly every packet saw 55..65 ms (serialisation and the odd queue
      // on the near path take a little off the 60).
      const late = st.spreadCounts.map((n, i) => n - (warm[i] ?? 0));
      const near60 = (late[bucketOf(60)] ?? 0) + (late[bucketOf(65)] ?? 0);
      assert.ok(near60 >= 0.95 * sum(late), `spread histogram after 1 s ${late.join(',')}; whole run ${st.spreadCounts.join(',')}`);
      a.close();
      b.close();
    });
  }
});
