// S3 delay-based congestion control: every rule of SEEDS.md S3 as its own test, on plain
// numbers and a SimClock (deterministic, no real time).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimClock, type Clock } from '../src/clock.js';
import { s3Delay } from '../src/congestion/delay.js';
import { WindowedMin } from '../src/congestion/windowed-min.js';
import { Pacer } from '../src/congestion/pacer.js';
import { S3Controller, DEFAULT_S3, type S3Params } from '../src/congestion/s3.js';

const MTU = 1500;
const MS = 1000;

/** A controller with one base-delay sample of `baseUs` taken at `t0`, so the threshold is known. */
function withBase(params: Partial<S3Params>, baseUs = 80 * MS, t0 = 1_000_000): S3Controller {
  const cc = new S3Controller({ mtu: MTU, ...params });
  cc.onAck(baseUs, 0, t0);
  return cc;
}

// ---- S3-1 / S3-2

test('S3-2: D = (TS4 - TS1) - (TS3 - TS2) with skewed clocks (1000, 900000, 900030, 1100 -> 70)', () => {
  assert.equal(s3Delay(1000, 900_000, 900_030, 1100), 70);
});

test('S3-2: D survives a 32-bit wrap of either clock', () => {
  // Our clock wraps between TS1 and TS4; the peer's between TS2 and TS3.
  assert.equal(s3Delay(2 ** 32 - 40_000, 2 ** 32 - 10, 20, 500), 40_500 - 30);
  // Peer clock far ahead of ours, no wrap: only the differences matter.
  assert.equal(s3Delay(5, 4_000_000_000, 4_000_000_100, 80_105), 80_000);
});

// ---- S3-3

test('S3-3 window mode: cwnd >= MTU, send window = cwnd, no pacing', () => {
  const cc = new S3Controller({ mtu: MTU, initialCwnd: 4 * MTU });
  assert.equal(cc.mode(), 'window');
  assert.equal(cc.sendWindow(), 4 * MTU);
  assert.equal(cc.pacingDelayUs(), 0);
  assert.equal(cc.nextSendAtUs(123), 123);
  assert.equal(cc.canSend(4 * MTU - 1, 0), true);
  assert.equal(cc.canSend(4 * MTU, 0), false);
});

test('S3-3 paced mode: cwnd < MTU, send window = MTU, delay = MTU * RTT / cwnd (bytes, microseconds)', () => {
  const cc = new S3Controller({ mtu: MTU, initialCwnd: MTU / 4, stallUs: 10_000_000 });
  cc.onAck(100 * MS, 0, 1_000_000); // RTT sample: 100 ms
  assert.equal(cc.mode(), 'paced');
  assert.equal(cc.sendWindow(), MTU);
  assert.equal(cc.pacingDelayUs(), 400 * MS); // 1500 * 100 ms / 375 B: rate cwnd/RTT = 3750 B/s
  cc.onSent(MTU, 2_000_000);
  assert.equal(cc.nextSendAtUs(2_000_000), 2_400_000);
  assert.equal(cc.canSend(0, 2_399_000), false, 'not before the pacing delay');
  assert.equal(cc.canSend(0, 2_400_000), true);
  assert.equal(cc.canSend(MTU, 2_400_000), false, 'send window is one MTU');
});

