// S4-4 / S4-6 / S4-7 on a SimClock: the redundant class over simulated lossy, duplicating,
// jittery links. Exactly-once delivery (property test over many seeds), NACK repair, bounded
// memory, and small-message latency against the best single link under outages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimClock } from '../src/clock.js';
import { prng } from '../src/sim/link.js';
import { RedundantReceiver } from '../src/redundant/receiver.js';
import { createSimPair, percentile, type SimRedundantLink } from '../src/redundant/sim-pair.js';
import type { NackBody } from '../src/wire/header.js';

const msg = (n: number): Buffer => Buffer.alloc(n, 0xab);

/** Run the clock until nothing is scheduled any more (bounded). */
function settle(clock: SimClock, maxUs = 30_000_000): void {
  for (let waited = 0; clock.pendingTimers() > 0 && waited < maxUs; waited += 100_000) clock.advance(100_000);
}

test('receiver: a gap is NACKed after the guard, re-requested per retry, given up after the budget', () => {
  const clock = new SimClock(0);
  const nacks: { link: number; at: number; body: NackBody }[] = [];
  const got: number[] = [];
  const rx = new RedundantReceiver({
    clock, deliver: (s) => got.push(s), sendNack: (link, body) => nacks.push({ link, at: clock.nowUs(), body }),
    nackRetries: 3, initialRetryUs: 20_000, feedbackIntervalUs: 1_000_000,
  });
  assert.equal(rx.receive(0, 1, msg(10)), 'delivered');
  assert.equal(rx.receive(0, 4, msg(10)), 'held', '2 and 3 are missing: ordered mode holds 4');
  assert.deepEqual(rx.lossTable.entries().map((e) => e.seq), [2, 3]);
  // One NACK round goes out on the two links that delivered last: count rounds by time.
  const withRanges = () => [...new Map(nacks.filter((n) => n.body.ranges.length > 0).map((n) => [n.at, n])).values()];
  clock.advance(500);
  assert.equal(withRanges().length, 0, 'not before the guard (a copy may just be late on a slower link)');
  clock.advance(1_000);
  assert.deepEqual(withRanges().map((n) => n.body.ranges), [[{ first: 2, count: 2 }]]);
  assert.equal(withRanges()[0]?.body.highest, 4);
  assert.equal(rx.receive(1, 3, msg(10)), 'held', '3 repaired, 2 still awaited');
  clock.advance(20_000);
  assert.deepEqual(withRanges().at(-1)?.body.ranges, [{ first: 2, count: 1 }], 'retry asks only for what is still missing');
  clock.advance(20_000);
  assert.equal(withRanges().length, 3);
  clock.advance(20_000);
  assert.equal(withRanges().length, 3, 'retry budget spent');
  assert.deepEqual(got, [1, 3, 4], '2 given up: the held packets go on, in order');
  assert.equal(rx.stats.lost, 1);
  assert.equal(rx.receive(0, 2, msg(10)), 'duplicate', 'given up: no longer awaited');
  assert.equal(rx.receive(0, 4, msg(10)), 'duplicate');
  assert.equal(rx.stats.duplicates, 2);
  assert.equal(rx.stats.missingNow, 0);
  assert.equal(clock.pendingTimers(), 0, 'nothing left to do: no timer');
  rx.close();
});

test('receiver: a gap wider than the table is counted lost at once, memory stays bounded', () => {
  const clock = new SimClock(0);
  const got: number[] = [];
  const rx = new RedundantReceiver({ clock, deliver: (s) => got.push(s), sendNack: () => {}, maxMissing: 16, maxHeld: 8, nackRetries: 1 });
  rx.receive(0, 1, msg(1));
  rx.receive(0, 1_000_000, msg(1));
  assert.equal(rx.stats.missingNow, 16);
  assert.equal(rx.stats.lost, 1_000_000 - 2 - 16);
  for (let s = 1_000_001; s < 1_000_020; s++) rx.receive(0, s, msg(1));
  assert.ok(rx.stats.heldNow <= 8);
  clock.advance(1_000_000);
  assert.equal(rx.stats.missingNow, 0);
  assert.equal(rx.stats.heldNow, 0);
  assert.equal(rx.stats.delivered + rx.stats.lost, 1_000_019);
  for (let i = 1; i < got.length; i++) assert.ok((got[i] as number) > (got[i - 1] as number), 'in order');
  rx.close();
});

