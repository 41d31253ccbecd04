// How fast a system follows a step change of a carrier's capacity (issue 4: "90 % of the new
// aggregate reached within 1 s"). Computed from the receiver's 100 ms goodput bins and the
// scenario's own rate steps, so it needs no extra probe in the data path.
import type { ResolvedScenario } from './scenario.js';

export interface StepResponse {
  /** Seconds after the traffic started. */
  atS: number;
  /** Aggregate capacity of the traffic's direction(s) just before and after the step, Mbit/s. */
  fromMbps: number;
  toMbps: number;
  /** First time the 300 ms mean goodput reached 90 % of toMbps, ms after the step; null: not before the next step or the end. */
  reach90CapacityMs: number | null;
  /** Mean goodput from 3 s after the step to the next step or the end, Mbit/s. */
  settledMbps: number;
  /** For a rise: first time the 300 ms mean goodput reached 90 % of settledMbps, ms after the step. */
  reach90SettledMs: number | null;
}

const SMOOTH_BINS = 3;

/** Aggregate capacity (Mbit/s, loss taken out) at `tS` after the traffic start, per direction used. */
export function aggregateMbpsAt(s: ResolvedScenario, dirs: readonly ('up' | 'down')[], tS: number): number {
  let sum = 0;
  for (const c of s.resolvedCarriers) {
    const loss = 1 - (c.input.lossPct ?? 0) / 100;
    const out = (c.input.outages ?? []).some((o) => tS >= o.atS && tS < o.atS + o.forS);
    if (out) continue;
    for (const d of dirs) {
      let rate = c.input.rateMbps ?? c.meanMbps[d] / loss;
      for (const st of c.input.rateSteps ?? []) if (tS >= st.atS) rate = st.rateMbps;
      sum += rate * loss;
    }
  }
  return sum;
}

/** Step responses of one run; empty when the scenario has no rate steps. `bins` are payload bytes per `binMs`. */
export function stepResponses(
  s: ResolvedScenario, dirs: readonly ('up' | 'down')[], bins: readonly number[], binMs: number,
): StepResponse[] {
  const times = [...new Set(s.resolvedCarriers.flatMap((c) => (c.input.rateSteps ?? []).map((st) => st.atS)))].sort((a, b) => a - b);
  const mbps = bins.map((b) => (b * 8) / (binMs * 1000));
  const smooth = (i: number): number => {
    const from = Math.max(0, i - SMOOTH_BINS + 1);
    const xs = mbps.slice(from, i + 1);
    return xs.reduce((a, x) => a + x, 0) / xs.length;
  };
  const out: StepResponse[] = [];
  times.forEach((atS, k) => {
    const endS = Math.min(times[k + 1] ?? s.durationS, s.durationS);
    const first = Math.round((atS * 1000) / binMs);
    const last = Math.min(mbps.length, Math.round((endS * 1000) / binMs));
    const fromMbps = aggregateMbpsAt(s, dirs, Math.max(0, atS - 0.001));
    const toMbps = aggregateMbpsAt(s, dirs, atS);
    const reach = (level: number): number | null => {
      for (let i = first; i < last; i++) if (smooth(i) >= level) return (i + 1 - first) * binMs;
      return null;
    };
    const settledFrom = Math.min(last - 1, first + Math.round(3000 / binMs));
    const settled = mbps.slice(Math.max(first, settledFrom), last);
    const settledMbps = settled.length ? settled.reduce((a, x) => a + x, 0) / settled.length : 0;
    out.push({
      atS,
      fromMbps: round(fromMbps),
      toMbps: round(toMbps),
      reach90CapacityMs: reach(0.9 * toMbps),
      settledMbps: round(settledMbps),
      reach90SettledMs: toMbps > fromMbps && settledMbps > 0 ? reach(0.9 * settledMbps) : null,
    });
  });
  return out;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
