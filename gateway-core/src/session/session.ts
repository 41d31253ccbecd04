// One session: the edge and the cloud each hold one per edge, with the same code. It ties the
// paths, the scheduler and the receiver together:
//
//   send:    IP packet -> data sequence -> scheduler picks a path -> seal -> path.send
//   receive: datagram -> open (auth) -> replay check -> ack/probe/data -> reorder -> deliver
import { type Clock, wireTime } from '../clock.js';
import { SessionCodec } from '../wire/codec.js';
import { DropCounters } from '../wire/drops.js';
import { DATA_OVERHEAD, Flags, PacketType } from '../wire/header.js';
import type { Path } from '../path/path.js';
import { PathState, type PathStateName } from './path-state.js';
import { SessionTimers } from './timers.js';
import { ReorderBuffer } from '../receive/reorder.js';
import type { PathView, Scheduler } from '../schedule/scheduler.js';
import { silentLogger, type Logger } from '../log.js';

/** A path is "active" while it sent or received data this recently. */
const ACTIVE_US = 1_000_000;
/** Probe cadence of a path that carries traffic but has gone quiet. */
const SUSPECT_PROBE_US = 50_000;
/** A down path is re-probed this often for REPROBE_FAST_FOR_US, then at the keepalive rate. */
const REPROBE_FAST_US = 100_000;
const REPROBE_FAST_FOR_US = 10_000_000;

export interface SessionOptions {
  sessionId: number;
  sendKey: Buffer;
  recvKey: Buffer;
  /** Path names in path-id order (the edge's carrier inventory). */
  pathNames: string[];
  clock: Clock;
  scheduler: Scheduler;
  keepaliveMs: number;
  ackIntervalMs: number;
  ackEveryPackets: number;
  pathDeadMs: number;
  reorder: { holdMs: number; maxPackets: number; maxBytes: number };
  replayWindow: number;
  /** Hand a merged, in-order IP packet to the host (TUN write). */
  deliver: (ip: Buffer) => void;
  logger?: Logger;
  /** Tick period of the session's timers, microseconds (default 5 ms). */
  tickUs?: number;
  /** Shared drop counters (a gateway counts drops of all its sessions in one place). */
  drops?: DropCounters;
}

export interface PathStatus {
  id: number;
  name: string;
  state: PathStateName;
  transport: string | null;
  txBytes: number;
  rxBytes: number;
  txPackets: number;
  rxPackets: number;
  txDataBytes: number;
  rxDataBytes: number;
  rttMs: number | null;
  minRttMs: number | null;
  rateMbps: number;
  inflightBytes: number;
  sendErrors: number;
}

interface SessionPath {
  state: PathState;
  transport: Path | undefined;
  view: PathView;
}

export class Session {
  readonly id: number;
  readonly drops: DropCounters;
  private readonly codec: SessionCodec;
  private readonly paths: SessionPath[];
  private readonly views: PathView[];
  private readonly reorder: ReorderBuffer;
  private readonly timers: SessionTimers;
  private readonly log: Logger;
  private dataSeq = 0;
  /** Data packets re-sent on another path after their path died. */
  retransmitted = 0;
  private closed = false;
  readonly startedUs: number;

  constructor(private readonly opts: SessionOptions) {
    this.id = opts.sessionId;
    this.drops = opts.drops ?? new DropCounters();
    this.log = opts.logger ?? silentLogger;
    this.codec = new SessionCodec(opts.sessionId, opts.sendKey, opts.recvKey);
    this.paths = opts.pathNames.map((name, id) => {
      const state = new PathState(id, name, opts.replayWindow);
      const sp: SessionPath = {
        state,
        transport: undefined,
        view: {
          id,
          name,
          usable: () => state.state === 'up' && sp.transport !== undefined,
          get deliveryRate() { return state.deliveryRate; },
          get srttUs() { return state.srttUs; },
          get minRttUs() { return state.minRttUs; },
          inflightBytes: () => state.inflightBytes(),
        },
      };
      return sp;
    });
    this.views = this.paths.map((p) => p.view);
    this.reorder = new ReorderBuffer(
      { holdUs: opts.reorder.holdMs * 1000, maxPackets: opts.reorder.maxPackets, maxBytes: opts.reorder.maxBytes },
      opts.deliver,
      this.drops,
      { watermarks: () => this.pathWatermarks() },
    );
    this.startedUs = opts.clock.nowUs();
    this.timers = new SessionTimers(opts.clock, opts.tickUs ?? 5000, { onTick: (now) => this.tick(now) });
    this.timers.start();
  }