test('S3-3: the pacer records each paced send with its theoretical and ACTUAL timer delay', () => {
  const clock = new SimClock(0);
  const cc = new S3Controller({ mtu: MTU, initialCwnd: MTU / 2, initialRttUs: 10 * MS });
  let released = 0;
  // A timer that fires 3 ms late (a busy event loop).
  const late: Clock = { nowUs: () => clock.nowUs(), setTimer: (d, fn) => clock.setTimer(d + 3 * MS, fn) };
  const pacer = new Pacer(late, cc, () => {
    released++;
    cc.onSent(MTU, clock.nowUs());
  });
  cc.onSent(MTU, 0);
  pacer.arm();
  assert.ok(pacer.armed);
  clock.advance(19_999);
  assert.equal(released, 0);
  clock.advance(3 * MS + 1);
  assert.equal(released, 1);
  const t = cc.telemetry();
  assert.equal(t.theoreticalPacingUs, 20 * MS); // 1500 * 10 ms / 750
  assert.equal(t.actualPacingUs, 23 * MS);
  // In window mode there is nothing to pace.
  const w = new S3Controller({ mtu: MTU });
  new Pacer(clock, w, () => assert.fail('no pacing in window mode')).arm();
  clock.advance(1_000_000);
});

// ---- S3-4: the threshold

test('S3-4 threshold = base + max(floor, k x base) + perFlow x (flows - 1), base = windowed min of D', () => {
  const cc = withBase({ thresholdFloorUs: 10 * MS, thresholdBaseFactor: 0.25, thresholdPerFlowUs: 2 * MS });
  assert.equal(cc.thresholdUs(), 80 * MS + 20 * MS);
  cc.setFlows(3);
  assert.equal(cc.thresholdUs(), 80 * MS + 20 * MS + 4 * MS);
  const short = withBase({ thresholdFloorUs: 10 * MS, thresholdBaseFactor: 0.25 }, 8 * MS);
  assert.equal(short.thresholdUs(), 8 * MS + 10 * MS, 'the floor dominates on short paths');
  assert.equal(new S3Controller().thresholdUs(), Infinity, 'no threshold before the first sample');
});

test('base delay: windowed minimum that ages out, but neither while idle nor while every sample is congested', () => {
  const m = new WindowedMin(10_000_000);
  m.add(50, 0);
  m.add(70, 5_000_000);
  assert.equal(m.get(), 50);
  m.add(60, 10_500_000);
  assert.equal(m.get(), 60, 'the 50 aged out');
  const idle = new WindowedMin(10_000_000);
  idle.add(50, 0);
  assert.equal(idle.get(), 50, 'no samples: nothing ages out');
  // In the controller: a standing queue (all samples above the threshold) does not become the base.
  const cc = withBase({}, 80 * MS, 0);
  for (let t = 1; t <= 30; t++) cc.onAck(150 * MS, 0, t * 1_000_000);
  assert.equal(cc.telemetry().baseUs, 80 * MS);
  // ... for at most baseFreezeMaxUs: then a real change of path delay is accepted.
  for (let t = 31; t <= 75; t++) cc.onAck(150 * MS, 0, t * 1_000_000);
  assert.equal(cc.telemetry().baseUs, 150 * MS);
});

// ---- S3-4: the update rule

test('S3-4: D above the threshold decreases cwnd multiplicatively and sets ssthresh = cwnd', () => {
  const cc = withBase({ mdRule: 'fixed', md: 0.7, initialCwnd: 100 * MTU });
  const a = cc.onAck(150 * MS, MTU, 2_000_000);
  assert.equal(a, 'decrease');
  assert.equal(cc.cwnd, 70 * MTU);
  assert.equal(cc.ssthresh, 70 * MTU);
});

test('S3-4: decrease factor rules (fixed, proportional, drain = base / D with a floor)', () => {
  const drain = withBase({ mdRule: 'drain', md: 0.5, initialCwnd: 100 * MTU });
  drain.onAck(120 * MS, 0, 2_000_000); // base 80 / D 120
  assert.equal(Math.round(drain.cwnd), Math.round((100 * MTU * 80) / 120));
  const deep = withBase({ mdRule: 'drain', md: 0.5, initialCwnd: 100 * MTU });
  deep.onAck(400 * MS, 0, 2_000_000);
  assert.equal(deep.cwnd, 50 * MTU, 'never below md');
  const prop = withBase({ mdRule: 'proportional', mdGain: 0.8, md: 0.5, initialCwnd: 100 * MTU });
  prop.onAck(125 * MS, 0, 2_000_000); // threshold 100: 1 - 0.8 * 25 / 125 = 0.84
  assert.equal(Math.round(prop.cwnd), 84 * MTU);
});

