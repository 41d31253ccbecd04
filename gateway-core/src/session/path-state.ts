// Everything Braid knows about one path of one session, in one place: sequence counters,
// replay window, what was sent and acknowledged, the S3-2 delay estimate, the delivery-rate
// estimate, liveness and traffic counters. Both directions of a path share this object.
import { wireTime, wireTimeDiff } from '../clock.js';
import { ReplayWindow } from '../wire/replay.js';
import type { AckBody } from '../wire/header.js';
import { WindowedMax } from '../congestion/windowed-min.js';

export type PathStateName = 'probing' | 'up' | 'down';

/** How many recent per-sequence send records are kept (for bytes in flight). */
const SENT_RING = 1 << 16;
/** How many in-flight data packets per path are kept for re-sending when the path dies. */
const RTX_RING = 1 << 12;
const RTX_URGENT = 1;
const RTX_KEEP = 2;

/** A packet of a path to send again on the others (PathState.unackedToResend). */
export interface ToResend {
  pathSeq: number;
  dataSeq: number;
  ip: Buffer;
  urgent: boolean;
  /** Its sender repairs its own losses (SendOptions.keep). */
  keep: boolean;
}
/** Delivery-rate samples span at least this long (else about four base round trips), at most RATE_WINDOW_US. */
const RATE_MIN_SPAN_US = 80_000;
const RATE_MAX_WINDOW_US = 2_000_000;
/**
 * S2-12 high-speed mode (>= 160 km/h: cells change every few seconds): each rate sample
 * spans at most 100 ms (not 400), the windowed max forgets a capacity the path no longer shows
 * while app-limited within 0.5 s (not 2; a busy path's lower sample is believed at once in
 * either mode), and delay and loss estimates weigh new samples twice as much.
 */
const HS_RATE_MAX_WINDOW_US = 500_000;
const HS_RATE_MIN_SPAN_US = 40_000;
const HS_RATE_WINDOW_US = 100_000;
/** Packets per loss sample. */
const LOSS_SPAN = 64;
const RATE_WINDOW_US = 400_000;
const RATE_SAMPLES = 64;
/**
 * The windowed max keeps one maximum per 1/MAX_BUCKETS of its window, so it holds for the whole
 * window whatever the ack rate (a ring of the last N samples spans only N acks: 64 acks are
 * under half a second at 12 Mbit/s, and a path the scheduler starved for that long lost its
 * estimate, then its cap, then its share).
 */
const MAX_BUCKETS = 8;
/** The longest gap between two arrivals on a path is remembered for this long (arrivalGapMaxUs). */
const ARRIVAL_GAP_WINDOW_US = 2_000_000;

export interface PathCounters {
  txPackets: number;
  txBytes: number; // wire bytes sent (UDP payload)
  rxPackets: number;
  rxBytes: number; // wire bytes received and authenticated
  txDataBytes: number; // IP payload bytes sent as data
  rxDataBytes: number; // IP payload bytes received as data
  acksSent: number;
  /** Acks for this path's data sent on another carrier (Session.ackCarrier). */
  acksRerouted: number;
  acksReceived: number;
  probesSent: number;
  sendErrors: number;
}

export class PathState {
  state: PathStateName = 'probing';

