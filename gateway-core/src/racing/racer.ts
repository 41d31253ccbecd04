// S0 transport racing for one carrier. The session sees one Path per carrier: this racer. Under
// it, the carrier's endpoints are grouped in ordered streams (S0-1): stream 1 = [E1], stream 2 =
// [E3 placeholder, E2], stream 3 = [E5 placeholder, E4], one stream per transport of the cascade.
//
//   t0        E1 (UDP) sends its connect request; later streams only hold their slot (S0-2)
//   t0 + T    stream 2 swaps its placeholder for E2 (TCP), which connects too; E1 keeps trying (S0-3)
//   t0 + 2T   stream 3 swaps in E4 (TLS) (S0-5), and so on down the cascade
//
// "Connected" means an authenticated answer from the peer arrived on that endpoint (not merely a
// TCP handshake: a middlebox may accept the handshake and then drop everything). The owner
// supplies the authenticity check; the racer never looks inside the session.
//
// Decision (S0-4, S0-5): when E1 connects the other streams close; when a later stream connects
// while no earlier one has, it is kept and the others close. keepSeveralStreams keeps every
// endpoint instead, and then weights pick the stream each packet takes (S0-6): stream 1 P1, a
// later stream P2 beside a connected earlier one, P3 when it is all there is (P2 < P1 < P3).
// Packet types may be bound to streams (S0-7). When the connection stays abnormal (no
// authenticated datagram, or nothing connected after the whole cascade started) for longer than
// the anomaly threshold, the whole procedure runs again (S0-8).
import type { Clock, TimerHandle } from '../clock.js';
import { silentLogger, type Logger } from '../log.js';
import type { Path, TransportKind } from '../path/path.js';
import { streamWeight, validateWeights, type RacingWeights } from './weights.js';

export type SlotState = 'placeholder' | 'opening' | 'open' | 'connected' | 'failed' | 'closed';

export interface RacerOptions {
  /** Carrier name, for logs and status. */
  name: string;
  clock: Clock;
  /** Transport of stream 1, 2, 3, ... (e.g. ['udp', 'tcp', 'tls']). */
  cascade: readonly TransportKind[];
  /** Open an endpoint of this kind (it counts as "requested" from the call on). */
  open(kind: TransportKind, stream: number): Promise<Path>;
  /** True when the datagram is an authenticated packet from the peer (the "connected" proof). */
  isAuthentic(datagram: Buffer): boolean;
  /** Ask the owner to send a connect request (a probe) now; it comes back through send(). */
  requestProbe?(): void;
  /** Switch threshold T (S0-3). */
  switchThresholdMs: number;
  /** Re-establishment after this long abnormal (S0-8). */
  anomalyThresholdMs: number;
  weights: RacingWeights;
  keepSeveralStreams: boolean;
  logger?: Logger;
}

interface Stream {
  index: number;
  kind: TransportKind;
  state: SlotState;
  endpoint: Path | undefined;
  requestedAtUs: number | undefined;
  connectedAtUs: number | undefined;
  /** Last time an authenticated datagram was seen on this stream in this round. */
  lastAuthenticUs: number;
  lastTrickleUs: number;
  weight: number;
  note: string | undefined;
}

export interface RacerStreamStatus {
  stream: number;
  kind: TransportKind;
  state: SlotState;
  weight: number;
  /** Since the round started. */
  requestedAtMs: number | null;
  connectedAtMs: number | null;
  note: string | null;
}

export interface RacerEvent {
  /** Since the racer was created. */
  atMs: number;
  round: number;
  event: string;
}

export interface RacerStatus {
  carrier: string;
  round: number;
  phase: 'racing' | 'connected' | 'abnormal' | 'closed';
  active: { stream: number; kind: TransportKind; weight: number } | null;
  keepSeveralStreams: boolean;
  streams: RacerStreamStatus[];
  bindings: Record<string, number>;
  events: RacerEvent[];
}

/** Unconnected endpoints kept beside a connected one (keepSeveralStreams) get one datagram this often. */
const TRICKLE_US = 100_000;
const MAX_EVENTS = 32;

