// The edge's telemetry reporter: samples the gateway's state, decides when a report is worth
// sending (change.ts), queues reports in a bounded queue (queue.ts) and streams them to the cloud
// in batches over a transport (grpc-stream.ts in production, a fake in unit tests), keeping each
// one until the cloud acknowledges it. Everything timed runs on the injected Clock, so the rate,
// batching, keepalive and backoff logic is tested with SimClock.
import { randomBytes } from 'node:crypto';
import type { Clock, TimerHandle } from '../clock.js';
import { silentLogger, type Logger } from '../log.js';
import { changeReason } from './change.js';
import { ReportQueue } from './queue.js';
import type { ReportRequest, TelemetrySample } from './types.js';

/** An open stream to the cloud. */
export interface UplinkStream {
  write(req: ReportRequest): void;
  /** Ends the stream from our side; no handler is called afterwards. */
  close(): void;
}

export interface UplinkHandlers {
  onAck(ackedSeq: number): void;
  /** The stream ended (error, or the cloud closed it); `reason` says why for the log. */
  onEnd(reason: string): void;
}

export interface UplinkTransport {
  open(handlers: UplinkHandlers): UplinkStream;
  /** Releases the channel. */
  close(): void;
}

export interface ReporterSettings {
  /** Most reports per second while things change (S2-5 telemetry: up to 10). */
  maxReportsPerSecond: number;
  /** A report at least this often when nothing changes, ms. */
  stableIntervalMs: number;
  /** Reports held until acknowledged; the oldest is dropped (and counted) beyond this. */
  queueReports: number;
  /** Most reports in one batch. */
  maxBatch: number;
  /** Batches written and not yet acknowledged; more reports wait and go together in the next batch. */
  maxUnackedBatches: number;
  /** An empty batch after this long without writing anything, ms. */
  keepaliveMs: number;
  /**
   * A stream whose oldest unacknowledged batch waits longer than this is given up and reopened, ms:
   * the larger of this floor and the measured acknowledgement delay plus 8 times its variation
   * (as TCP's retransmission timeout), at most maxAckTimeoutMs. A dead carrier is noticed after the
   * floor; a cloud that is slow but alive is not abandoned, which would only add handshakes to its load.
   */
  ackTimeoutMs: number;
  maxAckTimeoutMs: number;
  /**
   * The same for a stream that has had no acknowledgement yet, ms: its connection may still be
   * in its TLS handshake with a busy cloud (the fleet bench saw every timeout on such streams, and
   * each new attempt cost the cloud one more handshake). A refused or failed connection ends the
   * stream by itself, sooner.
   */
  firstAckTimeoutMs: number;
  /** First reconnection delay, ms; doubles per failure up to maxBackoffMs, with +-25% jitter. */
  initialBackoffMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_REPORTER: ReporterSettings = {
  maxReportsPerSecond: 10,
  stableIntervalMs: 5000,
  queueReports: 600,
  maxBatch: 64,
  maxUnackedBatches: 2,
  keepaliveMs: 2000,
  ackTimeoutMs: 6_000,
  maxAckTimeoutMs: 60_000,
  firstAckTimeoutMs: 20_000,
  initialBackoffMs: 500,
  maxBackoffMs: 30_000,
};

export interface ReporterOptions {
  edgeId: string;
  clock: Clock;
  transport: UplinkTransport;
  /** The gateway's state now; called at most maxReportsPerSecond times a second. */
  sample(): TelemetrySample;
  settings?: Partial<ReporterSettings>;
  logger?: Logger;
  /** Uniform [0,1) for the backoff jitter; tests pass a fixed one. */
  random?: () => number;
  /** Identifies this run; random by default. */
  bootId?: string;
}

export interface ReporterStats {
  connected: boolean;
  /** Reports produced (numbered) so far. */
  produced: number;
  /** Samples taken and not reported because nothing had changed. */
  suppressed: number;
  batchesSent: number;
  keepalivesSent: number;
  /** Highest sequence number the cloud acknowledged. */
  ackedSeq: number;
  queued: number;
  queueHighWater: number;
  /** Reports dropped by the full queue (never sent or never acknowledged). */
  dropped: number;
  /** Streams opened after the first. */
  reconnects: number;
  /** Why streams ended, by reason (status name or cause), for diagnosis. */
  lossReasons: Record<string, number>;
  /** Smoothed batch -> acknowledgement delay, ms (null before the first). */
  ackDelayMs: number | null;
  /** The acknowledgement timeout in force, ms. */
  ackTimeoutMs: number;
}

export class TelemetryReporter {
  readonly settings: ReporterSettings;
  readonly bootId: string;
  private readonly queue: ReportQueue;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly random: () => number;
  private stream: UplinkStream | undefined;
  private streamGen = 0;
  private connected = false;
  private running = false;
  private sampling = true;
  private seq = 0;
  private ackedSeq = 0;
  private lastSample: TelemetrySample | undefined;
  private lastReportUs = -Infinity;
  private lastWriteUs = 0;
  /** Send time and last seq of each written, unacknowledged batch (oldest first). */
  private unacked: { atUs: number; lastSeq: number }[] = [];
  private backoffMs: number;
  /** Smoothed delay from writing a batch to its acknowledgement, and its variation, us. */
  private ackSrttUs: number | undefined;
  private ackRttvarUs = 0;
  private acksOnStream = 0;
  private sampleTimer: TimerHandle | undefined;
  private reconnectTimer: TimerHandle | undefined;
  private tickTimer: TimerHandle | undefined;
  private readonly lossReasons: Record<string, number> = {};
  private counts = { suppressed: 0, batchesSent: 0, keepalivesSent: 0, reconnects: 0, opens: 0 };

