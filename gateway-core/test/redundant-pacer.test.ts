// S4-5: per-link pacing per 5 ms period from queue headroom and link rate, skip or swap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LinkPacer } from '../src/redundant/pacer.js';

function pacerWith(free: Map<number, number>, opts = {}): LinkPacer {
  return new LinkPacer([0, 1, 2, 3].map((id) => ({ id, negotiatedBps: 300e6, queueFreePackets: () => free.get(id) ?? 1000 })), {
    periodUs: 5000, packetBytes: 1472, queueThresholdPackets: 10, pQueue: 0.8, pLink: 0.9, ...opts,
  });
}

test('no slow start: an empty queue sends at the link rate (300 Mbit/s x P_link) from the first period', () => {
  const p = pacerWith(new Map());
  const r = p.rate(0, 0);
  assert.ok(r);
  assert.equal(r.rateLinkBps, 270e6);
  assert.equal(r.rateBps, 270e6, 'queue rate is far above: the link rate rules');
  // 270 Mbit/s for 5 ms = 168 750 bytes this period.
  assert.equal(r.budgetBytes, 168_750);
});

test('queue-limited rate = (free - threshold) * x / t * P_queue, and min() with the link rate', () => {
  const free = new Map([[0, 60]]);
  const p = pacerWith(free);
  const r = p.rate(0, 0);
  assert.ok(r);
  // (60 - 10) * 1472 bytes * 8 / 0.005 s * 0.8 = 94.208 Mbit/s
  assert.ok(Math.abs(r.rateQueueBps - 94_208_000) < 1);
  assert.ok(Math.abs(r.rateBps - 94_208_000) < 1);
  assert.ok(Math.abs(r.budgetBytes - 50 * 1472 * 0.8) < 1e-6, '40 packets this period');
  // Spend the budget: the link cannot send more in this period, and can in the next one.
  let sent = 0;
  while (p.canSend(0, 1472, 100)) {
    p.consume(0, 1472, 100);
    sent++;
  }
  assert.equal(sent, 40);
  assert.ok(p.canSend(0, 1472, 5000), 'a new period, a new budget');
});

test('no headroom: with three links selected the link is skipped this period', () => {
  const free = new Map([[1, 10]]); // free == threshold: no headroom
  const p = pacerWith(free);
  assert.equal(p.rate(1, 0)?.headroom, false);
  assert.equal(p.rate(1, 0)?.rateBps, 0);
  const plan = p.plan([0, 1, 2], [0, 1, 2, 3], 200, 0);
  assert.deepEqual(plan.links, [0, 2]);
  assert.deepEqual(plan.skipped, [1]);
  assert.deepEqual(plan.swapped, []);
});

test('no headroom with only two links selected: the lowest-delay unselected link is swapped in', () => {
  const free = new Map([[0, 3], [2, 0]]);
  const p = pacerWith(free);
  // ranked by delay: 1, 0, 2, 3 -> link 0 is out; 2 (next by delay) has no headroom either -> 3.
  const plan = p.plan([1, 0], [1, 0, 2, 3], 200, 0);
  assert.deepEqual(plan.links, [1, 3]);
  assert.deepEqual(plan.swapped, [[0, 3]]);
  assert.equal(plan.links.length, 2, 'redundancy survives');
  // The headroom comes back in a later period: link 0 is used again.
  free.set(0, 500);
  assert.deepEqual(p.plan([1, 0], [1, 0, 2, 3], 200, 5000).links, [1, 0]);
});

test("'swap' policy swaps with more than two selected; a link slower than a packet per period still sends", () => {
  const free = new Map([[1, 0]]);
  const p = pacerWith(free, { overTwo: 'swap' });
  assert.deepEqual(p.plan([0, 1, 2], [0, 1, 2, 3], 200, 0).swapped, [[1, 3]]);
  const slow = new LinkPacer([{ id: 0, negotiatedBps: 1e6, queueFreePackets: () => 1000 }], { pLink: 1 });
  // 1 Mbit/s = 625 bytes per 5 ms: a 1472-byte packet every ~2.4 periods on average.
  let sent = 0;
  for (let t = 0; t < 1_000_000; t += 5000) {
    if (slow.canSend(0, 1472, t)) {
      slow.consume(0, 1472, t);
      sent++;
    }
  }
  assert.ok(sent >= 80 && sent <= 90, `sent ${sent} packets in 1 s at 1 Mbit/s`);
});