  // ---- send side
  /** Last path sequence used (every packet type counts). */
  sentSeq = 0;
  private readonly cumSent = new Float64Array(SENT_RING);
  private sentBytesTotal = 0;
  lastSendUs = -Infinity;
  lastDataSendUs = -Infinity;
  lastProbeUs = -Infinity;
  /** Gaps between arrivals on this path over the last ARRIVAL_GAP_WINDOW_US. */
  private readonly arrivalGaps = new WindowedMax(ARRIVAL_GAP_WINDOW_US, 4);
  /** The longest gap between two arrivals of the last 2 s or so; Infinity before two arrivals. */
  get arrivalGapMaxUs(): number {
    const m = this.arrivalGaps.get();
    return m === -Infinity ? Infinity : m;
  }
  /** When the first packet that asks for an answer (data, probe) left after we last heard; -1 = none. */
  expectSinceUs = -1;
  /** Carrying traffic but silent for a third of the dead time: probed fast, given no new data. */
  suspect = false;
  /**
   * Still answering, but holding more than it can deliver in time (Session.tick): given no new
   * data. Unlike `suspect`, an arrival does not clear it (a slowed carrier keeps answering);
   * the next tick that finds its queue drained does.
   */
  stalled = false;
  /** When the path last went out of service (stalled or suspect), and the last path sequence sent by then. */
  outAtUs = -Infinity;
  outAtSeq = 0;
  /** When the path went down (for re-probing cadence). */
  downSinceUs = 0;
  /** Data packets in flight, by path sequence, for cross-path retransmission when the path dies. */
  private readonly rtxSeq = new Float64Array(RTX_RING).fill(-1);
  private readonly rtxDataSeq = new Float64Array(RTX_RING);
  private readonly rtxPkt: (Buffer | undefined)[] = new Array<Buffer | undefined>(RTX_RING);
  private readonly rtxSentUs = new Float64Array(RTX_RING);
  /**
   * RTX_URGENT: the packet went with Flags.Urgent (a repair the peer's stream waits on): given
   * back first. RTX_KEEP: its sender repairs its own losses (SendOptions.keep, the TCP relay).
   */
  private readonly rtxMark = new Uint8Array(RTX_RING);
  /** Path sequences up to here were already re-sent on other paths (S2-10). */
  private resentUpTo = 0;

  // ---- what the peer acknowledged of our sends
  ackedSeq = 0;
  /** When an ack last acknowledged something new. */
  ackedAtUs = -Infinity;
  private peerRcvBytes = 0;
  private readonly rateT = new Float64Array(RATE_SAMPLES);
  private readonly rateB = new Float64Array(RATE_SAMPLES);
  private rateN = 0;
  private rateHead = 0;
  /** Windowed max: per bucket, when it started, when it last took a sample, and its highest sample. */
  private readonly maxStart = new Float64Array(MAX_BUCKETS).fill(-Infinity);
  private readonly maxT = new Float64Array(MAX_BUCKETS).fill(-Infinity);
  private readonly maxR = new Float64Array(MAX_BUCKETS);
  private maxHead = 0;
  /** Last ack that found less than one bandwidth-delay product in flight (the sender, not the path, was the limit). */
  private lastIdleUs = -Infinity;
  /** Delivery rate in bytes per microsecond (0 until measured). */
  deliveryRate = 0;
  /** Estimator windows and gains (S2-12: shorter and faster in high-speed mode). */
  private rateMaxWindowUs = RATE_MAX_WINDOW_US;
  private rateMinSpanUs = RATE_MIN_SPAN_US;
  /** Each rate sample averages over at most this long. */
  private rateWindowUs = RATE_WINDOW_US;
  private ewmaShift = 3;
  /** Bytes the last ack newly acknowledged (peer's received-bytes growth), for congestion control. */
  ackedBytesDelta = 0;
  /** Loss ratio of our packets on this path, from the peer's cumulative receive count. */
  lossRate = 0;
  /** The latest loss sample (one per LOSS_SPAN packets) and how many there have been. */
  lossSample = 0;
  lossSamples = 0;
  private lossMarkSeq = 0;
  private lossMarkRcv = 0;
  /** Set when the path comes back from down: the next ack re-anchors the loss span instead of sampling it. */
  private lossRebase = false;
  /** S3-2 delay: round trip minus the peer's turnaround, microseconds. */
  srttUs = 0;
  minRttUs = Infinity;
  lastRttUs = 0;

  // ---- receive side
  readonly replay: ReplayWindow;
  lastRecvUs = -Infinity;
  lastDataRecvUs = -Infinity;
  /** Highest sender watermark that arrived on this path (see wire/header: infers losses). */
  watermark = 0;
  rcvHighestSeq = 0;
  rcvPackets = 0;
  rcvBytes = 0;
  lastRcvTs1 = 0;
  lastRcvAtUs = 0;
  ackPendingPackets = 0;
  ackPendingSinceUs = 0;
  /** When we last acknowledged this path's data (on whichever carrier). */
  lastAckUs = -Infinity;