  constructor(private readonly opts: ReporterOptions) {
    this.settings = { ...DEFAULT_REPORTER, ...opts.settings };
    const s = this.settings;
    if (!(s.maxReportsPerSecond > 0 && s.maxReportsPerSecond <= 1000)) throw new RangeError(`maxReportsPerSecond must be in (0, 1000], got ${s.maxReportsPerSecond}`);
    if (!(s.maxBatch >= 1) || !(s.maxUnackedBatches >= 1)) throw new RangeError('maxBatch and maxUnackedBatches must be >= 1');
    this.queue = new ReportQueue(s.queueReports);
    this.clock = opts.clock;
    this.log = (opts.logger ?? silentLogger).child({ component: 'telemetry-uplink' });
    this.random = opts.random ?? Math.random;
    this.bootId = opts.bootId ?? randomBytes(8).toString('hex');
    this.backoffMs = s.initialBackoffMs;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.connect();
    this.scheduleSample(0);
    this.scheduleTick();
  }

  /** Takes no more samples; the stream stays open so that queued reports still get out (a drain before stop). */
  stopSampling(): void {
    this.sampleTimer?.cancel();
    this.sampleTimer = undefined;
    this.sampling = false;
  }

  stop(): void {
    this.running = false;
    this.sampleTimer?.cancel();
    this.reconnectTimer?.cancel();
    this.tickTimer?.cancel();
    this.dropStream();
    this.opts.transport.close();
  }

  stats(): ReporterStats {
    return {
      connected: this.connected,
      produced: this.seq,
      suppressed: this.counts.suppressed,
      batchesSent: this.counts.batchesSent,
      keepalivesSent: this.counts.keepalivesSent,
      ackedSeq: this.ackedSeq,
      queued: this.queue.length,
      queueHighWater: this.queue.highWater,
      dropped: this.queue.dropped,
      reconnects: this.counts.reconnects,
      lossReasons: { ...this.lossReasons },
      ackDelayMs: this.ackSrttUs === undefined ? null : Math.round(this.ackSrttUs / 100) / 10,
      ackTimeoutMs: Math.round(this.ackTimeoutUs() / 1000),
    };
  }

  private get intervalUs(): number {
    return 1e6 / this.settings.maxReportsPerSecond;
  }

  private scheduleSample(delayUs: number): void {
    this.sampleTimer = this.clock.setTimer(delayUs, () => {
      if (!this.running || !this.sampling) return;
      this.takeSample();
      this.scheduleSample(this.intervalUs);
    });
  }

  /** Keepalive and acknowledgement watchdog, a few times per keepalive interval. */
  private scheduleTick(): void {
    const every = Math.max(50, Math.min(this.settings.keepaliveMs, this.settings.ackTimeoutMs) / 4) * 1000;
    this.tickTimer = this.clock.setTimer(every, () => {
      if (!this.running) return;
      this.tick();
      this.scheduleTick();
    });
  }

  private takeSample(): void {
    let cur: TelemetrySample;
    try {
      cur = this.opts.sample();
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'telemetry sample failed');
      return;
    }
    const now = this.clock.nowUs();
    const stable = now - this.lastReportUs >= this.settings.stableIntervalMs * 1000;
    if (!stable && !changeReason(this.lastSample, cur)) {
      this.counts.suppressed++;
      return;
    }
    this.lastSample = cur;
    this.lastReportUs = now;
    this.queue.push({ ...cur, seq: ++this.seq });
    this.flush();
  }