test('S3-4: at most one decrease per D (only if now - lastDecrease > D)', () => {
  const cc = withBase({ mdRule: 'fixed', md: 0.5, initialCwnd: 64 * MTU });
  const d = 150 * MS;
  assert.equal(cc.onAck(d, 0, 2_000_000), 'decrease');
  assert.equal(cc.cwnd, 32 * MTU);
  assert.equal(cc.onAck(d, 0, 2_000_000 + 10 * MS), 'hold');
  assert.equal(cc.onAck(d, 0, 2_000_000 + d), 'hold', 'exactly D later is not more than D');
  assert.equal(cc.cwnd, 32 * MTU);
  assert.equal(cc.onAck(d, 0, 2_000_000 + d + 1), 'decrease');
  assert.equal(cc.cwnd, 16 * MTU);
  // The gate is the D of the current sample: a larger D waits longer.
  assert.equal(cc.onAck(400 * MS, 0, 2_000_000 + d + 1 + 300 * MS), 'hold');
  assert.equal(cc.telemetry().heldDecreases, 3);
});

test('S3-4 pacing-fault guard: theoretical 5 us, actual 100 ms -> the decrease stops at MTU', () => {
  // A path in paced mode whose timer was set for 5 us but fired after 100 ms (a busy loop).
  const mk = (): S3Controller => withBase({ mdRule: 'fixed', md: 0.5, initialCwnd: 1.2 * MTU });
  const faulty = mk();
  faulty.recordPacedSend(5, 100 * MS, 2_000_000);
  assert.equal(faulty.telemetry().theoreticalPacingUs, 5);
  assert.equal(faulty.telemetry().actualPacingUs, 100 * MS);
  // 50 ms after that paced send (< its actual 100 ms delay), D is above the threshold.
  assert.equal(faulty.onAck(150 * MS, 0, 2_050_000), 'decrease-guarded');
  assert.equal(faulty.cwnd, MTU, 'cwnd = max(MD(cwnd), MTU): stays in window mode, off the faulty timer');
  assert.equal(faulty.mode(), 'window');
  assert.equal(faulty.ssthresh, MTU);
  assert.equal(faulty.telemetry().guardedDecreases, 1);

  // The same with a healthy timer (actual = 5 us): plain multiplicative decrease into paced mode.
  const healthy = mk();
  healthy.recordPacedSend(5, 5, 2_000_000);
  assert.equal(healthy.onAck(150 * MS, 0, 2_050_000), 'decrease');
  assert.equal(healthy.cwnd, 0.6 * MTU);
  assert.equal(healthy.mode(), 'paced');

  // Faulty timer, but the paced send is older than its actual delay: plain decrease again.
  const old = mk();
  old.recordPacedSend(5, 100 * MS, 2_000_000);
  assert.equal(old.onAck(150 * MS, 0, 2_100_001), 'decrease');
  assert.equal(old.cwnd, 0.6 * MTU);
});

test('S3-4 guard: when MD stays above MTU the guarded decrease is the plain one; a paced cwnd is lifted to MTU', () => {
  const big = withBase({ mdRule: 'fixed', md: 0.5, initialCwnd: 10 * MTU });
  big.recordPacedSend(5, 100 * MS, 2_000_000);
  assert.equal(big.onAck(150 * MS, 0, 2_010_000), 'decrease');
  assert.equal(big.cwnd, 5 * MTU);
  // Already paced (cwnd < MTU) on a faulty timer: the rule assigns MTU, leaving the timer.
  const paced = withBase({ mdRule: 'fixed', md: 0.5, initialCwnd: MTU / 2 });
  paced.recordPacedSend(5, 100 * MS, 2_000_000);
  assert.equal(paced.onAck(150 * MS, 0, 2_010_000), 'decrease-guarded');
  assert.equal(paced.cwnd, MTU);
});

