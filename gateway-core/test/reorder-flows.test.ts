// Per-flow order in the reorder buffer (each packet names its flow's previous sequence), and
// regression tests for what the engine property test (engine-property.test.ts) found: the
// per-flow order guarantee for late packets, making room past the very packet being inserted,
// the exact packet bound, a lost tail, and the hold extended while a peer's re-send can still
// come.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReorderBuffer, type ArrivalView } from '../src/receive/reorder.js';
import { DropCounters } from '../src/wire/drops.js';

/** A "packet": [flow, seq lo, seq hi]. */
const pkt = (flow: number, n: number): Buffer => Buffer.from([flow, n & 0xff, n >> 8]);
const flowOf = (b: Buffer): number => b[0] as number;
const num = (b: Buffer): number => (b[1] as number) | ((b[2] as number) << 8);

function make(opts: { holdUs?: number; maxPackets?: number; maxBytes?: number; arrivals?: ArrivalView } = {}) {
  const out: [number, number][] = [];
  const drops = new DropCounters();
  const rb = new ReorderBuffer(
    { holdUs: opts.holdUs ?? 100_000, maxPackets: opts.maxPackets ?? 64, maxBytes: opts.maxBytes ?? 1 << 20, flowHash: flowOf },
    (b) => out.push([flowOf(b), num(b)]),
    drops,
    opts.arrivals,
  );
  return { rb, out, drops };
}

test('a late packet of a flow whose consumer orders it itself (the TCP relay\'s) is delivered even after its flow moved past it', () => {
  const out: [number, number][] = [];
  const drops = new DropCounters();
  const rb = new ReorderBuffer(
    { holdUs: 100_000, maxPackets: 64, maxBytes: 1 << 20, flowHash: flowOf, ordersItself: (b) => flowOf(b) === 0xe },
    (b) => out.push([flowOf(b), num(b)]),
    drops,
  );
  // 1 (relay flow E) and 2 (flow A) are missing; 3 is E, 4 is A.
  rb.push(3, pkt(0xe, 3), 0);
  rb.push(4, pkt(0xa, 4), 0);
  rb.flush(100_000);
  rb.push(1, pkt(0xe, 1), 110_000); // E had 3 already: delivered all the same
  rb.push(2, pkt(0xa, 2), 110_000); // A had 4 already: refused
  assert.deepEqual(out, [[0xe, 3], [0xa, 4], [0xe, 1]]);
  assert.equal(rb.stats.lateRefused, 1);
  assert.equal(rb.stats.deliveredLate, 1);
  rb.push(1, pkt(0xe, 1), 120_000); // a second copy is still a duplicate
  assert.equal(drops.get('duplicate'), 1);
  assert.equal(out.length, 3);
});

test('a late packet is delivered if its flow has not moved past it, refused (too-late) if it has', () => {
  const { rb, out, drops } = make({ holdUs: 100_000 });
  // Sequences 1 (flow A) and 2 (flow B) are missing; 3 is flow A, 4 flow C.
  rb.push(3, pkt(0xa, 3), 0);
  rb.push(4, pkt(0xc, 4), 0);
  rb.flush(100_000); // hold expired: 1 and 2 given up, 3 and 4 delivered
  assert.deepEqual(out, [[0xa, 3], [0xc, 4]]);
  rb.push(1, pkt(0xa, 1), 110_000); // flow A already had 3: out of order within A
  rb.push(2, pkt(0xb, 2), 110_000); // flow B had nothing later: delivered late
  assert.deepEqual(out, [[0xa, 3], [0xc, 4], [0xb, 2]]);
  assert.equal(drops.get('too-late'), 1);
  assert.equal(rb.stats.lateRefused, 1);
  assert.equal(rb.stats.deliveredLate, 1);
  // A second copy of the refused one is a duplicate, not a delivery.
  rb.push(1, pkt(0xa, 1), 120_000);
  assert.equal(drops.get('duplicate'), 1);
});

