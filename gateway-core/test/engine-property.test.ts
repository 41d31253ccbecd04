// Whole-engine property tests, deterministic: two Sessions (scheduler, congestion control,
// queue, reorder, cross-path retransmission, the S4 class) over 2-4 simulated links with
// random rates, delays, loss and outages, driven by a SimClock, over many seeds. Both
// directions carry bulk (one of them TCP, so header compression, wire/compress, is on the
// way), interactive and real-time flows. For every seed:
//   - nothing is delivered twice;
//   - nothing is delivered out of order within a flow;
//   - the accounting closes: every packet the sender accepted was delivered or counted lost
//     (sender queue drops, sequences the receiver gave up on, S4 losses);
//   - memory stays bounded: send queue, reorder buffer and S4 buffers never exceed their bounds.
// A failure names the seed; `SEED=n` reruns that one alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimClock } from '../src/clock.js';
import { SimLink, prng } from '../src/sim/link.js';
import { Session, type SessionOptions } from '../src/session/session.js';
import { engineOptions } from '../src/session/engine-options.js';
import { parseEdgeConfig } from '../src/config/index.js';

const SEEDS = process.env.SEED ? [Number(process.env.SEED)] : Array.from({ length: 100 }, (_, i) => i + 1);
const QUEUE = { maxPackets: 700, maxBytes: 600_000, maxDelayMs: 100 };
// Bounds that are not powers of two and small enough to be reached under these loads.
const REORDER = { holdMs: 100, maxPackets: 300, maxBytes: 400_000 };

/** A flow: fixed 5-tuple and class (by port: 5001 bulk, 22 interactive, 5060 real-time); UDP unless `tcp`. */
interface Flow { id: number; port: number; size: number; everyMs: number; burst: number; tcp?: boolean }

/** Where a packet names its flow (u16) and sequence (u32): after the UDP header, or after a 20-byte TCP header. */
const markAt = (tcp: boolean): number => (tcp ? 40 : 28);

function packet(flow: Flow, seq: number, src: number): Buffer {
  const b = Buffer.alloc(flow.size);
  b[0] = 0x45;
  b.writeUInt16BE(flow.size, 2);
  b[9] = flow.tcp ? 6 : 17;
  b.writeUInt32BE(src, 12);
  b.writeUInt32BE(0x0a000100 + flow.id, 16);
  b.writeUInt16BE(30000 + flow.id, 20);
  b.writeUInt16BE(flow.port, 22);
  if (flow.tcp) {
    b.writeUInt32BE(seq * 1360, 24);
    b[32] = 5 << 4;
    b[33] = 0x10;
  }
  b.writeUInt16BE(flow.id, markAt(flow.tcp ?? false));
  b.writeUInt32BE(seq, markAt(flow.tcp ?? false) + 2);
  return b;
}

interface Receiver {
  /** Highest sequence delivered per flow; a lower or equal one is out of order or a duplicate. */
  last: Map<number, number>;
  seen: Set<string>;
  duplicates: number;
  outOfOrder: number;
  delivered: { main: number; rt: number };
  firstProblem: string;
}

function receiver(): Receiver {
  return { last: new Map(), seen: new Set(), duplicates: 0, outOfOrder: 0, delivered: { main: 0, rt: 0 }, firstProblem: '' };
}

function onDeliver(r: Receiver, ip: Buffer, now: number): void {
  const at = markAt(ip[9] === 6);
  const flow = ip.readUInt16BE(at);
  const seq = ip.readUInt32BE(at + 2);
  const key = `${flow}:${seq}`;
  if (r.seen.has(key)) {
    r.duplicates++;
    r.firstProblem ||= `duplicate ${key} at ${now}`;
    return;
  }
  r.seen.add(key);
  if (ip.readUInt16BE(22) === 5060) r.delivered.rt++;
  else r.delivered.main++;
  const last = r.last.get(flow) ?? -1;
  if (seq <= last) {
    r.outOfOrder++;
    r.firstProblem ||= `flow ${flow}: ${seq} after ${last} at ${now}`;
  }
  r.last.set(flow, Math.max(last, seq));
}

interface SideCount { acceptedMain: number; acceptedRt: number; refused: number }