  readonly counters: PathCounters = {
    txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, txDataBytes: 0, rxDataBytes: 0,
    acksSent: 0, acksRerouted: 0, acksReceived: 0, probesSent: 0, sendErrors: 0,
  };

  constructor(readonly id: number, readonly name: string, replayWindow = 8192) {
    this.replay = new ReplayWindow(replayWindow);
  }

  /**
   * Claim the next path sequence. `inflightBytes` is what the packet adds to the bytes in flight
   * (data packets: their wire size; acks and probes: 0, and their bytes are counted by the caller).
   */
  nextSeq(inflightBytes: number, nowUs: number): number {
    const seq = ++this.sentSeq;
    this.sentBytesTotal += inflightBytes;
    this.cumSent[seq % SENT_RING] = this.sentBytesTotal;
    this.lastSendUs = nowUs;
    this.counters.txPackets++;
    this.counters.txBytes += inflightBytes;
    return seq;
  }

  /** Remember a data packet sent on this path until it is acknowledged. */
  keepForRetransmit(pathSeq: number, dataSeq: number, ip: Buffer, nowUs: number, urgent = false, keep = false): void {
    const i = pathSeq % RTX_RING;
    this.rtxSeq[i] = pathSeq;
    this.rtxDataSeq[i] = dataSeq;
    this.rtxPkt[i] = ip;
    this.rtxSentUs[i] = nowUs;
    this.rtxMark[i] = (urgent ? RTX_URGENT : 0) | (keep ? RTX_KEEP : 0);
  }

  /**
   * How long the oldest data packet the peer has not received yet (above the highest path
   * sequence it acknowledged) has been on its way; 0 when none is. A path whose carrier slowed
   * down keeps answering, so it never goes silent, but this age shows its queue.
   */
  oldestUnackedAgeUs(nowUs: number): number {
    const from = Math.max(this.ackedSeq + 1, this.sentSeq - RTX_RING + 1);
    for (let seq = from; seq <= this.sentSeq; seq++) {
      const i = seq % RTX_RING;
      if (this.rtxSeq[i] === seq && this.rtxPkt[i]) return nowUs - (this.rtxSentUs[i] as number);
    }
    return 0;
  }

  /**
   * Data packets sent on this path that the peer has not acknowledged and that were not re-sent
   * already (urgent ones first, each group oldest first). `forget` drops them from the ring (the path died); otherwise they stay
   * (the path is only suspect) and are marked as re-sent.
   */
  unackedToResend(forget: boolean): ToResend[] {
    // Urgent ones first: a peer's stream waits on its repairs, and the newest of them came back
    // at the end of a dead carrier's hundreds of kilobytes.
    const first: ToResend[] = [];
    const out: ToResend[] = [];
    const from = Math.max(this.ackedSeq + 1, this.resentUpTo + 1, this.sentSeq - RTX_RING + 1);
    for (let seq = from; seq <= this.sentSeq; seq++) {
      const i = seq % RTX_RING;
      const pkt = this.rtxPkt[i];
      const mark = this.rtxMark[i] as number;
      const urgent = (mark & RTX_URGENT) !== 0;
      if (this.rtxSeq[i] === seq && pkt) (urgent ? first : out).push({ pathSeq: seq, dataSeq: this.rtxDataSeq[i] as number, ip: pkt, urgent, keep: (mark & RTX_KEEP) !== 0 });
      if (forget) {
        this.rtxPkt[i] = undefined;
        this.rtxSeq[i] = -1;
      }
    }
    this.resentUpTo = this.sentSeq;
    return first.length ? first.concat(out) : out;
  }

  /** Wire bytes sent but not yet acknowledged (lost ones stay counted until a later ack passes them). */
  inflightBytes(): number {
    if (this.sentSeq - this.ackedSeq >= SENT_RING) return this.sentBytesTotal;
    const acked = this.ackedSeq === 0 ? 0 : (this.cumSent[this.ackedSeq % SENT_RING] as number);
    return this.sentBytesTotal - acked;
  }

