// Heterogeneity (issue 4): on an asymmetric pair (4x rate, 60 ms delay spread) one bulk flow
// must get at least the goodput of the best single path alone: when striping does not pay,
// the flow stays on the path that helps it (the bulk scheduler's arrival-time rule,
// schedule/utility.ts expectedArrivalUs), and when it pays the slow path is used too.
//
// The flow is a window-based reliable transport in the simulation (as TCP is): W packets in
// flight, every arrival acknowledged cumulatively back through the tunnel (the receiver keeps
// out-of-order packets, as a TCP receive buffer does), one new packet per acknowledgement plus
// additive increase up to a receive-window cap; on three duplicate acknowledgements the
// missing packet is re-sent and the window halved, partial acknowledgements re-send the next
// hole (NewReno); a 300 ms stall re-sends from the last acknowledgement (a timeout). Its goodput is what the engine's merge delivers in order: a packet sent on the
// slow path holds the fast path's packets back in the reorder buffer, and the sender's window
// then waits for the slowest path, which is what makes naive striping lose to one path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimClock } from '../src/clock.js';
import { SimLink } from '../src/sim/link.js';
import { engineOptions } from '../src/session/engine-options.js';
import { parseEdgeConfig } from '../src/config/index.js';
import type { PathView, Scheduler } from '../src/schedule/scheduler.js';
import { simSessionPair } from './sim-session-pair.js';

const MSS = 1400;

function tcpish(seq: number, size: number, fromPort: number, toPort: number): Buffer {
  const b = Buffer.alloc(size);
  b[0] = 0x45;
  b.writeUInt16BE(size, 2);
  b[9] = 6;
  b.writeUInt32BE(0x0a000001, 12);
  b.writeUInt32BE(0x0a000002, 16);
  b.writeUInt16BE(fromPort, 20);
  b.writeUInt16BE(toPort, 22);
  b.writeUInt32BE(seq, 24);
  b[32] = 0x50; // data offset: 20-byte TCP header
  b[33] = 0x10; // ACK
  return b;
}

interface LinkSpec { name: string; rateMbps: number; delayMs: number }

/** Goodput (Mbit/s, in-order bytes delivered to the receiver) of one window-based flow. */
function goodputMbps(specs: LinkSpec[], maxWindow: number, bulk?: Scheduler, seconds = 8): number {
  const clock = new SimClock();
  const t0 = clock.nowUs();
  const links = specs.map((s, i) => new SimLink(clock, s.name, {
    rateMbps: s.rateMbps, delayMs: s.delayMs, seed: 11 + i,
    queueBytes: Math.max(40_000, (s.rateMbps * 1e6 / 8) * 0.1), // 100 ms of queue
  }));
  const dp = parseEdgeConfig({
    control: { cloud: 'c:1', tls: { ca: '/x', cert: '/x', key: '/x' } },
    carriers: [{ name: 'a', interface: 'eth0' }],
    interception: { clientSubnets: ['10.0.0.0/8'] },
  }).dataPlane;
  let cwnd = 10;
  let nextSeq = 0;
  let acked = 0; // highest cumulative ack + 1
  let deliveredBytes = 0;
  let expect = 0;
  let lastHalving = -Infinity;
  let dups = 0;
  let recover = 0;
  /** Out-of-order packets the receiver keeps (a TCP receive buffer). */
  const held = new Set<number>();
  const send = (): void => {
    while (nextSeq - acked < Math.floor(cwnd)) a.send(tcpish(nextSeq++, MSS, 40000, 5001));
  };
  const { a, b } = simSessionPair(clock, links, {
    options: { sessionId: 3, ...engineOptions(dp), ...(bulk ? { scheduler: bulk } : {}), reorder: dp.reorder },
    keys: [Buffer.alloc(32, 5), Buffer.alloc(32, 6)],
    deliverA: (ip) => {
      // An acknowledgement: cumulative; a duplicate one means the receiver saw a gap.
      const ack = ip.readUInt32BE(24);
      if (ack > acked) {
        cwnd = Math.min(maxWindow, cwnd + (ack - acked) / cwnd);
        acked = ack;
        dups = 0;
        // NewReno: a partial ack during recovery re-sends the next hole at once.
        if (acked < recover) a.send(tcpish(acked, MSS, 40000, 5001));
      } else if (++dups === 3) {
        // Fast retransmit: the third duplicate ack re-sends the missing packet and halves
        // the window, at most once per 200 ms.
        a.send(tcpish(acked, MSS, 40000, 5001));
        recover = nextSeq;
        if (clock.nowUs() - lastHalving > 200_000) {
          cwnd = Math.max(2, cwnd / 2);
          lastHalving = clock.nowUs();
        }
      }
      send();
    },
    deliverB: (ip) => {
      const seq = ip.readUInt32BE(24);
      if (seq < expect || held.has(seq)) return; // a re-send of something already received
      held.add(seq);
      while (held.delete(expect)) {
        expect++;
        if (clock.nowUs() - t0 > 2_000_000) deliveredBytes += ip.length;
      }
      b.send(tcpish(expect, 60, 5001, 40000));
    },
  });
  clock.advance(100_000);
  // Packets the sender's window lost for good are re-sent (go-back-N from the cumulative ack),
  // as a TCP retransmission timeout would: the flow never stalls forever.
  let lastAcked = -1;
  let stalledSince = clock.nowUs();
  for (let t = 0; t < (seconds + 2) * 100; t++) {
    send();
    clock.advance(10_000);
    if (acked !== lastAcked) {
      lastAcked = acked;
      stalledSince = clock.nowUs();
    } else if (clock.nowUs() - stalledSince > 300_000) {
      nextSeq = acked;
      cwnd = 2;
      stalledSince = clock.nowUs();
    }
  }
  a.close();
  b.close();
  return (deliveredBytes * 8) / ((clock.nowUs() - t0 - 2_000_000) / 1e6) / 1e6;
}

