// Simulation bench for the S3 controller: one or more greedy senders (always data to send,
// as fast as the controller allows) over a bottleneck link on a SimClock, with the real
// four-timestamp delay (skewed, wrapping 32-bit peer clock, delayed cumulative acks as the
// session sends them). Reports utilisation, queueing delay and loss, and how fast capacity
// steps are followed. Used by the tests and to choose the constants (docs/congestion.md):
//
//   node --conditions=source --import tsx gateway-core/src/congestion/sim-bench.ts
import { pathToFileURL } from 'node:url';
import { SimClock, wireTime, type Clock, type TimerHandle } from '../clock.js';
import { s3Delay } from './delay.js';
import { Pacer } from './pacer.js';
import { S3Controller, DEFAULT_S3, type S3Params } from './s3.js';

export interface RateStep {
  atMs: number;
  rateMbps: number;
}

export interface BenchScenario {
  name: string;
  /** Bottleneck rate over time (first entry at 0). */
  rates: RateStep[];
  /** One-way propagation delay, each direction. */
  delayMs: number;
  /** Drop-tail queue limit of the bottleneck. */
  queueBytes: number;
  durationMs: number;
  /** Measurement starts here (skip start-up). */
  measureFromMs: number;
  /** Greedy senders sharing the bottleneck (each with its own controller). */
  flows?: number;
  packetBytes?: number;
  /** Pacing timer granularity (Node timers: 1000 us) and extra lateness of every timer. */
  timerGranularityUs?: number;
  timerLateUs?: number;
  /** Feed detected losses to the controller's loss backstop (default true). */
  lossBackstop?: boolean;
}

interface Pkt {
  flow: number;
  seq: number;
  bytes: number;
  ts1: number;
  enqUs: number;
}

/** The bottleneck: FIFO drop-tail queue served at the current rate, then a fixed delay. */
class Bottleneck {
  rateMbps: number;
  private readonly queue: Pkt[] = [];
  private queuedBytes = 0;
  private serving = false;
  private readonly line: { at: number; pkt: Pkt }[] = [];
  private lineTimer: TimerHandle | undefined;
  /** Per 100 ms bin: delivered bytes, queueing-delay sum and count, max. */
  readonly bins: { bytes: number; qSum: number; qN: number; qMax: number; capBytes: number }[] = [];
  readonly qSamples: { t: number; q: number }[] = [];
  drops = 0;
  offered = 0;

  constructor(private readonly clock: SimClock, rateMbps: number, private readonly delayUs: number,
    private readonly limit: number, private readonly deliver: (p: Pkt) => void) {
    this.rateMbps = rateMbps;
  }

  private bin(t: number) {
    const i = Math.floor(t / 100_000);
    while (this.bins.length <= i) this.bins.push({ bytes: 0, qSum: 0, qN: 0, qMax: 0, capBytes: 0 });
    return this.bins[i] as Bottleneck['bins'][number];
  }

  send(p: Pkt): void {
    this.offered++;
    if (this.queuedBytes + p.bytes > this.limit) {
      this.drops++;
      return;
    }
    p.enqUs = this.clock.nowUs();
    this.queue.push(p);
    this.queuedBytes += p.bytes;
    if (!this.serving) this.serveNext();
  }

  private serveNext(): void {
    const p = this.queue[0];
    if (!p) {
      this.serving = false;
      return;
    }
    this.serving = true;
    const now = this.clock.nowUs();
    const q = now - p.enqUs;
    const b = this.bin(now);
    b.qSum += q;
    b.qN++;
    if (q > b.qMax) b.qMax = q;
    this.qSamples.push({ t: now, q });
    const bytesPerUs = (this.rateMbps * 1e6) / 8 / 1e6;
    this.clock.setTimer(p.bytes / bytesPerUs, () => {
      this.queue.shift();
      this.queuedBytes -= p.bytes;
      this.line.push({ at: this.clock.nowUs() + this.delayUs, pkt: p });
      this.armLine();
      this.serveNext();
    });
  }

