// The reorder buffer: order, de-duplication, the hold time, loss inference from watermarks,
// and its bounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReorderBuffer } from '../src/receive/reorder.js';
import { DropCounters } from '../src/wire/drops.js';

const pkt = (n: number): Buffer => Buffer.from([n & 0xff, n >> 8]);
const num = (b: Buffer): number => (b[0] as number) | ((b[1] as number) << 8);

function make(opts: { holdUs?: number; maxPackets?: number; maxBytes?: number; marks?: () => number[] } = {}) {
  const out: number[] = [];
  const drops = new DropCounters();
  const rb = new ReorderBuffer(
    { holdUs: opts.holdUs ?? 100_000, maxPackets: opts.maxPackets ?? 64, maxBytes: opts.maxBytes ?? 1 << 20 },
    (b) => out.push(num(b)),
    drops,
    opts.marks ? { watermarks: opts.marks } : undefined,
  );
  return { rb, out, drops };
}

test('delivers in sequence order whatever the arrival order', () => {
  const { rb, out } = make();
  for (const s of [2, 4, 1, 3, 6, 5]) rb.push(s, pkt(s), 0);
  assert.deepEqual(out, [1, 2, 3, 4, 5, 6]);
});

test('duplicates are dropped and counted, before and after delivery', () => {
  const { rb, out, drops } = make();
  rb.push(2, pkt(2), 0);
  rb.push(2, pkt(2), 0);
  rb.push(1, pkt(1), 0);
  rb.push(1, pkt(1), 0);
  assert.deepEqual(out, [1, 2]);
  assert.equal(drops.get('duplicate'), 2);
});

test('a gap is held for the hold time, then skipped; the late packet is delivered once', () => {
  const { rb, out, drops } = make({ holdUs: 100_000 });
  rb.push(1, pkt(1), 0);
  rb.push(3, pkt(3), 10_000);
  rb.flush(50_000);
  assert.deepEqual(out, [1]);
  assert.equal(rb.nextDeadlineUs(50_000), 60_000);
  rb.flush(110_000);
  assert.deepEqual(out, [1, 3]);
  rb.push(2, pkt(2), 120_000);
  assert.deepEqual(out, [1, 3, 2]);
  assert.equal(rb.stats.deliveredLate, 1);
  rb.push(2, pkt(2), 130_000);
  assert.equal(drops.get('duplicate'), 1);
});

test('watermarks past a gap on every live path skip it at once (no hold)', () => {
  let marks = [1, 1];
  const { rb, out } = make({ holdUs: 1_000_000, marks: () => marks });
  rb.push(1, pkt(1), 0);
  rb.push(3, pkt(3), 1);
  assert.deepEqual(out, [1], 'path 2 may still carry sequence 2');
  marks = [3, 1];
  rb.flush(2);
  assert.deepEqual(out, [1], 'one path has not passed it yet');
  marks = [3, 2];
  rb.flush(3);
  assert.deepEqual(out, [1, 3], 'every path has passed 2: it was lost');
});

test('bounded: a sequence too far ahead forces the head forward and counts the overflow', () => {
  const { rb, out, drops } = make({ maxPackets: 16 });
  rb.push(2, pkt(2), 0);
  rb.push(40, pkt(40), 0);
  assert.ok(drops.get('reorder-overflow') > 0);
  assert.deepEqual(out.slice(0, 1), [2]);
  const { rb: rb2, drops: d2 } = make({ maxBytes: 10 });
  for (let s = 2; s < 20; s++) rb2.push(s, pkt(s), 0);
  assert.ok(rb2.stats.heldBytes <= 10);
  assert.ok(d2.get('reorder-overflow') >= 1);
});

test('too old for the window: dropped as too-late', () => {
  const { rb, drops } = make({ maxPackets: 16 });
  for (let s = 1; s <= 40; s++) rb.push(s, pkt(s), 0);
  rb.push(3, pkt(3), 0);
  assert.equal(drops.get('too-late'), 1);
});

test('reorder delay histogram: in-order packets wait 0, held ones their real wait', async () => {
  const { REORDER_DELAY_BUCKETS_MS } = await import('../src/receive/reorder.js');
  const { rb } = make({ holdUs: 1_000_000 });
  rb.push(1, pkt(1), 0);
  rb.push(3, pkt(3), 1000);
  rb.push(2, pkt(2), 8000); // 3 waited 7 ms
  const counts = rb.stats.delayCounts;
  assert.equal(counts.reduce((s, x) => s + x, 0), 3);
  assert.equal(counts[0], 2, 'two delivered at once');
  const b7 = REORDER_DELAY_BUCKETS_MS.findIndex((ms) => ms >= 7);
  assert.equal(counts[b7], 1, 'one waited 7 ms');
});