const three = (lossPct: number, dupPct: number): SimRedundantLink[] => [
  { id: 0, type: 'lte', delayMs: 15, jitterMs: 4, lossPct, dupPct },
  { id: 1, type: 'nr', delayMs: 22, jitterMs: 6, lossPct, dupPct },
  { id: 2, type: 'wlan5', delayMs: 35, jitterMs: 10, lossPct, dupPct },
];

interface RunResult { sent: number; delivered: number; lost: number; unseenTail: number; dupDrops: number; maxMissing: number; maxHeld: number; maxPending: number; maxQueued: number }

function run(seed: number, links: SimRedundantLink[], packets: number, rx: object = {}, tx: object = {}, throughWire = false): RunResult {
  const clock = new SimClock(1_000_000);
  const pair = createSimPair({ clock, links, seed, receiver: rx, sender: tx, throughWire });
  const rand = prng(seed * 7 + 1);
  let maxMissing = 0;
  let maxHeld = 0;
  let maxPending = 0;
  let maxQueued = 0;
  for (let i = 0; i < packets; i++) {
    // Mostly small messages with gaps, sometimes a burst.
    if (rand() < 0.1) for (let b = 0; b < 10 && i < packets; b++, i++) pair.send(msg(1200));
    else pair.send(msg(40 + Math.floor(rand() * 400)));
    clock.advance(Math.floor(rand() * 4000));
    maxMissing = Math.max(maxMissing, pair.receiver.stats.missingNow);
    maxHeld = Math.max(maxHeld, pair.receiver.stats.heldNow);
    const m = pair.sender.memory();
    maxPending = Math.max(maxPending, m.pendingPerLinkMax);
    maxQueued = Math.max(maxQueued, m.queued);
  }
  settle(clock);
  const sent = pair.sender.lastSeq;
  for (const [seq, n] of pair.deliveries) assert.equal(n, 1, `seed ${seed}: seq ${seq} delivered ${n} times`);
  for (let i = 1; i < pair.order.length; i++) assert.ok((pair.order[i] as number) > (pair.order[i - 1] as number), `seed ${seed}: out of order`);
  const st = pair.receiver.stats;
  const unseenTail = sent - st.highest;
  // Every sequence: delivered exactly once, or counted lost by the receiver, or (a tail the
  // receiver never learned of) unconfirmed at the sender.
  assert.equal(pair.deliveries.size, st.delivered);
  assert.equal(st.delivered + st.lost + unseenTail, sent, `seed ${seed}: ${JSON.stringify(st)}`);
  assert.equal(st.missingNow, 0);
  assert.equal(st.heldNow, 0);
  assert.deepEqual([...pair.wireDrops], [], 'every datagram the class produced decodes');
  pair.receiver.close();
  pair.sender.close();
  return { sent, delivered: st.delivered, lost: st.lost, unseenTail, dupDrops: st.duplicates, maxMissing, maxHeld, maxPending, maxQueued };
}

test('exactly once over 3 links with 5% loss and 2% duplication each: 40 seeds, nothing lost, nothing twice, in order', () => {
  let total = 0;
  let dups = 0;
  for (let seed = 1; seed <= 40; seed++) {
    // Every eighth seed as real sealed datagrams (Flags.Redundant data, PacketType.Nack feedback).
    const r = run(seed, three(5, 2), 300, {}, {}, seed % 8 === 0);
    assert.equal(r.lost, 0, `seed ${seed}`);
    assert.equal(r.unseenTail, 0, `seed ${seed}`);
    assert.equal(r.delivered, r.sent);
    total += r.sent;
    dups += r.dupDrops;
  }
  assert.ok(dups > total, `redundant copies were dropped as duplicates (${dups} for ${total} packets)`);
});

