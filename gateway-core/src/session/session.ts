// One session: the edge and the cloud each hold one per edge, with the same code. It ties the
// paths, the scheduler and the receiver together:
//
//   send:    IP packet -> classify (flow, user, class) -> queue (stage 3 urgent / stage 1 users)
//            -> a path with room (its controller) -> stage 2: pinned path (2a) or the class's
//            scheduler (2b; several paths for important packets) -> data sequence -> seal -> send
//   receive: datagram -> open (auth) -> replay check -> ack/probe/data -> reorder -> deliver
import { type Clock, wireTime } from '../clock.js';
import { SessionCodec } from '../wire/codec.js';
import { DropCounters } from '../wire/drops.js';
import { HeaderCompressor, HeaderDecompressor } from '../wire/compress.js';
import { DATA_OVERHEAD, Flags, PacketType, TIER_SHIFT, type AckBody } from '../wire/header.js';
import type { Path } from '../path/path.js';
import { PathState, type PathStateName } from './path-state.js';
import { SessionTimers } from './timers.js';
import { ReorderBuffer } from '../receive/reorder.js';
import { ipFlowHash } from '../receive/flow-hash.js';
import { DelaySpread } from '../receive/delay-spread.js';
import type { PathView, Scheduler } from '../schedule/scheduler.js';
import type { SelectionPolicy } from '../redundant/selection.js';
import { DEFAULT_CLASS_RULES, classify, packetMeta, type ClassRule, type TrafficClass } from '../schedule/classify.js';
import { FlowTable, type FlowState } from '../schedule/flows.js';
import { FlowChain } from '../schedule/flow-chain.js';
import { expectedCompletionUs } from '../schedule/utility.js';
import { PacketFifo, SendQueue, type QueuedPacket } from '../schedule/queue.js';
import { InflightCap, S3PathController, type PathController } from './path-controller.js';
import { S3Controller } from '../congestion/s3.js';
import { LinkPacer, LinkSelector, RedundantReceiver, RedundantSender } from '../redundant/index.js';
import { silentLogger, type Logger } from '../log.js';
import { PROBE_MIN_LEN } from '../wire/header.js';
import type { SessionPmtuHooks } from '../path/pmtu.js';
import { TIER_RANK, allowedPaths, validatePathPolicy, type PathPolicy, type PolicyPathInfo } from './path-policy.js';
import { CapUsage } from './cap-usage.js';

/** The peer's re-sent copies (S2-10) are still coming while one arrived this recently (Session.pathWatermarks). */
const COPIES_COMING_US = 50_000;
/** A path that fell silent was carrying data if some arrived this shortly before its last packet. */
const DATA_BEFORE_SILENCE_US = 100_000;
/** A path is "active" while it sent or received data this recently. */
const ACTIVE_US = 1_000_000;
/** Probe cadence of a path that carries traffic but has gone quiet. */
const SUSPECT_PROBE_US = 50_000;
/**
 * A path's data is acknowledged every `ackEveryPackets` packets, but not more often than this
 * (the ack interval still bounds how long an ack waits): at most 250 acks a second per path,
 * 18.5 KB/s with their headers. Why: the acks of a fast downlink queue on a weak uplink. In the
 * three-lte bench the highway carrier's downlink ran at 44 Mbit/s (490 acks/s every 8 packets,
 * 36 KB/s) while its uplink fell to 0.2-0.5 Mbit/s (25-60 KB/s); 25-32 KB of acks queued on it,
 * the cloud's in-flight cap filled with data the edge had, and the downlink idled (1.4-2.1 MB of
 * capacity lost per run). Interleaved braid-only three-lte-multi runs: 0.885 without the gap,
 * 0.905 with 5 ms, 0.904 with 4 ms (bench/README.md); 5 ms also thinned the acks of the 16 Mbit/s
 * carriers of session.test.ts's S2-10 case enough to call one suspect.
 */
const ACK_MIN_GAP_US = 4_000;
/** A down path is re-probed this often for REPROBE_FAST_FOR_US, then at the keepalive rate. */
const REPROBE_FAST_US = 100_000;
const REPROBE_FAST_FOR_US = 10_000_000;
/**
 * A busy path whose answers stop for this many times its longest recent gap between arrivals
 * (but at least QUIET_MIN_US) is suspect before a third of its dead time (Session.quietTooLong).
 */
const QUIET_GAPS = 3;
const QUIET_MIN_US = 40_000;
/** Margin on top of what a full path needs before a path that still answers counts as stalled. */
const STALL_MARGIN_US = 50_000;

/** The queue a full path may hold before it counts as stalled: its base round trip, at least 60 ms. */
const STALL_QUEUE_MIN_US = 60_000;

/**
 * How old the oldest packet in flight on a path with base round trip `minRttUs` may get
 * (Session.stalled): the round trip plus max(minRtt, 60 ms) of queue, a quarter more for a
 * rate over-estimated by that much, and a margin for acks and ticks. Not the other paths'
 * delays: under TCP load they are inflated by their own queues, and a rule that waited for them
 * noticed a stalled carrier only after TCP had timed out.
 *
 * The queue here is wider than the one the default cap allows (max(minRtt / 2, 60 ms),
 * path-controller queueAllowanceUs): a carrier that just took over a blacked-out one's load
 * queues more than the cap means to until its rate estimate settles. Derived from the cap's
 * allowance, the rule called the second and third carriers of blackout-best stalled 184 and
 * 211 times in two runs, every re-send needless (the carrier delivered the original), and
 * efficiency fell to 0.876 and 0.891; with this margin 0.896 and 0.895 (0.894 and 0.899 before
 * the cap changed; braid-only runs, 2026-11-24, bench/README.md).
 */
function stallAfterUs(minRttUs: number): number {
  return 1.25 * (minRttUs + Math.max(minRttUs, STALL_QUEUE_MIN_US)) + STALL_MARGIN_US;
}
/** A flow's header context is announced for the slowest path's round trip plus this before packets rely on it. */
const COMPRESS_SETTLE_MARGIN_US = 50_000;
/** Session.spare is cleared of what no longer needs sending this often ... */
const SPARE_PRUNE_US = 25_000;
/** ... and a re-send that waited this long for room goes to the front of the queue. */
const SPARE_MAX_WAIT_US = 250_000;
/** Why a path's packets went again on the others (Session.retransmittedBy). */
type RetransmitReason = 'down' | 'suspect' | 'stalled';
/** S2-8 importance of a cross-path retransmission: large enough to duplicate it. */
const RETRANSMIT_F = 1000;
/** Data-cap counts are written to their state file at most this often. */
const CAP_SAVE_US = 1_000_000;
/** S2-7 default: "the first 330 KB of a user flow complete half of user requests". */
export const DEFAULT_PIN_BYTES = 330 * 1024;

