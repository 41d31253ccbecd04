// S3: per-path delay-based congestion control (one controller per path and direction).
//
// The controller is pure: no clock, no timers, no I/O. The caller feeds it
//   - onAck(D, ackedBytes, now) for every packet that carries ack information (S3-1), with
//     D = (TS4 - TS1) - (TS3 - TS2) in microseconds (S3-2, see s3Delay in delay.ts);
//   - onSent(bytes, now) for every data packet put on the path;
//   - recordPacedSend(theoretical, actual, now) when a paced send was released by a timer;
// and asks canSend(inflight, now) / nextSendAtUs(now) before sending.
//
// Units, used consistently: bytes for cwnd/ssthresh/MTU, microseconds for every time. The
// document's pacing delay MTU / (cwnd * bandwidth) treats cwnd as a share of the bandwidth;
// with cwnd in bytes the same rate cwnd / RTT gives  pacingDelayUs = MTU * RTT_us / cwnd.
//
// Constants (DEFAULT_S3) were chosen by measurement with sim-bench.ts; docs/congestion.md has
// the table and the reasons.

import { WindowedMin } from './windowed-min.js';

export type S3Mode = 'window' | 'paced';

/** What one ack did to the window (for tests and telemetry). */
export type S3Action =
  | 'ignored' // not a usable delay sample
  | 'hold' // D above threshold, but a decrease happened less than D ago (at most one per D)
  | 'decrease' // multiplicative decrease
  | 'decrease-guarded' // pacing-fault guard: decrease stopped at MTU
  | 'mi' // multiplicative increase (below ssthresh)
  | 'ai' // additive increase (at or above ssthresh)
  | 'app-limited'; // D fine, but the window was not in use: no increase

export interface S3Params {
  /** Largest packet on the path, bytes (window/paced boundary and paced burst size). */
  mtu: number;
  initialCwnd: number;
  /** Lower bound of cwnd, bytes: bounds the pacing interval at MTU/minCwnd round trips. */
  minCwnd: number;
  maxCwnd: number;
  /**
   * Multiplicative decrease rule, factor f in cwnd *= f:
   *  - 'fixed':        f = md
   *  - 'proportional': f = max(1 - mdGain * (D - threshold) / D, md)   (Swift-like)
   *  - 'drain':        f = max(base / D, md): cwnd becomes rate x base delay, the queue drains
   *                    to empty (which also re-measures the base delay) and the link stays full.
   */
  mdRule: 'fixed' | 'proportional' | 'drain';
  /** Fixed factor ('fixed'), or the smallest factor ('proportional', 'drain'). */
  md: number;
  mdGain: number;
  /** Multiplicative increase below ssthresh: growth factor per round trip (2 = doubling). */
  miPerRtt: number;
  /** Additive increase above ssthresh: MTUs per round trip. */
  aiMtusPerRtt: number;
  /**
   * Largest additive step multiplier: each round trip without a decrease doubles the additive
   * step up to this (1 = classic constant additive increase). Lets a path follow a capacity
   * increase in a few round trips while staying additive right after each decrease.
   */
  aiMaxVelocity: number;
  /**
   * The additive step only accelerates while the path shows no queue: D within this fraction
   * of the threshold's allowance above the base (1 = always accelerate).
   */
  aiAccelerateBelow: number;
  /** Threshold = base + max(thresholdFloorUs, thresholdBaseFactor * base) + thresholdPerFlowUs * (flows - 1). */
  thresholdFloorUs: number;
  thresholdBaseFactor: number;
  thresholdPerFlowUs: number;
  /** Window of the base delay (windowed minimum of D). */
  baseWindowUs: number;
  /**
   * While every sample is above the threshold the base delay does not age out (a standing
   * queue must not become the new base), for at most this long (a real route change is accepted then).
   */
  baseFreezeMaxUs: number;
  /** Round trip assumed for pacing before the first D sample. */
  initialRttUs: number;
  /**
   * How long after a paced send the pacing-fault guard holds: 'actual' = that send's actual
   * timer delay (S3-4 as written); 'lateness' = only how late its timer fired (actual -
   * theoretical). On WAN paths a paced interval (MTU x RTT / cwnd) is longer than a round
   * trip, so with 'actual' the guard also holds healthy paced paths at MTU.
   */
  guardWindow: 'actual' | 'lateness';
  /** Rate-probing guarantee: a blocked path may still send one packet after this long without an ack (at least 2 x RTT). */
  stallUs: number;
}

export const DEFAULT_MTU = 1500;

