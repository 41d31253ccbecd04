// S2-12 "estimators follow a carrier's change within a few round trips", on a SimClock: one
// simulated carrier (25 ms each way, 200 ms drop-tail queue, as the bench's emulated carriers)
// under two real Sessions, a greedy sender offering more than the carrier can take, and the
// carrier's rate stepped. Deterministic: nothing depends on the machine's load.
//
// Budget: issue 4 asks for 90 % of the new aggregate within 1 s, i.e. 20 round trips of this
// 50 ms path, for the whole system (the traffic's own congestion control has to grow into the
// new capacity too). The path's estimate and its cap may use at most STEP_RTTS = 8 of them
// (400 ms), which leaves more than half of the second to the end-to-end transport.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimClock } from '../src/clock.js';
import { SimLink } from '../src/sim/link.js';
import { Session, type SessionOptions } from '../src/session/session.js';
import { engineOptions } from '../src/session/engine-options.js';
import { parseEdgeConfig } from '../src/config/index.js';
import { udpPacket } from './ip-packets.js';
import { InflightCap } from '../src/session/path-controller.js';

const STEP_RTTS = 8;
const DELAY_MS = 25;
const RTT_US = 2 * DELAY_MS * 1000;
const PKT = 1400;

interface Sample {
  /** Microseconds since the step. */
  t: number;
  /** The path's delivery-rate estimate, Mbit/s. */
  estMbps: number;
  /** What the cap lets through at the path's base round trip, Mbit/s. */
  allowMbps: number;
  /** What the receiving session got over the last 50 ms, Mbit/s (wire bytes). */
  gotMbps: number;
  capBytes: number;
}

interface StepRun {
  samples: Sample[];
  minRttMs: number;
}

/**
 * Offer `offer(tUs)` Mbit/s (t from the step) over one carrier that runs at `fromMbps` for 5 s and
 * at `toMbps` from then on; sample the sender's path state every 10 ms for `afterS` seconds.
 */
function runStep(fromMbps: number, toMbps: number, offer: (tUs: number) => number, afterS = 2): StepRun {
  const clock = new SimClock();
  const link = new SimLink(clock, 'stepping', {
    rateMbps: fromMbps, delayMs: DELAY_MS, seed: 7,
    queueBytes: (Math.max(fromMbps, toMbps) * 1e6 / 8) * 0.2,
  });
  const dp = parseEdgeConfig({
    control: { cloud: 'c:1', tls: { ca: '/x', cert: '/x', key: '/x' } },
    carriers: [{ name: 'a', interface: 'eth0' }],
    interception: { clientSubnets: ['10.0.0.0/8'] },
  }).dataPlane;
  const base: Omit<SessionOptions, 'sendKey' | 'recvKey' | 'deliver'> = {
    sessionId: 9, pathNames: ['stepping'], clock, ...engineOptions(dp),
    keepaliveMs: 1000, ackIntervalMs: 10, ackEveryPackets: 8, pathDeadMs: 1000, reorder: dp.reorder, replayWindow: 8192,
  };
  let got = 0;
  const a = new Session({ ...base, sendKey: Buffer.alloc(32, 1), recvKey: Buffer.alloc(32, 2), deliver: () => {} });
  const b = new Session({ ...base, sendKey: Buffer.alloc(32, 2), recvKey: Buffer.alloc(32, 1), deliver: (ip) => { got += ip.length; } });
  link.a.onDatagram((d) => a.receive(d));
  link.b.onDatagram((d) => b.receive(d));
  a.setTransport(0, link.a);
  b.setTransport(0, link.b);
  clock.advance(100_000);
  const stepAt = clock.nowUs() + 5_000_000;
  const endAt = stepAt + afterS * 1_000_000;
  const samples: Sample[] = [];
  const gotBins: number[] = [];
  let credit = 0;
  let seq = 0;
  let stepped = false;
  for (let ms = 0; clock.nowUs() < endAt; ms++) {
    const now = clock.nowUs();
    if (!stepped && now >= stepAt) {
      link.setRate(toMbps);
      stepped = true;
    }
    credit += (offer(now - stepAt) * 1e6) / 8 / 1000;
    while (credit >= PKT) {
      a.send(udpPacket(seq++, { size: PKT }));
      credit -= PKT;
    }
    clock.advance(1000);
    if (ms % 10 === 9) {
      gotBins.push(got);
      got = 0;
      if (clock.nowUs() >= stepAt - 500_000) {
        const p = a.status()[0]!;
        const capBytes = Number(p.controller?.['capBytes'] ?? 0);
        const minRttUs = (p.minRttMs ?? 50) * 1000;
        const last = gotBins.slice(-5).reduce((s, x) => s + x, 0);
        samples.push({
          t: clock.nowUs() - stepAt, estMbps: p.rateMbps, allowMbps: (capBytes * 8) / minRttUs,
          gotMbps: (last * 8) / 50_000, capBytes,
        });
      }
    }
  }
  const minRttMs = a.status()[0]!.minRttMs ?? 0;
  a.close();
  b.close();
  return { samples, minRttMs };
}