export interface SessionOptions {
  sessionId: number;
  sendKey: Buffer;
  recvKey: Buffer;
  /** Path names in path-id order (the edge's carrier inventory). */
  pathNames: string[];
  clock: Clock;
  /** The path algorithm (stage 2b) for bulk traffic, and for every class not in `schedulers`. */
  scheduler: Scheduler;
  /** Per traffic class algorithms (S2-11), e.g. { interactive: utility, realtime: utility }. */
  schedulers?: Partial<Record<TrafficClass, Scheduler>>;
  /** The algorithm for important packets (F > 0: cross-path retransmissions); one with pickSet duplicates them. */
  retransmitScheduler?: Scheduler;
  /** S2-7: a flow's first bytes stay on one path up to this many bytes (0 = no pinning). */
  pinBytes?: number;
  /** Traffic-class rules tried before behaviour (ports, DSCP). */
  classRules?: readonly ClassRule[];
  /** Who a packet belongs to for stage 1 fairness (default: its source address). */
  userOf?: (src: number, dst: number, flow: string) => string;
  /** Users whose packets go first while they have any (S2-6). */
  privilegedUsers?: string[];
  /** Sender queue bounds. */
  queue?: { maxPackets: number; maxBytes: number; maxDelayMs: number };
  /** Per-path congestion controller: 's3' (delay-based, S3) or 'inflight-cap' (default), or a factory. */
  congestion?: 's3' | 'inflight-cap' | ((path: PathView) => PathController);
  /**
   * S4: real-time traffic (small UDP, voice and game ports, DSCP EF) goes through the redundant
   * low-latency class, sent on the n lowest-delay paths with NACK repair (default true).
   */
  lowLatency?: boolean;
  /**
   * Send TCP/IPv4 packets with their fixed header fields compressed (wire/compress: 21 bytes
   * less per packet). Default true; receiving compressed packets always works.
   */
  compressHeaders?: boolean;
  /** Link type of each path for S4 preferences (e.g. 'lte', 'nr', 'wlan5'); default 'cellular'. */
  pathTypes?: string[];
  keepaliveMs: number;
  ackIntervalMs: number;
  ackEveryPackets: number;
  pathDeadMs: number;
  reorder: { holdMs: number; maxPackets: number; maxBytes: number };
  /** Packets whose consumer puts them in order itself (receive/reorder ordersItself: the TCP relay's frames). */
  ordersItself?: (ip: Buffer) => boolean;
  replayWindow: number;
  /** Hand a merged, in-order IP packet to the host (TUN write). */
  deliver: (ip: Buffer) => void;
  /** Path MTU discovery (path/pmtu.ts): told when paths go up or down and when a padded probe is answered. */
  pmtu?: SessionPmtuHooks;
  logger?: Logger;
  /** Tick period of the session's timers, microseconds (default 5 ms). */
  tickUs?: number;
  /** Shared drop counters (a gateway counts drops of all its sessions in one place). */
  drops?: DropCounters;
  /** Per-carrier tiers, data caps and latency cut-offs (session/path-policy); see setPathPolicy. */
  pathPolicy?: PathPolicy;
  /** Data-cap counts by carrier (the edge's state file); default: counted in memory. */
  capUsage?: CapUsage;
}

/** Scheduling knobs a policy replaces at run time (Session.setSchedulePolicy). */
export interface SchedulePolicy {
  scheduler: Scheduler;
  schedulers: Partial<Record<TrafficClass, Scheduler>>;
  retransmitScheduler: Scheduler;
  retransmitF: number;
  pinBytes: number;
  classRules: readonly ClassRule[];
  /** In the order they go first (S2-6). */
  privilegedUsers: string[];
  /** S2-4: packets per round-robin turn, by user (users not listed: 1). */
  userWeights?: readonly (readonly [string, number])[];
  preferences: Pick<SelectionPolicy, 'preferredTypes' | 'preferredMaxDelayUs' | 'services'>;
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
  /** Measured loss ratio (0..1); absent before the session exists. */
  lossRate?: number;
  /** The path's congestion controller state (S3-5 telemetry); absent before the session exists. */
  controller?: Record<string, number | string>;
  /** Path policy: the effective tier (the stricter of ours and the peer's; 'never' at the data cap). */
  tier?: string;
  /** Bytes counted against the carrier's data cap in this billing period. */
  capUsedBytes?: number;
  /** Acks for this path's data sent on another carrier while our sends on it were stalled (Session.ackCarrier). */
  acksRerouted?: number;
}

interface SessionPath {
  state: PathState;
  transport: Path | undefined;
  view: PathView;
  controller: PathController;
  /** Tier rank the peer advertises for this path (wire Flags.TierMask). */
  peerRank: number;
  /** Tier rank from our own policy, 3 (never) while the carrier is at its data cap. */
  localRank: number;
  /** Wire bytes (sent + received) already added to the carrier's data-cap count. */
  capCounted: number;
  /** The acks for this path's data go on another carrier now (Session.ackCarrier). */
  acksElsewhere: boolean;
}

/** How Session.send treats one packet beyond what it reads from the packet itself. */
export interface SendOptions {
  /**
   * Its sender re-sends what is lost and keeps its own backlog short (the TCP relay): it never
   * expires in the send queue. Dropped there for waiting, it only became a hole the sender
   * repaired a round trip or more later.
   */
  keep?: boolean;
  /**
   * Control the peer waits on (the relay's RESET, or its report of a hole that stays open): it
   * jumps the queue (S2-9) and has the importance of a cross-path retransmission (S2-8 with the
   * policy's retransmitF), so it goes on more than one path where that pays. One carrier that
   * died unnoticed then does not swallow it.
   */
  urgent?: boolean;
  /**
   * A repair its sender's stream waits on (the relay's re-sent segments): it jumps the queue
   * (S2-9) and, if its path goes out of service, is re-sent before the rest of what that path
   * held, but goes once (with loss on every carrier, copying each repair cost three-lte-multi
   * 0.02-0.03 of efficiency).
   */
  jump?: boolean;
}

export class Session {
  readonly id: number;
  readonly drops: DropCounters;
  private readonly codec: SessionCodec;
  private readonly paths: SessionPath[];
  private readonly views: PathView[];
  private readonly reorder: ReorderBuffer;
  /** One-way delay spread between the paths delivering data to us (receive/delay-spread). */
  private readonly spread = new DelaySpread();
  private readonly timers: SessionTimers;
  private readonly log: Logger;
  private dataSeq = 0;
  private readonly flows = new FlowTable(undefined, undefined, (f, now) => {
    if (f.hc) this.compressor?.release(f.hc, now);
  });
  /** TCP/IPv4 header compression of what we send (undefined: off), and of what the peer sends. */
  private readonly compressor: HeaderCompressor | undefined;
  private readonly decompressor = new HeaderDecompressor();
  /** How long a flow announces its header context before it is compressed (tick: the slowest path's round trip + 50 ms). */
  private compressSettleUs = 1_000_000;
  /** Each data packet's distance back to its flow's previous one (per-flow order at the peer). */
  private readonly chain = new FlowChain();
  private readonly queue: SendQueue;
  private pinBytes: number;
  private classRules: readonly ClassRule[];
  /** S2-8 importance of a cross-path retransmission (policy: schedule.retransmitF). */
  private retransmitF = RETRANSMIT_F;
  private readonly userOf: (src: number, dst: number, flow: string) => string;
  /** Packets sent as extra copies (S2-8 duplication of important packets). */
  redundantCopies = 0;
  private lowLatency: { selector: LinkSelector; sender: RedundantSender; receiver: RedundantReceiver } | undefined;
  /** Data packets re-sent on another path after their path died. */
  retransmitted = 0;
  /** The same by what its path was when they went again: down, suspect (silent) or stalled (slow). */
  readonly retransmittedBy: Record<RetransmitReason, number> = { down: 0, suspect: 0, stalled: 0 };
  /** Re-sends dropped unsent: their path acknowledged the first copy meanwhile. */
  retransmitSkipped = 0;
  /**
   * Re-sends of a stalled path's TCP-relay frames, sent only into room left once the queue is
   * empty and the relay has topped it up (S2-10 "moved to the front" is for a path that went
   * silent or died). A slow carrier still delivers them; their copies only pay where the other
   * carriers would otherwise idle (one flow, its window waiting for them). With several flows the
   * copies took room from new data and nearly every one reached the peer second: three-lte-multi
   * 0.84-0.86 with them at the front, 0.87-0.89 with none (three braid-only runs each).
   */
  private readonly spare = new PacketFifo();
  /** When the last data packet that the peer re-sent for another path (Flags.Retransmit) arrived. */
  private lastCopyRecvUs = -Infinity;
  private sparePrunedUs = 0;
  /** Packets accepted by send() and then dropped before they got a data sequence (queue timeout, no path). */
  droppedUnsent = 0;
  private closed = false;
  readonly startedUs: number;
  private policy: PathPolicy = {};
  /** S2-12 high-speed mode (setHighSpeedMode). */
  highSpeed = false;
  /** Some path has a tier, cap or cut-off (ours or the peer's): the policy filter runs. */
  private policyActive = false;
  private readonly capUsage: CapUsage;
  private lastCapSaveUs = 0;
  /** Told after every pump (relay/: a sender that fills the queue when there is room). */
  private roomListener: (() => void) | undefined;