/** Defaults chosen by measurement (docs/congestion.md). */
export const DEFAULT_S3: Readonly<S3Params> = Object.freeze({
  mtu: DEFAULT_MTU,
  initialCwnd: 10 * DEFAULT_MTU,
  minCwnd: DEFAULT_MTU / 16,
  maxCwnd: 64 * 1024 * 1024,
  mdRule: 'drain',
  md: 0.5,
  mdGain: 0.8,
  miPerRtt: 2,
  aiMtusPerRtt: 1,
  aiMaxVelocity: 32,
  aiAccelerateBelow: 0.25,
  thresholdFloorUs: 10_000,
  thresholdBaseFactor: 0.25,
  thresholdPerFlowUs: 2_000,
  baseWindowUs: 10_000_000,
  baseFreezeMaxUs: 60_000_000,
  initialRttUs: 100_000,
  stallUs: 200_000,
  guardWindow: 'actual',
});

/** S3-5 telemetry. */
export interface S3Telemetry {
  /** Last delay sample D, microseconds (0 before the first). */
  dUs: number;
  /** Current threshold, microseconds (Infinity before the first sample). */
  thresholdUs: number;
  /** Base delay (windowed minimum of D), microseconds. */
  baseUs: number;
  /** Smoothed D, microseconds (the RTT used for pacing and round-trip bookkeeping). */
  srttUs: number;
  cwnd: number;
  ssthresh: number;
  mode: S3Mode;
  /** Current inter-packet delay in paced mode (0 in window mode). */
  pacingDelayUs: number;
  /** Theoretical and actual timer delay of the last paced send (0 before the first). */
  theoreticalPacingUs: number;
  actualPacingUs: number;
  decreases: number;
  guardedDecreases: number;
  heldDecreases: number;
  /** Decreases caused by loss (onLoss), included in `decreases`. */
  lossDecreases: number;
}

export class S3Controller {
  readonly params: Readonly<S3Params>;
  private cwndBytes: number;
  private ssthreshBytes = Infinity;
  private flows = 1;
  private readonly base: WindowedMin;
  private srtt = 0;
  private lastD = 0;
  private lastDecreaseUs = -Infinity;
  private lastAckUs = -Infinity;
  private lastUncongestedUs = -Infinity;
  private lastSendUs = -Infinity;
  // Pacing-fault guard state: the last paced send and its timer delays.
  private lastPacedSendUs = -Infinity;
  private lastPacedTheoreticalUs = 0;
  private lastPacedActualUs = 0;
  // Additive increase velocity (see aiMaxVelocity).
  private velocity = 1;
  private velocitySinceUs = -Infinity;
  private epochMinD = Infinity;
  // Whether the window was in use recently (increase only when it was).
  private windowUsedAtUs = -Infinity;
  private nDecreases = 0;
  private nGuarded = 0;
  private nHeld = 0;
  private nLossDecreases = 0;

  constructor(params: Partial<S3Params> = {}) {
    const p: S3Params = { ...DEFAULT_S3, ...params };
    if (params.mtu !== undefined) {
      // Sizes that default relative to the MTU follow a custom MTU unless given explicitly.
      if (params.initialCwnd === undefined) p.initialCwnd = 10 * p.mtu;
      if (params.minCwnd === undefined) p.minCwnd = p.mtu / 16;
    }
    if (!(p.mtu > 0) || !(p.minCwnd > 0) || p.minCwnd > p.mtu) throw new Error('S3: need 0 < minCwnd <= mtu');
    if (!(p.md > 0 && p.md < 1)) throw new Error('S3: md must be in (0, 1)');
    this.params = Object.freeze(p);
    this.cwndBytes = Math.min(Math.max(p.initialCwnd, p.minCwnd), p.maxCwnd);
    this.base = new WindowedMin(p.baseWindowUs);
  }

  get cwnd(): number {
    return this.cwndBytes;
  }

  get ssthresh(): number {
    return this.ssthreshBytes;
  }

  /** Number of flows (controllers) known to share this path's bottleneck; raises the threshold. */
  setFlows(n: number): void {
    this.flows = Math.max(1, Math.floor(n));
  }

  /** S3-3: window mode when cwnd >= MTU, paced mode below. */
  mode(): S3Mode {
    return this.cwndBytes >= this.params.mtu ? 'window' : 'paced';
  }

  /** S3-3: send window = cwnd in window mode, MTU in paced mode. */
  sendWindow(): number {
    return Math.max(this.cwndBytes, this.params.mtu);
  }

  /** Round trip used for pacing: smoothed D, or the initial guess before any sample. */
  rttUs(): number {
    return this.srtt > 0 ? this.srtt : this.params.initialRttUs;
  }

  /** S3-3: theoretical inter-packet delay in paced mode, MTU * RTT / cwnd (0 in window mode). */
  pacingDelayUs(): number {
    if (this.mode() === 'window') return 0;
    return (this.params.mtu * this.rttUs()) / this.cwndBytes;
  }

