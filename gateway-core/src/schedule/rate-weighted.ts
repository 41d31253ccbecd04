// The bulk scheduler: each packet goes to the path where it is expected to arrive first
// (utility.ts: expectedArrivalUs), given each path's measured delivery rate, its base delay
// and what is already in flight on it.
//
// Over many packets this sends to each path in proportion to its delivery rate (a weighted
// split), and it corrects itself in both directions: an over-estimated path builds a queue
// (bytes in flight are measured from acks, not predicted) and is picked less; an
// under-estimated one is always offered more than it is believed to carry, so its measured
// rate grows until it is full.
import { registerScheduler, type PathView, type Scheduler } from './scheduler.js';
import { baseDelayUs, expectedArrivalUs } from './utility.js';

/**
 * Heterogeneity: a path whose base delay exceeds the lowest one by more than this is judged
 * by its honest arrival time (one bandwidth-delay product in flight before packets queue,
 * not two). A packet put on a slow path holds back everything sent after it on the fast one
 * until it arrives (the merge is in order), so the slow path gets a packet only when it
 * really arrives first: when the fast path's queue would take longer to drain than the
 * delay spread. An asymmetric pair then never does worse than its best path alone.
 */
const SPREAD_US = 20_000;

/** Lowest base delay among the usable paths. */
export function minBaseUs(paths: readonly PathView[]): number {
  let m = Infinity;
  for (const p of paths) if (p.usable()) m = Math.min(m, baseDelayUs(p));
  return m;
}

/** Expected arrival of `bytes` on `p` as the bulk scheduler sees it (see SPREAD_US). */
export function bulkArrivalUs(p: PathView, bytes: number, minBase: number): number {
  return expectedArrivalUs(p, bytes, baseDelayUs(p) > minBase + SPREAD_US ? 1 : 2);
}

/**
 * ECF's "wait" (earliest completion first): when the path where a packet would arrive first
 * has no room now, a slower path with room gets the packet only if it delivers it before the
 * fast path could deliver everything queued ahead and this packet too; otherwise the packet
 * waits for the fast path. Returns the paths of `room` worth using now (maybe none).
 */
export function worthSendingNow(usable: readonly PathView[], room: readonly PathView[], bytes: number, backlogBytes: number): readonly PathView[] {
  const minBase = minBaseUs(usable);
  let best: PathView | undefined;
  let bestAt = Infinity;
  for (const p of usable) {
    const at = bulkArrivalUs(p, bytes, minBase);
    if (at < bestAt) {
      bestAt = at;
      best = p;
    }
  }
  if (!best || room.includes(best)) return room;
  const fastDone = bulkArrivalUs(best, bytes + backlogBytes, minBase);
  return room.filter((p) => bulkArrivalUs(p, bytes, minBase) < fastDone);
}

export class RateWeightedScheduler implements Scheduler {
  readonly name = 'rate-weighted';

  pick(paths: readonly PathView[], bytes: number): PathView | undefined {
    let best: PathView | undefined;
    let bestAt = Infinity;
    const minBase = minBaseUs(paths);
    for (const p of paths) {
      if (!p.usable()) continue;
      const at = bulkArrivalUs(p, bytes, minBase);
      if (at < bestAt) {
        bestAt = at;
        best = p;
      }
    }
    return best;
  }
}

registerScheduler('rate-weighted', () => new RateWeightedScheduler());