  private armLine(): void {
    if (this.lineTimer) return;
    const head = this.line[0];
    if (!head) return;
    this.lineTimer = this.clock.setTimer(head.at - this.clock.nowUs(), () => {
      this.lineTimer = undefined;
      const now = this.clock.nowUs();
      while (this.line.length > 0 && (this.line[0] as { at: number }).at <= now) {
        const e = this.line.shift() as { pkt: Pkt };
        this.bin(now).bytes += e.pkt.bytes;
        this.deliver(e.pkt);
      }
      this.armLine();
    });
  }
}

interface Ack {
  ackedSeq: number;
  rcvPackets: number;
  rcvBytes: number;
  echoTs1: number;
  ts2: number;
  ts3: number;
}

/** The peer: its own (offset, wrapping) clock; cumulative acks every 8 packets or 10 ms, as the session. */
class Receiver {
  private highest = 0;
  private ts1 = 0;
  private ts2 = 0;
  private rcvBytes = 0;
  private rcvPackets = 0;
  private pending = 0;
  private timer: TimerHandle | undefined;
  // A peer clock far from ours and about to wrap: D must not care.
  private readonly offsetUs = 2 ** 32 - 3_000_000 + 123_457;

  constructor(private readonly clock: Clock, private readonly reverseDelayUs: number, private readonly onAck: (a: Ack) => void) {}

  private peerNow(): number {
    return wireTime(this.clock.nowUs() + this.offsetUs);
  }

  receive(p: Pkt): void {
    this.rcvBytes += p.bytes;
    this.rcvPackets++;
    if (p.seq > this.highest) {
      this.highest = p.seq;
      this.ts1 = p.ts1;
      this.ts2 = this.peerNow();
    }
    if (++this.pending >= 8) this.ack();
    else this.timer ??= this.clock.setTimer(10_000, () => this.ack());
  }

  private ack(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.pending = 0;
    const a: Ack = { ackedSeq: this.highest, rcvPackets: this.rcvPackets, rcvBytes: this.rcvBytes, echoTs1: this.ts1, ts2: this.ts2, ts3: this.peerNow() };
    this.clock.setTimer(this.reverseDelayUs, () => this.onAck(a));
  }
}

/** Round a clock's timers up to a granularity and make them late (Node-like or faulty timers). */
function coarseClock(clock: Clock, granularityUs: number, lateUs: number): Clock {
  return {
    nowUs: () => clock.nowUs(),
    setTimer: (d, fn) => clock.setTimer((granularityUs > 0 ? Math.ceil(d / granularityUs) * granularityUs : d) + lateUs, fn),
  };
}

/** A greedy sender: sends whenever the controller allows (on acks, paced timers and a 5 ms tick). */
class Sender {
  readonly cc: S3Controller;
  private seq = 0;
  private sentTotal = 0;
  private readonly cum = new Map<number, number>();
  private ackedSeq = 0;
  private lastRcvBytes = 0;
  private lost = 0;
  private readonly pacer: Pacer;
  sent = 0;

  constructor(private readonly clock: SimClock, pacingClock: Clock, readonly flow: number, params: Partial<S3Params>,
    private readonly bytes: number, private readonly link: Bottleneck, private readonly useLoss: boolean) {
    this.cc = new S3Controller(params);
    this.pacer = new Pacer(pacingClock, this.cc, () => this.pump());
  }

  inflight(): number {
    return this.sentTotal - (this.cum.get(this.ackedSeq) ?? 0);
  }

  pump(): void {
    const now = this.clock.nowUs();
    let n = 0;
    while (n < 10_000 && this.cc.canSend(this.inflight(), now)) {
      const seq = ++this.seq;
      this.sentTotal += this.bytes;
      this.cum.set(seq, this.sentTotal);
      this.cc.onSent(this.bytes, now);
      this.sent++;
      this.link.send({ flow: this.flow, seq, bytes: this.bytes, ts1: wireTime(now), enqUs: now });
      n++;
    }
    if (this.cc.mode() === 'paced') this.pacer.arm();
  }

