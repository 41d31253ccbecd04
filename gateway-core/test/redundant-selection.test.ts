// S4-2 / S4-3: links sorted by delay, the n lowest (n > 1) selected, n growing with the amount of
// data, user-preferred types and a service -> link-type map, re-selection on every delay update.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LinkSelector } from '../src/redundant/selection.js';

const links = [
  { id: 0, type: 'lte' }, { id: 1, type: 'nr' }, { id: 2, type: 'wlan5' }, { id: 3, type: 'wlan2' }, { id: 4, type: 'eth' },
];

function measured(policy = {}): LinkSelector {
  const s = new LinkSelector(links, policy);
  // Delays (us): eth 3 ms, nr 12 ms, wlan5 5 ms, lte 30 ms, wlan2 9 ms.
  const d = [30_000, 12_000, 5_000, 9_000, 3_000];
  d.forEach((us, id) => s.onDelaySample(id, us, 'probe', 0));
  return s;
}

test('the n lowest-delay links are selected, n > 1 even for one packet', () => {
  const s = measured();
  assert.deepEqual(s.ranked(), [4, 2, 3, 1, 0]);
  assert.deepEqual(s.select(1), [4, 2]);
});

test('n grows with the amount of data (2% assumed loss, target 1e-3, cap 4)', () => {
  const s = measured();
  const n = [1, 2, 3, 50, 125, 126, 1000, 100_000].map((k) => s.select(k).length);
  assert.deepEqual(n, [2, 2, 3, 3, 3, 4, 4, 4]);
  // Monotone in the amount of data.
  for (let i = 1; i < n.length; i++) assert.ok((n[i] as number) >= (n[i - 1] as number));
  // Measured clean links need fewer copies; lossy ones more.
  for (const id of [4, 2, 3]) s.setLoss(id, 0.001);
  assert.equal(s.select(1000).length, 2);
  for (const id of [4, 2, 3, 1]) s.setLoss(id, 0.05);
  assert.equal(s.select(1).length, 3);
  assert.equal(new LinkSelector(links, { maxLinks: 3 }).linksFor(1e6), 3);
});

test('re-selects on every delay update: a link that gets slow drops out, one that gets fast comes in', () => {
  const s = measured();
  const changes: number[][] = [];
  s.onChange = (ids) => changes.push([...ids]);
  s.select(1);
  // Data-path samples (S4-2) for eth climb: after a few samples it is no longer among the two best.
  for (let i = 0; i < 8; i++) s.onDelaySample(4, 40_000, 'data', 1000 + i);
  assert.deepEqual(s.current(), [2, 3]);
  s.onDelaySample(0, 1_000, 'data', 2000); // lte suddenly fast (smoothed: 30 ms -> 22.75 ms): not yet
  assert.deepEqual(s.current(), [2, 3]);
  for (let i = 0; i < 12; i++) s.onDelaySample(0, 1_000, 'data', 3000 + i);
  assert.deepEqual(s.current(), [0, 2]);
  assert.ok(changes.length >= 2);
  s.setUsable(0, false);
  assert.deepEqual(s.current(), [2, 3], 'a down link is never selected');
});

test('while data flows, selected links are not probed (delay comes from data); idle: all are', () => {
  const s = measured();
  s.select(1);
  assert.ok(s.probeWanted(4, 0));
  s.markData(1_000_000);
  assert.equal(s.probeWanted(4, 1_050_000), false, 'selected and data flowing');
  assert.equal(s.probeWanted(0, 1_050_000), true, 'unselected links keep being measured');
  assert.equal(s.probeWanted(4, 1_300_000), true, 'idle again after the active window');
});

test('service map: video goes on both WLAN bands while they are under the threshold', () => {
  const policy = { services: { video: { types: ['wlan5', 'wlan2'], maxDelayUs: 10_000 } } };
  const s = measured(policy);
  assert.deepEqual(s.select(1, 'video'), [2, 3], 'wlan5 (5 ms) and wlan2 (9 ms), although eth is faster');
  assert.deepEqual(s.select(100, 'video'), [2, 3, 4], 'more data: the best other link is added');
  assert.deepEqual(s.select(1), [4, 2], 'other services: plain delay order');
  for (let i = 0; i < 10; i++) s.onDelaySample(3, 25_000, 'data', i); // wlan2 over the threshold
  assert.deepEqual(s.select(1, 'video'), [2, 4], 'only wlan5 qualifies; n filled by delay');
});

test('user-preferred types come first while under their delay limit', () => {
  const s = measured({ preferredTypes: ['lte', 'nr'], preferredMaxDelayUs: 20_000 });
  assert.deepEqual(s.select(1), [1, 4], 'nr (12 ms) is preferred; lte (30 ms) is over the limit');
  const s2 = measured({ preferredTypes: ['lte', 'nr'] });
  assert.deepEqual(s2.select(1), [1, 0]);
});

test('unmeasured links rank last; one usable link means n = 1', () => {
  const s = new LinkSelector(links);
  s.onDelaySample(3, 8_000, 'probe', 0);
  assert.deepEqual(s.select(1), [3, 0]);
  for (const id of [0, 1, 2, 4]) s.setUsable(id, false);
  assert.deepEqual(s.select(1), [3]);
});
