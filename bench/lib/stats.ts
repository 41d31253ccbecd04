// Small statistics shared by the bench: percentiles and the longest silence in a byte series.

/** Percentile (0..100) of an ascending array, by linear interpolation between closest ranks. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (Math.min(100, Math.max(0, p)) / 100) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (pos - lo);
}

/**
 * The longest run of consecutive zero-byte bins, in ms: the longest interval with no goodput at
 * the bins' resolution (0 when every bin carried something). Counting starts at the first bin
 * that carried bytes: connection set-up is not a gap. A series with no bytes at all is one gap.
 */
export function maxGapMs(bins: readonly number[], binMs: number): number {
  const first = bins.findIndex((b) => b > 0);
  if (first < 0) return bins.length * binMs;
  let longest = 0;
  let run = 0;
  for (const b of bins.slice(first)) {
    run = b > 0 ? 0 : run + 1;
    if (run > longest) longest = run;
  }
  return longest * binMs;
}

/** Adds byte series bin by bin (series of different lengths: missing bins count as 0). */
export function sumSeries(series: readonly (readonly number[])[]): number[] {
  const n = Math.max(0, ...series.map((s) => s.length));
  const out = new Array<number>(n).fill(0);
  for (const s of series) s.forEach((v, i) => (out[i]! += v));
  return out;
}

export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