  /** Attach (or replace) the transport of a path. */
  setTransport(pathId: number, transport: Path): void {
    const p = this.paths[pathId];
    if (!p) throw new Error(`session ${this.id}: no path ${pathId}`);
    p.transport = transport;
    transport.onError((err) => {
      p.state.counters.sendErrors++;
      this.drops.add('send-error');
      this.log.debug({ path: p.state.name, err: err.message }, 'path send error');
    });
    // Probe at once so the peer learns the path and we learn its delay.
    this.sendProbe(p, this.opts.clock.nowUs());
  }

  transportOf(pathId: number): Path | undefined {
    return this.paths[pathId]?.transport;
  }

  pathCount(): number {
    return this.paths.length;
  }

  /** Send one IP packet to the peer. Returns false when it was dropped (counted). */
  send(ip: Buffer): boolean {
    if (this.closed) return false;
    return this.sendData(ip, ++this.dataSeq, 0, undefined);
  }

  /** Schedule and send one data packet; `avoid` is a path that must not carry it (it just died). */
  private sendData(ip: Buffer, dataSeq: number, flags: number, avoid: number | undefined): boolean {
    const views = avoid === undefined ? this.views : this.views.filter((v) => v.id !== avoid);
    const path = this.opts.scheduler.pick(views, ip.length + DATA_OVERHEAD);
    if (!path) {
      this.drops.add('no-path');
      return false;
    }
    const p = this.paths[path.id] as SessionPath;
    const now = this.opts.clock.nowUs();
    const pathSeq = p.state.nextSeq(ip.length + DATA_OVERHEAD, now);
    const dg = this.codec.encodeData(path.id, pathSeq, flags, wireTime(now), dataSeq, ip);
    p.state.counters.txDataBytes += ip.length;
    p.state.lastDataSendUs = now;
    if (p.state.expectSinceUs < 0) p.state.expectSinceUs = now;
    p.state.keepForRetransmit(pathSeq, dataSeq, ip);
    if (!(p.transport as Path).send(dg)) {
      p.state.counters.sendErrors++;
      this.drops.add('send-error');
      return false;
    }
    return true;
  }

  /**
   * S2-10 on failure: what the dead path had in flight is re-sent at once on the others, with the
   * same data sequence (the receiver drops whichever copy comes second).
   */
  private retransmitFrom(p: SessionPath): number {
    const unacked = p.state.takeUnacked();
    let n = 0;
    for (const u of unacked) if (this.sendData(u.ip, u.dataSeq, Flags.Retransmit, p.state.id)) n++;
    this.retransmitted += n;
    return n;
  }

  /**
   * Process one datagram that arrived for this session. `transport` is the path object it came
   * through when the receiver knows it (edge); `learn` lets the cloud attach or move a path to
   * the sender's address once the datagram is authenticated.
   */
  receive(datagram: Buffer, learn?: (pathId: number, current: Path | undefined) => Path | undefined): void {
    if (this.closed) return;
    const r = this.codec.decode(datagram);
    if (!r.ok) {
      this.drops.add(r.reason);
      return;
    }
    const pkt = r.packet;
    const p = this.paths[pkt.header.pathId];
    if (!p) {
      this.drops.add('unknown-path');
      return;
    }
    const now = this.opts.clock.nowUs();
    if (!p.state.onReceive(pkt.header.pathSeq, pkt.ts1, datagram.length, now)) {
      this.drops.add('replayed');
      return;
    }
    if (learn) {
      const t = learn(pkt.header.pathId, p.transport);
      if (t && t !== p.transport) this.setTransport(pkt.header.pathId, t);
    }
    if (p.state.state !== 'up') {
      this.log.info({ session: this.id, path: p.state.name }, p.state.state === 'down' ? 'path recovered' : 'path up');
      p.state.state = 'up';
    }
    switch (pkt.type) {
      case PacketType.Ack:
        p.state.onAck(pkt.ack, pkt.ts1, now);
        p.state.observeWatermark(pkt.ack.watermark);
        this.reorder.flush(now);
        break;
      case PacketType.Probe:
        p.state.observeWatermark(pkt.watermark);
        this.sendAck(p, now);
        this.reorder.flush(now);
        break;
      case PacketType.Data: {
        p.state.counters.rxDataBytes += pkt.payload.length;
        p.state.lastDataRecvUs = now;
        p.state.observeWatermark(pkt.dataSeq);
        if (p.state.ackPendingPackets++ === 0) p.state.ackPendingSinceUs = now;
        if (p.state.ackPendingPackets >= this.opts.ackEveryPackets) this.sendAck(p, now);
        this.reorder.push(pkt.dataSeq, pkt.payload, now);
        break;
      }
    }
  }

  /** Watermarks of the paths that could still be carrying data to us (see receive/reorder). */
  private pathWatermarks(): number[] {
    const out: number[] = [];
    for (const p of this.paths) if (p.state.state === 'up') out.push(p.state.watermark);
    return out;
  }

