// S2-8, stage 2b: which set of paths carries a packet.
//
//   f_i = 1 / T_i + alpha * BW_i        interface quality; T_i is the expected delivery time of
//                                       this packet on i (half the base delay plus the time to
//                                       drain what is queued on i: the buffer-aware score)
//   u_i = (1 - L_i) * f_i               expected utility
//   L_S = product of L_i over S         the packet is lost only if every copy is
//   J(S) = max_{i in S} u_i + F * (1 - L_S) * mean(u) - beta * (|S| - 1) * mean(u)
//
// F is the packet's importance and beta the price of each extra copy, both relative to the
// mean utility so they are dimensionless. Paths are added greedily, best first, while J grows
// strictly. With F = 0 adding a path only costs, so exactly one path is chosen (the best u_i);
// with F * L_S * (1 - L_j) above beta a copy on j pays, so retransmissions (large F) are
// duplicated. Loss estimates are floored (LOSS_FLOOR) so a path never looks perfectly safe.
import { registerScheduler, type PathView, type Scheduler } from './scheduler.js';

export interface UtilityParams {
  /** Weight of bandwidth (per Mbit/s) against 1/delay (per second). */
  alpha: number;
  /** Price of each extra copy. */
  beta: number;
}

export const DEFAULT_UTILITY: UtilityParams = { alpha: 0.5, beta: 0.1 };
const LOSS_FLOOR = 0.01;
const DEFAULT_RATE = 0.125; // bytes/us = 1 Mbit/s, before any measurement
const DEFAULT_RTT_US = 50_000;

export interface ScoredPath {
  view: PathView;
  /** Expected delivery time in microseconds. */
  arrivalUs: number;
  u: number;
  loss: number;
}

/** Bytes a path may hold in flight before they count as queued: twice its bandwidth-delay product. */
const FREE_MIN = 16 * 1024;

/**
 * Expected delivery time of `bytes` on the path: half its base delay, plus the time to drain
 * what exceeds twice its bandwidth-delay product at its measured rate.
 *
 * Twice, not once: a path's rate is measured from what it delivered, so a path that was given
 * little measures low. Letting each path hold two BDPs before it looks queued means an
 * under-estimated path is always offered more than it is believed to carry; if it can, its
 * measured rate doubles every round trip (as in slow start) until the link is full and a
 * real queue forms. Over-estimates correct themselves through bytes in flight, which are
 * measured from acks.
 */
export function expectedArrivalUs(p: PathView, bytes: number): number {
  const rate = rateOf(p);
  const base = baseRttOf(p);
  const free = Math.max(FREE_MIN, 2 * rate * base);
  return base / 2 + Math.max(0, p.inflightBytes() + bytes - free) / rate;
}

/**
 * When the last of `bytes` more would arrive on the path: half its base delay plus the time to
 * send what it has in flight and the bytes at its measured rate, or at `unmeasuredRate` (bytes/us)
 * while it has none. For a burst (a new flow's first bytes, S2-7), where expectedArrivalUs
 * answers for one packet.
 */
export function expectedCompletionUs(p: PathView, bytes: number, unmeasuredRate = DEFAULT_RATE): number {
  return baseRttOf(p) / 2 + (p.inflightBytes() + bytes) / rateOf(p, unmeasuredRate);
}

/** The path's measured delivery rate, bytes/us (`unmeasured`, DEFAULT_RATE unless given, until measured). */
function rateOf(p: PathView, unmeasured = DEFAULT_RATE): number {
  return p.deliveryRate > 0 ? p.deliveryRate : unmeasured;
}

/** The path's base round trip: its minimum, else its smoothed delay, else DEFAULT_RTT_US. */
function baseRttOf(p: PathView): number {
  return Number.isFinite(p.minRttUs) ? p.minRttUs : p.srttUs > 0 ? p.srttUs : DEFAULT_RTT_US;
}

export function score(p: PathView, bytes: number, params: UtilityParams): ScoredPath {
  const arrivalUs = expectedArrivalUs(p, bytes);
  const bwMbps = rateOf(p) * 8;
  const f = 1 / (arrivalUs / 1e6) + params.alpha * bwMbps;
  const loss = Math.max(LOSS_FLOOR, Math.min(1, p.lossRate));
  return { view: p, arrivalUs, u: (1 - loss) * f, loss };
}

/** The chosen set, best path first. Empty only when `paths` is empty. */
export function chooseSet(paths: readonly PathView[], bytes: number, F: number, params: UtilityParams = DEFAULT_UTILITY): ScoredPath[] {
  if (paths.length === 0) return [];
  const scored = paths.map((p) => score(p, bytes, params)).sort((a, b) => b.u - a.u);
  const mean = scored.reduce((s, x) => s + x.u, 0) / scored.length;
  const chosen = [scored[0] as ScoredPath];
  let lossS = chosen[0]!.loss;
  let j = chosen[0]!.u + F * (1 - lossS) * mean;
  for (let k = 1; k < scored.length; k++) {
    const c = scored[k] as ScoredPath;
    const lossWith = lossS * c.loss;
    const jWith = chosen[0]!.u + F * (1 - lossWith) * mean - params.beta * chosen.length * mean;
    if (jWith <= j) break;
    chosen.push(c);
    lossS = lossWith;
    j = jWith;
  }
  return chosen;
}

/** Stage 2b as a scheduler: the best u_i for ordinary packets, a set for important ones. */
export class UtilityScheduler implements Scheduler {
  readonly name = 'utility';

  constructor(private readonly params: UtilityParams = DEFAULT_UTILITY) {}

  pick(paths: readonly PathView[], bytes: number): PathView | undefined {
    return chooseSet(paths.filter((p) => p.usable()), bytes, 0, this.params)[0]?.view;
  }

  pickSet(paths: readonly PathView[], bytes: number, F: number): PathView[] {
    return chooseSet(paths.filter((p) => p.usable()), bytes, F, this.params).map((s) => s.view);
  }
}

registerScheduler('utility', () => new UtilityScheduler());