test('making room never moves the head past the packet being inserted and then holds it', () => {
  // Bound of 3 packets; 10, 11, 12 held behind a gap at 1..9; inserting 5 forces room, and the
  // head passes 5 while skipping empty slots: 5 must then count as late, not sit in its slot
  // (where it would come out later under another sequence).
  const { rb, out, drops } = make({ maxPackets: 3 });
  rb.push(10, pkt(1, 10), 0);
  rb.push(11, pkt(1, 11), 0);
  rb.push(12, pkt(1, 12), 0);
  rb.push(5, pkt(2, 5), 0);
  assert.ok(rb.stats.heldNow <= 3, `held ${rb.stats.heldNow}`);
  // Fill the sequence space beyond one ring turn: whatever comes out is what was put in.
  for (let s = 13; s < 200; s++) rb.push(s, pkt(1, s), 0);
  rb.flush(1_000_000);
  // (With the packet left in its slot, sequence 21 - one ring turn later - found the slot
  // taken and was dropped as a duplicate, and packet 5 came out in its place.)
  const ones = out.filter(([f]) => f === 1).map(([, n]) => n);
  assert.deepEqual(ones, Array.from({ length: 190 }, (_, i) => i + 10), 'flow 1: every packet once, in order');
  assert.equal(drops.get('duplicate'), 0);
  assert.equal(out.filter(([f]) => f === 2).length, 1, 'packet 5 came out exactly once');
});

test('the packet bound is exact, also when it is not a power of two', () => {
  const { rb } = make({ maxPackets: 20 });
  for (let s = 2; s < 100; s++) {
    rb.push(s, pkt(1, s), 0);
    assert.ok(rb.stats.heldNow <= 20, `held ${rb.stats.heldNow} at ${s}`);
  }
});

test('a lost tail is given up once every live path showed a watermark past it', () => {
  let marks = [0, 0];
  const { rb, out } = make({ arrivals: { watermarks: () => marks } });
  rb.push(1, pkt(1, 1), 0);
  rb.push(2, pkt(1, 2), 0);
  // 3 and 4 were lost with nothing after them; probes then show watermark 4 on both paths.
  marks = [4, 4];
  rb.flush(1000);
  assert.equal(rb.stats.skipped, 2);
  rb.push(5, pkt(1, 5), 2000);
  assert.deepEqual(out.map(([, n]) => n), [1, 2, 5], 'no hold: 5 follows at once');
});

test('a gap is held as long as the peer may still re-send it, even beyond holdUs', () => {
  const { rb, out } = make({ holdUs: 50_000, arrivals: { watermarks: () => [0], resendWithinUs: () => 150_000 } });
  rb.push(2, pkt(1, 2), 0);
  rb.flush(100_000);
  assert.equal(out.length, 0, 'still held at 100 ms');
  rb.push(1, pkt(1, 1), 120_000); // the re-sent copy
  assert.deepEqual(out.map(([, n]) => n), [1, 2]);
  assert.equal(rb.stats.skipped, 0);
});

test('a gap holds back only its own flow: other flows go at once', () => {
  const { rb, out } = make({ holdUs: 100_000 });
  // Flow A: 1, 3, 5 (each after the previous of A); flow B: 2, 4. Sequence 1 is late.
  rb.push(2, pkt(0xb, 2), 0, 0);
  rb.push(3, pkt(0xa, 3), 0, 1);
  rb.push(4, pkt(0xb, 4), 0, 2);
  rb.push(5, pkt(0xa, 5), 0, 3);
  assert.deepEqual(out, [[0xb, 2], [0xb, 4]], 'B is not held behind A\'s gap');
  assert.equal(rb.stats.heldNow, 2);
  rb.push(1, pkt(0xa, 1), 5_000, 0);
  assert.deepEqual(out.slice(2), [[0xa, 1], [0xa, 3], [0xa, 5]], 'A in its own order once the gap fills');
  assert.equal(rb.stats.heldNow, 0);
  assert.equal(rb.stats.skipped, 0);
});

