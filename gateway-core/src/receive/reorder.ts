// The merge (S2-3): packets of one session arrive over several paths out of order; the reorder
// buffer hands them on in global data sequence order, drops duplicates, and never waits for a
// missing packet longer than the hold time. It is bounded in packets and in bytes.
//
// A gap is given up early, before the hold time, when every live path has shown a watermark at
// or above the missing sequence: paths are FIFO links and every packet carries the sender's
// highest data sequence at send time, so a missing sequence that no path can still be carrying
// was lost. This keeps one loss from stalling every flow of the session for a full hold time.
//
// A packet that arrives after its gap was given up is delivered at once rather than dropped
// (counted as late): TCP copes with one reordered segment far better than with a loss.
import type { DropCounters } from '../wire/drops.js';

export interface ReorderOptions {
  holdUs: number;
  maxPackets: number;
  maxBytes: number;
}

/** Upper bounds (ms) of the reorder-delay histogram buckets; a last bucket holds the rest. */
export const REORDER_DELAY_BUCKETS_MS = [0.5, 1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000, 2000] as const;

export interface ReorderStats {
  /** How long delivered packets waited in the buffer: counts per REORDER_DELAY_BUCKETS_MS bucket (+1 overflow). */
  delayCounts: number[];
  delivered: number;
  deliveredLate: number;
  skipped: number; // sequences given up on
  heldNow: number;
  heldBytes: number;
}

/** What the buffer needs to know about the paths to infer a loss. */
export interface ArrivalView {
  /** The highest sender watermark seen on each live path. */
  watermarks(): number[];
}

export class ReorderBuffer {
  private readonly cap: number;
  private readonly slots: (Buffer | undefined)[];
  private readonly arrivedAt: Float64Array;
  /** Sequences below `next` that were delivered (bitmap over the last `cap`), for de-duplication. */
  private readonly done: Uint8Array;
  private next = 1; // next sequence to deliver (senders number data from 1)
  private held = 0;
  private heldBytes = 0;
  private highest = -1;
  readonly stats: ReorderStats = {
    delayCounts: new Array<number>(REORDER_DELAY_BUCKETS_MS.length + 1).fill(0),
    delivered: 0, deliveredLate: 0, skipped: 0, heldNow: 0, heldBytes: 0,
  };
  private nowUs = 0;

  private recordDelay(waitUs: number): void {
    const ms = waitUs / 1000;
    let b = 0;
    while (b < REORDER_DELAY_BUCKETS_MS.length && ms > (REORDER_DELAY_BUCKETS_MS[b] as number)) b++;
    this.stats.delayCounts[b] = (this.stats.delayCounts[b] as number) + 1;
  }

  constructor(
    private readonly opts: ReorderOptions,
    private readonly deliver: (pkt: Buffer) => void,
    private readonly drops: DropCounters,
    private readonly arrivals?: ArrivalView,
  ) {
    let cap = 16;
    while (cap < opts.maxPackets) cap *= 2;
    this.cap = cap;
    this.slots = new Array<Buffer | undefined>(cap);
    this.arrivedAt = new Float64Array(cap);
    this.done = new Uint8Array(cap);
  }

  /** Insert one data packet. */
  push(seq: number, pkt: Buffer, nowUs: number): void {
    this.nowUs = nowUs;
    if (seq < this.next) {
      if (this.next - seq >= this.cap) {
        this.drops.add('too-late');
        return;
      }
      const i = seq & (this.cap - 1);
      if (this.done[i]) {
        this.drops.add('duplicate');
        return;
      }
      // Its gap was given up on: deliver now.
      this.done[i] = 1;
      this.stats.deliveredLate++;
      this.stats.delivered++;
      this.recordDelay(0);
      this.deliver(pkt);
      return;
    }
    // Make room: a sequence too far ahead forces the head forward.
    while (seq - this.next >= this.cap || (this.heldBytes + pkt.length > this.opts.maxBytes && this.held > 0)) {
      this.advanceHead(true);
    }
    const i = seq & (this.cap - 1);
    if (this.slots[i] !== undefined) {
      this.drops.add('duplicate');
      return;
    }
    this.slots[i] = pkt;
    this.arrivedAt[i] = nowUs;
    this.held++;
    this.heldBytes += pkt.length;
    if (seq > this.highest) this.highest = seq;
    this.flush(nowUs);
  }

  /** Deliver what is in order; give up on gaps that timed out or are known lost. */
  flush(nowUs: number): void {
    this.nowUs = nowUs;
    for (;;) {
      this.drainInOrder();
      if (this.held === 0) break;
      if (!this.gapExpired(nowUs) && !this.gapKnownLost()) break;
      this.advanceHead(false);
    }
    this.stats.heldNow = this.held;
    this.stats.heldBytes = this.heldBytes;
  }

  /** Microseconds until the current gap must be given up, or undefined when nothing waits. */
  nextDeadlineUs(nowUs: number): number | undefined {
    if (this.held === 0) return undefined;
    const oldest = this.oldestArrival();
    return Math.max(0, oldest + this.opts.holdUs - nowUs);
  }

  private drainInOrder(): void {
    for (;;) {
      const i = this.next & (this.cap - 1);
      const pkt = this.slots[i];
      if (pkt === undefined) return;
      this.slots[i] = undefined;
      this.held--;
      this.heldBytes -= pkt.length;
      this.done[i] = 1;
      this.next++;
      this.stats.delivered++;
      this.recordDelay(this.nowUs - (this.arrivedAt[i] as number));
      this.deliver(pkt);
    }
  }

  /** Skip the missing sequence at the head (or deliver the held one when forced). */
  private advanceHead(forced: boolean): void {
    const i = this.next & (this.cap - 1);
    const pkt = this.slots[i];
    if (pkt !== undefined) {
      this.slots[i] = undefined;
      this.held--;
      this.heldBytes -= pkt.length;
      this.done[i] = 1;
      this.stats.delivered++;
      this.recordDelay(this.nowUs - (this.arrivedAt[i] as number));
      this.deliver(pkt);
    } else {
      this.done[i] = 0;
      this.stats.skipped++;
      if (forced) this.drops.add('reorder-overflow');
    }
    this.next++;
  }

  /**
   * When the current gap started to hold packets back: the arrival time of the first packet
   * held above it (packets arrive nearly in sequence order, so this is the one that waited
   * longest, and finding it costs only the length of the gap).
   */
  private oldestArrival(): number {
    for (let s = this.next; s <= this.highest; s++) {
      const i = s & (this.cap - 1);
      if (this.slots[i] !== undefined) return this.arrivedAt[i] as number;
    }
    return Infinity;
  }

  private gapExpired(nowUs: number): boolean {
    return nowUs - this.oldestArrival() >= this.opts.holdUs;
  }

  private gapKnownLost(): boolean {
    if (!this.arrivals) return false;
    const marks = this.arrivals.watermarks();
    if (marks.length === 0) return false;
    for (const w of marks) if (w < this.next) return false;
    return true;
  }
}
