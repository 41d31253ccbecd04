// S4-4: the sending side of the redundant low-latency class. Every packet gets the next class
// sequence and goes out on every selected link (selection.ts), paced per link (pacer.ts); its
// send time is kept per link, so feedback echoing the packet gives that link's delay from the
// data itself (S4-2). A NACK re-sends the missing packets over the currently selected links.
//
// Bounded memory: the last `historyPackets` packets are kept for re-sending, each with at most
// MAX_SENDS_PER_PACKET send times; a NACK for an older one is counted (nackUnavailable) and the
// receiver gives it up after its retry budget. Packets that no link can take right now (every
// selected link out of headroom and nothing to swap in) wait in a bounded queue for the next
// pacing period; beyond `maxQueued` they are dropped and counted.
//
// Tail loss: a NACK needs a later packet to reveal the gap, so when the last packets of a burst
// are lost on every link nothing would ask for them. The feedback carries the receiver's highest
// sequence; while it stays below the last one sent for longer than about two delays of the
// slowest selected link, the last packet is re-sent (at most `tailRetries` times), which either
// fills the hole or reveals the gap to the receiver.
import type { Clock, TimerHandle } from '../clock.js';
import type { NackBody } from '../wire/header.js';
import type { LinkPacer } from './pacer.js';
import type { DelaySource, LinkSelector } from './selection.js';

export interface RedundantSenderOptions {
  clock: Clock;
  selector: LinkSelector;
  pacer: LinkPacer;
  /**
   * Put one copy on a link (the session: a Data packet with Flags.Redundant, plus
   * Flags.Retransmit when `retransmit`, whose data sequence is `seq`). False: it did not go out.
   */
  transmit: (linkId: number, seq: number, payload: Buffer, retransmit: boolean) => boolean;
  /** Packets kept for re-sending. Default 4096. */
  historyPackets?: number;
  /** Packets waiting for a link. Default 256. */
  maxQueued?: number;
  /** The amount of data (for n) is what was sent in this window plus what waits. Default 100 ms. */
  demandWindowUs?: number;
  /** Ignore a repeat NACK for a sequence re-sent this recently (NACKs come on two links). Default 4 ms. */
  resendHoldoffUs?: number;
  /** Re-sends of the last packet when feedback does not reach it. Default 3. */
  tailRetries?: number;
  /** Service name for the selection policy (e.g. 'video'). */
  service?: string;
}

export interface RedundantSenderStats {
  /** Packets accepted (class sequences used). */
  packets: number;
  /** Copies put on links (first sends). */
  copies: number;
  /** Packets re-sent because of a NACK, and their copies. */
  resent: number;
  resentCopies: number;
  tailResends: number;
  nackUnavailable: number;
  /** Packets that waited for a pacing period; dropped when the queue was full. */
  queued: number;
  queueDropped: number;
  /** Links skipped / swapped by the pacer (per packet). */
  skipped: number;
  swapped: number;
  /** Copies the transport refused. */
  transmitFailed: number;
  /** Bytes put on links including re-sends, for the overhead figure. */
  bytesOnLinks: number;
  payloadBytes: number;
}

interface Sent {
  seq: number;
  payload: Buffer;
  links: number[];
  times: number[];
  lastResendUs: number;
}

/** Send times kept per packet (one per link it went out on, newest kept). */
const MAX_SENDS_PER_PACKET = 8;
/** Unanswered sends tracked per link (for stall detection). */
const MAX_PENDING_PER_LINK = 1024;
/** A link is stalled when its oldest unanswered copy is older than max(2 x delay, delay + this). */
const STALL_MARGIN_US = 20_000;
const MIN_TAIL_US = 10_000;
const MAX_TAIL_US = 1_000_000;

export class RedundantSender {
  readonly stats: RedundantSenderStats = {
    packets: 0, copies: 0, resent: 0, resentCopies: 0, tailResends: 0, nackUnavailable: 0, queued: 0, queueDropped: 0,
    skipped: 0, swapped: 0, transmitFailed: 0, bytesOnLinks: 0, payloadBytes: 0,
  };
  private seq = 0;
  private readonly history: (Sent | undefined)[];
  private readonly queue: { seq: number; payload: Buffer }[] = [];
  private readonly maxQueued: number;
  private readonly demandWindowUs: number;
  private readonly resendHoldoffUs: number;
  private readonly tailRetries: number;
  /** Recent sends (time, bytes) for the demand estimate. */
  private readonly recent: { t: number; bytes: number }[] = [];
  private recentBytes = 0;
  private peerHighest = 0;
  private tailTries = 0;
  private tailTimer: TimerHandle | undefined;
  private flushTimer: TimerHandle | undefined;
  private closed = false;
  /** Per link: copies sent and not yet covered by an echo, oldest first. */
  private readonly pending = new Map<number, { seq: number; t: number }[]>();

