// S4-6: the receiving side of the redundant low-latency class. Copies of every packet arrive on
// several links; each class sequence reaches the application exactly once:
//
//   - a sequence above the highest seen is new: deliver it, and every sequence it skipped goes
//     into the ONE loss table (loss-table.ts) shared by all links;
//   - a sequence at or below the highest is delivered only if the loss table awaits it (it is
//     removed in the same step); anything else was delivered already, given up, or never
//     awaited: a duplicate, counted and dropped.
//
// Retransmission requests (NACKs) are driven by the injected Clock. A missing sequence is first
// requested after a guard time that covers the measured delay spread between the links (a copy
// that is merely late on a slower link must not trigger a re-send), then every retry interval,
// at most `nackRetries` times; after that it is given up and counted lost. The retry interval
// follows the measured repair time (NACK sent -> sequence arrived).
//
// Feedback travels back in the NACK packet (wire PacketType.Nack): besides the missing ranges
// it echoes the newest class sequence that arrived on that link and how long it waited, so the
// sender gets the S4-2 "data send time -> ack arrival" delay of each link without probes. At
// most one feedback per link per `feedbackIntervalUs` while data flows; a NACK is sent on the
// links that most recently delivered (two by default: the request is redundant too).
//
// In ordered mode (default) a packet that arrives while an earlier sequence is still awaited is
// held (bounded) and released as soon as the gap is filled or given up, so a flow inside the
// class never sees reordering; arrival mode delivers at once.
import type { Clock, TimerHandle } from '../clock.js';
import type { DropCounters } from '../wire/drops.js';
import { MAX_NACK_RANGES, type NackBody, type NackRange } from '../wire/header.js';
import { LossTable } from './loss-table.js';

export interface RedundantReceiverOptions {
  clock: Clock;
  /** Hand one class packet to the application (exactly once per sequence). */
  deliver: (seq: number, payload: Buffer) => void;
  /** Send a NACK/feedback packet on this link (the session encodes it as PacketType.Nack). */
  sendNack: (linkId: number, nack: NackBody) => void;
  /** Hold later packets until earlier ones are filled or given up (default true). */
  ordered?: boolean;
  /** Loss table bound (missing sequences awaited at once); beyond it a gap is counted lost. Default 4096. */
  maxMissing?: number;
  /** Ordered mode: packets held at most; beyond it the oldest gap is given up. Default 1024. */
  maxHeld?: number;
  /** NACKs per missing sequence before it is given up (the retry budget). Default 4. */
  nackRetries?: number;
  /** Retry interval bounds and start value, microseconds. */
  minRetryUs?: number;
  maxRetryUs?: number;
  initialRetryUs?: number;
  /** At most one echo feedback per link this often while data arrives. Default 10 ms. */
  feedbackIntervalUs?: number;
  /** Links a NACK is sent on (the most recent deliverers). Default 2. */
  nackLinks?: number;
  /** Shared drop counters: duplicates are counted under 'duplicate'. */
  drops?: DropCounters;
}

export interface RedundantReceiverStats {
  delivered: number;
  /** Copies dropped: already delivered, given up, or not awaited. */
  duplicates: number;
  /** Sequences given up after the retry budget (or because a bound was hit). */
  lost: number;
  /** Missing sequences that arrived later (late copy or retransmission). */
  repaired: number;
  nacksSent: number;
  /** Sequence requests carried in NACKs (one per sequence per NACK round). */
  seqsRequested: number;
  feedbackSent: number;
  /** Highest sequence seen. */
  highest: number;
  missingNow: number;
  heldNow: number;
}

interface LinkRx {
  id: number;
  lastSeq: number;
  lastAtUs: number;
  lastFeedbackUs: number;
  /** An arrival on this link has not been echoed yet. */
  echoPending: boolean;
}

/** First-arrival times of recent sequences, to measure the delay spread between links. */
const SPREAD_RING = 1024;
/** Sequences a single NACK round may cover (bounded work per timer). */
const MAX_SEQS_PER_ROUND = 4096;