  /**
   * The path answered again after being down. What was sent into the outage is not the carrier's
   * loss rate (the outage is already its down state); counted as loss, it made a recovered carrier
   * look lossy for seconds (the fleet's degradation rule demoted it again on "loss rising").
   */
  recovered(): void {
    this.lossRebase = true;
  }

  /**
   * Process an ack for our sends on this path (S3-1 timestamps, delivery rate). `viaOtherPath`:
   * it came on another carrier (Flags.AckFor), so its timestamps span this path's one way and
   * that carrier's other way: no round-trip sample from it.
   */
  onAck(ack: AckBody, ts3: number, nowUs: number, viaOtherPath = false): void {
    this.counters.acksReceived++;
    if (ack.ackedPathSeq > this.sentSeq) return; // acks something we never sent: ignore
    if (ack.ackedPathSeq > this.ackedSeq) {
      this.ackedSeq = ack.ackedPathSeq;
      this.ackedAtUs = nowUs;
    }
    // Loss over at least LOSS_SPAN packets: what we sent up to the acked sequence against
    // what the peer says it received (both count every packet type).
    if (this.lossRebase) {
      this.lossRebase = false;
      this.lossMarkSeq = this.ackedSeq;
      this.lossMarkRcv = ack.rcvPackets;
    } else if (this.ackedSeq - this.lossMarkSeq >= LOSS_SPAN) {
      const sent = this.ackedSeq - this.lossMarkSeq;
      const got = ack.rcvPackets - this.lossMarkRcv;
      const sample = Math.min(1, Math.max(0, 1 - got / sent));
      this.lossRate += (sample - this.lossRate) / (1 << this.ewmaShift);
      this.lossSample = sample;
      this.lossSamples++;
      this.lossMarkSeq = this.ackedSeq;
      this.lossMarkRcv = ack.rcvPackets;
    }
    // S3-2: D = (TS4 - TS1) - (TS3 - TS2); each difference uses one clock.
    const ts4 = wireTime(nowUs);
    const d = wireTimeDiff(ts4, ack.echoTs1) - wireTimeDiff(ts3, ack.ts2);
    if (!viaOtherPath && d >= 0 && d < 30_000_000) this.observeRtt(d);
    this.ackedBytesDelta = 0;
    if (ack.rcvBytes >= this.peerRcvBytes) {
      this.ackedBytesDelta = ack.rcvBytes - this.peerRcvBytes;
      this.peerRcvBytes = ack.rcvBytes;
      // Busy = at least a bandwidth-delay product (at the current estimate) still in flight:
      // the path, not the sender, limited what was delivered.
      const bdp = this.deliveryRate * (Number.isFinite(this.minRttUs) ? this.minRttUs : 0);
      if (this.inflightBytes() < bdp) this.lastIdleUs = nowUs;
      this.addRateSample(nowUs, ack.rcvBytes);
    }
  }

  observeRtt(d: number): void {
    this.lastRttUs = d;
    this.srttUs = this.srttUs === 0 ? d : this.srttUs + (d - this.srttUs) / (1 << this.ewmaShift);
    if (d < this.minRttUs) this.minRttUs = d;
  }

