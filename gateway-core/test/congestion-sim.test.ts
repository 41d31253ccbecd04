// S3 over simulated links (sim-bench.ts on a SimClock): greedy senders with the real
// four-timestamp delay over a skewed, wrapping peer clock and delayed cumulative acks.
// Deterministic: the numbers do not depend on the machine's load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBench, SCENARIOS, type BenchScenario } from '../src/congestion/sim-bench.js';

const sc = (name: string): BenchScenario => SCENARIOS[name] as BenchScenario;

// Standing-queue bound on the reference link (80 ms base RTT): the threshold allows
// max(10 ms, 0.25 x 80 ms) = 20 ms of queue; the drain decrease empties it, so the queue
// averages about half of that. Bound: mean <= 20 ms, p95 <= 30 ms (allowance + 10 ms).
test('converges on 20 Mbit/s, 40 ms each way: utilisation >= 90%, standing queue mean <= 20 ms, p95 <= 30 ms, no loss', () => {
  const r = runBench(sc('steady'));
  assert.ok(r.utilisation >= 0.9, `utilisation ${r.utilisation}`);
  assert.ok(r.queueMeanMs <= 20, `queue mean ${r.queueMeanMs} ms`);
  assert.ok(r.queueP95Ms <= 30, `queue p95 ${r.queueP95Ms} ms`);
  assert.equal(r.lossPct, 0);
  assert.equal(r.final.mode, 'window');
  // The base delay is the real one (80 ms + one packet's serialisation + ack pacing), not a standing queue.
  assert.ok(r.final.baseUs < 85_000, `base ${r.final.baseUs}`);
});

test('shallow buffer (half a BDP): utilisation >= 90%, loss < 1%', () => {
  const r = runBench(sc('shallow'));
  assert.ok(r.utilisation >= 0.9, `utilisation ${r.utilisation}`);
  assert.ok(r.lossPct < 1, `loss ${r.lossPct}%`);
});

test('capacity step 20 -> 5 -> 20 Mbit/s: each step followed within 1 s (12 round trips)', () => {
  const r = runBench(sc('step'));
  const [down, up] = r.followMs as [number, number];
  // "Followed" = three consecutive 100 ms bins at >= 90% of the new capacity with the queue
  // within the allowance + 20 ms. The down step includes physically draining the queue that
  // 20 Mbit/s built (about 300 ms at 5 Mbit/s), which no sender can shorten.
  assert.ok(down <= 1000, `20 -> 5 followed after ${down} ms`);
  assert.ok(up <= 1000, `5 -> 20 followed after ${up} ms`);
  assert.ok(r.utilisation >= 0.9, `utilisation over the run ${r.utilisation}`);
});

test('short and long paths: utilisation >= 90% with the queue within the threshold allowance', () => {
  const s = runBench(sc('short')); // base 10 ms: floor 10 ms dominates
  assert.ok(s.utilisation >= 0.9 && s.queueMeanMs <= 10, `short: ${s.utilisation} ${s.queueMeanMs} ms`);
  const l = runBench(sc('long')); // base 300 ms: allowance 75 ms
  assert.ok(l.utilisation >= 0.9 && l.queueMeanMs <= 75, `long: ${l.utilisation} ${l.queueMeanMs} ms`);
});

test('two flows share one link: utilisation >= 90%, fair within 0.8', () => {
  const r = runBench(sc('twoFlows'));
  assert.ok(r.utilisation >= 0.9, `utilisation ${r.utilisation}`);
  assert.ok(r.fairness >= 0.8, `fairness ${r.fairness}`);
});

test('paced mode for real: four flows on 64 kbit/s with 1 ms timers pace; with timers 100 ms late the guard fires', () => {
  const healthy = runBench(sc('gprs4'));
  assert.ok(healthy.cwndTrace.some((c) => c < 1500), 'flow 0 went below one MTU (paced)');
  assert.ok(healthy.final.actualPacingUs > 0 && healthy.final.actualPacingUs - healthy.final.theoreticalPacingUs <= 1000,
    `1 ms granularity: actual ${healthy.final.actualPacingUs} vs theoretical ${healthy.final.theoreticalPacingUs}`);
  const faulty = runBench({ ...sc('gprs4'), timerLateUs: 100_000 });
  assert.ok(faulty.final.actualPacingUs - faulty.final.theoreticalPacingUs >= 100_000);
  assert.ok(faulty.final.guardedDecreases > 0, 'the pacing-fault guard held cwnd at MTU');
  for (const r of [healthy, faulty]) assert.ok(r.utilisation >= 0.9, `utilisation ${r.utilisation}`);
});

test('a very slow link with Node-like 1 ms timers and timers 100 ms late still carries its capacity', () => {
  const r = runBench({ ...sc('gprs'), timerLateUs: 100_000 });
  assert.ok(r.utilisation >= 0.9, `utilisation ${r.utilisation}`);
  assert.ok(r.lossPct < 2, `loss ${r.lossPct}%`);
});
