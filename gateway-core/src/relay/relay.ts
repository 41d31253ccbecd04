// The TCP relay (split TCP): the edge terminates each client TCP connection to a multipath
// destination in its own kernel (relay/net.ts), the cloud opens the connection to the server,
// and the bytes between them travel as relay frames (relay/frame.ts) through the session, over
// every carrier at once. Why: an end host's TCP sending through a multipath tunnel sizes its
// window by the fastest carrier's round trip and probes for more rate slowly; it leaves the
// aggregate idle (bench/README.md, "Issue 4"). The relay's sender is the gateway itself: it
// keeps the session's queue topped up (Session.onRoom), so the carriers run at what the
// engine measures they carry, from the first round trip, and each carrier keeps its own
// congestion control (S3). The end hosts' TCP only ever sees a short, clean LAN or data-center
// hop.
//
// One TcpRelay per session, symmetric but for who opens: the edge opens streams (OPEN on its
// first frames), the cloud dials the destination. Per-stream state is in relay/stream.ts; all
// the relay's timers are the one tick here.
import type { Clock, TimerHandle } from '../clock.js';
import type { DropCounters } from '../wire/drops.js';
import type { Logger } from '../log.js';
import type { SendOptions } from '../session/session.js';
import {
  decodeFrame, encodeAck, encodeReset, FrameFlags, FrameKind, RELAY_OVERHEAD, reverse, type FlowAddress, type ResetReason,
} from './frame.js';
import { RelayStream, type RelayConn } from './stream.js';

/** What the relay needs of its session (Session implements it). */
export interface RelaySessionPort {
  /** Session.send: every frame is `keep` (this layer repairs its own losses); RESETs and reports of lasting holes are `urgent`. */
  send(ip: Buffer, how: SendOptions): boolean;
  backlogBytes(): number;
  sendRateBytesPerSec(): number;
  onRoom(fn: (() => void) | undefined): void;
}

/** What the local connection's owner tells the relay (relay/net.ts wires a node:net socket to it). */
export interface RelayConnEvents {
  data(b: Buffer): void;
  end(): void;
  drain(): void;
  /** The connection is gone; `why` when it failed or was reset (the peer is told unless the stream had finished). */
  closed(why?: ResetReason): void;
}

/**
 * Events for a socket that exists before its stream does (the stream needs the socket, the
 * socket needs somewhere to send its events): they reach `target` once it is set, and
 * nothing before (a socket says nothing before it is given back to the event loop).
 */
export class LateEvents implements RelayConnEvents {
  target: RelayConnEvents | undefined;
  data(b: Buffer): void { this.target?.data(b); }
  end(): void { this.target?.end(); }
  drain(): void { this.target?.drain(); }
  closed(why?: ResetReason): void { this.target?.closed(why); }
}

export interface RelaySettings {
  /** Per stream and direction: bytes sent and not yet acknowledged, or received out of order. */
  windowBytes: number;
  /** Streams one session may have open at once; more are refused. */
  maxStreams: number;
  /** A stream whose peer acknowledges nothing for this long while data is outstanding is reset. */
  deadPeerMs: number;
}

export const DEFAULT_RELAY_SETTINGS: RelaySettings = { windowBytes: 4 << 20, maxStreams: 4096, deadPeerMs: 60_000 };

export interface RelayOptions extends RelaySettings {
  role: 'edge' | 'cloud';
  session: RelaySessionPort;
  clock: Clock;
  /** The largest IP packet the session carries now (the tunnel MTU). */
  mtu: () => number;
  /**
   * Cloud: open the connection to `to` for a new stream. Returns the connection (connecting;
   * writes before it connects are buffered) or why it is refused.
   */
  dial?: (to: { address: string; port: number }, events: RelayConnEvents) => RelayConn | ResetReason;
  drops: DropCounters;
  log: Logger;
}