/** Round trips (of the 50 ms path) from the step until `ok` holds for good (to the end of the run). */
function rttsUntil(run: StepRun, ok: (s: Sample) => boolean): number {
  let since: number | undefined;
  for (const s of run.samples) {
    if (s.t < 0) continue;
    if (ok(s)) since ??= s.t;
    else since = undefined;
  }
  return since === undefined ? Infinity : since / RTT_US;
}

test(`capacity rise 8 -> 24 Mbit/s: estimate, cap allowance and delivery reach 90 % within ${STEP_RTTS} round trips`, () => {
  const run = runStep(8, 24, () => 36);
  const before = run.samples.filter((s) => s.t < 0);
  assert.ok(before.every((s) => Math.abs(s.estMbps - 8) < 1), `estimate before the step: ${before.map((s) => s.estMbps.toFixed(1)).join(' ')}`);
  const est = rttsUntil(run, (s) => s.estMbps >= 0.9 * 24);
  const allow = rttsUntil(run, (s) => s.allowMbps >= 0.9 * 24);
  const got = rttsUntil(run, (s) => s.gotMbps >= 0.9 * 24);
  console.log(`rise: estimate ${est.toFixed(1)} RTT, allowance ${allow.toFixed(1)} RTT, delivery ${got.toFixed(1)} RTT (min RTT ${run.minRttMs.toFixed(1)} ms)`);
  assert.ok(est <= STEP_RTTS, `estimate reached 90 % of 24 Mbit/s after ${est.toFixed(1)} round trips`);
  assert.ok(allow <= STEP_RTTS, `cap allowance reached 90 % after ${allow.toFixed(1)} round trips`);
  assert.ok(got <= STEP_RTTS, `delivery reached 90 % after ${got.toFixed(1)} round trips`);
});

test(`capacity fall 24 -> 8 Mbit/s: estimate within 1/0.9 of the new rate, and the cap sized for it, within ${STEP_RTTS} round trips`, () => {
  const run = runStep(24, 8, () => 36);
  const est = rttsUntil(run, (s) => s.estMbps <= 8 / 0.9);
  // The cap for the new rate: at most two round trips of 8 Mbit/s plus the 60 ms headroom.
  const capOk = rttsUntil(run, (s) => s.capBytes <= ((8e6 / 8) * (2 * run.minRttMs + 60)) / 1000 / 0.9);
  console.log(`fall: estimate ${est.toFixed(1)} RTT, cap ${capOk.toFixed(1)} RTT`);
  assert.ok(est <= STEP_RTTS, `estimate within 1/0.9 of 8 Mbit/s after ${est.toFixed(1)} round trips`);
  assert.ok(capOk <= STEP_RTTS, `cap sized for 8 Mbit/s after ${capOk.toFixed(1)} round trips`);
});

