// Derivation rules: from an edge's recent history to policy overlays. Pure functions of the
// history, so each rule is tested on hand-made histories.
//
//  - degradation: a carrier whose recent samples show loss rising, RTT rising or SINR falling
//    against its own baseline is demoted to tier "secondary" (while another carrier stays primary);
//  - speed (S2-12): at >= 160 km/h real-time traffic gets more protection: a lower S2-8 penalty
//    beta (important packets are duplicated on more paths) and a larger retransmission importance F;
//  - cell: a carrier found degrading on a cell (mcc-mnc-cellid) is demoted pre-emptively on other
//    edges whose same-operator carrier is now on that cell.
import type { CarrierSample, EdgeRecord } from './history.js';
import type { Derived, FleetOverlay } from './overlay.js';

export const RULES = {
  /** Samples compared against the baseline. */
  recentSamples: 3,
  /** Samples before them forming the baseline (at least minBaseline). */
  baselineSamples: 10,
  minBaseline: 3,
  /** Loss: recent mean at least this much above the baseline mean ... */
  lossRise: 0.03,
  /** ... and at least this high. */
  lossFloor: 0.05,
  /** RTT: recent median at least this factor of the baseline median ... */
  rttFactor: 1.5,
  /** ... and at least this many ms above it. */
  rttRiseMs: 30,
  /** SINR: recent mean at least this many dB below the baseline mean ... */
  sinrDrop: 6,
  /** ... and at most this many dB. */
  sinrCeiling: 5,
  /** S2-12 high speed. */
  highSpeedKmh: 160,
  /** A speed older than this (edge clock vs the newest report) no longer counts, ms. */
  speedMaxAgeMs: 30_000,
  /** High-speed protection: S2-8 beta and retransmission F (policy defaults 0.1 and 1000). */
  highSpeedBeta: 0.02,
  highSpeedRetransmitF: 4000,
  /** What an edge learned about a cell is offered to others for this long, ms. */
  cellMemoryMs: 120_000,
} as const;

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}
const values = (xs: CarrierSample[], f: (s: CarrierSample) => number | undefined): number[] =>
  xs.map(f).filter((v): v is number => v !== undefined);

const isUp = (s: CarrierSample): boolean => s.state === 'up';

/**
 * Why this carrier's history shows it degrading, or undefined. `samples` is its recent history,
 * oldest first (the statistical rules look at the last recentSamples + baselineSamples of it);
 * `wasUp` says whether the carrier was up at any time the cloud still remembers.
 */
export function degradation(samples: CarrierSample[], wasUp = samples.some(isUp)): string | undefined {
  const R = RULES;
  if (samples.length < R.recentSamples + R.minBaseline) return undefined;
  const recent = samples.slice(-R.recentSamples);
  const base = samples.slice(-(R.recentSamples + R.baselineSamples), -R.recentSamples);
  // A carrier that went down (the data plane already moved its traffic, in-band) is demoted at its
  // first down report, and stays demoted until its last recentSamples reports are up again, so that
  // it does not take primary traffic back at its first answer. "Went": it was up at some time the
  // history remembers, not necessarily in the baseline window. Requiring up reports in that window
  // missed a blackout that came soon after another (its baseline still held the previous one's
  // down reports, sent at up to 10 a second) and withdrew the demotion during a long one.
  if (recent.some((s) => s.state === 'down') && wasUp) return 'path went down';
  const lr = values(recent, (s) => s.lossRate);
  const lb = values(base, (s) => s.lossRate);
  if (lr.length === recent.length && lb.length >= R.minBaseline) {
    const r = mean(lr);
    const b = mean(lb);
    if (r - b >= R.lossRise && r >= R.lossFloor) return `loss rising: ${(b * 100).toFixed(1)}% -> ${(r * 100).toFixed(1)}%`;
  }
  const rr = values(recent, (s) => s.rttMs);
  const rb = values(base, (s) => s.rttMs);
  if (rr.length === recent.length && rb.length >= R.minBaseline) {
    const r = median(rr);
    const b = median(rb);
    if (r >= R.rttFactor * b && r - b >= R.rttRiseMs) return `RTT rising: ${b.toFixed(0)} ms -> ${r.toFixed(0)} ms`;
  }
  const sr = values(recent, (s) => s.sinrDb);
  const sb = values(base, (s) => s.sinrDb);
  if (sr.length === recent.length && sb.length >= R.minBaseline) {
    const r = mean(sr);
    const b = mean(sb);
    if (b - r >= R.sinrDrop && r <= R.sinrCeiling) return `SINR falling: ${b.toFixed(1)} dB -> ${r.toFixed(1)} dB`;
  }
  return undefined;
}

/** Carriers to demote for one edge, with reasons; never every carrier the edge has. */
export function degradationRule(e: EdgeRecord): { demoted: Map<string, string>; derived: Derived } {
  const demoted = new Map<string, string>();
  for (const [name, ring] of e.carriers) {
    const why = degradation(ring.last(RULES.recentSamples + RULES.baselineSamples), ring.some(isUp));
    if (why) demoted.set(name, why);
  }
  // Demoting every carrier says nothing about which one to prefer.
  if (demoted.size === 0 || demoted.size >= e.carriers.size) return { demoted: new Map(), derived: { overlay: undefined, reasons: [] } };
  const overlay: FleetOverlay = { carriers: Object.fromEntries([...demoted.keys()].map((n) => [n, { tier: 'secondary' as const }])) };
  return { demoted, derived: { overlay, reasons: [...demoted].map(([n, why]) => `${n}: ${why}`) } };
}

/** S2-12: more protection for real-time traffic at high speed. */
export function speedRule(e: EdgeRecord): Derived {
  const v = e.speedKmh;
  if (v === undefined || v < RULES.highSpeedKmh) return { overlay: undefined, reasons: [] };
  const newest = Math.max(0, ...[...e.carriers.values()].map((r) => r.newest()?.atMs ?? 0));
  if (e.speedAtMs !== undefined && newest - e.speedAtMs > RULES.speedMaxAgeMs) return { overlay: undefined, reasons: [] };
  return {
    overlay: { schedule: { beta: RULES.highSpeedBeta, retransmitF: RULES.highSpeedRetransmitF } },
    reasons: [`speed ${v.toFixed(0)} km/h >= ${RULES.highSpeedKmh} km/h`],
  };
}

/** What one edge learned about a cell, offered to the others. */
export interface CellLesson {
  edgeId: string;
  carrier: string;
  reason: string;
  atMs: number;
}

/** Carriers of `e` now on a cell another edge found degrading. */
export function cellRule(edgeId: string, e: EdgeRecord, lessons: ReadonlyMap<string, CellLesson>, nowMs: number, ownDemoted: ReadonlySet<string>): Derived {
  const carriers: Record<string, { tier: 'secondary' }> = {};
  const reasons: string[] = [];
  for (const [name, ring] of e.carriers) {
    if (ownDemoted.has(name)) continue;
    const cell = ring.newest()?.cell;
    if (!cell) continue;
    const l = lessons.get(cell);
    if (!l || l.edgeId === edgeId || nowMs - l.atMs > RULES.cellMemoryMs) continue;
    carriers[name] = { tier: 'secondary' };
    reasons.push(`${name}: cell ${cell} degraded for edge ${l.edgeId} (${l.reason})`);
  }
  const n = Object.keys(carriers).length;
  if (n === 0 || n + ownDemoted.size >= e.carriers.size) return { overlay: undefined, reasons: [] };
  return { overlay: { carriers }, reasons };
}