  constructor(private readonly opts: RedundantSenderOptions) {
    this.history = new Array<Sent | undefined>(opts.historyPackets ?? 4096);
    this.maxQueued = opts.maxQueued ?? 256;
    this.demandWindowUs = opts.demandWindowUs ?? 100_000;
    this.resendHoldoffUs = opts.resendHoldoffUs ?? 4_000;
    this.tailRetries = opts.tailRetries ?? 3;
  }

  /** Highest class sequence used so far. */
  get lastSeq(): number {
    return this.seq;
  }

  /** Send one packet of the class; returns its sequence, or undefined when it was dropped (queue full, counted). */
  send(payload: Buffer): number | undefined {
    if (this.closed) return undefined;
    const now = this.opts.clock.nowUs();
    const seq = ++this.seq;
    this.stats.packets++;
    this.stats.payloadBytes += payload.length;
    this.opts.selector.markData(now);
    this.noteDemand(now, payload.length);
    if (this.queue.length > 0 || !this.put(seq, payload, now, false)) {
      if (this.queue.length >= this.maxQueued) {
        this.stats.queueDropped++;
        return undefined;
      }
      this.queue.push({ seq, payload });
      this.stats.queued++;
      this.armFlush(now);
    }
    this.tailTries = 0;
    this.armTail();
    return seq;
  }

  /** Forward a delay sample (S4-2) to the selection, which re-selects. */
  onDelaySample(linkId: number, us: number, source: DelaySource): void {
    // A probe answered: what the link swallowed before no longer says anything about it.
    if (source === 'probe') this.pending.delete(linkId);
    this.opts.selector.onDelaySample(linkId, us, source, this.opts.clock.nowUs());
  }

  /**
   * A NACK/feedback packet arrived on `linkId`: take the link's delay from the echoed packet's
   * send time on that link (minus the receiver's wait), then re-send what is missing.
   */
  onNack(linkId: number, nack: NackBody): void {
    if (this.closed) return;
    const now = this.opts.clock.nowUs();
    if (nack.echoSeq > 0) {
      // Links are FIFO: the echoed copy and everything sent on the link before it are answered.
      const q = this.pending.get(linkId);
      if (q) {
        let last = -1;
        for (let i = 0; i < q.length; i++) if ((q[i] as { seq: number }).seq === nack.echoSeq) last = i;
        if (last >= 0) q.splice(0, last + 1);
        if (q.length === 0) this.opts.selector.setStall(linkId, 0);
      }
      const sent = this.sendTimeUs(nack.echoSeq, linkId);
      if (sent !== undefined) {
        const d = now - sent - nack.turnaroundUs;
        if (d >= 0) this.opts.selector.onDelaySample(linkId, d, 'data', now);
      }
    }
    if (nack.highest > this.peerHighest && nack.highest <= this.seq) {
      this.peerHighest = nack.highest;
      this.tailTries = 0;
    }
    for (const r of nack.ranges) {
      for (let s = r.first; s < r.first + r.count && s <= this.seq; s++) this.resend(s, now);
    }
    if (this.peerHighest >= this.seq) {
      this.tailTimer?.cancel();
      this.tailTimer = undefined;
    }
  }

  /** When `seq` was (last) sent on `linkId`, or undefined when that is no longer kept. */
  sendTimeUs(seq: number, linkId: number): number | undefined {
    const s = this.lookup(seq);
    if (!s) return undefined;
    for (let i = s.links.length - 1; i >= 0; i--) if (s.links[i] === linkId) return s.times[i];
    return undefined;
  }

  queuedNow(): number {
    return this.queue.length;
  }

  /** What the sender holds right now (each is bounded: see the options). */
  memory(): { historySlots: number; queued: number; pendingPerLinkMax: number; recent: number } {
    let pendingPerLinkMax = 0;
    for (const q of this.pending.values()) pendingPerLinkMax = Math.max(pendingPerLinkMax, q.length);
    return { historySlots: this.history.length, queued: this.queue.length, pendingPerLinkMax, recent: this.recent.length };
  }

  close(): void {
    this.closed = true;
    this.tailTimer?.cancel();
    this.flushTimer?.cancel();
    this.queue.length = 0;
  }