export class RedundantReceiver {
  readonly stats: RedundantReceiverStats = {
    delivered: 0, duplicates: 0, lost: 0, repaired: 0, nacksSent: 0, seqsRequested: 0, feedbackSent: 0, highest: 0, missingNow: 0, heldNow: 0,
  };
  private readonly table: LossTable;
  private readonly ordered: boolean;
  private readonly maxHeld: number;
  private readonly nackRetries: number;
  private readonly minRetryUs: number;
  private readonly maxRetryUs: number;
  private readonly feedbackIntervalUs: number;
  private readonly nackLinks: number;
  private highest = 0;
  /** Ordered mode: next sequence to hand on. */
  private next = 1;
  private readonly heldSeqs: number[] = [];
  private readonly held = new Map<number, Buffer>();
  private readonly links = new Map<number, LinkRx>();
  /** Smoothed time from a NACK to the sequence's arrival, us (0 = not measured). */
  private repairUs = 0;
  private retryUs: number;
  /** Delay spread between the links: how late a second copy comes, decaying max, us. */
  private spreadUs = 0;
  private readonly firstSeq = new Float64Array(SPREAD_RING).fill(-1);
  private readonly firstAt = new Float64Array(SPREAD_RING);
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;
  /** When receive() just noted a gap (-1: none), to arm its first NACK. */
  private newGapAt = -1;
  private closed = false;

  constructor(private readonly opts: RedundantReceiverOptions) {
    this.table = new LossTable(opts.maxMissing ?? 4096);
    this.ordered = opts.ordered ?? true;
    this.maxHeld = opts.maxHeld ?? 1024;
    this.nackRetries = opts.nackRetries ?? 4;
    this.minRetryUs = opts.minRetryUs ?? 5_000;
    this.maxRetryUs = opts.maxRetryUs ?? 200_000;
    this.retryUs = opts.initialRetryUs ?? 30_000;
    this.feedbackIntervalUs = opts.feedbackIntervalUs ?? 10_000;
    this.nackLinks = opts.nackLinks ?? 2;
  }

  /** The shared loss table (read-only use: tests, status). */
  get lossTable(): LossTable {
    return this.table;
  }

  /** Current guard before a first NACK and retry interval, us (telemetry). */
  timing(): { guardUs: number; retryUs: number; spreadUs: number; repairUs: number } {
    return { guardUs: this.guardUs(), retryUs: this.retryUs, spreadUs: this.spreadUs, repairUs: this.repairUs };
  }

  /**
   * One copy of class packet `seq` arrived on `linkId`. Returns what became of it:
   * 'delivered' (handed on now), 'held' (ordered mode, waits for an earlier gap) or 'duplicate'.
   */
  receive(linkId: number, seq: number, payload: Buffer): 'delivered' | 'held' | 'duplicate' {
    if (this.closed || !(seq >= 1)) return 'duplicate';
    const now = this.opts.clock.nowUs();
    const link = this.link(linkId);
    if (seq > link.lastSeq || now - link.lastAtUs > 1_000_000) {
      link.lastSeq = seq;
      link.lastAtUs = now;
      link.echoPending = true;
    }
    let fresh = false;
    if (seq > this.highest) {
      this.noteGap(this.highest + 1, seq - 1, now);
      this.highest = this.stats.highest = seq;
      fresh = true;
    } else {
      const e = this.table.remove(seq);
      if (e) {
        fresh = true;
        this.stats.repaired++;
        if (e.nacks > 0) this.observeRepair(now - e.lastNackUs);
        else this.observeSpread(now - e.detectedUs);
      }
    }
    if (!fresh) {
      this.stats.duplicates++;
      this.opts.drops?.add('duplicate');
      const i = seq % SPREAD_RING;
      if (this.firstSeq[i] === seq) this.observeSpread(now - (this.firstAt[i] as number));
      this.maybeFeedback(link, now);
      if (link.echoPending) this.arm(now, link.lastFeedbackUs + this.feedbackIntervalUs);
      this.syncStats();
      return 'duplicate';
    }
    const i = seq % SPREAD_RING;
    this.firstSeq[i] = seq;
    this.firstAt[i] = now;
    let outcome: 'delivered' | 'held';
    if (!this.ordered) {
      this.handOn(seq, payload);
      outcome = 'delivered';
    } else if (seq === this.next) {
      this.handOn(seq, payload);
      this.next = seq + 1;
      this.drain();
      outcome = 'delivered';
    } else {
      this.hold(seq, payload);
      outcome = 'held';
      while (this.held.size > this.maxHeld) {
        const oldest = this.table.min();
        if (!oldest) break;
        this.giveUp(oldest.seq);
      }
      this.drain();
      if (!this.held.has(seq) && seq < this.next) outcome = 'delivered';
    }
    this.maybeFeedback(link, now);
    this.syncStats();
    if (this.newGapAt >= 0 || (this.table.size > 0 && !this.timer)) this.arm(now, now + this.guardUs());
    this.newGapAt = -1;
    if (link.echoPending) this.arm(now, link.lastFeedbackUs + this.feedbackIntervalUs);
    return outcome;
  }

