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
// (counted as late): TCP copes with one reordered segment far better than with a loss. But
// never out of order within its own flow: with `flowHash`, a late packet whose flow already
// had a later packet delivered is dropped and counted (too-late, stats.lateRefused); the
// sequence stays counted as given up. Only packets of other flows, which it cannot overtake,
// are delivered late.
import type { DropCounters } from '../wire/drops.js';

export interface ReorderOptions {
  holdUs: number;
  maxPackets: number;
  maxBytes: number;
  /** The flow a packet belongs to (receive/flow-hash); enables the per-flow order guarantee. */
  flowHash?: (pkt: Buffer) => number;
}

/**
 * Upper bounds (ms) of the reorder-delay histogram buckets; a last bucket holds the rest. The
 * delay spread between the paths (receive/delay-spread) uses the same buckets, and issue 4's
 * target compares the two with a 5 ms margin (reorder p99 <= spread p99 + 5 ms): a percentile
 * is read as its bucket's upper bound, so the buckets are at most 5 ms wide up to 100 ms
 * (where LTE spreads lie) and 10 ms up to 200 ms, coarser beyond. The old bounds are all kept.
 */
export const REORDER_DELAY_BUCKETS_MS = [
  0.5, 1, 2, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100,
  110, 120, 130, 140, 150, 160, 170, 180, 190, 200, 225, 250, 275, 300, 350, 400, 450, 500,
  750, 1000, 1500, 2000,
] as const;

export interface ReorderStats {
  /** How long delivered packets waited in the buffer: counts per REORDER_DELAY_BUCKETS_MS bucket (+1 overflow). */
  delayCounts: number[];
  delivered: number;
  deliveredLate: number;
  /** Late packets refused because their flow had already moved past them. */
  lateRefused: number;
  skipped: number; // sequences given up on
  heldNow: number;
  heldBytes: number;
}

/** What the buffer needs to know about the paths to infer a loss. */
export interface ArrivalView {
  /** The highest sender watermark seen on each live path. */
  watermarks(): number[];
  /**
   * How long the sender may take to re-send what a path that went quiet was carrying (its
   * suspect time plus a delay): a gap is held at least this long, so the re-sent copy fills
   * it in order instead of arriving after it was given up.
   */
  resendWithinUs?(): number;
}

export class ReorderBuffer {
  private readonly cap: number;
  private readonly slots: (Buffer | undefined)[];
  private readonly arrivedAt: Float64Array;
  /** Sequences below `next` that were delivered (bitmap over the last `cap`), for de-duplication. */
  private readonly done: Uint8Array;
  /** Flow hash of each delivered sequence (same ring as `done`), when opts.flowHash is set. */
  private readonly flowOf: Uint32Array | undefined;
  private next = 1; // next sequence to deliver (senders number data from 1)
  private held = 0;
  private heldBytes = 0;
  private highest = -1;
  readonly stats: ReorderStats = {
    delayCounts: new Array<number>(REORDER_DELAY_BUCKETS_MS.length + 1).fill(0),
    delivered: 0, deliveredLate: 0, lateRefused: 0, skipped: 0, heldNow: 0, heldBytes: 0,
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
    if (opts.flowHash) this.flowOf = new Uint32Array(cap);
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
      // Its gap was given up on: deliver now, unless its flow already moved past it.
      if (this.flowOf && this.overtaken(seq, pkt)) {
        this.done[i] = 1; // a second copy is then a duplicate
        this.stats.lateRefused++;
        this.drops.add('too-late');
        return;
      }
      this.done[i] = 1;
      if (this.flowOf) this.flowOf[i] = this.opts.flowHash!(pkt);
      this.stats.deliveredLate++;
      this.stats.delivered++;
      this.recordDelay(0);
      this.deliver(pkt);
      return;
    }
    // Make room: a sequence too far ahead forces the head forward.
    while (seq - this.next >= this.cap || (this.held > 0 && (this.held >= this.opts.maxPackets || this.heldBytes + pkt.length > this.opts.maxBytes))) {
      this.advanceHead(true);
    }
    // Making room can move the head past this very sequence (skipping empty slots does not
    // free any): it is then a late packet, not one to hold (its slot must stay empty).
    if (seq < this.next) {
      this.push(seq, pkt, nowUs);
      return;
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
    this.skipLostTail();
    this.stats.heldNow = this.held;
    this.stats.heldBytes = this.heldBytes;
  }

  /** Microseconds until the current gap must be given up, or undefined when nothing waits. */
  nextDeadlineUs(nowUs: number): number | undefined {
    if (this.held === 0) return undefined;
    const oldest = this.oldestArrival();
    return Math.max(0, oldest + this.holdUs() - nowUs);
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
      if (this.flowOf) this.flowOf[i] = this.opts.flowHash!(pkt);
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
      if (this.flowOf) this.flowOf[i] = this.opts.flowHash!(pkt);
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

  /** Was a later packet of `pkt`'s flow delivered already (between seq and the head)? */
  private overtaken(seq: number, pkt: Buffer): boolean {
    const h = this.opts.flowHash!(pkt);
    const flowOf = this.flowOf as Uint32Array;
    for (let s = seq + 1; s < this.next; s++) {
      const j = s & (this.cap - 1);
      if (this.done[j] && flowOf[j] === h) return true;
    }
    return false;
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

  private holdUs(): number {
    return Math.max(this.opts.holdUs, this.arrivals?.resendWithinUs?.() ?? 0);
  }

  private gapExpired(nowUs: number): boolean {
    return nowUs - this.oldestArrival() >= this.holdUs();
  }

  /**
   * Nothing held, but every live path has shown a watermark past the head: the sequences in
   * between were lost (a loss at the end of a burst, with nothing after it to hold back).
   * Give them up now, so they are counted and a straggler among them is known to be late.
   */
  private skipLostTail(): void {
    if (this.held > 0 || !this.arrivals) return;
    const marks = this.arrivals.watermarks();
    if (marks.length === 0) return;
    let upTo = Infinity;
    for (const w of marks) upTo = Math.min(upTo, w);
    while (this.next <= upTo) this.advanceHead(false);
  }

  private gapKnownLost(): boolean {
    if (!this.arrivals) return false;
    const marks = this.arrivals.watermarks();
    if (marks.length === 0) return false;
    for (const w of marks) if (w < this.next) return false;
    return true;
  }
}