  onAck(a: Ack): void {
    const now = this.clock.nowUs();
    const d = s3Delay(a.echoTs1, a.ts2, a.ts3, wireTime(now));
    for (let s = this.ackedSeq; s < a.ackedSeq; s++) this.cum.delete(s);
    if (a.ackedSeq > this.ackedSeq) this.ackedSeq = a.ackedSeq;
    const acked = a.rcvBytes - this.lastRcvBytes;
    this.lastRcvBytes = Math.max(this.lastRcvBytes, a.rcvBytes);
    this.cc.onAck(d, Math.max(0, acked), now);
    // Every packet is data here: what the peer has not received below its highest is lost.
    const lost = a.ackedSeq - a.rcvPackets;
    if (this.useLoss && lost > this.lost) this.cc.onLoss(lost - this.lost, now);
    this.lost = Math.max(this.lost, lost);
    this.pump();
  }
}

export interface BenchResult {
  scenario: string;
  /** Delivered / capacity over the measurement window. */
  utilisation: number;
  /** Queueing delay at the bottleneck over the measurement window, ms. */
  queueMeanMs: number;
  queueP50Ms: number;
  queueP95Ms: number;
  /** Dropped / offered packets over the whole run. */
  lossPct: number;
  /** Per flow delivered share (flows > 1): min share / max share. */
  fairness: number;
  /** For each rate step after the first: ms until the step is followed (Infinity: never). */
  followMs: number[];
  /** Controller telemetry at the end (flow 0). */
  final: ReturnType<S3Controller['telemetry']>;
  /** cwnd of flow 0 every 100 ms (bytes). */
  cwndTrace: number[];
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] as number;
}

