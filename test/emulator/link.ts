// One direction of an emulated link, as a pure model driven by a Clock: packets enter (random
// loss, then a bounded drop-tail queue), leave the queue only at the trace's delivery
// opportunities (mm-link: each opportunity carries 1500 bytes; a packet may use the rest of one
// opportunity and part of the next; an opportunity finding the queue empty is wasted), then
// wait out the one-way delay (mm-delay) and come out of poll(). Outages and random off periods
// (mm-onoff) cancel opportunities; arrivals meanwhile keep queueing, so drop-tail applies.
//
// The hot path allocates nothing per packet beyond the Buffer the caller already has: the queue
// and the delay line are growable rings, the PRNG is a few integer operations.
import { prng, type Clock } from '@braid/gateway-core';
import { OPPORTUNITY_BYTES, traceMeanMbps, tracePeriodMs } from './trace.js';

export interface DirStats {
  deliveredBytes: number;
  deliveredPackets: number;
  /** Dropped by the full drop-tail queue while the link was up. */
  droppedQueue: number;
  /** Dropped by random loss. */
  droppedLoss: number;
  /** Dropped by the full drop-tail queue during an outage or off period. */
  droppedOutage: number;
  /** Bytes the link offered so far: unblocked opportunities x 1500 (used or not). */
  capacityBytes: number;
  /** Queue occupancy now. */
  queuedPackets: number;
  queuedBytes: number;
}

export interface LinkDirectionConfig {
  /** Opportunity times in ms, non-decreasing, last > 0 (the loop period). */
  trace: readonly number[];
  delayMs: number;
  lossPct: number;
  queuePackets?: number;
  queueBytes?: number;
  outages: readonly { atS: number; forS: number }[];
  onOff?: { meanOnS: number; meanOffS: number };
  seed: number;
}

/** The seeded PRNG (mulberry32, uniform in [0, 1)) shared with the in-process simulated links. */
export const mulberry32 = prng;

/** Default queue: 200 ms at the trace's mean rate, at least 64 full-size packets. */
export function defaultQueueBytes(trace: readonly number[]): number {
  return Math.max(64 * OPPORTUNITY_BYTES, Math.round((traceMeanMbps(trace) * 1e6 / 8) * 0.2));
}

/** FIFO of Buffers with a parallel time per entry; grows by doubling, never shrinks. */
class Ring {
  bufs: (Buffer | undefined)[];
  times: Float64Array;
  head = 0;
  size = 0;

  constructor(capacity = 256) {
    this.bufs = new Array<Buffer | undefined>(capacity);
    this.times = new Float64Array(capacity);
  }

  push(b: Buffer, t: number): void {
    if (this.size === this.bufs.length) this.grow();
    const i = (this.head + this.size) & (this.bufs.length - 1);
    this.bufs[i] = b;
    this.times[i] = t;
    this.size++;
  }

  peekTime(): number {
    return this.times[this.head]!;
  }

  peek(): Buffer {
    return this.bufs[this.head]!;
  }

  shift(): Buffer {
    const b = this.bufs[this.head]!;
    this.bufs[this.head] = undefined;
    this.head = (this.head + 1) & (this.bufs.length - 1);
    this.size--;
    return b;
  }

  private grow(): void {
    const n = this.bufs.length * 2;
    const bufs = new Array<Buffer | undefined>(n);
    const times = new Float64Array(n);
    for (let k = 0; k < this.size; k++) {
      const i = (this.head + k) & (this.bufs.length - 1);
      bufs[k] = this.bufs[i];
      times[k] = this.times[i]!;
    }
    this.bufs = bufs;
    this.times = times;
    this.head = 0;
  }
}

export class LinkDirection {
  readonly stats: DirStats = {
    deliveredBytes: 0, deliveredPackets: 0, droppedQueue: 0, droppedLoss: 0, droppedOutage: 0, capacityBytes: 0,
    queuedPackets: 0, queuedBytes: 0,
  };
  private readonly trace: readonly number[];
  private readonly periodUs: number;
  private readonly startUs: number;
  private readonly delayUs: number;
  private readonly lossP: number;
  private readonly maxPackets: number;
  private readonly maxBytes: number;
  private readonly lossRand: () => number;
  private readonly onOffRand: () => number;
  private readonly queue = new Ring();
  private readonly delayLine = new Ring();
  /** Bytes of the queue's head packet already carried by earlier opportunities. */
  private headSent = 0;
  /** Trace cursor: index into trace and the start of the current loop. */
  private idx = 0;
  private cycleUs: number;
  /** Blackout intervals [start, end) in us, sorted; cursor moves forward only. */
  private readonly blackouts: number[] = [];
  private blackoutIdx = 0;
  /** Current random off interval [offStart, offEnd) in us; Infinity when on/off is disabled. */
  private offStart = Infinity;
  private offEnd = Infinity;

