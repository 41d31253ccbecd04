// From a policy document to a running session (policy/apply.ts): what compilePolicy builds, and a
// policy put in force mid-transfer on two Sessions over simulated links, without losing a packet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimClock } from '../src/clock.js';
import { SimLink } from '../src/sim/link.js';
import { RateWeightedScheduler } from '../src/schedule/rate-weighted.js';
import { UtilityScheduler } from '../src/schedule/utility.js';
import { classify, packetMeta } from '../src/schedule/classify.js';
import { applyToSession, compilePolicy, parsePolicy } from '../src/policy/index.js';
import { simSessionPair } from './sim-session-pair.js';

function udp(seq: number, size = 1200, dport = 5001, dst = 0x0a000002): Buffer {
  const b = Buffer.alloc(size);
  b[0] = 0x45;
  b.writeUInt16BE(size, 2);
  b[9] = 17;
  b.writeUInt32BE(0x0a000001, 12);
  b.writeUInt32BE(dst, 16);
  b.writeUInt16BE(40000, 20);
  b.writeUInt16BE(dport, 22);
  b.writeUInt32BE(seq, 28);
  return b;
}

test('compilePolicy: algorithms per class, rules first (with destinations), privileged users by priority, carrier tiers/caps/cut-offs', () => {
  const p = parsePolicy({
    users: [{ address: '10.0.0.9', priority: 1, privileged: true }, { address: '10.0.0.7', priority: 5, privileged: true }, { address: '10.0.0.8', priority: 7 }],
    classes: { rules: [{ class: 'realtime', destinations: ['203.0.113.0/24'] }], algorithms: { bulk: 'utility', interactive: 'rate-weighted' } },
    schedule: { alpha: 0.5, beta: 2, retransmitF: 77, pinBytes: 1000 },
    lowLatency: { preferredLinkTypes: ['nr'], preferredMaxDelayMs: 40, services: { video: { linkTypes: ['wlan5'], maxDelayMs: 30 } } },
    carriers: { 'lte-a': { tier: 'backup', dataCap: { bytes: 1e9, billingDay: 5 } }, 'lte-b': { latencyCutoffMs: 100 } },
    latency: { cutoffMs: 250 },
  });
  const c = compilePolicy(p, ['lte-a', 'lte-b', 'sat']);
  assert.ok(c.schedule.scheduler instanceof UtilityScheduler);
  assert.ok(c.schedule.schedulers.interactive instanceof RateWeightedScheduler);
  assert.ok(c.schedule.schedulers.realtime instanceof UtilityScheduler);
  assert.equal(c.schedule.retransmitF, 77);
  assert.equal(c.schedule.pinBytes, 1000);
  // 10.0.0.7 (priority 5) before 10.0.0.9 (priority 1); 10.0.0.8 is not privileged.
  assert.deepEqual(c.schedule.privilegedUsers, [String(0x0a000007), String(0x0a000009)]);
  // S2-4: every user with a priority gets priority + 1 packets per stage-1 turn.
  assert.deepEqual(c.schedule.userWeights, [[String(0x0a000009), 2], [String(0x0a000007), 6], [String(0x0a000008), 8]]);
  assert.deepEqual(c.schedule.preferences, { preferredTypes: ['nr'], preferredMaxDelayUs: 40_000, services: { video: { types: ['wlan5'], maxDelayUs: 30_000 } } });
  assert.deepEqual(c.paths, {
    'lte-a': { tier: 'backup', capBytes: 1e9, billingDay: 5, latencyCutoffMs: 250 },
    'lte-b': { tier: 'primary', latencyCutoffMs: 100 },
    sat: { latencyCutoffMs: 250 },
  });
  // The policy's rule comes before the built-in ones; a big TCP-like flow to 203.0.113.5 is real-time.
  const m = packetMeta(udp(1, 1400, 443, 0xcb007105))!;
  assert.equal(classify(m, 10_000_000, c.schedule.classRules, 1000), 'realtime');
  assert.equal(classify(packetMeta(udp(1, 1400, 443))!, 10_000_000, c.schedule.classRules, 1000), 'bulk');
});