function runSeed(seed: number) {
  const rand = prng(seed * 7919);
  const pick = (lo: number, hi: number) => lo + (hi - lo) * rand();
  const clock = new SimClock();
  const nLinks = 2 + Math.floor(rand() * 3);
  const links = Array.from({ length: nLinks }, (_, i) => {
    const rateMbps = pick(2, 40);
    const delayMs = pick(5, 120);
    return new SimLink(clock, `l${i}`, {
      rateMbps, delayMs, lossPct: rand() < 0.5 ? 0 : pick(0, 3), seed: seed * 31 + i,
      queueBytes: Math.max(30_000, (rateMbps * 1e6 / 8) * pick(0.03, 0.3)),
    });
  });
  // Outages: each link may go down once or twice for 0.1-1.5 s during the 2.5 s of traffic.
  for (const l of links) {
    const n = Math.floor(rand() * 3);
    for (let k = 0; k < n; k++) {
      const at = pick(0.2e6, 2.2e6);
      const len = pick(0.1e6, 1.5e6);
      clock.setTimer(at, () => { l.up = false; });
      clock.setTimer(at + len, () => { l.up = true; });
    }
  }
  const dp = parseEdgeConfig({
    control: { cloud: 'c:1', tls: { ca: '/x', cert: '/x', key: '/x' } },
    carriers: [{ name: 'a', interface: 'eth0' }],
    interception: { clientSubnets: ['10.0.0.0/8'] },
  }).dataPlane;
  const k1 = Buffer.alloc(32, 1);
  const k2 = Buffer.alloc(32, 2);
  const rA = receiver();
  const rB = receiver();
  const base: Omit<SessionOptions, 'sendKey' | 'recvKey' | 'deliver'> = {
    sessionId: seed, pathNames: links.map((l) => l.name), clock,
    ...engineOptions({ ...dp, congestion: rand() < 0.5 ? 's3' : 'inflight-cap', sendQueue: QUEUE }),
    keepaliveMs: 1000, ackIntervalMs: 10, ackEveryPackets: 8, pathDeadMs: 300, reorder: REORDER, replayWindow: 8192,
  };
  const a = new Session({ ...base, sendKey: k1, recvKey: k2, deliver: (ip) => onDeliver(rA, ip, clock.nowUs()) });
  const b = new Session({ ...base, sendKey: k2, recvKey: k1, deliver: (ip) => onDeliver(rB, ip, clock.nowUs()) });
  links.forEach((l, i) => {
    l.a.onDatagram((d) => a.receive(d));
    l.b.onDatagram((d) => b.receive(d));
    a.setTransport(i, l.a);
    b.setTransport(i, l.b);
  });
  const flows: Flow[] = [
    { id: 1, port: 5001, size: 1400, everyMs: 1, burst: Math.ceil(pick(0, 4)), tcp: true },
    { id: 2, port: 5001, size: 1000, everyMs: 2, burst: 1 },
    { id: 3, port: 22, size: 120, everyMs: 10, burst: 1 },
    { id: 4, port: 5060, size: 172, everyMs: 20, burst: 1 },
  ];
  const counts: Record<'a' | 'b', SideCount> = { a: { acceptedMain: 0, acceptedRt: 0, refused: 0 }, b: { acceptedMain: 0, acceptedRt: 0, refused: 0 } };
  const next = new Map<string, number>();
  const bounds: string[] = [];
  let maxHeld = 0;
  const checkBounds = (s: Session, who: string) => {
    const e = s.engineStats();
    const r = s.reorderStats();
    if (e.queued > QUEUE.maxPackets || e.queuedBytes > QUEUE.maxBytes) bounds.push(`${who} queue ${e.queued} pkts ${e.queuedBytes} B`);
    maxHeld = Math.max(maxHeld, r.heldNow);
    if (r.heldNow > REORDER.maxPackets || r.heldBytes > REORDER.maxBytes) bounds.push(`${who} reorder ${r.heldNow} pkts ${r.heldBytes} B`);
    const ll = e.lowLatency;
    if (ll && (ll.receiver.heldNow > 1024 || ll.receiver.missingNow > 4096 || ll.sender.queued - ll.sender.queueDropped < 0)) bounds.push(`${who} S4 buffers`);
  };
  clock.advance(100_000);
  for (let ms = 0; ms < 2500; ms++) {
    for (const [side, s, src] of [['a', a, 0x0a000001], ['b', b, 0x0a000002]] as const) {
      for (const f of flows) {
        if (ms % f.everyMs !== 0) continue;
        for (let k = 0; k < f.burst; k++) {
          const key = `${side}${f.id}`;
          const seq = next.get(key) ?? 0;
          next.set(key, seq + 1);
          if (s.send(packet(f, seq, src))) {
            if (f.port === 5060) counts[side].acceptedRt++;
            else counts[side].acceptedMain++;
          } else {
            counts[side].refused++;
          }
        }
      }
    }
    clock.advance(1000);
    if (ms % 10 === 0) {
      checkBounds(a, 'a');
      checkBounds(b, 'b');
    }
  }
  for (const l of links) l.up = true;
  // Drain: keepalive probes carry the watermark, so what is still missing gets resolved.
  for (let k = 0; k < 40; k++) {
    clock.advance(100_000);
    checkBounds(a, 'a');
    checkBounds(b, 'b');
  }
  const account = (s: Session, r: Receiver, sent: SideCount, peer: Session) => {
    const ro = r === rA ? a.reorderStats() : b.reorderStats();
    const senderDrops = peer.engineStats().droppedUnsent;
    const lostAtReceiver = ro.skipped - ro.deliveredLate;
    const ll = s.engineStats().lowLatency;
    const pll = peer.engineStats().lowLatency;
    return {
      main: { accepted: sent.acceptedMain, delivered: r.delivered.main, senderDrops, lostAtReceiver, held: ro.heldNow },
      rt: { accepted: sent.acceptedRt, delivered: r.delivered.rt, lost: ll?.receiver.lost ?? 0, senderDropped: pll?.sender.queueDropped ?? 0, missing: ll?.receiver.missingNow ?? 0 },
    };
  };
  const result = {
    seed, nLinks,
    compressed: a.engineStats().headersCompressed + b.engineStats().headersCompressed,
    aToB: account(b, rB, counts.a, a),
    bToA: account(a, rA, counts.b, b),
    problems: { a: rA, b: rB },
    bounds,
    maxHeld,
  };
  a.close();
  b.close();
  return result;
}

