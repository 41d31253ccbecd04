// When is a sample different enough from the last report to be worth sending now? The reporter
// sends at up to its maximum rate while this says "changed", and only every stable interval
// otherwise. Thresholds are relative where the quantity scales (RTT, goodput) and absolute where
// it does not (loss ratio, dB), with absolute floors so that noise on small values is not news.
import type { CarrierReport, Motion, PathReport, TelemetrySample } from './types.js';

export const CHANGE_THRESHOLDS = {
  /** RTT moved by this fraction of the last reported RTT ... */
  rttRelative: 0.2,
  /** ... and by at least this many milliseconds. */
  rttFloorMs: 5,
  /** Goodput moved by this fraction of the larger of the two values ... */
  goodputRelative: 0.25,
  /** ... and by at least this many Mbit/s. */
  goodputFloorMbps: 0.5,
  /** Loss ratio moved by this much (absolute, 0..1). */
  loss: 0.02,
  /** SINR moved by this many dB. */
  sinrDb: 3,
  /** RSRP moved by this many dB. */
  rsrpDb: 6,
  /** Speed moved by this many km/h (crossing the S2-12 high-speed line always counts). */
  speedKmh: 20,
  /** S2-12: high speed starts here. */
  highSpeedKmh: 160,
} as const;

const T = CHANGE_THRESHOLDS;

function moved(a: number | undefined, b: number | undefined, abs: number): boolean {
  if (a === undefined || b === undefined) return a !== b;
  return Math.abs(a - b) >= abs;
}

function pathChange(prev: PathReport, cur: PathReport): string | undefined {
  if (prev.state !== cur.state) return `state ${prev.state} -> ${cur.state}`;
  if (prev.transport !== cur.transport) return 'transport';
  if (prev.rttMs !== undefined && cur.rttMs !== undefined) {
    const d = Math.abs(cur.rttMs - prev.rttMs);
    if (d >= T.rttFloorMs && d >= T.rttRelative * prev.rttMs) return 'rtt';
  } else if ((prev.rttMs === undefined) !== (cur.rttMs === undefined)) return 'rtt';
  const dg = Math.abs(cur.goodputMbps - prev.goodputMbps);
  if (dg >= T.goodputFloorMbps && dg >= T.goodputRelative * Math.max(prev.goodputMbps, cur.goodputMbps)) return 'goodput';
  if (Math.abs(cur.lossRate - prev.lossRate) >= T.loss) return 'loss';
  return undefined;
}

function carrierChange(prev: CarrierReport, cur: CarrierReport): string | undefined {
  if (prev.cellId !== cur.cellId) return 'cell';
  if (prev.technology !== cur.technology || prev.mcc !== cur.mcc || prev.mnc !== cur.mnc) return 'network';
  if (moved(prev.sinrDb, cur.sinrDb, T.sinrDb)) return 'sinr';
  if (moved(prev.rsrpDbm, cur.rsrpDbm, T.rsrpDb)) return 'rsrp';
  return undefined;
}

function motionChange(prev: Motion | null | undefined, cur: Motion | null | undefined): string | undefined {
  const a = prev?.speedKmh;
  const b = cur?.speedKmh;
  if (a === undefined || b === undefined) return a === b ? undefined : 'speed';
  if ((a >= T.highSpeedKmh) !== (b >= T.highSpeedKmh)) return 'high-speed';
  return Math.abs(a - b) >= T.speedKmh ? 'speed' : undefined;
}

function byName<T extends { carrier: string }>(xs: T[]): Map<string, T> {
  return new Map(xs.map((x) => [x.carrier, x]));
}

/**
 * Why `cur` differs from `prev` (the last report sent), or undefined when it does not differ
 * enough. The reason is for logs and tests; callers only test it for presence.
 */
export function changeReason(prev: TelemetrySample | undefined, cur: TelemetrySample): string | undefined {
  if (!prev) return 'first';
  if (prev.sessionId !== cur.sessionId) return 'session';
  const pp = byName(prev.paths);
  if (pp.size !== cur.paths.length) return 'paths';
  for (const p of cur.paths) {
    const old = pp.get(p.carrier);
    if (!old) return 'paths';
    const why = pathChange(old, p);
    if (why) return `${p.carrier}: ${why}`;
  }
  const pc = byName(prev.carriers);
  if (pc.size !== cur.carriers.length) return 'carriers';
  for (const c of cur.carriers) {
    const old = pc.get(c.carrier);
    if (!old) return 'carriers';
    const why = carrierChange(old, c);
    if (why) return `${c.carrier}: ${why}`;
  }
  return motionChange(prev.motion, cur.motion);
}
