// The gateways' per-packet histograms (reorder delay, delay spread between the paths), both
// over REORDER_DELAY_BUCKETS_MS, as percentiles, and issue 4's comparison of the two. Kept out
// of systems.ts (which starts processes) so that it can be unit-tested.
import { REORDER_DELAY_BUCKETS_MS } from '@braid/gateway-core';

export interface Percentiles {
  p50: number;
  p99: number;
}

/** Issue 4: reorder delay p99 <= measured path delay spread (p99) + this. */
export const SPREAD_MARGIN_MS = 5;

/**
 * p50 and p99 of the sum of `hists` (counts per REORDER_DELAY_BUCKETS_MS bucket, +1 overflow),
 * each given as the upper bound of the bucket it falls in, so an upper estimate; a percentile in
 * the overflow bucket is given as the last bound (it is at least that). Null without samples.
 */
export function bucketPercentiles(hists: readonly (readonly number[])[]): Percentiles | null {
  const counts = new Array<number>(REORDER_DELAY_BUCKETS_MS.length + 1).fill(0);
  for (const h of hists) h.forEach((c, i) => { if (i < counts.length) counts[i] = (counts[i] as number) + c; });
  const total = counts.reduce((x, y) => x + y, 0);
  if (total === 0) return null;
  const last = REORDER_DELAY_BUCKETS_MS[REORDER_DELAY_BUCKETS_MS.length - 1] as number;
  const at = (q: number): number => {
    let cum = 0;
    for (let i = 0; i < counts.length; i++) {
      cum += counts[i] as number;
      if (cum >= q * total) return REORDER_DELAY_BUCKETS_MS[i] ?? last;
    }
    return last;
  };
  return { p50: at(0.5), p99: at(0.99) };
}

/**
 * The histogram called `key` from both receiving sides' status (the edge's `reorder` for
 * downloads, each cloud session's `sessions[].reorder` for uploads). A gateway that does not
 * export it (older builds) contributes nothing.
 */
export function statusHistograms(edge: unknown, cloud: unknown, key: 'delayCounts' | 'spreadCounts'): number[][] {
  type WithReorder = { reorder?: Partial<Record<typeof key, number[]>> | null };
  const out: number[][] = [];
  const e = (edge as WithReorder | null)?.reorder?.[key];
  if (Array.isArray(e)) out.push(e);
  for (const s of (cloud as { sessions?: WithReorder[] } | null)?.sessions ?? []) {
    const c = s.reorder?.[key];
    if (Array.isArray(c)) out.push(c);
  }
  return out;
}

/**
 * The summed histogram in a few words, non-empty buckets only ("<=0.5: 60012, <=5: 31, ..."),
 * so that a result shows the shape behind its two percentiles. Null without samples.
 */
export function histogramText(hists: readonly (readonly number[])[]): string | null {
  const counts = new Array<number>(REORDER_DELAY_BUCKETS_MS.length + 1).fill(0);
  for (const h of hists) h.forEach((c, i) => { if (i < counts.length) counts[i] = (counts[i] as number) + c; });
  const parts = counts.flatMap((n, i) => n === 0 ? [] : [`${i < REORDER_DELAY_BUCKETS_MS.length ? `<=${REORDER_DELAY_BUCKETS_MS[i]}` : `>${REORDER_DELAY_BUCKETS_MS[REORDER_DELAY_BUCKETS_MS.length - 1]}`}: ${n}`]);
  return parts.length ? parts.join(', ') : null;
}

/** "reorder p99 X ms vs spread p99 Y ms + 5 ms: met / not met by Z ms", or null when either is missing. */
export function spreadVerdict(reorder: Percentiles | null, spread: Percentiles | null): string | null {
  if (!reorder || !spread) return null;
  const limit = spread.p99 + SPREAD_MARGIN_MS;
  const by = Math.round(Math.abs(limit - reorder.p99) * 10) / 10;
  return `reorder p99 ${reorder.p99} ms vs spread p99 ${spread.p99} ms + ${SPREAD_MARGIN_MS} ms: ${reorder.p99 <= limit ? 'met' : 'not met'} by ${by} ms`
    + ' (both bucket upper bounds, both receiving sides, whole session)';
}