export class TransportRacer implements Path {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly createdUs: number;
  private readonly tUs: number;
  private readonly anomalyUs: number;
  /** How long a connected stream goes without re-checking a datagram's authenticity. */
  private readonly checkUs: number;
  private streams: Stream[] = [];
  private round = 0;
  private roundStartUs = 0;
  /** When the last stage of this round started (nothing connected yet: abnormal from then). */
  private lastStageUs: number | undefined;
  private stageTimer: TimerHandle | undefined;
  private tickTimer: TimerHandle | undefined;
  private closed = false;
  private readonly bindings = new Map<string, number>();
  private readonly eventLog: RacerEvent[] = [];
  private datagramCb: (d: Buffer) => void = () => {};
  private errorCb: (e: Error) => void = () => {};

  constructor(private readonly opts: RacerOptions) {
    if (opts.cascade.length === 0) throw new RangeError('racing needs at least one transport in the cascade');
    if (!(opts.switchThresholdMs > 0)) throw new RangeError(`switch threshold must be positive, got ${opts.switchThresholdMs}`);
    if (!(opts.anomalyThresholdMs > 0)) throw new RangeError(`anomaly threshold must be positive, got ${opts.anomalyThresholdMs}`);
    validateWeights(opts.weights);
    this.clock = opts.clock;
    this.log = opts.logger ?? silentLogger;
    this.createdUs = opts.clock.nowUs();
    this.tUs = opts.switchThresholdMs * 1000;
    this.anomalyUs = opts.anomalyThresholdMs * 1000;
    this.checkUs = Math.min(this.anomalyUs / 8, 100_000);
  }

  /** Start the first round (t0 = now). */
  start(): void {
    if (this.closed || this.round > 0) return;
    this.newRound();
    this.scheduleTick();
  }

  // ---- Path ---------------------------------------------------------------------------------

  get description(): string {
    const best = this.best();
    if (best?.endpoint) return best.endpoint.description;
    const trying = this.streams.filter((s) => s.state === 'opening' || s.state === 'open').map((s) => s.kind);
    return `racing ${this.opts.name} (${trying.join(', ') || 'nothing open'})`;
  }

  /** Kind of the stream packets go on now (undefined while nothing is connected). */
  get kind(): TransportKind | undefined {
    return this.best()?.kind;
  }

  send(datagram: Buffer): boolean {
    if (this.closed) return false;
    const best = this.best();
    if (best?.endpoint) {
      if (this.opts.keepSeveralStreams) this.trickle(datagram);
      return best.endpoint.send(datagram);
    }
    // Nothing connected yet: every endpoint still in the race carries the connect requests
    // (probes) and data, so whichever gets through first connects (E1 keeps trying, S0-3).
    let any = false;
    for (const s of this.streams) if (s.state === 'open' && s.endpoint?.send(datagram)) any = true;
    return any;
  }

  /** S0-7: send a packet of a bound type on its stream (when connected), else like send(). */
  sendTyped(type: string, datagram: Buffer): boolean {
    const idx = this.bindings.get(type);
    const s = idx === undefined ? undefined : this.streams[idx];
    if (s?.state === 'connected' && s.endpoint && !this.closed) return s.endpoint.send(datagram);
    return this.send(datagram);
  }

  /** S0-7: bind a packet type to a stream (1-based, as S0 numbers them). */
  bindType(type: string, stream: number): void {
    if (!Number.isInteger(stream) || stream < 1 || stream > this.opts.cascade.length) {
      throw new RangeError(`no stream ${stream}: streams are 1..${this.opts.cascade.length}`);
    }
    this.bindings.set(type, stream - 1);
  }

  unbindType(type: string): void {
    this.bindings.delete(type);
  }

  onDatagram(cb: (d: Buffer) => void): void {
    this.datagramCb = cb;
  }

  onError(cb: (e: Error) => void): void {
    this.errorCb = cb;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stageTimer?.cancel();
    this.tickTimer?.cancel();
    for (const s of this.streams) this.closeStream(s, 'racer closed');
  }

  // ---- status -------------------------------------------------------------------------------

  status(): RacerStatus {
    const best = this.best();
    const ms = (us: number | undefined): number | null => (us === undefined ? null : Math.round((us - this.roundStartUs) / 1000));
    return {
      carrier: this.opts.name,
      round: this.round,
      phase: this.closed ? 'closed' : best ? 'connected' : this.lastStageUs !== undefined && this.streams.every((s) => s.state !== 'opening' && s.state !== 'open') ? 'abnormal' : 'racing',
      active: best ? { stream: best.index + 1, kind: best.kind, weight: best.weight } : null,
      keepSeveralStreams: this.opts.keepSeveralStreams,
      streams: this.streams.map((s) => ({
        stream: s.index + 1, kind: s.kind, state: s.state, weight: s.weight,
        requestedAtMs: ms(s.requestedAtUs), connectedAtMs: ms(s.connectedAtUs), note: s.note ?? null,
      })),
      bindings: Object.fromEntries([...this.bindings].map(([k, v]) => [k, v + 1])),
      events: [...this.eventLog],
    };
  }