test("guard window option 'lateness': only the timer's lateness (actual - theoretical) counts", () => {
  const cc = withBase({ mdRule: 'fixed', md: 0.5, initialCwnd: 1.2 * MTU, guardWindow: 'lateness' });
  cc.recordPacedSend(400 * MS, 430 * MS, 2_000_000); // a healthy-ish WAN paced send, 30 ms late
  assert.equal(cc.onAck(150 * MS, 0, 2_040_000), 'decrease', '40 ms later: beyond the 30 ms lateness');
  assert.equal(cc.cwnd, 0.6 * MTU);
  const faulty = withBase({ mdRule: 'fixed', md: 0.5, initialCwnd: 1.2 * MTU, guardWindow: 'lateness' });
  faulty.recordPacedSend(5, 100 * MS, 2_000_000);
  assert.equal(faulty.onAck(150 * MS, 0, 2_050_000), 'decrease-guarded');
});

test('S3-4: D at or below the threshold: multiplicative increase below ssthresh, additive above', () => {
  const cc = withBase({ initialCwnd: 10 * MTU, aiMaxVelocity: 1 });
  cc.canSend(10 * MTU, 1_000_000); // the window is in use
  assert.equal(cc.onAck(100 * MS, MTU, 1_010_000), 'mi', 'D == threshold is not above it');
  assert.equal(cc.cwnd, 11 * MTU, 'slow start: + acked bytes (doubling per round trip)');
  // Enter congestion avoidance.
  cc.onAck(200 * MS, 0, 1_500_000);
  const ss = cc.ssthresh;
  assert.equal(cc.cwnd, ss);
  cc.canSend(ss, 1_600_000);
  assert.equal(cc.onAck(90 * MS, MTU, 1_600_000), 'ai');
  assert.ok(Math.abs(cc.cwnd - (ss + (MTU * MTU) / ss)) < 1e-6, 'additive: one MTU per window of acks');
  // A whole window of acks adds about one MTU.
  const before = cc.cwnd;
  for (let i = 0; i < Math.round(before / MTU); i++) cc.onAck(90 * MS, MTU, 1_600_000 + i);
  assert.ok(Math.abs(cc.cwnd - before - MTU) < MTU * 0.05, `grew ${cc.cwnd - before}`);
});

test('S3-4: MI factor is configurable (1.5 per round trip = + half the acked bytes)', () => {
  const cc = withBase({ initialCwnd: 10 * MTU, miPerRtt: 1.5 });
  cc.canSend(10 * MTU, 1_000_000);
  cc.onAck(90 * MS, 2 * MTU, 1_010_000);
  assert.equal(cc.cwnd, 11 * MTU);
});

test('additive step doubles per queue-free round trip (capacity probing) and resets on a queue or a decrease', () => {
  const cc = withBase({ mdRule: 'fixed', md: 0.5, initialCwnd: 40 * MTU, aiMaxVelocity: 4 }, 80 * MS, 0);
  cc.onAck(200 * MS, 0, 1_000_000); // decrease: ssthresh = cwnd = 20 MTU
  const grow = (d: number, t: number): number => {
    const before = cc.cwnd;
    cc.canSend(cc.cwnd, t);
    cc.onAck(d, MTU, t);
    return (cc.cwnd - before) * (cc.cwnd / MTU);
  };
  // srtt is ~ 95 ms here; one ack per 100 ms = one per round trip.
  let t = 1_000_000;
  const steps: number[] = [];
  for (let i = 0; i < 4; i++) steps.push(Math.round(grow(80 * MS, (t += 100 * MS)) / MTU));
  assert.deepEqual(steps, [2, 4, 4, 4], 'queue-free: 1 -> 2 -> 4 (cap) MTUs per round trip');
  // A queue (D well above base, still below the threshold): back to one MTU per round trip.
  assert.equal(Math.round(grow(98 * MS, (t += 100 * MS)) / MTU), 1);
});