test(`engine properties over ${SEEDS.length} seeds: no duplicates, in order per flow, accounting closes, memory bounded`, () => {
  const failures: string[] = [];
  let delivered = 0;
  let maxHeld = 0;
  let compressed = 0;
  for (const seed of SEEDS) {
    const r = runSeed(seed);
    maxHeld = Math.max(maxHeld, r.maxHeld);
    compressed += r.compressed;
    for (const [dir, rec, acc] of [['a->b', r.problems.b, r.aToB], ['b->a', r.problems.a, r.bToA]] as const) {
      delivered += acc.main.delivered + acc.rt.delivered;
      if (rec.duplicates > 0) failures.push(`seed ${seed} ${dir}: ${rec.duplicates} duplicates (${rec.firstProblem})`);
      if (rec.outOfOrder > 0) failures.push(`seed ${seed} ${dir}: ${rec.outOfOrder} out of order (${rec.firstProblem})`);
      const m = acc.main;
      if (m.accepted !== m.delivered + m.senderDrops + m.lostAtReceiver || m.held !== 0) {
        failures.push(`seed ${seed} ${dir}: main accounting ${JSON.stringify(m)}`);
      }
      const t = acc.rt;
      if (t.accepted !== t.delivered + t.lost + t.senderDropped || t.missing !== 0) failures.push(`seed ${seed} ${dir}: S4 accounting ${JSON.stringify(t)}`);
    }
    if (r.bounds.length > 0) failures.push(`seed ${seed}: bounds exceeded: ${r.bounds.slice(0, 3).join('; ')}`);
  }
  assert.ok(delivered > SEEDS.length * 1000, `traffic flowed: ${delivered} packets delivered`);
  assert.ok(compressed > SEEDS.length * 500, `the TCP flow went header-compressed: ${compressed} packets`);
  console.log(`${SEEDS.length} seeds: ${delivered} packets delivered (${compressed} header-compressed), reorder buffer peak ${maxHeld} of ${REORDER.maxPackets} packets`);
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} failures`);
});
