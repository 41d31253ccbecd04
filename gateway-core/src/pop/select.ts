// S2-13: per destination, the PoP with the least delay(edge-PoP) + delay(PoP-destination), both
// measured (round trips, so the sum is the round trip of the whole way). Pure: the inputs are
// the measurements, the output the choice; the edge's multi-PoP runner applies it.

export interface PopMeasurement {
  name: string;
  /** Round trip from the edge to this PoP now (its best live path), ms; undefined: not reachable. */
  edgeRttMs: number | undefined;
  /** Round trip from this PoP to each destination (by probe target), ms; missing: not measured. */
  destRttMs: ReadonlyMap<string, number>;
}

export interface Choice {
  /** The chosen PoP's name; undefined when no PoP has both measurements. */
  pop: string | undefined;
  /** The total of each PoP that has one, ms. */
  totals: Record<string, number>;
  /** Why the choice is what it is, for logs ("least total", "kept: within hysteresis", ...). */
  reason: string;
}

export interface SelectOptions {
  /** Move away from the current PoP only when another is better by more than this share of the current total... */
  hysteresisPct: number;
  /** ...and by more than this many milliseconds (round-trip jitter on a quiet path is a few ms). */
  hysteresisMs: number;
}

export function totalRtt(m: PopMeasurement, target: string): number | undefined {
  const d = m.destRttMs.get(target);
  return m.edgeRttMs === undefined || d === undefined ? undefined : m.edgeRttMs + d;
}

/**
 * The PoP for one destination. Keeps `current` unless it is unusable or another PoP beats it by
 * more than the hysteresis: measurements jitter, and every switch costs the destination's open
 * connections their NAT state (their packets leave from another PoP's address).
 */
export function choosePop(target: string, pops: readonly PopMeasurement[], current: string | undefined, o: SelectOptions): Choice {
  const totals: Record<string, number> = {};
  let best: string | undefined;
  let bestTotal = Infinity;
  for (const p of pops) {
    const t = totalRtt(p, target);
    if (t === undefined) continue;
    totals[p.name] = t;
    if (t < bestTotal) {
      best = p.name;
      bestTotal = t;
    }
  }
  if (best === undefined) return { pop: current, totals, reason: current ? 'kept: no measurements' : 'no measurements' };
  const cur = current === undefined ? undefined : totals[current];
  if (cur === undefined) return { pop: best, totals, reason: current ? `${current} has no measurement` : 'least total' };
  if (best === current) return { pop: current, totals, reason: 'least total' };
  const margin = Math.max(cur * (o.hysteresisPct / 100), o.hysteresisMs);
  if (cur - bestTotal > margin) return { pop: best, totals, reason: `least total (better by ${(cur - bestTotal).toFixed(1)} ms)` };
  return { pop: current, totals, reason: `kept: ${best} better by only ${(cur - bestTotal).toFixed(1)} ms` };
}
