// How much a path may have in flight. The session asks before each send; the congestion
// controller behind this interface is per path (S3 plugs in here). The default keeps at most
// about two round trips of the measured delivery rate in flight: enough to keep the carrier
// busy, little enough that the carrier's own queue (often seconds deep on cellular) does not
// fill, so packets wait in Braid's queue where they can still be given to another path.

import type { S3Controller } from '../congestion/s3.js';

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
}

const MIN_CAP = 64 * 1024;
const DEFAULT_RATE = 0.125;
/** Extra queueing allowed on top of the base delay while the path shows no standing queue. */
const HEADROOM_US = 60_000;
/** A smoothed delay this far above the base delay means the carrier holds a standing queue. */
const STANDING_QUEUE_US = 15_000;
/**
 * Queueing allowed once a standing queue shows. More than the ack spacing, the sender's 5 ms
 * tick and the delivery jitter of a busy carrier (with 20 ms the carriers of the capacity-step
 * bench ran dry between bursts and its goodput fell), less than HEADROOM_US.
 */
const SATURATED_HEADROOM_US = 40_000;

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

export class InflightCap implements PathController {
  readonly name = 'inflight-cap';

  constructor(private readonly path: RateView) {}

  /**
   * While the carrier shows no standing queue its capacity may be above the estimate (it was
   * only app-limited, or it just rose): up to two BDPs (or BDP + 60 ms) may be in flight, so
   * the delivered rate, and with it the estimate, can double every round trip or two. Once a
   * standing queue shows, the path is full: more in flight only lengthens the queue, and every
   * byte held in one carrier's queue is a byte another path could have carried now. With
   * kernel TCP through the tunnel the sender's window is what it is; after a step up of one
   * carrier, the two-BDP allowance let that carrier soak up the whole window as queue while
   * the others went idle (capacity-step bench: the fastest carrier held 60 ms of queue, the
   * slowest carried nothing for 2 s). A full path therefore gets BDP + 40 ms.
   */
  cap(): number {
    const rate = this.path.deliveryRate > 0 ? this.path.deliveryRate : DEFAULT_RATE;
    const base = Number.isFinite(this.path.minRttUs) ? this.path.minRttUs : 50_000;
    if (this.path.srttUs > 0 && this.path.srttUs - base >= STANDING_QUEUE_US) {
      return Math.max(MIN_CAP, rate * (base + SATURATED_HEADROOM_US));
    }
    return Math.max(MIN_CAP, 2 * rate * base, rate * (base + HEADROOM_US));
  }

  canSend(inflight: number, bytes: number): boolean {
    return inflight + bytes <= this.cap();
  }

  telemetry(): Record<string, number | string> {
    return { capBytes: Math.round(this.cap()) };
  }
}
