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