// ---- rate-probing guarantee

test('an idle path does not collapse: no acks -> no change, and a stalled window still lets one packet out', () => {
  const cc = withBase({ initialCwnd: 20 * MTU, stallUs: 200 * MS });
  const before = cc.telemetry();
  // 10 minutes of silence: nothing sent, nothing acknowledged.
  assert.equal(cc.canSend(0, 600_000_000), true);
  assert.equal(cc.cwnd, before.cwnd);
  assert.equal(cc.thresholdUs(), before.thresholdUs);
  // App-limited acks (window far from used) do not inflate cwnd either.
  assert.equal(cc.onAck(80 * MS, MTU, 700_000_000), 'app-limited');
  assert.equal(cc.cwnd, before.cwnd);
  // Everything in flight was lost (an outage) and no ack comes: the path is not stuck.
  cc.onSent(MTU, 700_000_000);
  assert.equal(cc.canSend(20 * MTU, 700_100_000), false);
  assert.equal(cc.canSend(20 * MTU, 700_200_000), true, 'one packet after stallUs without acks');
  cc.onSent(MTU, 700_200_000);
  assert.equal(cc.canSend(21 * MTU, 700_300_000), false, 'and then one per stall interval');
});

test('cwnd never goes below minCwnd, so the pacing interval stays bounded', () => {
  const cc = withBase({ mdRule: 'fixed', md: 0.5, initialCwnd: 2 * MTU });
  let t = 2_000_000;
  for (let i = 0; i < 20; i++) cc.onAck(500 * MS, 0, (t += 600 * MS));
  assert.equal(cc.cwnd, DEFAULT_S3.minCwnd);
  assert.ok(cc.pacingDelayUs() <= 16 * cc.rttUs() + 1);
});

test('loss backstop: one decrease by md per round trip, shares the at-most-once gate with delay decreases', () => {
  const cc = withBase({ md: 0.5, initialCwnd: 40 * MTU });
  assert.equal(cc.onLoss(0, 2_000_000), 'ignored');
  assert.equal(cc.onLoss(3, 2_000_000), 'decrease');
  assert.equal(cc.cwnd, 20 * MTU);
  assert.equal(cc.onLoss(1, 2_010_000), 'hold');
  assert.equal(cc.onAck(150 * MS, 0, 2_020_000), 'hold', 'a delay decrease within D of it waits');
  assert.equal(cc.telemetry().lossDecreases, 1);
});

// ---- S3-5

test('S3-5 telemetry: D, threshold, cwnd, ssthresh, mode, theoretical and actual pacing delay', () => {
  const cc = withBase({ initialCwnd: 10 * MTU });
  cc.recordPacedSend(5, 100 * MS, 1_500_000);
  cc.onAck(130 * MS, 0, 2_000_000);
  const t = cc.telemetry();
  assert.equal(t.dUs, 130 * MS);
  assert.equal(t.thresholdUs, 100 * MS);
  assert.equal(t.baseUs, 80 * MS);
  assert.equal(t.cwnd, cc.cwnd);
  assert.equal(t.ssthresh, cc.ssthresh);
  assert.equal(t.mode, 'window');
  assert.equal(t.theoreticalPacingUs, 5);
  assert.equal(t.actualPacingUs, 100 * MS);
  assert.equal(t.decreases, 1);
});

test('parameters are validated', () => {
  assert.throws(() => new S3Controller({ md: 1 }));
  assert.throws(() => new S3Controller({ mtu: 1000, minCwnd: 2000 }));
  const custom = new S3Controller({ mtu: 1000 });
  assert.equal(custom.cwnd, 10_000, 'initial window follows a custom MTU');
});