  private lookup(seq: number): Sent | undefined {
    const s = this.history[seq % this.history.length];
    return s && s.seq === seq ? s : undefined;
  }

  private noteDemand(now: number, bytes: number): void {
    this.recent.push({ t: now, bytes });
    this.recentBytes += bytes;
    while (this.recent.length > 0 && (now - (this.recent[0] as { t: number }).t > this.demandWindowUs || this.recent.length > 4096)) {
      this.recentBytes -= (this.recent.shift() as { bytes: number }).bytes;
    }
  }

  private demandPackets(): number {
    let bytes = this.recentBytes;
    for (const q of this.queue) bytes += q.payload.length;
    return Math.max(1, Math.ceil(bytes / this.opts.pacer.packetBytes));
  }

  /** Put one packet on the selected links (through the pacer). False when no link took it. */
  private put(seq: number, payload: Buffer, now: number, retransmit: boolean): boolean {
    this.checkStalls(now);
    const selected = this.opts.selector.select(this.demandPackets(), this.opts.service);
    const plan = this.opts.pacer.plan(selected, this.opts.selector.ranked(), payload.length, now);
    this.stats.skipped += plan.skipped.length;
    this.stats.swapped += plan.swapped.length;
    let entry = this.lookup(seq);
    if (!entry) {
      entry = { seq, payload, links: [], times: [], lastResendUs: -Infinity };
      this.history[seq % this.history.length] = entry;
    }
    let out = 0;
    for (const id of plan.links) {
      if (!this.opts.transmit(id, seq, payload, retransmit)) {
        this.stats.transmitFailed++;
        continue;
      }
      out++;
      this.stats.bytesOnLinks += payload.length;
      if (retransmit) this.stats.resentCopies++;
      else this.stats.copies++;
      entry.links.push(id);
      entry.times.push(now);
      let q = this.pending.get(id);
      if (!q) this.pending.set(id, (q = []));
      q.push({ seq, t: now });
      if (q.length > MAX_PENDING_PER_LINK) q.shift();
      if (entry.links.length > MAX_SENDS_PER_PACKET) {
        entry.links.shift();
        entry.times.shift();
      }
    }
    return out > 0;
  }

  /** Tell the selection which links have left data unanswered for too long (see LinkSelector.setStall). */
  private checkStalls(now: number): void {
    for (const [id, q] of this.pending) {
      const oldest = q[0];
      const d = this.opts.selector.delay(id)?.delayUs ?? 0;
      const age = oldest ? now - oldest.t : 0;
      this.opts.selector.setStall(id, age > Math.max(2 * d, d + STALL_MARGIN_US) ? age : 0);
    }
  }

  private resend(seq: number, now: number): void {
    const s = this.lookup(seq);
    if (!s) {
      if (!this.queue.some((q) => q.seq === seq)) this.stats.nackUnavailable++;
      return;
    }
    if (now - s.lastResendUs < this.resendHoldoffUs) return;
    s.lastResendUs = now;
    if (this.put(seq, s.payload, now, true)) this.stats.resent++;
  }

  private armFlush(now: number): void {
    if (this.flushTimer) return;
    const next = this.opts.pacer.periodStart(now) + this.opts.pacer.periodUs;
    this.flushTimer = this.opts.clock.setTimer(next - now, () => {
      this.flushTimer = undefined;
      if (this.closed) return;
      const t = this.opts.clock.nowUs();
      while (this.queue.length > 0) {
        const q = this.queue[0] as { seq: number; payload: Buffer };
        if (!this.put(q.seq, q.payload, t, false)) break;
        this.queue.shift();
      }
      if (this.queue.length > 0) this.armFlush(t);
    });
  }

  private tailUs(): number {
    let worst = 0;
    for (const id of this.opts.selector.current()) worst = Math.max(worst, this.opts.selector.delay(id)?.delayUs ?? 0);
    return Math.min(MAX_TAIL_US, Math.max(MIN_TAIL_US, 2 * worst + 10_000));
  }

  private armTail(): void {
    this.tailTimer?.cancel();
    this.tailTimer = this.opts.clock.setTimer(this.tailUs(), () => {
      this.tailTimer = undefined;
      if (this.closed || this.peerHighest >= this.seq || this.tailTries >= this.tailRetries) return;
      const t = this.opts.clock.nowUs();
      const s = this.lookup(this.seq);
      if (s && this.queue.length === 0) {
        s.lastResendUs = t;
        if (this.put(this.seq, s.payload, t, true)) this.stats.tailResends++;
      }
      this.tailTries++;
      this.armTail();
    });
  }
}
