// The first scheduler: each packet goes to the path where it is expected to arrive first,
// given that path's measured delivery rate, its base delay and what is already queued on it.
//
//   queued_i  = max(0, inflight_i - rate_i * minRtt_i)      bytes beyond one bandwidth-delay product
//   arrival_i = minRtt_i / 2 + (queued_i + bytes) / rate_i
//
// Over many packets this sends to each path in proportion to its delivery rate (a weighted
// split), and it corrects itself: a path whose rate is under-estimated drains its queue faster
// than predicted, so its in-flight bytes (measured from acks, not predicted) stay low and it
// is picked more often until the measured rate catches up. Before any measurement a path is
// assumed to carry DEFAULT_RATE so the first packets spread over all paths.
import { registerScheduler, type PathView, type Scheduler } from './scheduler.js';

/** 1 Mbit/s in bytes per microsecond. */
const DEFAULT_RATE = 0.125;
const DEFAULT_RTT_US = 50_000;

export class RateWeightedScheduler implements Scheduler {
  readonly name = 'rate-weighted';

  pick(paths: readonly PathView[], bytes: number): PathView | undefined {
    let best: PathView | undefined;
    let bestAt = Infinity;
    for (const p of paths) {
      if (!p.usable()) continue;
      const rate = p.deliveryRate > 0 ? p.deliveryRate : DEFAULT_RATE;
      const base = Number.isFinite(p.minRttUs) ? p.minRttUs : p.srttUs > 0 ? p.srttUs : DEFAULT_RTT_US;
      const queued = Math.max(0, p.inflightBytes() - rate * base);
      const at = base / 2 + (queued + bytes) / rate;
      if (at < bestAt) {
        bestAt = at;
        best = p;
      }
    }
    return best;
  }
}

registerScheduler('rate-weighted', () => new RateWeightedScheduler());