  // ---- the procedure ------------------------------------------------------------------------

  private newRound(): void {
    this.round++;
    this.roundStartUs = this.clock.nowUs();
    this.lastStageUs = undefined;
    this.streams = this.opts.cascade.map((kind, index) => ({
      index, kind, state: 'placeholder' as SlotState, endpoint: undefined, requestedAtUs: undefined, connectedAtUs: undefined,
      lastAuthenticUs: -Infinity, lastTrickleUs: -Infinity, weight: 0, note: undefined,
    }));
    this.event(`round ${this.round}: stream 1 (${this.opts.cascade[0]}) sends its connect request`);
    this.stage(0);
  }

  /** Stage k: stream k+1 swaps its placeholder for a real endpoint (k = 0: stream 1 has none). */
  private stage(k: number): void {
    if (this.closed) return;
    const s = this.streams[k];
    if (!s) return;
    if (k === this.streams.length - 1) this.lastStageUs = this.clock.nowUs();
    const winner = this.streams.find((x) => x.state === 'connected');
    if (k > 0 && winner && !this.opts.keepSeveralStreams) {
      // Opening E2 only to close it at once (S0-4) would be wasted: the slot keeps its placeholder.
      s.note = `not started: stream ${winner.index + 1} connected`;
      this.event(`T passed: stream ${k + 1} (${s.kind}) not started, stream ${winner.index + 1} (${winner.kind}) is connected`);
    } else {
      if (k > 0) this.event(`T passed: stream ${k + 1} swaps its placeholder for ${s.kind}, which connects too`);
      this.openStream(s);
    }
    if (k + 1 < this.streams.length) {
      const round = this.round;
      this.stageTimer = this.clock.setTimer(this.tUs, () => { if (this.round === round) this.stage(k + 1); });
    }
  }

  private openStream(s: Stream): void {
    const round = this.round;
    s.state = 'opening';
    s.requestedAtUs = this.clock.nowUs();
    let opening: Promise<Path>;
    try {
      opening = this.opts.open(s.kind, s.index + 1);
    } catch (e) {
      opening = Promise.reject(e as Error);
    }
    opening.then((p) => {
      if (this.closed || this.round !== round || s.state !== 'opening') {
        p.close();
        return;
      }
      s.endpoint = p;
      s.state = 'open';
      p.onDatagram((d) => this.fromEndpoint(s, p, d));
      p.onError((e) => { if (this.best() === s) this.errorCb(e); });
      p.onClose?.((e) => this.endpointLost(s, p, e?.message ?? 'closed'));
      this.opts.requestProbe?.();
    }, (e: Error) => {
      if (this.closed || this.round !== round || s.state !== 'opening') return;
      s.state = 'failed';
      s.note = e.message;
      this.event(`stream ${s.index + 1} (${s.kind}) failed to open: ${e.message}`);
    });
  }

  private fromEndpoint(s: Stream, p: Path, d: Buffer): void {
    if (this.closed || s.endpoint !== p) return;
    const now = this.clock.nowUs();
    if (s.state === 'open') {
      if (this.opts.isAuthentic(d)) {
        s.lastAuthenticUs = now;
        this.connected(s, now);
      }
    } else if (s.state === 'connected' && now - s.lastAuthenticUs >= this.checkUs) {
      // Liveness needs only a recent authenticated datagram, not every one: checking one now and
      // then keeps the extra decryption off the hot path.
      if (this.opts.isAuthentic(d)) s.lastAuthenticUs = now;
    }
    this.datagramCb(d);
  }