test('exactly once under heavy loss with tiny bounds: lost ones are counted, memory stays within the bounds', () => {
  let lost = 0;
  for (let seed = 100; seed < 120; seed++) {
    const r = run(seed, three(35, 5), 250, { maxMissing: 12, maxHeld: 24, nackRetries: 2 }, { historyPackets: 64, tailRetries: 1 }, seed % 5 === 0);
    assert.ok(r.maxMissing <= 12, `seed ${seed}: table ${r.maxMissing}`);
    assert.ok(r.maxHeld <= 24, `seed ${seed}: held ${r.maxHeld}`);
    assert.ok(r.maxPending <= 1024 && r.maxQueued <= 256, `seed ${seed}: sender ${r.maxPending}/${r.maxQueued}`);
    lost += r.lost + r.unseenTail;
  }
  assert.ok(lost > 0, 'the bounds were exercised');
});

test('sender: send times kept per packet per link; delay samples from the data echo (S4-2)', () => {
  const clock = new SimClock(0);
  const pair = createSimPair({ clock, links: three(0, 0), seed: 3, probeAtStart: true, receiver: { feedbackIntervalUs: 0 } });
  const seq = pair.send(msg(100)) as number;
  assert.deepEqual([...pair.selector.current()], [0, 1]);
  assert.equal(pair.sender.sendTimeUs(seq, 0), 0);
  assert.equal(pair.sender.sendTimeUs(seq, 1), 0);
  assert.equal(pair.sender.sendTimeUs(seq, 2), undefined, 'not selected: not sent there');
  clock.advance(200_000);
  const d = pair.selector.delay(0);
  assert.equal(d?.lastSource, 'data');
  // Link 0: 15 ms each way plus up to 4 ms jitter each way.
  assert.ok((d?.delayUs ?? 0) >= 30_000 && (d?.delayUs ?? 0) <= 38_000, `delay ${d?.delayUs}`);
  pair.sender.close();
  pair.receiver.close();
});

test('S4-7: small messages over carriers with outages: p99 below the best single link, none lost', () => {
  // Three carriers, each out for 400 ms at different times, plus 2% loss; one 200-byte message
  // every 10 ms for 12 s. The single-link baseline is the lowest-delay carrier alone, with the
  // same NACK repair.
  const outages = (offsetMs: number): [number, number][] => Array.from({ length: 6 }, (_, i) => [offsetMs + i * 2000, offsetMs + i * 2000 + 400]);
  const links: SimRedundantLink[] = [
    { id: 0, type: 'lte', delayMs: 20, jitterMs: 3, lossPct: 2, outages: outages(300) },
    { id: 1, type: 'nr', delayMs: 25, jitterMs: 3, lossPct: 2, outages: outages(1100) },
    { id: 2, type: 'lte', delayMs: 40, jitterMs: 5, lossPct: 2, outages: outages(1700) },
  ];
  const measure = (ls: SimRedundantLink[]) => {
    const clock = new SimClock(0);
    const pair = createSimPair({ clock, links: ls, seed: 11, receiver: { nackRetries: 8 } });
    for (let i = 0; i < 1200; i++) {
      pair.send(msg(200));
      clock.advance(10_000);
    }
    settle(clock);
    const lat: number[] = [];
    for (const [seq, at] of pair.sentAtUs) {
      const d = pair.deliveredAtUs.get(seq);
      lat.push(d === undefined ? Infinity : (d - at) / 1000);
    }
    const s = pair.sender.stats;
    const out = {
      avgMs: lat.filter(Number.isFinite).reduce((a, b) => a + b, 0) / lat.filter(Number.isFinite).length,
      p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), lost: lat.filter((x) => !Number.isFinite(x)).length,
      overhead: (s.bytesOnLinks / s.payloadBytes).toFixed(2),
    };
    pair.sender.close();
    pair.receiver.close();
    return out;
  };
  const braid = measure(links);
  const single = measure([links[0] as SimRedundantLink]);
  console.log(`# S4-7 small messages: redundant avg ${braid.avgMs.toFixed(1)} ms p50 ${braid.p50Ms.toFixed(1)} p99 ${braid.p99Ms.toFixed(1)} lost ${braid.lost} overhead x${braid.overhead}` +
    ` | best single avg ${single.avgMs.toFixed(1)} ms p50 ${single.p50Ms.toFixed(1)} p99 ${single.p99Ms} lost ${single.lost} overhead x${single.overhead}`);
  assert.equal(braid.lost, 0, 'no message lost');
  assert.ok(braid.p99Ms < single.p99Ms, 'p99 below the best single link');
  assert.ok(braid.p99Ms < 100, `p99 ${braid.p99Ms} ms`);
  assert.ok(braid.avgMs <= single.avgMs + 2);
});