  constructor(cfg: LinkDirectionConfig, private readonly clock: Clock) {
    this.trace = cfg.trace;
    this.periodUs = tracePeriodMs(cfg.trace) * 1000;
    if (!(this.periodUs > 0)) throw new Error('LinkDirection: trace period must be > 0');
    this.startUs = clock.nowUs();
    this.cycleUs = this.startUs;
    this.delayUs = Math.round(cfg.delayMs * 1000);
    this.lossP = cfg.lossPct / 100;
    const limitsGiven = cfg.queuePackets !== undefined || cfg.queueBytes !== undefined;
    this.maxPackets = cfg.queuePackets ?? Infinity;
    this.maxBytes = cfg.queueBytes ?? (limitsGiven ? Infinity : defaultQueueBytes(cfg.trace));
    // Separate streams, so that enabling loss does not change the on/off schedule and vice versa.
    this.lossRand = mulberry32(cfg.seed * 2 + 1);
    this.onOffRand = mulberry32(cfg.seed * 2 + 2);
    const sorted = [...cfg.outages].sort((a, b) => a.atS - b.atS);
    for (const o of sorted) this.blackouts.push(this.startUs + o.atS * 1e6, this.startUs + (o.atS + o.forS) * 1e6);
    if (cfg.onOff) {
      this.onOff = cfg.onOff;
      this.offStart = this.startUs + this.exp(cfg.onOff.meanOnS);
      this.offEnd = this.offStart + this.exp(cfg.onOff.meanOffS);
    }
  }

  private onOff: { meanOnS: number; meanOffS: number } | undefined;

  private exp(meanS: number): number {
    return -Math.log(1 - this.onOffRand()) * meanS * 1e6;
  }

  /** True when time t (us; non-decreasing across calls) lies in an outage or an off period. */
  blockedAt(t: number): boolean {
    while (this.blackoutIdx < this.blackouts.length && this.blackouts[this.blackoutIdx + 1]! <= t) this.blackoutIdx += 2;
    if (this.blackoutIdx < this.blackouts.length && this.blackouts[this.blackoutIdx]! <= t) return true;
    if (this.onOff) {
      while (this.offEnd <= t) {
        this.offStart = this.offEnd + this.exp(this.onOff.meanOnS);
        this.offEnd = this.offStart + this.exp(this.onOff.meanOffS);
      }
      if (this.offStart <= t) return true;
    }
    return false;
  }

  /** A packet arrived now. It is kept (not copied) until poll() hands it out, or dropped. */
  enqueue(pkt: Buffer): void {
    const now = this.clock.nowUs();
    this.serve(now);
    if (this.lossP > 0 && this.lossRand() < this.lossP) {
      this.stats.droppedLoss++;
      return;
    }
    if (this.stats.queuedPackets + 1 > this.maxPackets || this.stats.queuedBytes + pkt.length > this.maxBytes) {
      if (this.blockedAt(now)) this.stats.droppedOutage++;
      else this.stats.droppedQueue++;
      return;
    }
    this.queue.push(pkt, now);
    this.stats.queuedPackets++;
    this.stats.queuedBytes += pkt.length;
  }

  /** Moves time to now and appends every packet due at the far end to `out`; returns how many. */
  poll(out: Buffer[]): number {
    const now = this.clock.nowUs();
    this.serve(now);
    let n = 0;
    const line = this.delayLine;
    while (line.size > 0 && line.peekTime() <= now) {
      const b = line.shift();
      this.stats.deliveredBytes += b.length;
      this.stats.deliveredPackets++;
      out.push(b);
      n++;
    }
    return n;
  }

  /** True while packets wait in the queue or the delay line (the driver must keep ticking). */
  get pending(): boolean {
    return this.queue.size > 0 || this.delayLine.size > 0;
  }

  /** Time (us) of the next packet due out of the delay line, or Infinity. */
  nextReleaseUs(): number {
    return this.delayLine.size > 0 ? this.delayLine.peekTime() : Infinity;
  }

  /** Mean rate of the trace in Mbit/s (before outages and off periods). */
  get traceMeanMbps(): number {
    return traceMeanMbps(this.trace);
  }

  /** Uses every opportunity up to and including now. */
  private serve(now: number): void {
    const trace = this.trace;
    const q = this.queue;
    for (;;) {
      const t = this.cycleUs + trace[this.idx]! * 1000;
      if (t > now) return;
      if (++this.idx === trace.length) {
        this.idx = 0;
        this.cycleUs += this.periodUs;
      }
      if (this.blockedAt(t)) continue;
      this.stats.capacityBytes += OPPORTUNITY_BYTES;
      let left = OPPORTUNITY_BYTES;
      while (left > 0 && q.size > 0) {
        const head = q.peek();
        // A packet that arrived after this opportunity cannot use it (serve() runs before each
        // enqueue, so this only matters for opportunities at the very same microsecond).
        if (q.peekTime() > t) break;
        const need = head.length - this.headSent;
        if (need <= left) {
          left -= need;
          this.headSent = 0;
          q.shift();
          this.stats.queuedPackets--;
          this.stats.queuedBytes -= head.length;
          this.delayLine.push(head, t + this.delayUs);
        } else {
          this.headSent += left;
          left = 0;
        }
      }
    }
  }
}