test('a path the sender merely gives less (app-limited for 1.5 s) keeps its estimate', () => {
  // 12 Mbit/s carrier, saturated for 5 s, then offered 4 Mbit/s for 1.5 s (as the scheduler
  // starves a path while another takes everything): the carrier did not change, so the estimate
  // must not fall. A path believed slow is given little, and then delivers little.
  const run = runStep(12, 12, (t) => (t < 0 ? 18 : 4), 1.5);
  const low = run.samples.filter((s) => s.t >= 0).map((s) => s.estMbps);
  console.log(`app-limited: estimate ${Math.min(...low).toFixed(1)}..${Math.max(...low).toFixed(1)} Mbit/s`);
  assert.ok(Math.min(...low) >= 0.9 * 12, `estimate fell to ${Math.min(...low).toFixed(1)} Mbit/s while the carrier stayed at 12`);
});

test('InflightCap: two BDPs (or BDP + 60 ms) while the carrier shows no standing queue, BDP + 40 ms once it does', () => {
  const view = { deliveryRate: 3, minRttUs: 50_000, srttUs: 55_000 }; // 24 Mbit/s, 50 ms, 5 ms above the base
  const cc = new InflightCap(view);
  assert.equal(cc.cap(), 3 * (50_000 + 60_000), 'room to find a higher rate');
  view.srttUs = 80_000; // 30 ms standing queue: the carrier is full
  assert.equal(cc.cap(), 3 * (50_000 + 40_000), 'a full carrier gets BDP + 40 ms, not a deeper queue');
  view.minRttUs = 200_000; // long path: two BDPs dominate while there is no queue
  view.srttUs = 205_000;
  assert.equal(cc.cap(), 2 * 3 * 200_000);
  view.srttUs = 0; // nothing measured yet
  assert.equal(cc.cap(), 2 * 3 * 200_000);
});

/**
 * The capacity-step bench in miniature: carriers of 8 (stepping), 12 and 5 Mbit/s with 25, 35
 * and 50 ms each way; 4 flows with a fixed window of 80 packets each (448 KB in all: what kernel
 * TCP had in flight through the tunnel just before the step in the bench, and its window hardly
 * grows within the first second after it); the first carrier steps to 24 Mbit/s. Returns the
 * goodput in 100 ms bins from the step on (Mbit/s of IP bytes delivered in order).
 */