  /** S3-4 threshold: base + max(floor, k * base) + perFlow * (flows - 1); Infinity before the first sample. */
  thresholdUs(): number {
    const b = this.base.get();
    if (!Number.isFinite(b)) return Infinity;
    const p = this.params;
    return b + Math.max(p.thresholdFloorUs, p.thresholdBaseFactor * b) + p.thresholdPerFlowUs * (this.flows - 1);
  }

  /**
   * May a packet be sent now with `inflightBytes` unacknowledged? Window mode: inflight below
   * cwnd. Paced mode: inflight below the send window (MTU) and the pacing delay since the last
   * send has passed. A path whose window is full and that has had neither an ack nor a send
   * for stallUs (at least 2 round trips) may send one packet, so lost packets still counted in
   * flight can never stop a path for good (rate-probing guarantee). Calling canSend also tells
   * the controller whether its window is in use (only then do acks increase it).
   */
  canSend(inflightBytes: number, nowUs: number): boolean {
    const paced = this.mode() === 'paced';
    if (inflightBytes >= this.cwndBytes / 2 || paced) this.windowUsedAtUs = nowUs;
    const windowOpen = inflightBytes < this.sendWindow();
    // Half a microsecond of slack: a timer set for the due time must find it due despite rounding.
    if (windowOpen && (!paced || nowUs + 0.5 >= this.lastSendUs + this.pacingDelayUs())) return true;
    if (windowOpen) return false; // waiting for the pacing delay
    this.windowUsedAtUs = nowUs;
    // Only a path that sent something can be stalled waiting for its acks.
    return this.lastSendUs > -Infinity && nowUs - Math.max(this.lastAckUs, this.lastSendUs) >= this.stallUs();
  }

  /** Earliest time the pacing allows the next send (now in window mode). */
  nextSendAtUs(nowUs: number): number {
    if (this.mode() === 'window') return nowUs;
    return Math.max(nowUs, this.lastSendUs + this.pacingDelayUs());
  }

  /** A data packet of `bytes` left on this path. */
  onSent(_bytes: number, nowUs: number): void {
    this.lastSendUs = nowUs;
  }

  /**
   * S3-3: a paced send was released by a timer set for `theoreticalUs` that actually fired
   * after `actualUs` (a busy event loop or a coarse timer makes actual >> theoretical).
   */
  recordPacedSend(theoreticalUs: number, actualUs: number, nowUs: number): void {
    this.lastPacedSendUs = nowUs;
    this.lastPacedTheoreticalUs = theoreticalUs;
    this.lastPacedActualUs = actualUs;
  }

  private stallUs(): number {
    return Math.max(this.params.stallUs, 2 * this.rttUs());
  }

  /**
   * S3-4, once per packet that carries ack information: `dUs` is its S3-2 delay, `ackedBytes`
   * the data bytes it newly acknowledges (0 for a pure delay sample, e.g. a probe's ack).
   */
  onAck(dUs: number, ackedBytes: number, nowUs: number): S3Action {
    if (!Number.isFinite(dUs) || dUs < 0) return 'ignored';
    const p = this.params;
    this.lastD = dUs;
    this.lastAckUs = nowUs;
    // Base delay: samples above the threshold do not push old minima out (up to baseFreezeMaxUs).
    const congested = dUs > this.thresholdUs();
    if (!congested) this.lastUncongestedUs = nowUs;
    this.base.add(dUs, nowUs, !congested || nowUs - this.lastUncongestedUs > p.baseFreezeMaxUs);
    this.srtt = this.srtt === 0 ? dUs : this.srtt + (dUs - this.srtt) / 8;
    const threshold = this.thresholdUs();

    if (dUs > threshold) {
      // At most one decrease per D: the samples arriving within D of a decrease still
      // describe the queue from before it.
      if (!(nowUs - this.lastDecreaseUs > dUs)) {
        this.nHeld++;
        return 'hold';
      }
      const factor = this.decreaseFactor(dUs, threshold);
      const reduced = this.cwndBytes * factor;
      let action: S3Action = 'decrease';
      // Pacing-fault guard: a paced send whose timer fired `actual` late is still "recent"
      // for that long. A decrease now would put the path (back) on that faulty timer, so it
      // stops at MTU: cwnd = max(MD(cwnd), MTU).
      if (this.guardActive(nowUs)) {
        if (reduced <= p.mtu) {
          action = 'decrease-guarded';
          this.nGuarded++;
        }
        this.cwndBytes = Math.max(reduced, p.mtu);
      } else {
        this.cwndBytes = Math.max(reduced, p.minCwnd);
      }
      this.afterDecrease(nowUs);
      return action;
    }

    // Increase only while the window is in use: an application-limited or idle path keeps
    // its window (it neither collapses nor inflates while nothing tests it).
    if (nowUs - this.windowUsedAtUs > 2 * this.rttUs()) return 'app-limited';
    if (ackedBytes <= 0) return 'ai';
    if (this.cwndBytes < this.ssthreshBytes) {
      // Byte counting, at most doubling per ack's worth of window.
      this.cwndBytes += Math.min(ackedBytes, this.cwndBytes) * (p.miPerRtt - 1);
      this.cwndBytes = Math.min(this.cwndBytes, p.maxCwnd);
      return 'mi';
    }
    // Once per round trip: if the smallest D of that round trip showed no queue (within
    // aiAccelerateBelow of the allowance), there is spare capacity: double the additive step;
    // otherwise a queue is building: back to plain additive increase. The per-round-trip
    // minimum ignores the short queues that ack-clocked bursts make.
    if (dUs < this.epochMinD) this.epochMinD = dUs;
    if (nowUs - this.velocitySinceUs >= this.rttUs()) {
      const base = this.base.get();
      const queueFree = this.epochMinD <= base + p.aiAccelerateBelow * (threshold - base);
      this.velocity = queueFree ? Math.min(this.velocity * 2, p.aiMaxVelocity) : 1;
      this.velocitySinceUs = nowUs;
      this.epochMinD = Infinity;
    }
    // aiMtusPerRtt * velocity MTUs per round trip, spread over the acks of one window.
    this.cwndBytes += (p.aiMtusPerRtt * this.velocity * p.mtu * ackedBytes) / Math.max(this.cwndBytes, p.mtu);
    this.cwndBytes = Math.min(this.cwndBytes, p.maxCwnd);
    return 'ai';
  }

