// How much a path may have in flight. The session asks before each send; the congestion
// controller behind this interface is per path (S3 plugs in here). The default keeps at most
// about two round trips of the measured delivery rate in flight: enough to keep the carrier
// busy, little enough that the carrier's own queue (often seconds deep on cellular) does not
// fill, so packets wait in Braid's queue where they can still be given to another path; and
// less while the carrier's queue overflows (InflightCap).

import type { S3Controller } from '../congestion/s3.js';
import { WindowedMax } from '../congestion/windowed-min.js';

export interface PathController {
  readonly name: string;
  /** May `bytes` more go out now with `inflight` bytes unacknowledged? */
  canSend(inflight: number, bytes: number, nowUs: number): boolean;
  /** Earliest time a send may be possible again (paced controllers), or undefined. */
  nextSendAtUs?(nowUs: number): number | undefined;
  onSent?(bytes: number, nowUs: number): void;
  /** Per ack: the S3-2 delay D (us) and the bytes it newly acknowledged. */
  onAck?(dUs: number, ackedBytes: number, nowUs: number): void;
  telemetry?(): Record<string, number | string>;
}

export interface RateView {
  readonly deliveryRate: number;
  readonly srttUs: number;
  readonly minRttUs: number;
  /** The path's latest loss sample and their count (PathState); absent: loss is not followed. */
  readonly lossSample?: number;
  readonly lossSamples?: number;
}

/** A loss sample above this is the carrier's queue overflowing, not radio noise. */
const QUEUE_LOSS = 0.02;
/** Each overflow cuts the queue allowance to this share (at most once a round trip), down to MIN_SCALE. */
const CUT = 0.7;
const MIN_SCALE = 0.1;
/** A clean sample gives this much of the allowance back. */
const REGROW = 0.05;

/**
 * A carrier that drops while the queue it shows (round trip less base) stays under this share
 * of the queue the cap allows has a shallower queue than the cap allows: InflightCap.depthUs.
 */
const SHALLOW = 0.95;
/** Drops while it shows less than this share are not its queue overflowing (an outage, a fade: its queue was all but empty). */
const SHALLOW_MIN = 0.25;
/** The learned depth keeps this share of the deepest queue seen, so the cap stays under it ... */
const DEPTH_MARGIN = 0.9;
/** ... but not under this. */
const MIN_DEPTH_US = 10_000;
/** A clean sample lets the learned depth grow by this share of the allowance (it may have deepened). */
const DEPTH_REGROW = 0.01;
/** Samples with more loss than this are an outage or a cut link, not a queue that overflowed. */
const DEPTH_LOSS_MAX = 0.1;
/** The deepest queue seen is taken over this long. */
const QUEUE_SEEN_WINDOW_US = 1_000_000;

const MIN_CAP = 64 * 1024;
const DEFAULT_RATE = 0.125;
/** Extra queueing allowed on top of the base delay. */
const HEADROOM_US = 60_000;

/**
 * How much queueing the default cap lets a path build on its carrier, by its base round trip:
 * max(base / 2, 60 ms) of its measured rate.
 *
 * Why half the base, not all of it: the queue a long path builds is time every packet of the
 * faster paths waits for it in the reorder buffer. On the asymmetric-pair bench (20 ms and 80 ms
 * one way; base round trips 42 and 164 ms) the slow carrier's 164 ms of queue made the reorder
 * delay p50 160 ms; with half, 75 ms (p99 100 against 180-190), at the same goodput (23.21, 22.59,
 * 23.24 against 23.06, 23.16, 22.64 Mbit/s, interleaved braid-only runs, 2026-11-24). The cap
 * still lets a long path's rate grow by half per round trip, and a path up to 120 ms keeps
 * 60 ms. (A first measurement, on 2026-11-23 before the relay and the stall rule's fixes, found
 * the single-flow three-lte runs worse with it; re-measured: three-lte-multi and -single within
 * the runs' noise, bench/README.md.) The stall rule (Session.stalled) keeps its own, wider
 * margin: see stallAfterUs there.
 */
export function queueAllowanceUs(minRttUs: number): number {
  return Math.max(minRttUs / 2, HEADROOM_US);
}

/**
 * S3 (congestion/s3.ts) behind the PathController interface. In paced mode (cwnd below one
 * MTU) a packet may leave only at the pacing time; the session's 5 ms tick and every ack retry
 * the queue, and each paced send records its actual timer delay for the S3-4 guard.
 */
export class S3PathController implements PathController {
  readonly name = 's3';
  private lastSendUs = -1;

  constructor(readonly cc: S3Controller) {}

  canSend(inflight: number, _bytes: number, nowUs: number): boolean {
    return this.cc.canSend(inflight, nowUs);
  }

  nextSendAtUs(nowUs: number): number | undefined {
    return this.cc.mode() === 'paced' ? this.cc.nextSendAtUs(nowUs) : undefined;
  }