/** Run one scenario with the given controller parameters. */
export function runBench(sc: BenchScenario, params: Partial<S3Params> = {}): BenchResult {
  const clock = new SimClock(0);
  const bytes = sc.packetBytes ?? params.mtu ?? DEFAULT_S3.mtu;
  const flows = sc.flows ?? 1;
  const senders: Sender[] = [];
  const receivers: Receiver[] = [];
  const delivered = new Array<number>(flows).fill(0);
  const startRate = (sc.rates[0] as RateStep).rateMbps;
  const link = new Bottleneck(clock, startRate, sc.delayMs * 1000, sc.queueBytes, (p) => {
    if (clock.nowUs() >= sc.measureFromMs * 1000) delivered[p.flow] = (delivered[p.flow] as number) + p.bytes;
    (receivers[p.flow] as Receiver).receive(p);
  });
  const pacingClock = coarseClock(clock, sc.timerGranularityUs ?? 0, sc.timerLateUs ?? 0);
  for (let f = 0; f < flows; f++) {
    const s = new Sender(clock, pacingClock, f, params, bytes, link, sc.lossBackstop ?? true);
    s.cc.setFlows(flows);
    senders.push(s);
    receivers.push(new Receiver(clock, sc.delayMs * 1000, (a) => s.onAck(a)));
  }
  for (const st of sc.rates.slice(1)) clock.setTimer(st.atMs * 1000, () => { link.rateMbps = st.rateMbps; });
  const cwndTrace: number[] = [];
  const tick = (): void => {
    for (const s of senders) s.pump();
    clock.setTimer(5000, tick);
  };
  const trace = (): void => {
    cwndTrace.push(Math.round((senders[0] as Sender).cc.cwnd));
    clock.setTimer(100_000, trace);
  };
  tick();
  trace();
  clock.advance(sc.durationMs * 1000);

  const rateAt = (ms: number): number => {
    let r = startRate;
    for (const st of sc.rates) if (st.atMs <= ms) r = st.rateMbps;
    return r;
  };
  // Capacity over the measurement window, 1 ms resolution.
  let capBytes = 0;
  for (let ms = sc.measureFromMs; ms < sc.durationMs; ms++) capBytes += (rateAt(ms) * 1e6) / 8 / 1000;
  const from = sc.measureFromMs * 1000;
  const qs = link.qSamples.filter((x) => x.t >= from).map((x) => x.q);
  const totalDelivered = delivered.reduce((a, b) => a + b, 0);

  // Following a step: the first 100 ms bin that starts 3 consecutive bins delivering >= 90%
  // of the new capacity with a mean queueing delay within followQueueBoundUs.
  const followMs = sc.rates.slice(1).map((st, i) => {
    const next = sc.rates[i + 2];
    const endBin = Math.floor((next ? next.atMs : sc.durationMs) / 100);
    const cap100 = (st.rateMbps * 1e6) / 8 / 10;
    const qOk = followQueueBoundUs(sc, params);
    for (let b = Math.floor(st.atMs / 100); b + 2 < endBin; b++) {
      let ok = true;
      for (let k = b; k < b + 3; k++) {
        const bin = link.bins[k];
        if (!bin || bin.bytes < 0.9 * cap100 || (bin.qN > 0 && bin.qSum / bin.qN > qOk)) ok = false;
      }
      if (ok) return b * 100 - st.atMs;
    }
    return Infinity;
  });
  const shares = delivered.map((d) => d / Math.max(1, totalDelivered));
  return {
    scenario: sc.name,
    utilisation: totalDelivered / capBytes,
    queueMeanMs: qs.reduce((a, b) => a + b, 0) / Math.max(1, qs.length) / 1000,
    queueP50Ms: percentile(qs, 0.5) / 1000,
    queueP95Ms: percentile(qs, 0.95) / 1000,
    lossPct: (100 * link.drops) / Math.max(1, link.offered),
    fairness: flows > 1 ? Math.min(...shares) / Math.max(...shares) : 1,
    followMs,
    final: (senders[0] as Sender).cc.telemetry(),
    cwndTrace,
  };
}

/** Queueing delay a followed step may still show: the threshold's queue allowance plus 20 ms. */
export function followQueueBoundUs(sc: BenchScenario, params: Partial<S3Params>): number {
  const p = { ...DEFAULT_S3, ...params };
  const base = 2 * sc.delayMs * 1000;
  return Math.max(p.thresholdFloorUs, p.thresholdBaseFactor * base) + 20_000;
}

/** Scenarios used to choose the constants and by the tests. */
export const SCENARIOS: Record<string, BenchScenario> = {
  // The reference link: 20 Mbit/s, 40 ms each way (80 ms base RTT, BDP 200 KB), deep buffer (2 BDP).
  steady: { name: 'steady 20M/40ms q400K', rates: [{ atMs: 0, rateMbps: 20 }], delayMs: 40, queueBytes: 400_000, durationMs: 20_000, measureFromMs: 3000 },
  // Shallow buffer (half a BDP): utilisation depends on not draining the queue on a decrease.
  shallow: { name: 'shallow 20M/40ms q100K', rates: [{ atMs: 0, rateMbps: 20 }], delayMs: 40, queueBytes: 100_000, durationMs: 20_000, measureFromMs: 3000 },
  // Capacity steps 20 -> 5 -> 20 Mbit/s.
  step: {
    name: 'step 20>5>20M/40ms q400K',
    rates: [{ atMs: 0, rateMbps: 20 }, { atMs: 8000, rateMbps: 5 }, { atMs: 16_000, rateMbps: 20 }],
    delayMs: 40, queueBytes: 400_000, durationMs: 24_000, measureFromMs: 3000,
  },
  // Short path: base delay small, the threshold floor dominates.
  short: { name: 'short 50M/5ms q300K', rates: [{ atMs: 0, rateMbps: 50 }], delayMs: 5, queueBytes: 300_000, durationMs: 10_000, measureFromMs: 2000 },
  // Long, slow path (satellite-like).
  long: { name: 'long 5M/150ms q300K', rates: [{ atMs: 0, rateMbps: 5 }], delayMs: 150, queueBytes: 300_000, durationMs: 30_000, measureFromMs: 8000 },
  // Very slow path: the window falls below one MTU, paced mode with Node-like 1 ms timers.
  gprs: { name: 'gprs 40k/100ms q15K', rates: [{ atMs: 0, rateMbps: 0.04 }], delayMs: 100, queueBytes: 15_000, durationMs: 60_000, measureFromMs: 15_000, timerGranularityUs: 1000 },
  // Four flows on a tiny link with a 1.9 s drop-tail buffer: the latecomer case (docs, limits).
  gprs4: { name: '4 flows 64k/100ms q15K', rates: [{ atMs: 0, rateMbps: 0.064 }], delayMs: 100, queueBytes: 15_000, durationMs: 60_000, measureFromMs: 15_000, timerGranularityUs: 1000, flows: 4 },
  // Two flows sharing the reference link.
  twoFlows: { name: '2 flows 20M/40ms q400K', rates: [{ atMs: 0, rateMbps: 20 }], delayMs: 40, queueBytes: 400_000, durationMs: 30_000, measureFromMs: 8000, flows: 2 },
};