  private sendAck(p: SessionPath, now: number): void {
    if (!p.transport) return;
    p.state.ackPendingPackets = 0;
    // Acks are not counted in flight: the peer does not ack acks, and they must not make this
    // path look busy to the scheduler.
    const seq = p.state.nextSeq(0, now);
    const dg = this.codec.encodeAck(p.state.id, seq, wireTime(now), p.state.ackBody(this.dataSeq));
    p.state.counters.txBytes += dg.length;
    p.state.counters.acksSent++;
    if (!p.transport.send(dg)) p.state.counters.sendErrors++;
  }

  private sendProbe(p: SessionPath, now: number): void {
    if (!p.transport) return;
    const seq = p.state.nextSeq(0, now);
    p.state.lastProbeUs = now;
    if (p.state.expectSinceUs < 0) p.state.expectSinceUs = now;
    const dg = this.codec.encodeProbe(p.state.id, seq, wireTime(now), this.dataSeq);
    p.state.counters.probesSent++;
    p.state.counters.txBytes += dg.length;
    if (!p.transport.send(dg)) p.state.counters.sendErrors++;
  }

  /**
   * Liveness, in-band (no route changes): a path that carries traffic hears acks every few
   * milliseconds, so silence means trouble. After a third of the dead time it is probed every
   * 50 ms; after `pathDeadMs` (or 1.5 x its smoothed delay plus the ack interval, if longer)
   * with a packet unanswered, it is declared down and what it had in flight moves to the other
   * paths. An idle path is only probed every `keepaliveMs` and declared down after three
   * unanswered keepalives. A down path is probed every 100 ms for ten seconds, then at the
   * keepalive rate, and comes back with the first packet heard on it.
   */
  private tick(now: number): void {
    const keepaliveUs = this.opts.keepaliveMs * 1000;
    const ackUs = this.opts.ackIntervalMs * 1000;
    for (const p of this.paths) {
      const s = p.state;
      if (s.ackPendingPackets > 0 && now - s.ackPendingSinceUs >= ackUs) this.sendAck(p, now);
      if (!p.transport) continue;
      const heard = Number.isFinite(s.lastRecvUs) ? s.lastRecvUs : this.startedUs;
      const silent = now - heard;
      const waiting = s.expectSinceUs >= 0 ? now - s.expectSinceUs : 0;
      if (s.state === 'up') {
        const active = now - s.lastDataSendUs < ACTIVE_US || now - s.lastDataRecvUs < ACTIVE_US;
        const deadUs = Math.max(this.opts.pathDeadMs * 1000, 1.5 * s.srttUs + ackUs);
        if (active) {
          if (silent > deadUs / 3 && now - s.lastProbeUs >= SUSPECT_PROBE_US) this.sendProbe(p, now);
          if (silent > deadUs && waiting > Math.min(deadUs, Math.max(SUSPECT_PROBE_US * 2, 1.5 * s.srttUs))) this.pathDown(p, now, silent);
        } else {
          if (now - s.lastSendUs >= keepaliveUs) this.sendProbe(p, now);
          if (silent > 3 * keepaliveUs && waiting > deadUs) this.pathDown(p, now, silent);
        }
      } else {
        const every = s.state === 'down' && now - s.downSinceUs < REPROBE_FAST_FOR_US ? Math.min(REPROBE_FAST_US, keepaliveUs) : keepaliveUs;
        if (now - s.lastProbeUs >= every) this.sendProbe(p, now);
      }
    }
    this.reorder.flush(now);
  }

  private pathDown(p: SessionPath, now: number, silentUs: number): void {
    p.state.state = 'down';
    p.state.downSinceUs = now;
    const moved = this.retransmitFrom(p);
    this.log.warn({ session: this.id, path: p.state.name, silentMs: Math.round(silentUs / 1000), resent: moved }, 'path down: nothing heard');
  }

  status(): PathStatus[] {
    return this.paths.map((p) => {
      const s = p.state;
      return {
        id: s.id,
        name: s.name,
        state: s.state,
        transport: p.transport?.description ?? null,
        txBytes: s.counters.txBytes,
        rxBytes: s.counters.rxBytes,
        txPackets: s.counters.txPackets,
        rxPackets: s.counters.rxPackets,
        txDataBytes: s.counters.txDataBytes,
        rxDataBytes: s.counters.rxDataBytes,
        rttMs: s.srttUs > 0 ? s.srttUs / 1000 : null,
        minRttMs: Number.isFinite(s.minRttUs) ? s.minRttUs / 1000 : null,
        rateMbps: s.rateMbps(),
        inflightBytes: s.inflightBytes(),
        sendErrors: s.counters.sendErrors,
      };
    });
  }

  reorderStats() {
    return { ...this.reorder.stats };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.timers.stop();
    for (const p of this.paths) p.transport?.close();
  }
}
