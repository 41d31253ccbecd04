// Test input for the reorder-delay and delay-spread histograms: counts per
// REORDER_DELAY_BUCKETS_MS bucket (+1 overflow), written as { '<bound in ms>': n, overflow: n }.
// Shared by the telemetry tests and the bench's histogram tests.
import assert from 'node:assert/strict';
import { REORDER_DELAY_BUCKETS_MS } from '../src/receive/reorder.js';

export function bucketCounts(at: Record<string, number>): number[] {
  const out = new Array<number>(REORDER_DELAY_BUCKETS_MS.length + 1).fill(0);
  for (const [k, n] of Object.entries(at)) {
    const i = k === 'overflow' ? REORDER_DELAY_BUCKETS_MS.length : REORDER_DELAY_BUCKETS_MS.findIndex((b) => String(b) === k);
    assert.ok(i >= 0, `bucket ${k}`);
    out[i] = n;
  }
  return out;
}