test('a flow\'s gap is held from the arrival of the first packet behind it, then given up', () => {
  const { rb, out } = make({ holdUs: 100_000 });
  rb.push(3, pkt(0xa, 3), 10_000, 1); // waits on 1
  rb.push(2, pkt(0xb, 2), 20_000, 0); // another flow: at once
  rb.push(5, pkt(0xa, 5), 30_000, 3);
  assert.equal(rb.nextDeadlineUs(30_000), 80_000, 'the hold runs from 10 ms');
  rb.flush(109_000);
  assert.deepEqual(out, [[0xb, 2]]);
  rb.flush(110_000);
  assert.deepEqual(out, [[0xb, 2], [0xa, 3], [0xa, 5]]);
  assert.equal(rb.stats.skipped, 1);
  // The chain's wait counts from the earliest packet behind a gap even when the packet in
  // between comes later: 8 (after 7) came first, 7 (after 6) then; 6 is missing.
  rb.push(8, pkt(0xc, 8), 200_000, 7);
  rb.push(7, pkt(0xc, 7), 250_000, 6);
  rb.flush(299_000);
  assert.equal(out.length, 3, 'still held at 99 ms');
  rb.flush(300_000);
  assert.deepEqual(out.slice(3), [[0xc, 7], [0xc, 8]]);
});

test('over the packet bound, the gap waited on longest is given up first', () => {
  const { rb, out, drops } = make({ maxPackets: 2, holdUs: 1_000_000 });
  rb.push(3, pkt(0xa, 3), 0, 1); // A waits on 1 since 0
  rb.push(4, pkt(0xb, 4), 10, 2); // B waits on 2 since 10
  rb.push(6, pkt(0xc, 6), 20, 5); // full: 1 is given up (A goes), C is held
  assert.deepEqual(out, [[0xa, 3]]);
  assert.equal(drops.get('reorder-overflow'), 1);
  assert.equal(rb.stats.heldNow, 2);
  rb.push(2, pkt(0xb, 2), 30, 0);
  assert.deepEqual(out.slice(1), [[0xb, 2], [0xb, 4]]);
});

test('a watermark past a flow\'s gap releases that flow at once', () => {
  let marks = [0, 0];
  const { rb, out } = make({ holdUs: 1_000_000, arrivals: { watermarks: () => marks } });
  rb.push(2, pkt(0xa, 2), 0, 1);
  rb.push(3, pkt(0xb, 3), 0, 0);
  assert.deepEqual(out, [[0xb, 3]]);
  marks = [3, 0];
  rb.flush(1);
  assert.deepEqual(out, [[0xb, 3]], 'one path may still carry 1');
  marks = [3, 3];
  rb.flush(2);
  assert.deepEqual(out, [[0xb, 3], [0xa, 2]]);
  assert.equal(rb.stats.skipped, 1);
});

test('a broken chain (two packets naming the same predecessor) still delivers both, once', () => {
  const { rb, out, drops } = make();
  rb.push(3, pkt(0xa, 3), 0, 1);
  rb.push(4, pkt(0xa, 4), 0, 1);
  rb.push(1, pkt(0xa, 1), 0, 0);
  assert.deepEqual(out.map(([, n]) => n), [1, 3, 4]);
  assert.equal(drops.total(), 0);
});

test('the hold stretches to the measured delay spread (x 1.25 + 5 ms) when that is longer', () => {
  let spread = 200_000;
  const { rb, out } = make({ holdUs: 100_000, arrivals: { watermarks: () => [0], spreadUs: () => spread } });
  rb.push(2, pkt(1, 2), 0);
  assert.equal(rb.nextDeadlineUs(0), 255_000, '200 ms spread: held 255 ms, not 100');
  rb.flush(254_000);
  assert.equal(out.length, 0);
  rb.push(1, pkt(1, 1), 254_000); // merely late on the slow path: still in order, nothing given up
  assert.deepEqual(out.map(([, n]) => n), [1, 2]);
  assert.equal(rb.stats.skipped, 0);
  spread = 10_000; // a narrow spread: the configured hold applies
  rb.push(4, pkt(1, 4), 300_000);
  assert.equal(rb.nextDeadlineUs(300_000), 100_000);
});
