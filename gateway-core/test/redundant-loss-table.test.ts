// S4-6: the one loss table of the redundant class, a median-rooted balanced search tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LossTable } from '../src/redundant/loss-table.js';
import { prng } from '../src/sim/link.js';

test("the document's example: 1..8 sent, 2, 5, 7 missing -> root 5, greater branch 7, smaller branch 2", () => {
  const sent = [1, 2, 3, 4, 5, 6, 7, 8];
  const arrived = new Set([1, 3, 4, 6, 8]);
  const missing = sent.filter((s) => !arrived.has(s));
  assert.deepEqual(missing, [2, 5, 7]);
  const expected = { seq: 5, greater: { seq: 7 }, smaller: { seq: 2 } };
  // Built at once by the document's partition procedure...
  assert.deepEqual(LossTable.fromMissing(missing, 0).shape(), expected);
  // ...and as a receiver meets the gaps, one at a time in ascending order: same tree.
  const t = new LossTable(16);
  for (const s of missing) assert.ok(t.insert(s, 0));
  assert.deepEqual(t.shape(), expected);
  // Lookups: a sequence is awaited only while it is in the table.
  assert.ok(t.has(5) && t.has(2) && t.has(7));
  assert.ok(!t.has(3) && !t.has(8));
  assert.equal(t.remove(3), undefined, '3 arrived already: not awaited, a duplicate');
  assert.equal(t.remove(5)?.seq, 5);
  assert.equal(t.remove(5), undefined, 'a second copy of 5 is a duplicate');
  assert.deepEqual(t.entries().map((e) => e.seq), [2, 7]);
  assert.equal(t.min()?.seq, 2);
});

test('even counts take the lower middle; every level is split at its median', () => {
  const t = LossTable.fromMissing([10, 20, 30, 40, 50, 60, 70], 0);
  assert.deepEqual(t.shape(), {
    seq: 40,
    smaller: { seq: 20, smaller: { seq: 10 }, greater: { seq: 30 } },
    greater: { seq: 60, smaller: { seq: 50 }, greater: { seq: 70 } },
  });
  assert.equal(LossTable.fromMissing([1, 2, 3, 4], 0).shape()?.seq, 2);
});

test('random inserts and removals match a set; the tree stays balanced and bounded', () => {
  const rand = prng(99);
  const t = new LossTable(512);
  const ref = new Set<number>();
  let base = 1;
  for (let i = 0; i < 40_000; i++) {
    const r = rand();
    if (r < 0.55) {
      // Mostly ascending discoveries, as a receiver makes them.
      const s = base + Math.floor(rand() * 64);
      base += Math.floor(rand() * 4);
      const e = t.insert(s, i);
      if (ref.has(s)) assert.equal(e?.seq, s);
      else if (ref.size >= 512) assert.equal(e, undefined, 'full table refuses');
      else {
        assert.equal(e?.seq, s);
        ref.add(s);
      }
    } else {
      const s = base - 32 + Math.floor(rand() * 96);
      assert.equal(t.remove(s)?.seq, ref.has(s) ? s : undefined);
      ref.delete(s);
    }
    assert.equal(t.size, ref.size);
    assert.ok(t.size <= 512);
    if (i % 997 === 0) {
      assert.deepEqual(t.entries().map((e) => e.seq), [...ref].sort((a, b) => a - b));
      if (t.size > 1) {
        const bound = Math.log(t.size) / Math.log(1 / 0.55) + 2;
        assert.ok(t.height() <= bound, `height ${t.height()} > ${bound.toFixed(1)} at size ${t.size}`);
      }
    }
  }
  assert.ok(t.rebuilds > 0);
});

test('4096 ascending inserts stay logarithmic (a plain BST would be a 4096-deep list)', () => {
  const t = new LossTable(4096);
  for (let s = 1; s <= 4096; s++) t.insert(s * 2, 0);
  assert.equal(t.size, 4096);
  assert.ok(t.height() <= 17, `height ${t.height()}`);
  assert.equal(t.insert(1, 0), undefined);
  for (let s = 1; s <= 4096; s++) assert.ok(t.remove(s * 2));
  assert.equal(t.size, 0);
  assert.equal(t.shape(), undefined);
});