  private connected(s: Stream, now: number): void {
    s.state = 'connected';
    s.connectedAtUs = now;
    const after = Math.round((now - this.roundStartUs) / 1000);
    this.event(`stream ${s.index + 1} (${s.kind}) connected after ${after} ms`);
    if (!this.opts.keepSeveralStreams) {
      const earlier = this.streams.find((x) => x.index < s.index && x.state === 'connected');
      if (earlier) {
        // S0-4: E1 connected, so E2 closes (whenever E2 gets there).
        this.closeStream(s, `stream ${earlier.index + 1} is connected`);
      } else {
        // S0-4 / S0-5: keep this one; close everything else (earlier ones that did not connect,
        // later ones that are no longer needed).
        for (const x of this.streams) if (x !== s) this.closeStream(x, `stream ${s.index + 1} connected`);
      }
    }
    this.reweigh();
  }

  private endpointLost(s: Stream, p: Path, why: string): void {
    if (this.closed || s.endpoint !== p) return;
    s.endpoint = undefined;
    s.state = 'failed';
    s.note = why;
    this.event(`stream ${s.index + 1} (${s.kind}) lost: ${why}`);
    this.reweigh();
  }

  private closeStream(s: Stream, why: string): void {
    if (s.state === 'closed' || s.state === 'failed' || s.state === 'placeholder') {
      if (s.state === 'placeholder' && s.note === undefined) s.note = `never started: ${why}`;
      return;
    }
    const p = s.endpoint;
    s.endpoint = undefined;
    s.state = 'closed';
    s.note = why;
    p?.close();
    this.event(`stream ${s.index + 1} (${s.kind}) closed: ${why}`);
  }

  private reweigh(): void {
    const connected = this.streams.map((s) => s.state === 'connected');
    for (const s of this.streams) s.weight = streamWeight(s.index, connected, this.opts.weights);
    const w = this.streams.filter((s) => s.weight > 0).map((s) => `stream ${s.index + 1} (${s.kind}) = ${s.weight}`);
    if (w.length > 0) this.event(`weights: ${w.join(', ')}`);
  }

  /** The connected stream of the highest weight. */
  private best(): Stream | undefined {
    let best: Stream | undefined;
    for (const s of this.streams) if (s.state === 'connected' && (!best || s.weight > best.weight)) best = s;
    return best;
  }

  private trickle(d: Buffer): void {
    const now = this.clock.nowUs();
    for (const s of this.streams) {
      if (s.state === 'open' && s.endpoint && now - s.lastTrickleUs >= TRICKLE_US) {
        s.lastTrickleUs = now;
        s.endpoint.send(d);
      }
    }
  }

  // ---- S0-8 ---------------------------------------------------------------------------------

  private scheduleTick(): void {
    if (this.closed) return;
    const every = Math.max(1000, Math.min(this.anomalyUs / 4, 250_000));
    this.tickTimer = this.clock.setTimer(every, () => {
      this.checkAnomaly();
      this.scheduleTick();
    });
  }

  /** Since when the carrier has been abnormal, or undefined while it is fine (or still racing). */
  private abnormalSinceUs(): number | undefined {
    const everConnected = this.streams.filter((s) => Number.isFinite(s.lastAuthenticUs));
    if (everConnected.length > 0) {
      const lastGood = Math.max(...everConnected.map((s) => s.lastAuthenticUs));
      const alive = this.streams.some((s) => s.state === 'connected');
      // A connected stream is abnormal once it has been silent; a lost one is abnormal outright.
      return alive ? lastGood : Math.min(lastGood, this.clock.nowUs());
    }
    // Nothing connected this round: abnormal once the whole cascade has been started.
    return this.lastStageUs;
  }

  private checkAnomaly(): void {
    if (this.closed) return;
    const since = this.abnormalSinceUs();
    if (since === undefined) return;
    const now = this.clock.nowUs();
    if (now - since > this.anomalyUs) {
      const ms = Math.round((now - since) / 1000);
      this.event(`abnormal for ${ms} ms (> ${this.opts.anomalyThresholdMs} ms): rerunning the procedure`);
      this.log.warn({ carrier: this.opts.name, abnormalMs: ms, round: this.round }, 'transport racing: re-establishing');
      this.stageTimer?.cancel();
      for (const s of this.streams) this.closeStream(s, 're-establishing');
      this.newRound();
    }
  }

  private event(text: string): void {
    const e = { atMs: Math.round((this.clock.nowUs() - this.createdUs) / 1000), round: this.round, event: text };
    this.eventLog.push(e);
    if (this.eventLog.length > MAX_EVENTS) this.eventLog.shift();
    this.log.info({ carrier: this.opts.name, round: this.round }, `racing: ${text}`);
  }
}