const TICK_US = 5_000;
/** Closed stream ids are remembered this long: a late frame of one is answered, never reopened. */
const CLOSED_KEEP_US = 120_000_000;
/** Ids more than this far below the highest opened one are not opened again (the memory above is bounded). */
const ID_HORIZON = 65_536;
/** The session's queue is topped up to this much sending time (bounded below and above). */
const BACKLOG_US = 25_000;
const MIN_BACKLOG = 64 * 1024;
const MAX_BACKLOG = 2 << 20;

/**
 * How frames go into the session. None expires in its queue: a frame dropped there is a hole
 * this layer repairs only after the slowest round trip (in the failover namespace test, frames
 * that waited while a dead carrier was found out expired there and were repaired 250 ms later).
 * A RESET, and an ACK repeating a hole that stays open (RelayStream.lastFrame 'urgent'), jump the
 * queue and go on more than one carrier where that pays: a carrier that died unnoticed
 * swallowed the reports the peer's repairs wait on for 200 ms.
 */
const KEEP: SendOptions = { keep: true };
const URGENT: SendOptions = { keep: true, urgent: true };
/**
 * A re-sent segment (RelayStream.lastFrame 'repair') jumps the queue, and is the first thing the
 * session re-sends when its carrier goes out of service: repairs sent into a carrier that was
 * dying came back last, after its other few hundred kilobytes (the failover test's gaps of
 * 230-300 ms). Once only: copies of every repair cost three-lte-multi 0.02-0.03 of efficiency.
 */
const REPAIR: SendOptions = { keep: true, jump: true };
const BY_FRAME: Record<RelayStream['lastFrame'], SendOptions> = { plain: KEEP, urgent: URGENT, repair: REPAIR };

interface Closed { untilUs: number; reset: boolean; out: FlowAddress; rcv: number }

export interface TcpRelayStats {
  active: number;
  opened: number;
  closed: number;
  resets: Partial<Record<ResetReason, number>>;
  bytesSent: number;
  bytesResent: number;
  bytesReceived: number;
  heldBytes: number;
}