  private tick(): void {
    if (!this.connected) return;
    const now = this.clock.nowUs();
    const oldest = this.unacked[0];
    if (oldest && now - oldest.atUs > this.ackTimeoutUs()) {
      this.log.warn({ waitedMs: Math.round((now - oldest.atUs) / 1000), acksOnStream: this.acksOnStream }, 'telemetry stream: no acknowledgement in time; reconnecting');
      // Told apart: a stream that never got going (connection or handshake) from one that stalled.
      this.lost(this.acksOnStream === 0 ? 'acknowledgement timeout (new stream)' : 'acknowledgement timeout');
      return;
    }
    if (now - this.lastWriteUs >= this.settings.keepaliveMs * 1000) this.write([], true);
  }

  private flush(): void {
    if (!this.connected) return;
    while (this.unacked.length < this.settings.maxUnackedBatches && this.queue.hasUnsent()) {
      this.write(this.queue.takeUnsent(this.settings.maxBatch), false);
    }
  }

  private write(reports: ReportRequest['reports'], keepalive: boolean): void {
    const s = this.stream;
    if (!s) return;
    const now = this.clock.nowUs();
    this.lastWriteUs = now;
    const last = reports[reports.length - 1];
    this.unacked.push({ atUs: now, lastSeq: last ? last.seq : this.seq });
    if (keepalive) this.counts.keepalivesSent++;
    else this.counts.batchesSent++;
    s.write({ edgeId: this.opts.edgeId, bootId: this.bootId, reports });
  }

  private connect(): void {
    if (!this.running) return;
    const gen = ++this.streamGen;
    if (this.counts.opens++ > 0) this.counts.reconnects++;
    this.queue.rewind();
    this.unacked = [];
    this.acksOnStream = 0;
    try {
      this.stream = this.opts.transport.open({
        onAck: (acked) => {
          if (gen === this.streamGen) this.onAck(acked);
        },
        onEnd: (reason) => {
          if (gen === this.streamGen) this.lost(reason);
        },
      });
    } catch (e) {
      this.lost(`open failed: ${(e as Error).message}`);
      return;
    }
    // A stream counts as connected at once: gRPC buffers writes until the channel is ready, and
    // the acknowledgement timeout catches a stream that never gets there.
    this.connected = true;
    this.lastWriteUs = this.clock.nowUs();
    this.flush();
  }

  /** The acknowledgement timeout now (see ReporterSettings.ackTimeoutMs), us. */
  ackTimeoutUs(): number {
    const s = this.settings;
    const measured = this.ackSrttUs === undefined ? 0 : this.ackSrttUs + 8 * this.ackRttvarUs;
    const floor = (this.acksOnStream === 0 ? Math.max(s.ackTimeoutMs, s.firstAckTimeoutMs) : s.ackTimeoutMs) * 1000;
    return Math.min(Math.max(s.maxAckTimeoutMs * 1000, floor), Math.max(floor, measured));
  }

  private onAck(acked: number): void {
    // A healthy stream: the next failure starts the backoff afresh.
    this.backoffMs = this.settings.initialBackoffMs;
    this.acksOnStream++;
    const first = this.unacked[0];
    if (first) {
      // RFC 6298's smoothing, applied to batch -> acknowledgement delays.
      const sample = this.clock.nowUs() - first.atUs;
      if (this.ackSrttUs === undefined) {
        this.ackSrttUs = sample;
        this.ackRttvarUs = sample / 2;
      } else {
        this.ackRttvarUs = 0.75 * this.ackRttvarUs + 0.25 * Math.abs(this.ackSrttUs - sample);
        this.ackSrttUs = 0.875 * this.ackSrttUs + 0.125 * sample;
      }
    }
    if (acked > this.ackedSeq) this.ackedSeq = acked;
    this.queue.ack(acked);
    this.unacked.shift();
    this.flush();
  }

  private dropStream(): void {
    this.streamGen++;
    this.connected = false;
    const s = this.stream;
    this.stream = undefined;
    s?.close();
  }

  private lost(reason: string): void {
    if (!this.running) return;
    // Keep the reason's kind, not its details, so the map stays small.
    const kind = reason.split(':')[0] ?? reason;
    this.lossReasons[kind] = (this.lossReasons[kind] ?? 0) + 1;
    this.dropStream();
    const base = this.backoffMs;
    const delay = base * (0.75 + this.random() / 2);
    this.backoffMs = Math.min(base * 2, this.settings.maxBackoffMs);
    this.log.warn({ reason, retryInMs: Math.round(delay), queued: this.queue.length }, 'telemetry stream lost');
    this.reconnectTimer?.cancel();
    this.reconnectTimer = this.clock.setTimer(delay * 1000, () => this.connect());
  }
}
