// S0-6 weights. With E1 (stream 1, the preferred transport) connected, E1 weighs P1 and a
// connected E2 weighs P2; with E1 failed and E2 connected, E2 weighs P3. P2 < P1 < P3: the
// primary beats the fallback when both work, and a fallback that is all there is gets the
// highest standing (so nothing ranks above a working path that earlier streams could not give).
// Each packet goes on the connected stream of the highest weight.

export interface RacingWeights {
  p1: number;
  p2: number;
  p3: number;
}

export const DEFAULT_WEIGHTS: RacingWeights = { p1: 2, p2: 1, p3: 3 };

/** A worded reason when the weights break P2 < P1 < P3, else undefined. */
export function weightsProblem(w: RacingWeights): string | undefined {
  for (const k of ['p1', 'p2', 'p3'] as const) {
    if (!Number.isFinite(w[k]) || w[k] <= 0) return `weight ${k} must be a positive number, got ${w[k]}`;
  }
  if (!(w.p2 < w.p1 && w.p1 < w.p3)) return `weights must satisfy p2 < p1 < p3, got p1=${w.p1} p2=${w.p2} p3=${w.p3}`;
  return undefined;
}

export function validateWeights(w: RacingWeights): RacingWeights {
  const p = weightsProblem(w);
  if (p) throw new RangeError(p);
  return w;
}

/**
 * Weight of the connected endpoint of stream `index` (0 = stream 1) given which streams are
 * connected. Stream 1 is the primary: P1. A later stream weighs P2 while an earlier stream is
 * connected, P3 when every earlier stream failed (the S0-6 rule, extended to stream 3 and on).
 */
export function streamWeight(index: number, connected: readonly boolean[], w: RacingWeights): number {
  if (!connected[index]) return 0;
  if (index === 0) return w.p1;
  return connected.slice(0, index).some(Boolean) ? w.p2 : w.p3;
}