test('a policy applied mid-transfer moves traffic off a carrier without losing a packet', () => {
  const clock = new SimClock();
  const links = [new SimLink(clock, 'lte-a', { rateMbps: 20, delayMs: 20, queueBytes: 200_000 }), new SimLink(clock, 'lte-b', { rateMbps: 20, delayMs: 25, queueBytes: 200_000 })];
  const { a, b, gotB: got } = simSessionPair(clock, links, { lowLatency: false });
  clock.advance(200_000);
  let n = 0;
  const run = (ms: number): void => {
    for (let t = 0; t < ms; t++) {
      for (let k = 0; k < 2; k++) if (a.send(udp(n))) n++;
      clock.advance(1000);
    }
  };
  run(1000);
  const before = a.status()[0]!.txDataBytes;
  assert.ok(before > 100_000, 'lte-a carried data before the policy');
  applyToSession(a, compilePolicy(parsePolicy({ carriers: { 'lte-a': { tier: 'never' }, 'lte-b': { tier: 'primary' } } }), ['lte-a', 'lte-b']));
  clock.advance(100_000);
  const atApply = a.status()[0]!.txDataBytes;
  run(1500);
  clock.advance(500_000);
  // Whatever was in flight or queued for lte-a when the policy came may still leave; nothing new does.
  assert.ok(a.status()[0]!.txDataBytes - atApply < 5 * 1300, `lte-a carried ${a.status()[0]!.txDataBytes - atApply} bytes after the policy`);
  assert.ok(a.status()[1]!.txDataBytes > before, 'lte-b took the traffic');
  assert.equal(got.length, n, 'every packet delivered');
  assert.deepEqual([...got].sort((x, y) => x - y), Array.from({ length: n }, (_, i) => i));
  a.close();
  b.close();
});

test('the cloud\'s downlink follows the edge\'s effective policy: pinning set by the store, changed by an overlay', async () => {
  const { startCloudPolicy } = await import('../src/control/policy-cloud.js');
  const plane = await startCloudPolicy({ heartbeatMs: 1000 });
  await plane.store.setGlobal({ schedule: { pinBytes: 1 << 30 } });
  const clock = new SimClock();
  const links = [new SimLink(clock, 'lte-a', { rateMbps: 20, delayMs: 20, queueBytes: 200_000 }), new SimLink(clock, 'lte-b', { rateMbps: 20, delayMs: 20, queueBytes: 200_000 })];
  let got = 0;
  const { a: cloud, b: edge } = simSessionPair(clock, links, { lowLatency: false, deliverB: () => { got++; } });
  const detach = plane.attachSession('edge-1', cloud, ['lte-a', 'lte-b']);
  clock.advance(200_000);
  let n = 0;
  // 29 Mbit/s: more than one 20 Mbit/s path can take, so an unpinned flow uses both.
  const run = (ms: number): void => {
    for (let t = 0; t < ms; t++) {
      for (let k = 0; k < 3; k++) if (cloud.send(udp(n))) n++;
      clock.advance(1000);
    }
  };
  // One flow, pinned for its first GiB: all of it on one path.
  run(1000);
  const [a1, b1] = cloud.status().map((p) => p.txDataBytes);
  assert.ok(Math.min(a1!, b1!) === 0 && Math.max(a1!, b1!) > 500_000, `pinned: ${a1} / ${b1}`);
  // An overlay for this edge turns pinning off: the same flow is striped over both paths.
  await plane.store.setOverlay('edge-1', 'fleet.test', { schedule: { pinBytes: 0 } });
  run(1000);
  const [a2, b2] = cloud.status().map((p) => p.txDataBytes);
  assert.ok(a2! - a1! > 100_000 && b2! - b1! > 100_000, `striped after the overlay: +${a2! - a1!} / +${b2! - b1!}`);
  detach();
  // Detached: later changes no longer reach it (pinning back on would leave the striping as is).
  await plane.store.setGlobal({ schedule: { pinBytes: 1 << 30 } });
  clock.advance(500_000);
  // While pinned the flow offered more than its one path carries, so some was dropped at the queue.
  assert.ok(got > n / 2, `delivered ${got} of ${n}`);
  cloud.close();
  edge.close();
  await plane.close();
});
