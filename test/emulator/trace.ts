// Delivery-opportunity traces in Mahimahi's format: one integer per line, a time in milliseconds
// from the start of the trace; each line is one chance to deliver 1500 bytes at that
// millisecond (several lines may repeat a time). The trace loops with a period equal to its
// last time, exactly like mm-link, so a file holding only "1" is a constant 12 Mbit/s link.

/** Bytes one delivery opportunity may carry (Mahimahi's fixed MTU-sized opportunity). */
export const OPPORTUNITY_BYTES = 1500;

/** Parses Mahimahi trace text; throws an Error naming the offending line (1-based). */
export function parseMahimahi(text: string, source = 'trace'): number[] {
  const out: number[] = [];
  const lines = text.split('\n');
  let prev = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    if (!/^\d+$/.test(line)) throw new Error(`${source}: line ${i + 1}: expected a non-negative integer (milliseconds), got "${line.slice(0, 40)}"`);
    const ms = Number(line);
    if (!Number.isSafeInteger(ms)) throw new Error(`${source}: line ${i + 1}: ${line} is too large`);
    if (ms < prev) throw new Error(`${source}: line ${i + 1}: time ${ms} ms goes backwards (previous line ${prev} ms)`);
    out.push(ms);
    prev = ms;
  }
  checkTrace(out, source);
  return out;
}

/** Throws unless `trace` is a usable opportunity list: non-empty, non-decreasing, last time > 0. */
export function checkTrace(trace: readonly number[], source = 'trace'): void {
  if (trace.length === 0) throw new Error(`${source}: no delivery opportunities (empty trace)`);
  let prev = 0;
  for (let i = 0; i < trace.length; i++) {
    const t = trace[i]!;
    if (!Number.isInteger(t) || t < 0) throw new Error(`${source}: entry ${i}: expected a non-negative integer, got ${t}`);
    if (t < prev) throw new Error(`${source}: entry ${i}: time ${t} ms goes backwards (previous ${prev} ms)`);
    prev = t;
  }
  if (prev <= 0) throw new Error(`${source}: the last time must be > 0 ms (it is the loop period)`);
}

/**
 * A trace for a constant rate: round(mbps * periodMs / 12) opportunities spread evenly over
 * periodMs (12 Mbit/s is one 1500-byte opportunity per millisecond). The rounding error is
 * below one opportunity per period: < 0.1% for the default period at >= 12 Mbit/s.
 */
export function constantRateTrace(mbps: number, periodMs = 1000): number[] {
  if (!(mbps > 0) || !Number.isFinite(mbps)) throw new Error(`constantRateTrace: rate must be > 0 Mbit/s, got ${mbps}`);
  if (!Number.isInteger(periodMs) || periodMs < 1) throw new Error(`constantRateTrace: periodMs must be a positive integer, got ${periodMs}`);
  const n = Math.max(1, Math.round((mbps * periodMs) / 12));
  const out = new Array<number>(n);
  for (let k = 0; k < n; k++) out[k] = Math.max(1, Math.floor(((k + 1) * periodMs) / n));
  return out;
}

/** Loop period of a trace in milliseconds. */
export function tracePeriodMs(trace: readonly number[]): number {
  return trace[trace.length - 1] ?? 0;
}

/** Mean rate the trace offers, in Mbit/s (opportunities x 1500 bytes over the loop period). */
export function traceMeanMbps(trace: readonly number[]): number {
  const period = tracePeriodMs(trace);
  return period > 0 ? (trace.length * OPPORTUNITY_BYTES * 8) / (period * 1000) : 0;
}

/** Longest interval without an opportunity, in ms (within one loop period). */
export function traceLongestGapMs(trace: readonly number[]): number {
  let gap = trace[0] ?? 0;
  for (let i = 1; i < trace.length; i++) gap = Math.max(gap, trace[i]! - trace[i - 1]!);
  return gap;
}