  constructor(private readonly opts: SessionOptions) {
    this.id = opts.sessionId;
    this.drops = opts.drops ?? new DropCounters();
    this.log = opts.logger ?? silentLogger;
    this.codec = new SessionCodec(opts.sessionId, opts.sendKey, opts.recvKey);
    this.compressor = (opts.compressHeaders ?? true) ? new HeaderCompressor() : undefined;
    this.paths = opts.pathNames.map((name, id) => {
      const state = new PathState(id, name, opts.replayWindow);
      const sp: SessionPath = {
        state,
        transport: undefined,
        view: {
          id,
          name,
          // A suspect path gets no new data: what it would carry may be lost in a blackout.
          usable: () => state.state === 'up' && !state.suspect && !state.stalled && sp.transport !== undefined,
          get deliveryRate() { return state.deliveryRate; },
          get srttUs() { return state.srttUs; },
          get minRttUs() { return state.minRttUs; },
          inflightBytes: () => state.inflightBytes(),
          get lossRate() { return state.lossRate; },
          get lossSample() { return state.lossSample; },
          get lossSamples() { return state.lossSamples; },
        },
        controller: undefined as unknown as PathController,
        peerRank: 0,
        localRank: 0,
        capCounted: 0,
        acksElsewhere: false,
      };
      const cc = opts.congestion ?? 'inflight-cap';
      sp.controller = typeof cc === 'function' ? cc(sp.view)
        : cc === 's3' ? new S3PathController(new S3Controller({ mtu: 1500 })) : new InflightCap(sp.view);
      return sp;
    });
    this.pinBytes = opts.pinBytes ?? DEFAULT_PIN_BYTES;
    this.classRules = opts.classRules ?? DEFAULT_CLASS_RULES;
    this.userOf = opts.userOf ?? ((src) => String(src));
    const ql = opts.queue ?? { maxPackets: 4096, maxBytes: 8 << 20, maxDelayMs: 100 };
    this.queue = new SendQueue({ maxPackets: ql.maxPackets, maxBytes: ql.maxBytes, maxDelayUs: ql.maxDelayMs * 1000 });
    this.queue.setPrivileged(opts.privilegedUsers ?? []);
    if (opts.lowLatency ?? true) this.lowLatency = this.buildLowLatency(opts);
    this.views = this.paths.map((p) => p.view);
    this.reorder = new ReorderBuffer(
      { holdUs: opts.reorder.holdMs * 1000, maxPackets: opts.reorder.maxPackets, maxBytes: opts.reorder.maxBytes, flowHash: ipFlowHash, ordersItself: opts.ordersItself },
      opts.deliver,
      this.drops,
      {
        watermarks: () => this.pathWatermarks(),
        resendWithinUs: () => this.peerResendWithinUs(),
        spreadUs: () => this.spread.spreadUs(this.opts.clock.nowUs()),
      },
    );
    this.startedUs = opts.clock.nowUs();
    this.capUsage = opts.capUsage ?? new CapUsage();
    if (opts.pathPolicy) this.setPathPolicy(opts.pathPolicy);
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

  /**
   * Path MTU discovery: send a probe padded to exactly `size` bytes on a path. Returns its path
   * sequence (the peer's ProbeEcho ack names it), or undefined when it could not be sent. Unlike a
   * keepalive it does not make the path owe an answer: a too-big probe is lost by design and must
   * not make the path look dead.
   */
  sendPaddedProbe(pathId: number, size: number): number | undefined {
    const p = this.paths[pathId];
    if (this.closed || !p?.transport || size < PROBE_MIN_LEN) return undefined;
    const now = this.opts.clock.nowUs();
    const seq = p.state.nextSeq(0, now);
    const dg = this.codec.encodeProbe(p.state.id, seq, wireTime(now), this.dataSeq, size - PROBE_MIN_LEN, this.tierFlags(p));
    p.state.counters.probesSent++;
    p.state.counters.txBytes += dg.length;
    return p.transport.send(dg) ? seq : undefined;
  }

  /**
   * Apply a path policy by carrier name (tiers, data caps, latency cut-offs; session/path-policy).
   * It is validated first and replaces the previous one as a whole (an invalid policy throws
   * and changes nothing); queued packets stay queued and go out under the new policy, flows
   * pinned to a path the policy no longer gives them are unpinned. Carriers this session does
   * not have are ignored.
   */
  setPathPolicy(byCarrierName: PathPolicy): void {
    const policy = validatePathPolicy(byCarrierName);
    this.policy = policy;
    this.refreshPolicy(this.opts.clock.nowUs());
  }

  /**
   * Replace the scheduling knobs at run time (issue 8's policy: S2-4/6/7/8/11, S4-3), all at once
   * between two packets. Flows and queued packets stay; every packet from now on is classified
   * and scheduled under the new values. The caller builds everything first (policy/apply.ts), so
   * nothing here can fail half-way.
   */
  setSchedulePolicy(p: SchedulePolicy): void {
    this.opts.scheduler = p.scheduler;
    this.opts.schedulers = p.schedulers;
    this.opts.retransmitScheduler = p.retransmitScheduler;
    this.retransmitF = p.retransmitF;
    this.pinBytes = p.pinBytes;
    this.classRules = p.classRules;
    this.queue.setPrivileged(p.privilegedUsers);
    this.queue.setWeights(p.userWeights ?? []);
    this.lowLatency?.selector.setPreferences(p.preferences);
  }

  getPathPolicy(): PathPolicy {
    return this.policy;
  }

  /**
   * S2-12 high-speed mode (the edge turns it on at >= 160 km/h): every path's estimators use
   * short windows (delivery-rate max over 0.5 s instead of 2 s, delay and loss gains doubled)
   * so they follow cell changes, and the real-time class (S4) gets one more copy on one more
   * path. Off restores the defaults. Nothing queued or in flight is touched.
   */
  setHighSpeedMode(on: boolean): void {
    if (on === this.highSpeed) return;
    this.highSpeed = on;
    for (const p of this.paths) p.state.setHighSpeed(on);
    this.lowLatency?.selector.setExtraLinks(on ? 1 : 0);
    this.log.info({ session: this.id, on }, 'high-speed mode');
  }

  /** Count data-cap usage and recompute each path's tier; saves the cap counts now and then. */
  private refreshPolicy(now: number): void {
    let active = false;
    for (const p of this.paths) {
      const c = this.policy[p.state.name];
      const total = p.state.counters.txBytes + p.state.counters.rxBytes;
      const day = c?.billingDay ?? 1;
      this.capUsage.add(p.state.name, total - p.capCounted, day);
      p.capCounted = total;
      const capped = c?.capBytes !== undefined && this.capUsage.used(p.state.name, day) >= c.capBytes;
      const rank = capped ? TIER_RANK.never : TIER_RANK[c?.tier ?? 'primary'];
      if (rank !== p.localRank) {
        this.log.info({ session: this.id, path: p.state.name, tier: rank, capped }, capped ? 'path at its data cap: no more data on it' : 'path tier changed');
        p.localRank = rank;
      }
      if (rank !== 0 || p.peerRank !== 0 || c?.latencyCutoffMs !== undefined) active = true;
    }
    this.policyActive = active;
    if (this.lowLatency) {
      const rt = this.allowedFor('realtime', this.views.filter((v) => v.usable()));
      for (const p of this.paths) this.lowLatency.selector.setUsable(p.state.id, p.state.state !== 'down' && (!active || rt.some((v) => v.id === p.state.id)));
    }
    if (now - this.lastCapSaveUs >= CAP_SAVE_US) {
      this.lastCapSaveUs = now;
      if (!this.capUsage.save()) this.log.warn({ session: this.id, err: this.capUsage.lastError }, 'data-cap state not saved');
    }
  }

  /** The paths among `room` the policy lets carry a packet of class `cls`. */
  private allowedFor(cls: TrafficClass, room: readonly PathView[]): readonly PathView[] {
    if (!this.policyActive) return room;
    const all: PolicyPathInfo[] = this.paths.map((p) => ({
      id: p.state.id,
      // A stalled path still delivers (late): it keeps a backup tier out as surely as an idle
      // one. Only a path that stopped answering (suspect, down) lets the backup in.
      usable: p.state.state === 'up' && !p.state.suspect && p.transport !== undefined,
      rank: Math.max(p.localRank, p.peerRank),
      srttUs: p.state.srttUs,
      cutoffUs: (this.policy[p.state.name]?.latencyCutoffMs ?? 0) * 1000,
    }));
    return allowedPaths(room, all, cls);
  }

  /** Tier bits we put on every packet of a path (the peer obeys them for its direction). */
  private tierFlags(p: SessionPath): number {
    return p.localRank << TIER_SHIFT;
  }

  /** The path a flow is pinned to, if it may still carry it (else the pin ends). */
  private pinnedOf(f: FlowState | undefined): SessionPath | undefined {
    if (!f || f.pinnedPath < 0) return undefined;
    const p = this.paths[f.pinnedPath];
    if (p && p.view.usable() && (!this.policyActive || Math.max(p.localRank, p.peerRank) === 0)) return p;
    this.flows.unpin(f);
    return undefined;
  }

  /**
   * Usable paths with room for `bytes` that the policy allows for `cls`; not `avoid` (the path
   * a re-sent copy left) while the policy allows the class another usable path. When it allows
   * none, the copy goes back on the path it left once that path is usable again: waiting for a
   * path that may never come held the copy, and everything queued behind it, for good.
   */
  private roomFor(cls: TrafficClass, avoid: number, bytes: number, now: number): readonly PathView[] {
    if (avoid >= 0 && this.allowedFor(cls, this.views.filter((v) => v.id !== avoid && v.usable())).length === 0) avoid = -1;
    const room = this.views.filter((v) => v.id !== avoid && this.hasRoom(this.paths[v.id] as SessionPath, bytes, now));
    return room.length === 0 ? room : this.allowedFor(cls, room);
  }

  /** Send one IP packet to the peer. Returns false when it was dropped (counted). */
  send(ip: Buffer, how: SendOptions = {}): boolean {
    if (this.closed) return false;
    const now = this.opts.clock.nowUs();
    const meta = packetMeta(ip);
    let flow: FlowState | undefined;
    let urgent = false;
    let user = '';
    if (meta) {
      user = this.userOf(meta.src, meta.dst, meta.flow);
      flow = this.flows.touch(meta.flow, user, now);
      flow.cls = classify(meta, flow.bytes, this.classRules, this.pinBytes, FlowTable.rateBps(flow, now));
      urgent = meta.urgent;
    }
    if (how.urgent || how.jump) urgent = true;
    if (flow?.cls === 'realtime' && this.lowLatency) {
      flow.bytes += ip.length;
      if (this.lowLatency.sender.send(ip) === undefined) {
        this.drops.add('queue-full');
        return false;
      }
      return true;
    }
    const q: QueuedPacket = {
      ip, dataSeq: 0, flags: urgent ? Flags.Urgent : 0, F: how.urgent ? this.retransmitF : 0, flow, avoid: -1, enqueuedUs: now, keep: how.keep === true,
    };
    // Fast path: nothing waiting and a path has room.
    if (this.queue.length === 0 && this.dispatch(q, now)) return true;
    if (!this.queue.push(user, q, urgent)) {
      this.drops.add('queue-full');
      return false;
    }
    this.pump(now);
    return true;
  }

  /**
   * The S4 class: its sender puts each packet on the n lowest-delay paths (its own pacing per
   * path), its receiver delivers each class sequence exactly once and asks for repairs by NACK.
   */
  private buildLowLatency(opts: SessionOptions) {
    const clock = opts.clock;
    const selector = new LinkSelector(this.paths.map((p, i) => ({ id: p.state.id, name: p.state.name, type: opts.pathTypes?.[i] ?? 'cellular' })));
    const pacer = new LinkPacer(this.paths.map((p) => ({
      id: p.state.id,
      // No slow start (S4-5): start at a generous link rate until the path's rate is measured.
      get negotiatedBps() { return p.state.deliveryRate > 0 ? p.state.deliveryRate * 8e6 * 1.5 : 300e6; },
      queueFreePackets: () => Infinity,
    })));
    const sender = new RedundantSender({
      clock, selector, pacer,
      transmit: (linkId, seq, payload, retransmit) => {
        const p = this.paths[linkId];
        if (!p || !p.view.usable() || (this.policyActive && !this.allowedFor('realtime', this.views.filter((v) => v.usable())).includes(p.view))) return false;
        return this.sendOnPath(p, payload, seq, Flags.LowLatency | (retransmit ? Flags.Retransmit : 0), clock.nowUs(), false, 'realtime');
      },
    });
    const receiver = new RedundantReceiver({
      clock,
      deliver: (_seq, payload) => opts.deliver(payload),
      sendNack: (linkId, nack) => {
        const p = this.paths[linkId];
        if (!p?.transport) return;
        const now = clock.nowUs();
        const dg = this.codec.encodeNack(p.state.id, p.state.nextSeq(0, now), wireTime(now), nack, this.tierFlags(p));
        p.state.counters.txBytes += dg.length;
        if (!p.transport.send(dg)) p.state.counters.sendErrors++;
      },
      drops: this.drops,
    });
    return { selector, sender, receiver };
  }

  /** Bytes waiting in the send queue for a path with room. */
  backlogBytes(): number {
    return this.queue.queuedBytes;
  }

  /** What the usable paths are measured to carry together, bytes per second (0: none measured yet). */
  sendRateBytesPerSec(): number {
    let r = 0;
    for (const v of this.views) if (v.usable()) r += v.deliveryRate * 1e6;
    return r;
  }

  /**
   * `fn` runs after each pass that moves queued packets onto the paths (every ack, every tick,
   * every send): a sender with its own buffer (the TCP relay) tops the queue up from there
   * instead of flooding it. One listener; undefined removes it.
   */
  onRoom(fn: (() => void) | undefined): void {
    this.roomListener = fn;
  }

  /** Can this path take `bytes` more right now? */
  private hasRoom(p: SessionPath, bytes: number, now: number): boolean {
    return p.view.usable() && p.controller.canSend(p.state.inflightBytes(), bytes, now);
  }

  /** Send queued packets while some path has room. */
  private pump(now: number): void {
    while (this.queue.length > 0) {
      const q = this.queue.take(
        now,
        (c) => {
          const pinned = this.pinnedOf(c.flow);
          if (pinned && (c.flags & Flags.Urgent) === 0) return this.hasRoom(pinned, c.ip.length + DATA_OVERHEAD, now);
          return this.roomFor(c.flow?.cls ?? 'bulk', c.avoid, c.ip.length + DATA_OVERHEAD, now).length > 0;
        },
        (x) => {
          this.drops.add('queue-timeout');
          if (x.dataSeq === 0) this.droppedUnsent++;
        },
      );
      if (!q) break;
      if (this.resendNeedless(q)) continue;
      if (!this.dispatch(q, now)) {
        // Nothing usable after all (paths changed state): it is lost, and counted.
        this.drops.add('no-path');
        if (q.dataSeq === 0) this.droppedUnsent++;
      }
    }
    this.roomListener?.();
    this.sendSpare(now);
  }

  /** `spare` re-sends, oldest first, while nothing else is queued and a path other than theirs has room. */
  private sendSpare(now: number): void {
    for (let q = this.spare.peek(); q && this.queue.length === 0; q = this.spare.peek()) {
      if (this.resendNeedless(q)) {
        this.spare.shift();
        continue;
      }
      if (this.roomFor('bulk', q.avoid, q.ip.length + DATA_OVERHEAD, now).length === 0) return;
      this.spare.shift();
      if (!this.dispatch(q, now)) this.drops.add('no-path');
    }
  }

  /**
   * While other data keeps the paths full, `spare` is not looked at: what its paths acknowledged
   * meanwhile goes, and what waited SPARE_MAX_WAIT_US for room goes to the front of the queue
   * after all (its flow has waited for it long enough).
   */
  private pruneSpare(now: number): void {
    this.sparePrunedUs = now;
    const late: QueuedPacket[] = [];
    this.spare.takeWhere((q) => {
      if (this.resendNeedless(q)) return true;
      if (now - q.enqueuedUs <= SPARE_MAX_WAIT_US) return false;
      late.push(q);
      return true;
    });
    for (const q of late) this.toFront(q);
  }

  /** Stage 3 (S2-9): `q` goes to the front of the send queue; false, and counted, when it is full. */
  private toFront(q: QueuedPacket): boolean {
    if (this.queue.push('', q, true)) return true;
    this.drops.add('queue-full');
    return false;
  }

  /**
   * Is `q` a re-send whose first copy its path (`avoid`) has since acknowledged (its acks passed
   * that copy's path sequence)? It is then not sent, and counted in retransmitSkipped: the path
   * was silent or slow, not dead (an LTE handover's 30-100 ms, a fade), and the copy most likely
   * arrived. If it was lost after all, its sender repairs it as any loss (the TCP relay, or the
   * end host's TCP). In three-lte-multi nearly every cross-path re-send reached the peer second
   * (3210 duplicates for 3231 re-sends, 4 % of the carriers' capacity).
   */
  private resendNeedless(q: QueuedPacket): boolean {
    if (q.resendOfSeq === undefined) return false;
    const p = this.paths[q.avoid];
    if (p === undefined || p.state.ackedSeq < q.resendOfSeq) return false;
    this.retransmitSkipped++;
    return true;
  }

  /**
   * Stage 2: the paths for one packet. A flow's first bytes go on the path it was pinned to
   * (2a); otherwise its class's algorithm chooses among the paths with room (2b), and an
   * important packet (F > 0) may be sent on several. Returns false when no path could take it.
   */
  private dispatch(q: QueuedPacket, now: number): boolean {
    const bytes = q.ip.length + DATA_OVERHEAD;
    const f = q.flow;
    let targets: readonly PathView[];
    const pinned = this.pinnedOf(f); // its path went away or is no longer allowed: pinning ends
    if (pinned && (q.flags & Flags.Urgent) === 0) {
      // The flow's first bytes wait for their path rather than spread (S2-7).
      if (!this.hasRoom(pinned, bytes, now)) return false;
      targets = [pinned.view];
    } else {
      const room = this.roomFor(f?.cls ?? 'bulk', q.avoid, bytes, now);
      if (room.length === 0) return false;
      const classAlgo = (f && this.opts.schedulers?.[f.cls]) ?? this.opts.scheduler;
      const algo = q.F > 0 ? (this.opts.retransmitScheduler ?? classAlgo) : classAlgo;
      const pinning = f !== undefined && f.bytes === 0 && this.pinBytes > 0 && q.F === 0;
      if (pinning) {
        // S2-7: the path a new flow's first bytes will finish on soonest, counting the first
        // bytes other flows pinned there still have to send. Flows that start together then
        // spread over the paths ("keep low-RTT paths free for others") instead of all
        // landing on the one that is best for a single packet.
        const pin = this.pinTarget(room);
        targets = pin ? [pin] : [];
      } else if (q.F > 0 && algo.pickSet) {
        targets = algo.pickSet(room, bytes, q.F);
      } else {
        const one = algo.pick(room, bytes);
        targets = one ? [one] : [];
      }
      if (targets.length === 0) return false;
      // S2-7: a new flow is pinned to the path chosen for its first packet.
      // Only on a primary path: a secondary or backup path must not keep a flow once it is not needed.
      const first = targets[0] as PathView;
      const firstRank = this.policyActive ? Math.max((this.paths[first.id] as SessionPath).localRank, (this.paths[first.id] as SessionPath).peerRank) : 0;
      if (pinning && f && firstRank === 0) this.flows.pin(f, first.id);
    }
    if (f) {
      f.bytes += q.ip.length;
      if (f.pinnedPath >= 0 && f.bytes >= this.pinBytes) this.flows.unpin(f);
    }
    // The data sequence is given when the packet leaves, so that packets that jumped the
    // queue are not held back at the receiver behind ones that were still waiting here.
    const seq = q.dataSeq > 0 ? q.dataSeq : ++this.dataSeq;
    const gap = q.dataSeq > 0 ? this.chain.gapOfSeq(seq) : this.chain.link(f, seq);
    // Compressed once for all its copies (the compressor counts a flow's packets).
    const body = this.compressor?.encode(f, q.ip, now, this.compressSettleUs);
    let sent = false;
    targets.forEach((t, k) => {
      if (k > 0) this.redundantCopies++;
      if (this.sendOnPath(this.paths[t.id] as SessionPath, q.ip, seq, q.flags | (k > 0 ? Flags.Redundant : 0), now, true, f?.cls, gap, body, q.keep === true)) sent = true;
    });
    return sent;
  }

  /**
   * S2-7: the path where a new flow's first pinBytes would be through soonest. A path not
   * measured yet counts at the best measured rate among them: at the default 1 Mbit/s, the
   * flows that start together all went to the one path that had carried something (the
   * three-lte bench: four downloads pinned to one carrier while two others sat idle for 0.6 s).
   */
  private pinTarget(room: readonly PathView[]): PathView | undefined {
    let best: PathView | undefined;
    let bestAt = Infinity;
    let bestRate = 0;
    for (const v of room) bestRate = Math.max(bestRate, v.deliveryRate);
    for (const v of room) {
      const at = expectedCompletionUs(v, this.pinBytes + this.flows.pinnedBytesToCome(v.id, this.pinBytes), bestRate > 0 ? bestRate : undefined);
      if (at < bestAt) {
        bestAt = at;
        best = v;
      }
    }
    return best;
  }

  /**
   * `type`: the packet's traffic class, for transports that bind types to streams (S0-7,
   * Path.sendTyped). `compressed`: the packet's header-compressed body (wire/compress), sent
   * instead of `ip`; re-sends start again from `ip`.
   */
  private sendOnPath(p: SessionPath, ip: Buffer, dataSeq: number, flags: number, now: number, mainClass = true, type?: string, flowGap = 0, compressed?: Buffer, keep = false): boolean {
    const body = compressed ?? ip;
    const wireBytes = body.length + DATA_OVERHEAD;
    const pathSeq = p.state.nextSeq(wireBytes, now);
    const dg = this.codec.encodeData(p.state.id, pathSeq, flags | this.tierFlags(p) | (compressed ? Flags.Compressed : 0), wireTime(now), dataSeq, body, flowGap);
    p.state.counters.txDataBytes += ip.length;
    p.state.lastDataSendUs = now;
    if (p.state.expectSinceUs < 0) p.state.expectSinceUs = now;
    // The S4 class repairs its own losses; only the main sequence space is re-sent on failure.
    if (mainClass) p.state.keepForRetransmit(pathSeq, dataSeq, ip, now, (flags & Flags.Urgent) !== 0, keep);
    p.controller.onSent?.(wireBytes, now);
    const t = p.transport as Path;
    if (!(type !== undefined && t.sendTyped ? t.sendTyped(type, dg) : t.send(dg))) {
      p.state.counters.sendErrors++;
      this.drops.add('send-error');
      return false;
    }
    return true;
  }

  /**
   * S2-10, cross-path retransmission: data that has not reached the peer for too long on one
   * path (its answer is overdue: the path turned suspect, or died) goes to the front of the
   * queue (stage 3) with a large importance F, to be re-sent on the other paths with the same
   * data sequence (the receiver drops whichever copy comes second). Each packet is re-sent once.
   */
  private retransmitFrom(p: SessionPath, now: number, why: RetransmitReason, F = this.retransmitF): number {
    const unacked = p.state.unackedToResend(why === 'down');
    let n = 0;
    for (const u of unacked) {
      const q: QueuedPacket = {
        ip: u.ip, dataSeq: u.dataSeq, flags: Flags.Retransmit | (u.urgent ? Flags.Urgent : 0), F, flow: undefined, avoid: p.state.id, enqueuedUs: now,
        resendOfSeq: u.pathSeq, keep: u.keep,
      };
      // A slow path's frames of a sender that repairs its own losses (the TCP relay) go again
      // only into room that sender leaves: see `spare`.
      if (why === 'stalled' && u.keep && !u.urgent) {
        this.spare.push(q);
        n++;
      } else if (this.toFront(q)) n++;
    }
    this.retransmitted += n;
    this.retransmittedBy[why] += n;
    this.flows.unpinPath(p.state.id);
    this.pump(now);
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
    const peerRank = (pkt.header.flags & Flags.TierMask) >> TIER_SHIFT;
    if (peerRank !== p.peerRank) {
      p.peerRank = peerRank;
      this.refreshPolicy(now);
    }
    if (p.state.state !== 'up') {
      this.log.info({ session: this.id, path: p.state.name }, p.state.state === 'down' ? 'path recovered' : 'path up');
      if (p.state.state === 'down') p.state.recovered();
      p.state.state = 'up';
      this.lowLatency?.selector.setUsable(p.state.id, true);
      this.opts.pmtu?.pathState(p.state.id, true);
    }
    switch (pkt.type) {
      case PacketType.Ack:
        if (pkt.ack.forPath !== undefined) {
          this.onAckForOtherPath(pkt.ack, pkt.ts1, p, now);
          break;
        }
        p.state.onAck(pkt.ack, pkt.ts1, now);
        if (pkt.header.flags & Flags.ProbeEcho) this.opts.pmtu?.probeEchoed(p.state.id, pkt.ack.ackedPathSeq);
        p.controller.onAck?.(p.state.lastRttUs, p.state.ackedBytesDelta, now);
        if (this.lowLatency && p.state.lastRttUs > 0) {
          this.lowLatency.sender.onDelaySample(p.state.id, p.state.lastRttUs, this.lowLatency.selector.dataFlowing(now) ? 'data' : 'probe');
        }
        p.state.observeWatermark(pkt.ack.watermark);
        this.reorder.flush(now);
        this.pump(now);
        break;
      case PacketType.Probe:
        p.state.observeWatermark(pkt.watermark);
        if (pkt.padding > 0) this.sendProbeEcho(p, pkt.header.pathSeq, now);
        else this.sendAck(p, now, true);
        this.reorder.flush(now);
        break;
      case PacketType.Data: {
        p.state.lastDataRecvUs = now;
        if (pkt.header.flags & Flags.Retransmit) this.lastCopyRecvUs = now;
        if (p.state.ackPendingPackets++ === 0) p.state.ackPendingSinceUs = now;
        if (p.state.ackPendingPackets >= this.opts.ackEveryPackets && now - p.state.lastAckUs >= ACK_MIN_GAP_US) this.sendAck(p, now);
        const compressed = (pkt.header.flags & Flags.Compressed) !== 0;
        if (pkt.header.flags & Flags.LowLatency) {
          // The S4 class has its own sequence space: not the reorder buffer, not a watermark.
          // It is never header-compressed.
          p.state.counters.rxDataBytes += pkt.payload.length;
          if (this.lowLatency && !compressed) this.lowLatency.receiver.receive(p.state.id, pkt.dataSeq, pkt.payload);
          else this.drops.add('malformed-body');
          break;
        }
        p.state.observeWatermark(pkt.dataSeq);
        this.spread.onData(p.state.id, pkt.ts1, now);
        let ip = pkt.payload;
        if (compressed) {
          const d = this.decompressor.decode(ip);
          if (typeof d === 'string') {
            // Authenticated but not rebuildable: counted. Its sequence is known lost once the
            // watermarks pass it, and the flow's own retransmission repairs it.
            p.state.counters.rxDataBytes += ip.length;
            this.drops.add(d);
            break;
          }
          ip = d;
        }
        p.state.counters.rxDataBytes += ip.length;
        this.reorder.push(pkt.dataSeq, ip, now, pkt.flowGap > 0 ? pkt.dataSeq - pkt.flowGap : 0);
        break;
      }
      case PacketType.Nack:
        this.lowLatency?.sender.onNack(p.state.id, pkt.nack);
        break;
    }
  }

  /**
   * Watermarks of the paths that could still be carrying data to us (see receive/reorder).
   * A path that was carrying data and fell silent (a carrier blackout) stops counting once the
   * peer has had time to re-send what it carried and those copies have stopped coming, while
   * another path is still heard. Counted until declared down, its watermark, stuck where the
   * carrier died, held every later gap on the survivors that long: in the failover namespace
   * test a hole lost on a survivor 240 ms into the blackout waited until 370 ms, and then the
   * TCP relay's repair.
   */
  private pathWatermarks(): number[] {
    const now = this.opts.clock.nowUs();
    const out: number[] = [];
    let quietAfter: number | undefined;
    for (const p of this.paths) {
      const s = p.state;
      if (s.state !== 'up') continue;
      const silent = now - s.lastRecvUs;
      const wasCarrying = Number.isFinite(s.lastDataRecvUs) && s.lastDataRecvUs >= s.lastRecvUs - DATA_BEFORE_SILENCE_US;
      if (wasCarrying && silent > (quietAfter ??= this.copiesThroughAfterUs(now))
        && this.paths.some((q) => q !== p && q.state.state === 'up' && now - q.state.lastRecvUs < silent / 2)) continue;
      out.push(s.watermark);
    }
    return out;
  }

  /**
   * How long a path must have been silent for what it carried to have been re-sent and come
   * through another path (see pathWatermarks): the peer's re-send time, and never while its
   * copies (Flags.Retransmit) are still arriving: over a slow survivor they trickle in.
   */
  private copiesThroughAfterUs(now: number): number {
    return now - this.lastCopyRecvUs < COPIES_COMING_US ? Infinity : this.peerResendWithinUs();
  }

  /**
   * The latest a peer's cross-path retransmission (S2-10) can arrive after the data it replaces
   * should have: the peer calls a path suspect a third of its dead time after the first
   * unanswered packet (same rule as tick()), then the copy needs a delay on another path;
   * acks and ticks add their periods.
   */
  private peerResendWithinUs(): number {
    let srtt = 0;
    let fastest = Infinity;
    let minRtt = 0;
    for (const p of this.paths) {
      if (p.state.state !== 'up' || !(p.state.srttUs > 0)) continue;
      srtt = Math.max(srtt, p.state.srttUs);
      fastest = Math.min(fastest, p.state.srttUs);
      if (Number.isFinite(p.state.minRttUs)) minRtt = Math.max(minRtt, p.state.minRttUs);
    }
    if (!Number.isFinite(fastest)) fastest = srtt;
    const ackUs = this.opts.ackIntervalMs * 1000;
    // The slowest path turns suspect last (its dead time scales with its round trip), or is
    // found stalled (stallAfterUs) last; the re-sent copy then takes the fastest path, the one
    // the retransmission scheduler picks first. Holding for the slowest path's full round trip
    // instead held every flow behind each gap for it.
    const deadUs = Math.max(this.opts.pathDeadMs * 1000, 1.5 * srtt + ackUs);
    const resendAfter = Math.max(deadUs / 3, minRtt > 0 ? stallAfterUs(minRtt) : 0);
    return resendAfter + fastest + 2 * ackUs + (this.opts.tickUs ?? 5000);
  }

  /** Acknowledge what arrived on `p`. `ownPath`: the answer to a probe, which must come back on the probed path. */
  private sendAck(p: SessionPath, now: number, ownPath = false): void {
    if (!p.transport) return;
    p.state.ackPendingPackets = 0;
    p.state.lastAckUs = now;
    const via = ownPath ? p : this.ackCarrier(p);
    if (!ownPath) p.acksElsewhere = via !== p;
    const body = p.state.ackBody(this.dataSeq);
    if (via !== p) {
      body.forPath = p.state.id;
      p.state.counters.acksRerouted++;
    }
    // Acks are not counted in flight: the peer does not ack acks, and they must not make this
    // path look busy to the scheduler. The bytes count on the carrier that carries them.
    const seq = via.state.nextSeq(0, now);
    const dg = this.codec.encodeAck(via.state.id, seq, wireTime(now), body, this.tierFlags(via));
    via.state.counters.txBytes += dg.length;
    p.state.counters.acksSent++;
    if (!(via.transport as Path).send(dg)) via.state.counters.sendErrors++;
  }

  /**
   * The path that carries the acks for `p`'s data: `p` itself, unless our own sends on `p` are
   * stalled or suspect. Then `p`'s direction toward the peer is congested (a carrier's uplink
   * that collapsed under a healthy downlink), and acks queued behind it would starve `p`'s
   * data from the peer of acks: the peer's in-flight cap fills and the downlink goes unused
   * for seconds (the three-lte bench trace: 1.8 s). They take the up path with the smallest
   * round trip that is neither stalled nor suspect, and no more restricted by policy than `p`.
   * (Not also when `p`'s round trip exceeds what a full path needs: that moved acks off paths
   * whose downlink queue inflated it, and three-lte-multi fell from 0.75-0.84 to 0.53-0.75 in
   * 4 interleaved pairs.)
   */
  private ackCarrier(p: SessionPath): SessionPath {
    if (!p.state.stalled && !p.state.suspect) return p;
    const rank = Math.max(p.localRank, p.peerRank);
    let best: SessionPath | undefined;
    for (const q of this.paths) {
      if (q === p || !q.transport || q.state.state !== 'up' || q.state.stalled || q.state.suspect) continue;
      if (Math.max(q.localRank, q.peerRank) > rank || !(q.state.srttUs > 0)) continue;
      if (!best || q.state.srttUs < best.state.srttUs) best = q;
    }
    return best ?? p;
  }

  /**
   * An ack for another path's data that came on this carrier (Flags.AckFor): the acked path's
   * own direction toward us is congested. It acknowledges that path's data as an ack on the
   * path itself would, except for the round trip (it does not measure the path's), and the
   * acked data counts as the path answering, so a path whose acks come elsewhere is not
   * called suspect for it (the next tick decides; a path already suspect stays so until then,
   * or new data could go to a dead carrier between ticks).
   */
  private onAckForOtherPath(ack: AckBody, ts3: number, via: SessionPath, now: number): void {
    const t = ack.forPath === undefined ? undefined : this.paths[ack.forPath];
    if (!t || t === via) {
      this.drops.add('unknown-path');
      return;
    }
    const before = t.state.ackedSeq;
    t.state.onAck(ack, ts3, now, true);
    if (t.state.ackedSeq > before) {
      // Answered up to the acked packet: what waits for an answer now is what was sent after it.
      // (This says nothing of whether the path delivers now: Session.tick keeps a path that
      // went out of service out until it does.)
      const age = t.state.oldestUnackedAgeUs(now);
      t.state.expectSinceUs = age > 0 ? now - age : -1;
    }
    t.controller.onAck?.(t.state.lastRttUs, t.state.ackedBytesDelta, now);
    // The watermark (the peer's data sequence when it sent this) bounds what can still come on
    // the carrier it travelled on (each carrier is first in, first out), not on the acked path.
    via.state.observeWatermark(ack.watermark);
    this.reorder.flush(now);
    this.pump(now);
  }

  /** Answer a padded probe: an ack naming exactly that probe (path MTU discovery, wire Flags.ProbeEcho). */
  private sendProbeEcho(p: SessionPath, probeSeq: number, now: number): void {
    if (!p.transport) return;
    p.state.ackPendingPackets = 0;
    const dg = this.codec.encodeAck(p.state.id, p.state.nextSeq(0, now), wireTime(now), { ...p.state.ackBody(this.dataSeq), ackedPathSeq: probeSeq }, Flags.ProbeEcho | this.tierFlags(p));
    p.state.counters.txBytes += dg.length;
    p.state.counters.acksSent++;
    if (!p.transport.send(dg)) p.state.counters.sendErrors++;
  }

  private sendProbe(p: SessionPath, now: number): void {
    if (!p.transport) return;
    const seq = p.state.nextSeq(0, now);
    p.state.lastProbeUs = now;
    if (p.state.expectSinceUs < 0) p.state.expectSinceUs = now;
    const dg = this.codec.encodeProbe(p.state.id, seq, wireTime(now), this.dataSeq, 0, this.tierFlags(p));
    p.state.counters.probesSent++;
    p.state.counters.txBytes += dg.length;
    if (!p.transport.send(dg)) p.state.counters.sendErrors++;
  }

  /**
   * Liveness, in-band (no route changes): a path that carries traffic hears acks every few
   * milliseconds, so silence means trouble. After a third of the dead time it is probed every
   * 50 ms, and once an answer is that overdue it is suspect: it gets no new data and what it
   * has in flight is re-sent on the other paths (S2-10); after `pathDeadMs` (or 1.5 x its smoothed delay plus the ack interval, if longer)
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
      // Acks start going elsewhere: the last ones are likely still queued on this path's
      // congested direction, and the peer may be waiting for them with its cap full. Say it
      // again on the other carrier now, not at the next data packet (which may never come).
      else if (!p.acksElsewhere && s.rcvHighestSeq > 0 && this.ackCarrier(p) !== p) this.sendAck(p, now);
      if (!p.transport) continue;
      const heard = Number.isFinite(s.lastRecvUs) ? s.lastRecvUs : this.startedUs;
      const silent = now - heard;
      const waiting = s.expectSinceUs >= 0 ? now - s.expectSinceUs : 0;
      if (s.state === 'up') {
        const active = now - s.lastDataSendUs < ACTIVE_US || now - s.lastDataRecvUs < ACTIVE_US;
        const deadUs = Math.max(this.opts.pathDeadMs * 1000, 1.5 * s.srttUs + ackUs);
        if (active) {
          // Suspect once an answer is overdue (not merely silent: a path that just became
          // active after an idle spell has been silent, but owes nothing yet).
          const wasOut = s.suspect || s.stalled;
          const silentTooLong = waiting > deadUs / 3 || this.quietTooLong(p, now, silent, deadUs);
          s.suspect = silentTooLong;
          s.stalled = !silentTooLong && this.isStalled(p, now);
          if (!wasOut && (s.suspect || s.stalled)) {
            s.outAtUs = now;
            s.outAtSeq = s.sentSeq;
          } else if (wasOut && !s.suspect && !s.stalled && s.lastRecvUs < s.outAtUs && s.ackedSeq <= s.outAtSeq) {
            // Back in service only on news that it delivers now: heard on it since it went out,
            // or something sent since then acknowledged (its probes). An ack that came over
            // another carrier can cover all the data it had (through before the carrier died)
            // and say nothing of now: taken for health, a blacked-out carrier got new data for
            // another 100 ms (the failover namespace test's gap went past 300 ms).
            s.stalled = true;
          }
          // A silent path may have lost what it carries: each packet goes again, duplicated
          // where that pays (S2-8 with F). A stalled one still delivers, only late: one copy.
          if ((s.suspect || s.stalled) && !wasOut) this.retransmitFrom(p, now, silentTooLong ? 'suspect' : 'stalled', silentTooLong ? this.retransmitF : 0);
          // A stalled path gets no new data, so if its last packets were lost no later ack will
          // ever pass them, and it would stay stalled for as long as the peer keeps sending on
          // it (a relay's acks do). Once its acks stop advancing for a round trip, a probe's
          // answer acknowledges everything sent before it. (Not while they advance: a draining
          // path is not stuck, and an answer that empties it makes it look idle to the rate
          // estimator, which then keeps the old rate after a capacity drop.)
          const stuck = s.stalled && now - s.ackedAtUs >= Math.max(s.srttUs, SUSPECT_PROBE_US);
          if ((silent > deadUs / 3 || silentTooLong || stuck) && now - s.lastProbeUs >= SUSPECT_PROBE_US) this.sendProbe(p, now);
          if (silent > deadUs && waiting > Math.min(deadUs, Math.max(SUSPECT_PROBE_US * 2, 1.5 * s.srttUs))) this.pathDown(p, now, silent);
        } else {
          s.suspect = false;
          s.stalled = false;
          if (now - s.lastSendUs >= keepaliveUs) this.sendProbe(p, now);
          if (silent > 3 * keepaliveUs && waiting > deadUs) this.pathDown(p, now, silent);
        }
      } else {
        const every = s.state === 'down' && now - s.downSinceUs < REPROBE_FAST_FOR_US ? Math.min(REPROBE_FAST_US, keepaliveUs) : keepaliveUs;
        if (now - s.lastProbeUs >= every) this.sendProbe(p, now);
      }
    }
    this.compressSettleUs = this.slowestSrttUs() + COMPRESS_SETTLE_MARGIN_US;
    if (this.spare.length > 0 && now - this.sparePrunedUs >= SPARE_PRUNE_US) this.pruneSpare(now);
    this.refreshPolicy(now);
    this.reorder.flush(now);
    this.flows.expire(now);
    this.pump(now);
  }

  /**
   * A busy path hears an answer every few milliseconds (acks every `ackEveryPackets` packets or
   * `ackIntervalMs`), so silence several times longer than its longest gap between arrivals of
   * the last seconds is a blackout, found well before a third of its dead time. In the failover
   * namespace test (longest gaps 11-20 ms) the cloud found the dead carrier 51-88 ms after the
   * blackout; the other rule needs 100 ms of waiting for an answer, and a path whose cap was
   * full had sent nothing that waited for one (its probes start after 100 ms of silence), so
   * about 200 ms. Three conditions keep it from firing on a healthy path:
   *   - silent for QUIET_GAPS x its longest recent gap (a carrier whose answers come in bursts
   *     has long gaps, and this rule then waits for the third of the dead time like before);
   *   - its oldest packet in flight that long past a smoothed round trip (a path that just
   *     became busy after an idle spell has been silent, but owes no answer yet);
   *   - another path heard within half that time (when every path is silent at once it is this
   *     gateway that was held up, its timers running before its sockets were read, not a carrier).
   */
  private quietTooLong(p: SessionPath, now: number, silentUs: number, deadUs: number): boolean {
    const s = p.state;
    const quietUs = Math.max(QUIET_MIN_US, QUIET_GAPS * s.arrivalGapMaxUs);
    if (quietUs >= deadUs / 3 || silentUs <= quietUs || !(s.srttUs > 0)) return false;
    if (s.oldestUnackedAgeUs(now) <= s.srttUs + quietUs) return false;
    return this.paths.some((q) => q !== p && q.state.state === 'up' && now - q.state.lastRecvUs < quietUs / 2);
  }

  /**
   * A path that still answers but whose oldest packet in flight has been on its way far longer
   * than the path ever needs when full (stallAfterUs):
   * its carrier slowed down under a queue it cannot drain soon (a cell edge, a capacity dip).
   * What it holds would stall each flow it carries for that long, and TCP would time out: it is
   * stalled (PathState.stalled: no new data, until a tick finds its queue drained; arrivals,
   * which clear `suspect`, do not clear this, or new data went to it between ticks) and its
   * packets go again on the other paths.
   */
  private isStalled(p: SessionPath, now: number): boolean {
    const s = p.state;
    if (!Number.isFinite(s.minRttUs)) return false;
    return s.oldestUnackedAgeUs(now) > stallAfterUs(s.minRttUs);
  }

  /** The largest smoothed round trip of the paths that are up (1 s while none is measured). */
  private slowestSrttUs(): number {
    let worst = 0;
    for (const p of this.paths) if (p.state.state === 'up' && p.state.srttUs > worst) worst = p.state.srttUs;
    return worst > 0 ? worst : 1_000_000;
  }

  private pathDown(p: SessionPath, now: number, silentUs: number): void {
    p.state.state = 'down';
    p.state.suspect = false;
    p.state.stalled = false;
    this.lowLatency?.selector.setUsable(p.state.id, false);
    p.state.downSinceUs = now;
    this.opts.pmtu?.pathState(p.state.id, false);
    // Its frames waiting for spare room must go now: the path will not deliver them.
    const waiting = this.spare.takeWhere((q) => q.avoid === p.state.id);
    for (const q of waiting) this.toFront(q);
    const moved = this.retransmitFrom(p, now, 'down') + waiting.length;
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
        lossRate: s.lossRate,
        sendErrors: s.counters.sendErrors,
        controller: p.controller.telemetry?.() ?? {},
        tier: ['primary', 'secondary', 'backup', 'never'][Math.max(p.localRank, p.peerRank)] as string,
        acksRerouted: s.counters.acksRerouted,
        capUsedBytes: this.capUsage.used(s.name, this.policy[s.name]?.billingDay ?? 1),
      };
    });
  }

  /** Extra copies sent for redundancy (S2-8 duplicates; S4 copies beyond the first of each packet). */
  redundantCopyCounts(): { s2: number; s4: number } {
    const s4 = this.lowLatency ? Math.max(0, this.lowLatency.sender.stats.copies - this.lowLatency.sender.stats.packets) : 0;
    return { s2: this.redundantCopies, s4 };
  }

  /** What the scheduling engine did: queue, duplication, re-sends, the S4 class. */
  engineStats() {
    return {
      queued: this.queue.length,
      queuedBytes: this.queue.queuedBytes,
      flows: this.flows.size,
      redundantCopies: this.redundantCopies,
      retransmitted: this.retransmitted,
      retransmittedBy: { ...this.retransmittedBy },
      retransmitSkipped: this.retransmitSkipped,
      spareQueued: this.spare.length,
      droppedUnsent: this.droppedUnsent,
      /** Packets sent header-compressed, and context announcements (wire/compress). */
      headersCompressed: this.compressor?.compressed ?? 0,
      headerAnnouncements: this.compressor?.announcements ?? 0,
      highSpeed: this.highSpeed,
      lowLatency: this.lowLatency ? { sender: { ...this.lowLatency.sender.stats }, receiver: { ...this.lowLatency.receiver.stats } } : null,
    };
  }

  reorderStats() {
    return {
      ...this.reorder.stats,
      delayCounts: [...this.reorder.stats.delayCounts],
      spreadUs: this.spread.stats.spreadUs,
      spreadCounts: [...this.spread.stats.spreadCounts],
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.timers.stop();
    this.refreshPolicy(this.opts.clock.nowUs());
    this.capUsage.save();
    this.lowLatency?.sender.close();
    this.lowLatency?.receiver.close();
    for (const p of this.paths) p.transport?.close();
  }
}