/** Candidate constant sets compared in docs/congestion.md. */
export const CANDIDATES: Record<string, Partial<S3Params>> = {
  'fixed 0.5': { mdRule: 'fixed', md: 0.5, aiMaxVelocity: 1 },
  'fixed 0.7': { mdRule: 'fixed', md: 0.7, aiMaxVelocity: 1 },
  'fixed 0.85': { mdRule: 'fixed', md: 0.85, aiMaxVelocity: 1 },
  'prop 0.8': { mdRule: 'proportional', aiMaxVelocity: 1 },
  'drain': { mdRule: 'drain', aiMaxVelocity: 1 },
  'fixed 0.85 +acc32': { mdRule: 'fixed', md: 0.85 },
  'prop 0.8 +acc32': { mdRule: 'proportional' },
  'drain +acc8': { aiMaxVelocity: 8 },
  'drain +acc32 (default)': {},
  'drain +acc32 always': { aiAccelerateBelow: 1 },
  'drain +acc32 k0.1': { thresholdBaseFactor: 0.1 },
  'drain +acc32 k0.5': { thresholdBaseFactor: 0.5 },
  'drain +acc32 floor5ms': { thresholdFloorUs: 5000 },
  'drain +acc32 floor20ms': { thresholdFloorUs: 20_000 },
  'drain +acc32 MI1.5': { miPerRtt: 1.5 },
};

function fmtFollow(ms: number[]): string {
  return ms.map((m) => (Number.isFinite(m) ? `${m}` : 'never')).join('/');
}

/** Print the candidates x scenarios table (markdown). */
export function printTable(scenarioNames = Object.keys(SCENARIOS), candidates = CANDIDATES): void {
  console.log('| candidate | scenario | util | queue mean/p50/p95 ms | loss % | fair | follow ms |');
  console.log('|---|---|---|---|---|---|---|');
  for (const [cname, params] of Object.entries(candidates)) {
    for (const sname of scenarioNames) {
      const r = runBench(SCENARIOS[sname] as BenchScenario, params);
      console.log(`| ${cname} | ${r.scenario} | ${(r.utilisation * 100).toFixed(1)}% | ${r.queueMeanMs.toFixed(1)}/${r.queueP50Ms.toFixed(1)}/${r.queueP95Ms.toFixed(1)} | ${r.lossPct.toFixed(2)} | ${r.fairness.toFixed(2)} | ${fmtFollow(r.followMs)} |`);
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const only = process.argv.slice(2);
  printTable(only.length > 0 ? only : undefined);
}