  onSent(bytes: number, nowUs: number): void {
    if (this.cc.mode() === 'paced' && this.lastSendUs >= 0) {
      this.cc.recordPacedSend(this.cc.pacingDelayUs(), nowUs - this.lastSendUs, nowUs);
    }
    this.lastSendUs = nowUs;
    this.cc.onSent(bytes, nowUs);
  }

  onAck(dUs: number, ackedBytes: number, nowUs: number): void {
    this.cc.onAck(dUs, ackedBytes, nowUs);
  }

  telemetry(): Record<string, number | string> {
    return { ...this.cc.telemetry() } as Record<string, number | string>;
  }
}

/**
 * The default cap: the path's bandwidth-delay product plus a queue allowance. A carrier whose
 * queue is shallower than the allowance (a DSL line, a shaper) drops what overflows it; when a
 * path keeps losing more than QUEUE_LOSS, the allowance (and the 64 KB floor) shrink, and come
 * back while it is clean. An end host's TCP used to do this for us by backing off; a sender that
 * never backs off (the TCP relay, a UDP stream) would otherwise lose a share of every burst.
 */
export class InflightCap implements PathController {
  readonly name = 'inflight-cap';
  private scale = 1;
  private seenSamples = 0;
  private lastCutUs = -Infinity;
  /** The carrier's queue depth (us) learned from drops it made below the allowance; Infinity: none. */
  private depthUs = Infinity;
  /** Queue delays (round trip less base) of the last QUEUE_SEEN_WINDOW_US: their maximum. */
  private readonly queueSeen = new WindowedMax(QUEUE_SEEN_WINDOW_US, 4);

  constructor(private readonly path: RateView) {}

  private baseUs(): number {
    return Number.isFinite(this.path.minRttUs) ? this.path.minRttUs : 50_000;
  }

  /** The queue (us of the path's rate) the cap lets the path build on its carrier now. */
  private queueUs(base: number): number {
    return Math.min(this.scale * queueAllowanceUs(base), this.depthUs);
  }

  cap(): number {
    const rate = this.path.deliveryRate > 0 ? this.path.deliveryRate : DEFAULT_RATE;
    const base = this.baseUs();
    return Math.max(MIN_CAP * this.scale, rate * (base + this.queueUs(base)));
  }

  /** `rttUs`: the path's latest round trip (what the session hands every controller). */
  onAck(rttUs: number, _ackedBytes: number, nowUs: number): void {
    if (rttUs > 0 && Number.isFinite(this.path.minRttUs)) this.queueSeen.add(rttUs - this.path.minRttUs, nowUs);
    const n = this.path.lossSamples ?? 0;
    if (n === this.seenSamples) return;
    this.seenSamples = n;
    const loss = this.path.lossSample ?? 0;
    this.learnDepth(loss);
    if (loss > QUEUE_LOSS) {
      if (nowUs - this.lastCutUs >= Math.max(this.path.srttUs, 10_000)) {
        this.scale = Math.max(MIN_SCALE, this.scale * CUT);
        this.lastCutUs = nowUs;
      }
    } else if (loss === 0) {
      this.scale = Math.min(1, this.scale + REGROW);
    }
  }

  /**
   * A carrier whose queue is shallower than the allowance (a shaper, a DSL line: the failover
   * namespace test's tbf carriers hold 50 ms, the allowance is 60) tail-drops a little of each
   * round trip: too little for QUEUE_LOSS (0.6-0.9 % of packets), but each drop is a hole the
   * TCP relay repairs a round trip later, a stall of its stream. Its signature: losses while the
   * queue the path shows stays under what the cap allows (random loss shows at whatever queue
   * the cap builds). The cap then keeps under the deepest queue seen, and probes deeper again
   * slowly while clean. In the session test of two 50 ms shapers (20 and 10 Mbit/s) under a
   * sender that never backs off, the carriers dropped 1.8 % and 0.9 % of what they were given
   * without this, 0.39 % and 0.15 % with it, at the same goodput; with 1 % random loss instead,
   * goodput stayed 28.5 Mbit/s.
   */
  private learnDepth(loss: number): void {
    const base = this.baseUs();
    const allowance = queueAllowanceUs(base);
    if (loss > 0 && loss <= DEPTH_LOSS_MAX) {
      const seen = this.queueSeen.get();
      const q = this.queueUs(base);
      if (Number.isFinite(seen) && seen >= SHALLOW_MIN * q && seen < SHALLOW * q) this.depthUs = Math.max(MIN_DEPTH_US, DEPTH_MARGIN * seen);
    } else if (loss === 0 && Number.isFinite(this.depthUs)) {
      this.depthUs += DEPTH_REGROW * allowance;
      if (this.depthUs >= allowance) this.depthUs = Infinity;
    }
  }

  canSend(inflight: number, bytes: number): boolean {
    return inflight + bytes <= this.cap();
  }

  telemetry(): Record<string, number | string> {
    const depthMs = Number.isFinite(this.depthUs) ? Math.round(this.depthUs / 100) / 10 : -1;
    return { capBytes: Math.round(this.cap()), queueScale: Math.round(this.scale * 100) / 100, queueDepthMs: depthMs };
  }
}