function ipv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export class TcpRelay {
  private readonly streams = new Map<number, RelayStream>();
  private readonly closedIds = new Map<number, Closed>();
  /** Streams with a frame to send, in round-robin order. */
  private readonly ready = new Set<RelayStream>();
  private nextId = 1;
  private highestOpened = 0;
  private filling = false;
  private timer: TimerHandle | undefined;
  private stopped = false;
  private readonly totals = { opened: 0, closed: 0, bytesSent: 0, bytesResent: 0, bytesReceived: 0 };
  private readonly resets: Partial<Record<ResetReason, number>> = {};

  constructor(private readonly o: RelayOptions) {
    o.session.onRoom(() => this.fill());
    this.arm();
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = this.o.clock.setTimer(TICK_US, () => {
      this.tick();
      this.arm();
    });
  }

  /**
   * Edge: a client connection to `addr` (client -> server) was accepted. Returns the events
   * its socket feeds, or undefined when refused (too many streams: reset the socket).
   */
  accept(addr: FlowAddress, conn: RelayConn): RelayConnEvents | undefined {
    if (this.stopped || this.streams.size >= this.o.maxStreams) {
      this.countReset('limit');
      return undefined;
    }
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    const s = new RelayStream(id, addr, conn, this.o, true, this.o.clock.nowUs());
    this.add(s);
    return this.eventsFor(s);
  }

  private add(s: RelayStream): void {
    this.streams.set(s.id, s);
    this.totals.opened++;
    this.ready.add(s);
    this.fill();
  }

  private eventsFor(s: RelayStream): RelayConnEvents {
    return {
      data: (b) => {
        s.onLocalData(b);
        this.kick(s);
      },
      end: () => {
        s.onLocalEnd();
        this.kick(s);
      },
      drain: () => {
        s.onLocalDrain();
        this.kick(s);
      },
      closed: (why) => {
        if (this.streams.get(s.id) !== s) return;
        // A clean close comes after both FINs went through the socket; what may remain is the
        // peer's ACK of ours, and the tick removes the stream once it came (or resets it when
        // the peer stays silent, deadPeerMs). A close with an error is a reset both ways.
        if (why !== undefined) this.resetStream(s, why, true);
        else if (s.done()) this.remove(s, false);
      },
    };
  }

  private kick(s: RelayStream): void {
    if (this.streams.get(s.id) !== s) return;
    this.ready.add(s);
    this.fill();
  }

  /** A relay frame that arrived through the session. */
  receive(ip: Buffer): void {
    if (this.stopped) return;
    const f = decodeFrame(ip);
    if (typeof f === 'string') {
      this.o.drops.add('relay-malformed');
      this.o.log.debug({ why: f }, 'relay frame dropped');
      return;
    }
    const now = this.o.clock.nowUs();
    const s = this.streams.get(f.stream);
    if (s) {
      // A frame must come from the connection the stream relays, in the peer's direction.
      const back = reverse(s.out);
      if (f.addr.src !== back.src || f.addr.dst !== back.dst || f.addr.sport !== back.sport || f.addr.dport !== back.dport) {
        this.o.drops.add('relay-malformed');
        return;
      }
      switch (f.kind) {
        case FrameKind.Data:
          if (!s.onData(f.offset, f.data, (f.flags & FrameFlags.Fin) !== 0, now)) this.o.drops.add('relay-window');
          if (f.flags & FrameFlags.Open) s.requestAck();
          break;
        case FrameKind.Ack:
          s.onAck(f.offset, (f.flags & FrameFlags.Fin) !== 0, f.window, f.ranges, now);
          break;
        case FrameKind.Reset:
          this.resetStream(s, f.reason, false);
          return;
      }
      this.kick(s);
      return;
    }
    if (f.kind === FrameKind.Reset) return;
    const closed = this.closedIds.get(f.stream);
    if (closed) {
      // A late frame of a finished stream: tell the peer again how it ended.
      if (f.kind === FrameKind.Data) this.sendFrame(closed.reset ? encodeReset(closed.out, f.stream, 'closed') : encodeAck(closed.out, f.stream, FrameFlags.Fin, closed.rcv, 0, []), closed.reset ? URGENT : KEEP);
      return;
    }
    if (f.kind !== FrameKind.Data) return;
    if (this.o.role !== 'cloud' || (f.flags & FrameFlags.Open) === 0 || f.stream + ID_HORIZON <= this.highestOpened) {
      this.sendFrame(encodeReset(reverse(f.addr), f.stream, 'unknown'), URGENT);
      return;
    }
    this.open(f.stream, f.addr, f, now);
  }

  /** Cloud: the edge's first frame of a new stream. */
  private open(id: number, addr: FlowAddress, first: { offset: number; data: Buffer; flags: number }, now: number): void {
    const out = reverse(addr);
    const refuse = (why: ResetReason): void => {
      this.countReset(why);
      this.rememberClosed(id, out, true, 0, now);
      this.sendFrame(encodeReset(out, id, why), URGENT);
    };
    if (this.streams.size >= this.o.maxStreams) return refuse('limit');
    if (!this.o.dial) return refuse('refused');
    this.highestOpened = Math.max(this.highestOpened, id);
    const events = new LateEvents();
    const conn = this.o.dial({ address: ipv4(addr.dst), port: addr.dport }, events);
    if (typeof conn === 'string') return refuse(conn);
    const stream = new RelayStream(id, out, conn, this.o, false, now);
    events.target = this.eventsFor(stream);
    this.o.log.debug({ stream: id, to: `${ipv4(addr.dst)}:${addr.dport}`, from: `${ipv4(addr.src)}:${addr.sport}` }, 'relay stream opened');
    stream.onData(first.offset, first.data, (first.flags & FrameFlags.Fin) !== 0, now);
    stream.requestAck();
    this.add(stream);
  }

  private sendFrame(frame: Buffer, how: SendOptions): void {
    this.o.session.send(frame, how);
  }

  private countReset(why: ResetReason): void {
    this.resets[why] = (this.resets[why] ?? 0) + 1;
  }

  /** Abort a stream: reset its local connection and, when `tellPeer`, the peer's. */
  private resetStream(s: RelayStream, why: ResetReason, tellPeer: boolean): void {
    this.countReset(why);
    if (tellPeer) this.sendFrame(encodeReset(s.out, s.id, why), URGENT);
    s.conn.reset();
    this.remove(s, true);
  }

  private remove(s: RelayStream, reset: boolean): void {
    if (this.streams.get(s.id) !== s) return;
    this.streams.delete(s.id);
    this.ready.delete(s);
    this.totals.closed++;
    this.totals.bytesSent += s.bytesSent;
    this.totals.bytesResent += s.bytesResent;
    this.totals.bytesReceived += s.bytesReceived;
    this.rememberClosed(s.id, s.out, reset, s.stats().received, this.o.clock.nowUs());
  }

  private rememberClosed(id: number, out: FlowAddress, reset: boolean, rcv: number, now: number): void {
    this.closedIds.set(id, { untilUs: now + CLOSED_KEEP_US, reset, out, rcv });
    if (this.closedIds.size > ID_HORIZON) {
      const oldest = this.closedIds.keys().next();
      if (!oldest.done) this.closedIds.delete(oldest.value);
    }
  }

  /** How much the session's queue may hold before the relay waits for room. */
  private backlogTarget(): number {
    const want = this.o.session.sendRateBytesPerSec() * (BACKLOG_US / 1e6);
    return Math.min(MAX_BACKLOG, Math.max(MIN_BACKLOG, want));
  }

  /** Send what the streams have, round robin, while the session's queue is short. ACKs always go. */
  private fill(): void {
    if (this.filling || this.stopped) return;
    this.filling = true;
    try {
      const now = this.o.clock.nowUs();
      const maxPayload = Math.max(64, this.o.mtu() - RELAY_OVERHEAD);
      const target = this.backlogTarget();
      let progress = true;
      while (progress && this.ready.size > 0) {
        progress = false;
        const room = this.o.session.backlogBytes() < target;
        for (const s of this.ready) {
          const frame = s.nextFrame(now, maxPayload, room);
          if (frame === undefined) {
            // Nothing at all to send (window closed, no data): out until kicked. Without room,
            // a stream keeps its place for when the queue drains.
            if (room) this.ready.delete(s);
            continue;
          }
          // Back of the line: one frame per stream per turn.
          this.ready.delete(s);
          this.sendFrame(frame, BY_FRAME[s.lastFrame]);
          if (s.wantsToSend(now)) this.ready.add(s);
          progress = true;
          break;
        }
      }
    } finally {
      this.filling = false;
    }
  }

  private tick(): void {
    const now = this.o.clock.nowUs();
    for (const s of this.streams.values()) {
      if (s.done()) {
        this.remove(s, false);
        continue;
      }
      if (s.stalledForUs(now) > this.o.deadPeerMs * 1000) {
        this.o.log.info({ stream: s.id }, 'relay stream reset: the peer acknowledged nothing');
        this.resetStream(s, 'idle', true);
        continue;
      }
      if (s.tick(now)) this.ready.add(s);
    }
    for (const [id, c] of this.closedIds) {
      if (c.untilUs > now) break;
      this.closedIds.delete(id);
    }
    this.fill();
  }

  stats(): TcpRelayStats {
    let held = 0;
    const t = { ...this.totals };
    for (const s of this.streams.values()) {
      held += s.heldBytes();
      t.bytesSent += s.bytesSent;
      t.bytesResent += s.bytesResent;
      t.bytesReceived += s.bytesReceived;
    }
    return { active: this.streams.size, opened: t.opened, closed: t.closed, resets: { ...this.resets }, bytesSent: t.bytesSent, bytesResent: t.bytesResent, bytesReceived: t.bytesReceived, heldBytes: held };
  }

  /** The session ended: every relayed connection is reset (its bytes cannot reach the peer any more). */
  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.timer?.cancel();
    this.o.session.onRoom(undefined);
    for (const s of [...this.streams.values()]) {
      s.conn.reset();
      this.remove(s, true);
    }
  }
}