  /** Stop timers and drop held packets (the session closed). */
  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.held.clear();
    this.heldSeqs.length = 0;
    this.table.clear();
    this.syncStats();
  }

  private link(id: number): LinkRx {
    let l = this.links.get(id);
    if (!l) {
      l = { id, lastSeq: 0, lastAtUs: -Infinity, lastFeedbackUs: -Infinity, echoPending: false };
      this.links.set(id, l);
    }
    return l;
  }

  private handOn(seq: number, payload: Buffer): void {
    this.stats.delivered++;
    this.opts.deliver(seq, payload);
  }

  /** Sequences from..to were skipped: await them (as many as the table holds; the rest are lost). */
  private noteGap(from: number, to: number, now: number): void {
    if (to < from) return;
    const room = this.table.maxEntries - this.table.size;
    const count = to - from + 1;
    // Keep the newest ones when the gap does not fit: the oldest are the likeliest to be stale.
    const keepFrom = count > room ? to - room + 1 : from;
    if (keepFrom > from) this.countLost(keepFrom - from);
    for (let s = keepFrom; s <= to; s++) this.table.insert(s, now);
    this.newGapAt = now;
  }

  private countLost(n: number): void {
    this.stats.lost += n;
  }

  private giveUp(seq: number): void {
    if (this.table.remove(seq)) this.countLost(1);
  }

  private hold(seq: number, payload: Buffer): void {
    this.held.set(seq, payload);
    // Mostly ascending: a binary search from the end is cheap.
    let lo = 0;
    let hi = this.heldSeqs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.heldSeqs[mid] as number) < seq) lo = mid + 1;
      else hi = mid;
    }
    this.heldSeqs.splice(lo, 0, seq);
  }

  /** Ordered mode: hand on everything below the smallest awaited sequence. */
  private drain(): void {
    if (!this.ordered) return;
    const awaited = this.table.min()?.seq ?? Infinity;
    let k = 0;
    while (k < this.heldSeqs.length && (this.heldSeqs[k] as number) < awaited) {
      const s = this.heldSeqs[k] as number;
      const p = this.held.get(s) as Buffer;
      this.held.delete(s);
      this.handOn(s, p);
      k++;
    }
    if (k > 0) this.heldSeqs.splice(0, k);
    this.next = Math.min(awaited, this.highest + 1);
  }

  private guardUs(): number {
    // Cover the spread with a margin: a copy merely late on the slowest link is not a loss.
    return Math.min(this.maxRetryUs, Math.max(1_000, this.spreadUs * 1.25 + 1_000));
  }

  private observeSpread(us: number): void {
    if (!(us >= 0) || us > 2_000_000) return;
    // Decaying max: follows a widening spread at once, forgets a past one slowly.
    this.spreadUs = us >= this.spreadUs ? us : this.spreadUs - (this.spreadUs - us) / 32;
  }

  private observeRepair(us: number): void {
    if (!(us >= 0) || us > 10_000_000) return;
    this.repairUs = this.repairUs === 0 ? us : this.repairUs + (us - this.repairUs) / 4;
    this.retryUs = Math.min(this.maxRetryUs, Math.max(this.minRetryUs, 1.5 * this.repairUs + 1_000));
  }

  private maybeFeedback(link: LinkRx, now: number): void {
    if (link.echoPending && now - link.lastFeedbackUs >= this.feedbackIntervalUs) this.sendFeedback(link, now, []);
  }

  private sendFeedback(link: LinkRx, now: number, ranges: NackRange[]): void {
    link.lastFeedbackUs = now;
    const echo = link.echoPending || ranges.length > 0;
    const body: NackBody = {
      echoSeq: echo ? link.lastSeq : 0,
      highest: this.highest,
      turnaroundUs: echo ? Math.max(0, now - link.lastAtUs) : 0,
      ranges,
    };
    link.echoPending = false;
    if (ranges.length > 0) this.stats.nacksSent++;
    else this.stats.feedbackSent++;
    this.opts.sendNack(link.id, body);
  }

  /** Run due work: NACK rounds, give-ups, deferred echoes. Called by the timer. */
  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.closed) return;
    const now = this.opts.clock.nowUs();
    const guard = this.guardUs();
    const ranges: NackRange[] = [];
    const giveUp: number[] = [];
    let seqs = 0;
    let nextDue = Infinity;
    for (const e of this.table.entries()) {
      const due = e.nacks === 0 ? e.detectedUs + guard : e.lastNackUs + this.retryUs;
      // 1 us of slack: a timer may fire a rounding error before the deadline it was armed for.
      if (due > now + 1) {
        if (due < nextDue) nextDue = due;
        continue;
      }
      if (e.nacks >= this.nackRetries) {
        giveUp.push(e.seq);
        continue;
      }
      if (seqs >= MAX_SEQS_PER_ROUND) {
        nextDue = now + 1_000;
        continue;
      }
      const last = ranges[ranges.length - 1];
      if (last && last.first + last.count === e.seq && last.count < 0xffff) last.count++;
      else if (ranges.length < MAX_NACK_RANGES) ranges.push({ first: e.seq, count: 1 });
      else {
        nextDue = now + 1_000; // more ranges than one NACK holds: the rest go in the next round
        continue;
      }
      e.nacks++;
      e.lastNackUs = now;
      seqs++;
      nextDue = Math.min(nextDue, now + this.retryUs);
    }
    for (const s of giveUp) this.giveUp(s);
    if (giveUp.length > 0) this.drain();
    if (ranges.length > 0) {
      this.stats.seqsRequested += seqs;
      // The most recent deliverers are the links most likely to work right now.
      const recent = [...this.links.values()].sort((a, b) => b.lastAtUs - a.lastAtUs).slice(0, Math.max(1, this.nackLinks));
      for (const l of recent) this.sendFeedback(l, now, ranges);
    }
    for (const l of this.links.values()) {
      this.maybeFeedback(l, now);
      if (l.echoPending) nextDue = Math.min(nextDue, l.lastFeedbackUs + this.feedbackIntervalUs);
    }
    this.syncStats();
    this.arm(now, nextDue);
  }

  /** Arm the one timer for `at` unless it is already due earlier (a late fire finds nothing to do). */
  private arm(now: number, at: number): void {
    if (at === Infinity) return;
    at = Math.max(at, now + 1);
    if (this.timer && this.timerAt <= at) return;
    this.timer?.cancel();
    this.timerAt = at;
    this.timer = this.opts.clock.setTimer(at - now, () => this.onTimer());
  }

  private syncStats(): void {
    this.stats.missingNow = this.table.size;
    this.stats.heldNow = this.held.size;
  }
}