  /** Pacing-fault guard: is the last paced send more recent than its (actual) timer delay? */
  /** What every decrease (delay or loss) does after setting cwnd: ssthresh, timers, counters. */
  private afterDecrease(nowUs: number): void {
    this.ssthreshBytes = this.cwndBytes;
    this.lastDecreaseUs = nowUs;
    this.velocity = 1;
    this.velocitySinceUs = nowUs;
    this.epochMinD = Infinity;
    this.nDecreases++;
  }

  private guardActive(nowUs: number): boolean {
    const windowUs = this.params.guardWindow === 'actual'
      ? this.lastPacedActualUs
      : this.lastPacedActualUs - this.lastPacedTheoreticalUs;
    return nowUs - this.lastPacedSendUs < windowUs;
  }

  private decreaseFactor(dUs: number, threshold: number): number {
    const p = this.params;
    switch (p.mdRule) {
      case 'fixed':
        return p.md;
      case 'proportional':
        return Math.max(1 - (p.mdGain * (dUs - threshold)) / dUs, p.md);
      case 'drain':
        return Math.max(this.base.get() / dUs, p.md);
    }
  }

  /**
   * Loss backstop (beyond S3): `lostPackets` newly detected as lost. A delay-based controller
   * that joined an already full queue takes that queue as its base delay and would never see
   * D above its threshold while a drop-tail queue overflows; loss is the only signal left
   * then. One decrease by `md` per round trip (the same pacing-fault guard applies).
   */
  onLoss(lostPackets: number, nowUs: number): S3Action {
    if (!(lostPackets > 0)) return 'ignored';
    if (!(nowUs - this.lastDecreaseUs > this.rttUs())) {
      this.nHeld++;
      return 'hold';
    }
    const p = this.params;
    const reduced = this.cwndBytes * p.md;
    const guarded = this.guardActive(nowUs);
    this.cwndBytes = Math.max(reduced, guarded ? p.mtu : p.minCwnd);
    if (guarded && reduced <= p.mtu) this.nGuarded++;
    this.afterDecrease(nowUs);
    this.nLossDecreases++;
    return guarded && reduced <= p.mtu ? 'decrease-guarded' : 'decrease';
  }

  /** S3-5 telemetry snapshot. */
  telemetry(): S3Telemetry {
    return {
      dUs: this.lastD,
      thresholdUs: this.thresholdUs(),
      baseUs: this.base.get(),
      srttUs: this.srtt,
      cwnd: this.cwndBytes,
      ssthresh: this.ssthreshBytes,
      mode: this.mode(),
      pacingDelayUs: this.pacingDelayUs(),
      theoreticalPacingUs: this.lastPacedTheoreticalUs,
      actualPacingUs: this.lastPacedActualUs,
      decreases: this.nDecreases,
      guardedDecreases: this.nGuarded,
      heldDecreases: this.nHeld,
      lossDecreases: this.nLossDecreases,
    };
  }
}
