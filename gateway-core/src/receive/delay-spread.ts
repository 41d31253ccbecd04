// The delay spread between the paths in use, measured where it matters: at the receiver.
//
// A packet that overtakes another on a faster path waits in the reorder buffer for about the
// difference between the two paths' one-way delays at that moment. That difference is what
// the reorder delay should be compared with (issue 4: reorder p99 <= spread + 5 ms), and what
// the reorder hold for an ordinary gap is sized from.
//
// One-way delays are measured without synchronised clocks: every data packet carries TS1, the
// sender's clock (wire/header), and arrival minus TS1 is the one-way delay plus one unknown
// clock offset. The offset is the same for every path of the session (one sender, one
// receiver), so it cancels in the difference between two paths. Each path keeps a smoothed
// value of its (offset) delay; the spread is the largest minus the smallest among the paths
// that carried data recently. Queueing is included on purpose: a bufferbloated carrier makes
// packets wait behind it just as much as a long cable does.
import { wireTime } from '../clock.js';
import { REORDER_DELAY_BUCKETS_MS } from './reorder.js';

/** A path counts as "in use" while it delivered data this recently. */
const ACTIVE_US = 500_000;
/** Smoothing of each path's delay: new samples weigh 1/8 (like TCP's srtt). */
const GAIN_SHIFT = 3;

export interface DelaySpreadStats {
  /** Spread seen by each arriving data packet: counts per REORDER_DELAY_BUCKETS_MS bucket (+1 overflow). */
  spreadCounts: number[];
  /** The spread now, microseconds (0 with fewer than two paths in use). */
  spreadUs: number;
}

export class DelaySpread {
  /** First raw (arrival - TS1) seen: all later samples are taken relative to it, so they stay small. */
  private ref: number | undefined;
  private readonly owdUs: number[] = [];
  private readonly lastUs: number[] = [];
  readonly stats: DelaySpreadStats = {
    spreadCounts: new Array<number>(REORDER_DELAY_BUCKETS_MS.length + 1).fill(0),
    spreadUs: 0,
  };

  /** One data packet arrived on `pathId`, sent at `ts1` (the sender's wire clock), now. */
  onData(pathId: number, ts1: number, nowUs: number): void {
    const raw = (wireTime(nowUs) - ts1) >>> 0;
    if (this.ref === undefined) this.ref = raw;
    // Relative to the first sample, as a signed 32-bit difference: the wire clocks wrap, the
    // unknown offset between the two hosts cancels, and what is left is a few ms or seconds.
    const rel = (raw - this.ref) | 0;
    const prev = this.owdUs[pathId];
    this.owdUs[pathId] = prev === undefined || nowUs - (this.lastUs[pathId] ?? -Infinity) > ACTIVE_US
      ? rel
      : prev + ((rel - prev) >> GAIN_SHIFT);
    this.lastUs[pathId] = nowUs;
    const s = this.spreadUs(nowUs);
    this.stats.spreadUs = s;
    const ms = s / 1000;
    let b = 0;
    while (b < REORDER_DELAY_BUCKETS_MS.length && ms > (REORDER_DELAY_BUCKETS_MS[b] as number)) b++;
    this.stats.spreadCounts[b] = (this.stats.spreadCounts[b] as number) + 1;
  }

  /** Largest minus smallest smoothed one-way delay among the paths that delivered data recently. */
  spreadUs(nowUs: number): number {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < this.owdUs.length; i++) {
      const d = this.owdUs[i];
      if (d === undefined || nowUs - (this.lastUs[i] ?? -Infinity) > ACTIVE_US) continue;
      if (d < lo) lo = d;
      if (d > hi) hi = d;
    }
    return hi > lo ? hi - lo : 0;
  }
}