const FAST: LinkSpec = { name: 'fast', rateMbps: 20, delayMs: 10 };
const SLOW: LinkSpec = { name: 'slow', rateMbps: 5, delayMs: 70 };

/** The control: stripe in proportion to the measured rates, blind to delay (naive weighted round robin). */
class RateProportional implements Scheduler {
  readonly name = 'rate-proportional';
  private credit = new Map<number, number>();
  pick(paths: readonly PathView[]): PathView | undefined {
    const usable = paths.filter((p) => p.usable());
    let best: PathView | undefined;
    for (const p of usable) {
      const c = (this.credit.get(p.id) ?? 0) + Math.max(p.deliveryRate, 0.01);
      this.credit.set(p.id, c);
      if (!best || c > (this.credit.get(best.id) ?? 0)) best = p;
    }
    if (best) this.credit.set(best.id, (this.credit.get(best.id) ?? 0) - usable.reduce((s, p) => s + Math.max(p.deliveryRate, 0.01), 0));
    return best;
  }
}

test('asymmetric pair (4x rate, 60 ms spread), one bulk flow: goodput >= the best single path alone', () => {
  for (const w of [16, 64, 256]) {
    const fastAlone = goodputMbps([FAST], w);
    const slowAlone = goodputMbps([SLOW], w);
    const both = goodputMbps([FAST, SLOW], w);
    const best = Math.max(fastAlone, slowAlone);
    console.log(`window ${w}: fast alone ${fastAlone.toFixed(2)}, slow alone ${slowAlone.toFixed(2)}, braid ${both.toFixed(2)} Mbit/s`);
    assert.ok(both >= best * 0.97, `window ${w}: braid ${both.toFixed(2)} Mbit/s < best single ${best.toFixed(2)} Mbit/s`);
  }
});

test('control: delay-blind striping by rate on the same pair loses to the best single path (the check above can fail)', () => {
  const fastAlone = goodputMbps([FAST], 64);
  const naive = goodputMbps([FAST, SLOW], 64, new RateProportional());
  console.log(`window 64: fast alone ${fastAlone.toFixed(2)}, rate-proportional striping ${naive.toFixed(2)} Mbit/s`);
  assert.ok(naive < fastAlone * 0.9, `naive striping ${naive.toFixed(2)} vs fast alone ${fastAlone.toFixed(2)}`);
});

test('when striping pays (a flood above the fast path rate), the slow path is used too', () => {
  const clock = new SimClock();
  const links = [FAST, SLOW].map((x, i) => new SimLink(clock, x.name, { rateMbps: x.rateMbps, delayMs: x.delayMs, seed: 3 + i, queueBytes: (x.rateMbps * 1e6 / 8) * 0.1 }));
  const dp = parseEdgeConfig({
    control: { cloud: 'c:1', tls: { ca: '/x', cert: '/x', key: '/x' } },
    carriers: [{ name: 'a', interface: 'eth0' }],
    interception: { clientSubnets: ['10.0.0.0/8'] },
  }).dataPlane;
  let got = 0;
  const { a, b } = simSessionPair(clock, links, {
    options: { sessionId: 4, ...engineOptions(dp), reorder: dp.reorder },
    keys: [Buffer.alloc(32, 7), Buffer.alloc(32, 8)],
    deliverB: (ip) => { got += ip.length; },
  });
  clock.advance(100_000);
  // 23 Mbit/s of 1400-byte packets (2.05 per ms) for 6 s; goodput counted over the last 4 s.
  let counted = 0;
  for (let ms = 0; ms < 6000; ms++) {
    if (ms === 2000) counted = got;
    const n = ms % 20 === 0 ? 3 : 2;
    for (let k = 0; k < n; k++) a.send(tcpish(ms * 4 + k, MSS, 40000, 5001));
    clock.advance(1000);
  }
  const mbps = ((got - counted) * 8) / 4 / 1e6;
  const slowShare = a.status()[1]!.txDataBytes / (a.status()[0]!.txDataBytes + a.status()[1]!.txDataBytes);
  console.log(`23 Mbit/s offered: ${mbps.toFixed(2)} Mbit/s delivered, slow path share ${(slowShare * 100).toFixed(1)} %`);
  assert.ok(mbps > 20.5, `more than the fast path alone can carry: ${mbps.toFixed(2)} Mbit/s`);
  assert.ok(slowShare > 0.08, `slow path used: ${slowShare}`);
  a.close();
  b.close();
});