function windowAcrossStep(windowPkts: number): number[] {
  const clock = new SimClock();
  const specs = [{ name: 'stepping', rateMbps: 8, delayMs: 25 }, { name: 'steady', rateMbps: 12, delayMs: 35 }, { name: 'slow', rateMbps: 5, delayMs: 50 }];
  const links = specs.map((s, i) => new SimLink(clock, s.name, { rateMbps: s.rateMbps, delayMs: s.delayMs, seed: 11 + i, queueBytes: Math.max(40_000, (24e6 / 8) * 0.2) }));
  const dp = parseEdgeConfig({
    control: { cloud: 'c:1', tls: { ca: '/x', cert: '/x', key: '/x' } },
    carriers: [{ name: 'a', interface: 'eth0' }],
    interception: { clientSubnets: ['10.0.0.0/8'] },
  }).dataPlane;
  const base: Omit<SessionOptions, 'sendKey' | 'recvKey' | 'deliver'> = {
    sessionId: 3, pathNames: links.map((l) => l.name), clock, ...engineOptions(dp),
    keepaliveMs: 1000, ackIntervalMs: 10, ackEveryPackets: 8, pathDeadMs: 300, reorder: dp.reorder, replayWindow: 8192,
  };
  // Per flow: next sequence to send, cumulative ack, receiver's next expected and held packets.
  const flows = Array.from({ length: 4 }, () => ({ next: 0, acked: 0, dups: 0, expect: 0, held: new Set<number>(), lastAcked: -1, stalledSince: 0 }));
  const pkt = (flow: number, seq: number, size: number, toReceiver: boolean): Buffer => {
    const b = Buffer.alloc(size);
    b[0] = 0x45;
    b.writeUInt16BE(size, 2);
    b[9] = 6;
    b.writeUInt32BE(toReceiver ? 0x0a000001 : 0x0a000002, 12);
    b.writeUInt32BE(toReceiver ? 0x0a000002 : 0x0a000001, 16);
    b.writeUInt16BE(toReceiver ? 40000 + flow : 5001, 20);
    b.writeUInt16BE(toReceiver ? 5001 : 40000 + flow, 22);
    b.writeUInt32BE(seq, 24);
    b[32] = 0x50;
    b[33] = 0x10;
    return b;
  };
  let bin = 0;
  const send = (i: number): void => {
    const f = flows[i]!;
    while (f.next - f.acked < windowPkts) a.send(pkt(i, f.next++, PKT, true));
  };
  const a: Session = new Session({
    ...base, sendKey: Buffer.alloc(32, 5), recvKey: Buffer.alloc(32, 6),
    deliver: (ip) => {
      const i = ip.readUInt16BE(22) - 40000;
      const f = flows[i]!;
      const ack = ip.readUInt32BE(24);
      if (ack > f.acked) {
        f.acked = ack;
        f.dups = 0;
      } else if (++f.dups === 3) {
        a.send(pkt(i, f.acked, PKT, true)); // fast retransmit of the hole
      }
      send(i);
    },
  });
  const b = new Session({
    ...base, sendKey: Buffer.alloc(32, 6), recvKey: Buffer.alloc(32, 5),
    deliver: (ip) => {
      const i = ip.readUInt16BE(20) - 40000;
      const f = flows[i]!;
      const seq = ip.readUInt32BE(24);
      if (seq >= f.expect && !f.held.has(seq)) {
        f.held.add(seq);
        while (f.held.delete(f.expect)) {
          f.expect++;
          bin += ip.length;
        }
      }
      b.send(pkt(i, f.expect, 60, false));
    },
  });
  links.forEach((l, i) => {
    l.a.onDatagram((d) => a.receive(d));
    l.b.onDatagram((d) => b.receive(d));
    a.setTransport(i, l.a);
    b.setTransport(i, l.b);
  });
  clock.advance(100_000);
  const bins: number[] = [];
  for (let ms = 0; ms < 9000; ms++) {
    if (ms === 6000) links[0]!.setRate(24);
    for (let i = 0; i < flows.length; i++) send(i);
    clock.advance(1000);
    for (const f of flows) {
      // A lost packet the fast retransmit did not repair: go back to the cumulative ack (a timeout).
      if (f.acked !== f.lastAcked) {
        f.lastAcked = f.acked;
        f.stalledSince = clock.nowUs();
      } else if (clock.nowUs() - f.stalledSince > 400_000) {
        f.next = f.acked;
        f.stalledSince = clock.nowUs();
      }
    }
    if (ms % 100 === 99) {
      if (ms >= 6000) bins.push((bin * 8) / 100_000);
      bin = 0;
    }
  }
  a.close();
  b.close();
  return bins;
}

test('capacity-step in miniature: the same window fills the new aggregate within 1 s (spread over the carriers, not queued on the fastest)', () => {
  const bins = windowAcrossStep(80);
  // The aggregate is 41 Mbit/s of tunnel datagrams; 1400-byte IP packets in 1444-byte datagrams.
  const aggregate = (41 * PKT) / (PKT + 44);
  const smooth = bins.map((_, i) => bins.slice(Math.max(0, i - 2), i + 1).reduce((s, x) => s + x, 0) / Math.min(3, i + 1));
  const reachMs = smooth.findIndex((x) => x >= 0.9 * aggregate);
  const settled = bins.slice(10, 30).reduce((s, x) => s + x, 0) / 20;
  console.log(`window 4 x 80: 90 % of ${aggregate.toFixed(1)} Mbit/s after ${reachMs < 0 ? 'never' : `${(reachMs + 1) * 100} ms`}; 1-3 s after the step ${settled.toFixed(1)} Mbit/s`);
  assert.ok(reachMs >= 0 && (reachMs + 1) * 100 <= 1000, `90 % of the new aggregate after ${reachMs < 0 ? 'never' : `${(reachMs + 1) * 100} ms`}`);
  assert.ok(settled >= 0.9 * aggregate, `1-3 s after the step: ${settled.toFixed(1)} Mbit/s of ${aggregate.toFixed(1)}`);
});