  private addRateSample(t: number, bytes: number): void {
    this.rateT[this.rateHead] = t;
    this.rateB[this.rateHead] = bytes;
    this.rateHead = (this.rateHead + 1) % RATE_SAMPLES;
    if (this.rateN < RATE_SAMPLES) this.rateN++;
    // Each sample spans about four base round trips: the newest stored point at least that old
    // (and at least rateMinSpanUs; when the history is shorter, the oldest point inside
    // rateWindowUs that is at least rateMinSpanUs old). Longer spans only average the old rate
    // into the new one after a step (the former 400 ms span took 8.4 round trips of a 50 ms
    // path to show 90 % of a tripled rate, 24.6 to follow a fall to a third); shorter ones are
    // noisier, and with two round trips a path that had seen only one short burst kept a
    // diluted estimate that slowed its take-over when the other path died (session.test.ts).
    const span = Math.max(this.rateMinSpanUs, Number.isFinite(this.minRttUs) ? 4 * this.minRttUs : 0);
    let best = -1;
    for (let i = 1; i < this.rateN; i++) {
      const j = (this.rateHead - 1 - i + RATE_SAMPLES) % RATE_SAMPLES;
      const age = t - (this.rateT[j] as number);
      if (age > this.rateWindowUs) break;
      if (age >= this.rateMinSpanUs) best = j;
      if (age >= span) break;
    }
    if (best < 0) return;
    const from = this.rateT[best] as number;
    const rate = (bytes - (this.rateB[best] as number)) / (t - from);
    // The estimate is the highest sample of the last rateMaxWindowUs (a windowed max, as BBR
    // keeps its bottleneck bandwidth), so a path the sender merely gave less (app-limited:
    // the scheduler preferred another path for a while) keeps its estimate. Erring low would
    // not correct itself: a path believed slow is given little, and then delivers little.
    // A lower sample is believed at once, though, when the path was busy (a BDP in flight)
    // for the whole sample: then the carrier itself delivered less, and a cap still sized for
    // the old rate would only build a queue (S2-12: follow a drop within a few round trips).
    if (rate < this.deliveryRate && this.lastIdleUs < from) {
      this.maxStart.fill(-Infinity);
      this.maxT.fill(-Infinity);
    }
    const width = this.rateMaxWindowUs / MAX_BUCKETS;
    const last = (this.maxHead - 1 + MAX_BUCKETS) % MAX_BUCKETS;
    if (t - (this.maxStart[last] as number) < width) {
      if (rate > (this.maxR[last] as number)) this.maxR[last] = rate;
      this.maxT[last] = t;
    } else {
      this.maxStart[this.maxHead] = t;
      this.maxT[this.maxHead] = t;
      this.maxR[this.maxHead] = rate;
      this.maxHead = (this.maxHead + 1) % MAX_BUCKETS;
    }
    let max = 0;
    for (let k = 0; k < MAX_BUCKETS; k++) {
      if (t - (this.maxT[k] as number) <= this.rateMaxWindowUs && (this.maxR[k] as number) > max) max = this.maxR[k] as number;
    }
    this.deliveryRate = max;
  }

  /** Record an authenticated arrival; returns false when it is a replay (already counted). */
  onReceive(pathSeq: number, ts1: number, bytes: number, nowUs: number): boolean {
    if (!this.replay.accept(pathSeq)) return false;
    if (Number.isFinite(this.lastRecvUs)) this.arrivalGaps.add(nowUs - this.lastRecvUs, nowUs);
    this.lastRecvUs = nowUs;
    this.expectSinceUs = -1;
    this.suspect = false;
    if (pathSeq > this.rcvHighestSeq) {
      this.rcvHighestSeq = pathSeq;
      this.lastRcvTs1 = ts1;
      this.lastRcvAtUs = nowUs;
    }
    this.rcvPackets++;
    this.rcvBytes += bytes;
    this.counters.rxPackets++;
    this.counters.rxBytes += bytes;
    return true;
  }

  observeWatermark(w: number): void {
    if (w > this.watermark) this.watermark = w;
  }

  /** The ack we would send now for what we received on this path. */
  ackBody(watermark: number): AckBody {
    return {
      watermark,
      ackedPathSeq: this.rcvHighestSeq,
      rcvPackets: this.rcvPackets,
      rcvBytes: this.rcvBytes,
      echoTs1: this.lastRcvTs1,
      ts2: wireTime(this.lastRcvAtUs),
    };
  }

  /** S2-12: short estimator windows and fast gains (true), or the defaults (false). */
  setHighSpeed(on: boolean): void {
    this.rateMaxWindowUs = on ? HS_RATE_MAX_WINDOW_US : RATE_MAX_WINDOW_US;
    this.rateMinSpanUs = on ? HS_RATE_MIN_SPAN_US : RATE_MIN_SPAN_US;
    this.rateWindowUs = on ? HS_RATE_WINDOW_US : RATE_WINDOW_US;
    this.ewmaShift = on ? 2 : 3;
  }

  get highSpeed(): boolean {
    return this.rateMaxWindowUs === HS_RATE_MAX_WINDOW_US;
  }

  /** Delivery rate in Mbit/s (for status). */
  rateMbps(): number {
    return this.deliveryRate * 8;
  }
}
