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
import { expectedArrivalUs } from './utility.js';

export class RateWeightedScheduler implements Scheduler {
  readonly name = 'rate-weighted';

  pick(paths: readonly PathView[], bytes: number): PathView | undefined {
    let best: PathView | undefined;
    let bestAt = Infinity;
    for (const p of paths) {
      if (!p.usable()) continue;
      const at = expectedArrivalUs(p, bytes);
      if (at < bestAt) {
        bestAt = at;
        best = p;
      }
    }
    return best;
  }
}

registerScheduler('rate-weighted', () => new RateWeightedScheduler());
