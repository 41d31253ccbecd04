// S4-5: per-link pacing of the redundant class, recomputed every period (t = 5 ms).
//
//   rate_queue = (queue_free - queue_threshold) * x / t * P_queue     (x = 1472-byte packets)
//   rate_link  = negotiated_rate * P_link
//   rate       = min(rate_queue, rate_link)
//
// The document's losses happen in the sender's own queue (qdisc) when it fills, so the rate is
// capped by the headroom left in it; the threshold and P_queue absorb the jitter of that
// reading, P_link (< 1, or payload time / wire time) the gap between the negotiated and the
// useful rate. There is no slow start: at the start the queue is empty, rate_queue is far above
// rate_link and a link sends at its link rate at once (300 Mbit/s in the document's example).
//
// When a link has no headroom (queue_free <= queue_threshold; the document's branch reads
// inverted, the headroom reading is the product's) or has spent its budget for this period, it
// is skipped for the period, or the lowest-delay unselected link with headroom is swapped in.
// With only two links selected it is always swapped, so the packet still goes out twice.
//
// Per period a link may send rate * t bytes. Unused budget is not carried over (the period's
// rate is a ceiling, not a credit); an overrun is (a packet larger than what was left may go,
// and the next period starts that much lower), so a link slower than one packet per period
// still sends at its rate on average.
//
// queue_free is whatever the session can measure of the link's send queue, in packets of x
// bytes: for a UDP path the free part of its send buffer / x, or (capacity - bytes in flight)
// / x where the congestion controller gives the capacity.

export interface PacerOptions {
  /** Period t, microseconds. Default 5000 (5 ms). */
  periodUs?: number;
  /** Packet size x, bytes. Default 1472. */
  packetBytes?: number;
  /** Queue threshold, packets. Default 8. */
  queueThresholdPackets?: number;
  /** P_queue (< 1). Default 0.9. */
  pQueue?: number;
  /** P_link (< 1, or payload time / total wire time). Default 0.9. */
  pLink?: number;
  /** 'skip' (default) or 'swap' a link without headroom when more than two links are selected. */
  overTwo?: 'skip' | 'swap';
}

export interface PacedLink {
  id: number;
  /** Negotiated (or estimated) link rate, bits per second. */
  negotiatedBps: number;
  /** Free space in the link's send queue, in packets of x bytes (Infinity: unbounded/unknown). */
  queueFreePackets(): number;
}

export interface LinkRate {
  /** bits per second */
  rateQueueBps: number;
  rateLinkBps: number;
  rateBps: number;
  headroom: boolean;
  /** Bytes this link may still send in the current period. */
  budgetBytes: number;
}

export interface SendPlan {
  /** Links that take this packet. */
  links: number[];
  /** Selected links left out this period. */
  skipped: number[];
  /** [selected link left out, link swapped in]. */
  swapped: [number, number][];
}

interface PeriodState extends LinkRate {
  period: number;
}

export class LinkPacer {
  readonly periodUs: number;
  readonly packetBytes: number;
  readonly queueThresholdPackets: number;
  readonly pQueue: number;
  readonly pLink: number;
  private readonly overTwo: 'skip' | 'swap';
  private readonly links = new Map<number, PacedLink>();
  private readonly state = new Map<number, PeriodState>();
  readonly stats = { skipped: 0, swapped: 0, planned: 0 };

  constructor(links: readonly PacedLink[], opts: PacerOptions = {}) {
    this.periodUs = opts.periodUs ?? 5_000;
    this.packetBytes = opts.packetBytes ?? 1472;
    this.queueThresholdPackets = opts.queueThresholdPackets ?? 8;
    this.pQueue = opts.pQueue ?? 0.9;
    this.pLink = opts.pLink ?? 0.9;
    this.overTwo = opts.overTwo ?? 'skip';
    for (const l of links) this.links.set(l.id, l);
  }

  setLink(l: PacedLink): void {
    this.links.set(l.id, l);
    this.state.delete(l.id);
  }

  /** The S4-5 rates of a link, from its queue reading at the start of the current period. */
  rate(id: number, nowUs: number): LinkRate | undefined {
    const s = this.period(id, nowUs);
    return s ? { rateQueueBps: s.rateQueueBps, rateLinkBps: s.rateLinkBps, rateBps: s.rateBps, headroom: s.headroom, budgetBytes: s.budgetBytes } : undefined;
  }

  /** Can this link take `bytes` now? */
  canSend(id: number, _bytes: number, nowUs: number): boolean {
    const s = this.period(id, nowUs);
    return !!s && s.headroom && s.budgetBytes > 0;
  }

  /** Charge a send to the link's budget for this period. */
  consume(id: number, bytes: number, nowUs: number): void {
    const s = this.period(id, nowUs);
    if (s) s.budgetBytes -= bytes;
  }

  /**
   * The links one packet of `bytes` goes out on: each selected link that can send; one that
   * cannot is skipped, or replaced by the lowest-delay unselected link that can (always with
   * two selected). `ranked` is every usable link, lowest delay first. Budgets are charged.
   */
  plan(selected: readonly number[], ranked: readonly number[], bytes: number, nowUs: number): SendPlan {
    const out: SendPlan = { links: [], skipped: [], swapped: [] };
    const swap = selected.length <= 2 || this.overTwo === 'swap';
    for (const id of selected) {
      if (this.canSend(id, bytes, nowUs)) {
        out.links.push(id);
        continue;
      }
      const sub = swap ? ranked.find((r) => !selected.includes(r) && !out.links.includes(r) && this.canSend(r, bytes, nowUs)) : undefined;
      if (sub !== undefined) {
        out.links.push(sub);
        out.swapped.push([id, sub]);
        this.stats.swapped++;
      } else {
        out.skipped.push(id);
        this.stats.skipped++;
      }
    }
    for (const id of out.links) this.consume(id, bytes, nowUs);
    this.stats.planned++;
    return out;
  }

  /** Start of the period that contains nowUs. */
  periodStart(nowUs: number): number {
    return Math.floor(nowUs / this.periodUs) * this.periodUs;
  }

  private period(id: number, nowUs: number): PeriodState | undefined {
    const link = this.links.get(id);
    if (!link) return undefined;
    const p = Math.floor(nowUs / this.periodUs);
    const prev = this.state.get(id);
    if (prev && prev.period === p) return prev;
    const tSec = this.periodUs / 1e6;
    const free = link.queueFreePackets();
    const headroomPk = free - this.queueThresholdPackets;
    const rateQueueBps = headroomPk > 0 ? (headroomPk * this.packetBytes * 8 / tSec) * this.pQueue : 0;
    const rateLinkBps = link.negotiatedBps * this.pLink;
    const rateBps = Math.min(rateQueueBps, rateLinkBps);
    const debt = prev && prev.period === p - 1 ? Math.min(0, prev.budgetBytes) : 0;
    const s: PeriodState = {
      period: p, rateQueueBps, rateLinkBps, rateBps, headroom: headroomPk > 0,
      budgetBytes: (rateBps / 8) * tSec + debt,
    };
    this.state.set(id, s);
    return s;
  }
}
