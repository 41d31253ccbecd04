// S2-12 mobility, simulated clock: the delivery-rate estimator follows a carrier's capacity
// step within a few round trips, and high-speed mode (Session.setHighSpeedMode) shortens its
// windows so a lost capacity is forgotten faster; it also adds one copy to the S4 class.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimClock } from '../src/clock.js';
import { SimLink } from '../src/sim/link.js';
import { udpPacket } from './ip-packets.js';
import { simSessionPair } from './sim-session-pair.js';

/** An IPv4/UDP packet of a bulk flow (port 5001) carrying a sequence number. */
const udp = (seq: number, size = 1200, dport = 5001): Buffer => udpPacket(seq, { size, dport });

const pair = (clock: SimClock, links: SimLink[], lowLatency = false) =>
  simSessionPair(clock, links, { lowLatency, options: { sessionId: 5 }, keys: [Buffer.alloc(32, 3), Buffer.alloc(32, 4)] });

const RTT_MS = 40;

/**
 * One 20 ms-delay link, saturated by an offered load above its rate; its rate steps from
 * `from` to `to` Mbit/s at t = 3 s. Returns how long after the step the estimate first stays
 * within 15% of the new rate for the rest of the run (ms).
 */
function stepResponseMs(from: number, to: number, highSpeed: boolean): number {
  const clock = new SimClock();
  const link = new SimLink(clock, 'x', { rateMbps: from, delayMs: RTT_MS / 2, queueBytes: 400_000 });
  const { a, b } = pair(clock, [link]);
  if (highSpeed) a.setHighSpeedMode(true);
  clock.advance(100_000);
  const perMs = Math.ceil((Math.max(from, to) * 1.3 * 1000) / 8 / 1200); // offered: 1.3 x the larger rate
  let n = 0;
  let settledAt = -1;
  let stepAt = 0;
  for (let ms = 0; ms < 6000; ms++) {
    if (ms === 3000) {
      link.setRate(to);
      stepAt = clock.nowUs();
    }
    for (let k = 0; k < perMs; k++) a.send(udp(n++));
    clock.advance(1000);
    if (ms >= 3000) {
      const est = a.status()[0]!.rateMbps;
      const ok = Math.abs(est - to) <= 0.15 * to;
      if (ok && settledAt < 0) settledAt = clock.nowUs();
      if (!ok) settledAt = -1;
    }
  }
  a.close();
  b.close();
  return settledAt < 0 ? Infinity : (settledAt - stepAt) / 1000;
}

test('a capacity rise is followed within a few round trips, in both modes', () => {
  const normal = stepResponseMs(10, 30, false);
  const fast = stepResponseMs(10, 30, true);
  console.log(`10 -> 30 Mbit/s: estimate settled after ${normal} ms (normal), ${fast} ms (high-speed); RTT ${RTT_MS} ms`);
  assert.ok(normal <= 8 * RTT_MS, `normal mode: ${normal} ms`);
  assert.ok(fast <= 8 * RTT_MS, `high-speed mode: ${fast} ms`);
});

test('a capacity drop is forgotten within the estimator windows, faster in high-speed mode', () => {
  const normal = stepResponseMs(30, 10, false);
  const fast = stepResponseMs(30, 10, true);
  console.log(`30 -> 10 Mbit/s: estimate settled after ${normal} ms (normal), ${fast} ms (high-speed); RTT ${RTT_MS} ms`);
  assert.ok(normal <= 2000 + 10 * RTT_MS, `normal mode: ${normal} ms`);
  assert.ok(fast <= 500 + 10 * RTT_MS, `high-speed mode: ${fast} ms`);
  assert.ok(fast < normal * 0.8, `high-speed mode follows faster: ${fast} ms vs ${normal} ms`);
});

test('high-speed mode gives real-time traffic one more copy on one more path, and off takes it back', () => {
  const clock = new SimClock();
  const links = [0, 1, 2, 3].map((i) => new SimLink(clock, `l${i}`, { rateMbps: 20, delayMs: 10 + 5 * i, queueBytes: 100_000 }));
  const { a, b } = pair(clock, links, true);
  clock.advance(500_000);
  const voice = (ms: number) => {
    const before = a.engineStats().lowLatency!.sender;
    const copies0 = before.copies;
    const pkts0 = before.packets;
    for (let t = 0; t < ms; t++) {
      if (t % 20 === 0) a.send(udp(t, 172, 5060));
      clock.advance(1000);
    }
    const after = a.engineStats().lowLatency!.sender;
    return (after.copies - copies0) / (after.packets - pkts0);
  };
  const normal = voice(2000);
  a.setHighSpeedMode(true);
  assert.equal(a.engineStats().highSpeed, true);
  const fast = voice(2000);
  a.setHighSpeedMode(false);
  const back = voice(2000);
  console.log(`copies per real-time packet: ${normal.toFixed(2)} normal, ${fast.toFixed(2)} high-speed, ${back.toFixed(2)} after`);
  assert.ok(fast >= normal + 0.9, `one more copy: ${normal} -> ${fast}`);
  assert.ok(Math.abs(back - normal) < 0.1, `back to normal: ${back}`);
  a.close();
  b.close();
});