test('a selected link that stops answering leaves the selection within a few of its delays; probes bring it back', () => {
  const clock = new SimClock(0);
  const pair = createSimPair({
    clock, seed: 5,
    links: [
      { id: 0, type: 'lte', delayMs: 10, outages: [[200, 700]] },
      { id: 1, type: 'nr', delayMs: 15 },
      { id: 2, type: 'lte', delayMs: 30 },
    ],
  });
  const selections: string[] = [];
  for (let i = 0; i < 100; i++) {
    pair.send(msg(100));
    clock.advance(10_000);
    const cur = pair.selector.current().join(',');
    if (selections.at(-1) !== cur) selections.push(cur);
    if (i === 30) assert.ok(!pair.selector.current().includes(0), `at 310 ms link 0 (out since 200 ms) is still selected: ${cur}`);
  }
  assert.deepEqual(selections[0], '0,1');
  assert.ok(selections.includes('1,2'), selections.join(' -> '));
  assert.equal(selections.at(-1), '0,1', `back after the outage: ${selections.join(' -> ')}`);
  settle(clock);
  assert.equal(pair.receiver.stats.delivered, 100);
  pair.sender.close();
  pair.receiver.close();
});

test('pacing inside the sender: with two selected links, one without headroom is swapped, so every packet still goes out twice', () => {
  const clock = new SimClock(0);
  let free0 = 1000;
  const pair = createSimPair({
    clock, seed: 9, probeEveryMs: 0,
    links: [
      { id: 0, type: 'lte', delayMs: 10, queueFreePackets: () => free0 },
      { id: 1, type: 'nr', delayMs: 15 },
      { id: 2, type: 'lte', delayMs: 30 },
    ],
  });
  const seq1 = pair.send(msg(100)) as number;
  assert.ok(pair.sender.sendTimeUs(seq1, 0) !== undefined && pair.sender.sendTimeUs(seq1, 1) !== undefined);
  free0 = 2; // below the threshold (8): no headroom from the next period on
  clock.advance(5_000);
  const seq2 = pair.send(msg(100)) as number;
  assert.equal(pair.sender.sendTimeUs(seq2, 0), undefined, 'link 0 out this period');
  assert.ok(pair.sender.sendTimeUs(seq2, 1) !== undefined && pair.sender.sendTimeUs(seq2, 2) !== undefined, 'link 2 swapped in');
  assert.equal(pair.sender.stats.swapped, 1);
  free0 = 1000;
  clock.advance(5_000);
  const seq3 = pair.send(msg(100)) as number;
  assert.ok(pair.sender.sendTimeUs(seq3, 0) !== undefined, 'headroom back: link 0 carries again');
  settle(clock);
  assert.equal(pair.receiver.stats.delivered, 3);
  pair.sender.close();
  pair.receiver.close();
});
