// The sender's queue, in the order S2 gives packets their turn:
//   stage 3 first: urgent packets (TCP handshakes, pure ACKs) and cross-path retransmissions
//           jump ahead of queued data (S2-9, S2-10);
//   stage 1 next: one FIFO per user; a privileged user's packets go before anyone else's while
//           it has data (S2-6), the others take turns round-robin (fairness between users),
//           a user of weight w sending up to w packets per turn (S2-4 per-user priority).
// Bounded in packets and bytes (drop-tail, counted by the caller) and in waiting time: a packet
// that waited longer than maxDelayUs is dropped when it reaches the head, so a standing queue
// never adds more than that to anyone's delay. Except a cross-path copy (it has its data sequence
// already): its original is lost or stuck on a stalled carrier, so dropping the copy would make
// its flow wait for that carrier (seconds, in the session tests) or lose the packet. Copies are
// bounded by what the paths had in flight, and by the packet and byte bounds. Nor a packet
// marked `keep` (Session.send's SendOptions): its sender repairs its own losses and bounds its
// own backlog.
import type { FlowState } from './flows.js';

export interface QueuedPacket {
  ip: Buffer;
  dataSeq: number;
  flags: number;
  /** S2-8 importance: 0 for ordinary data, large for retransmissions. */
  F: number;
  flow: FlowState | undefined;
  /** A path that must not carry it (the one it was lost on). */
  avoid: number;
  enqueuedUs: number;
  /**
   * Never expires here: its sender re-sends what is lost and keeps its own backlog short (the
   * TCP relay), so dropping it for waiting only makes a hole the sender repairs much later.
   */
  keep?: boolean;
  /**
   * A cross-path re-send: the path sequence of the copy it repeats on path `avoid`. It is not sent
   * once that path's acks have passed that copy (a silent or slow path that answered again).
   */
  resendOfSeq?: number;
}

/** Packets in arrival order; the send queue keeps one per user, the session one of spare-room re-sends. */
export class PacketFifo {
  private items: QueuedPacket[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(q: QueuedPacket): void {
    this.items.push(q);
  }

  peek(): QueuedPacket | undefined {
    return this.items[this.head];
  }

  /** The i-th packet from the head (0 = the head). */
  at(i: number): QueuedPacket | undefined {
    return this.items[this.head + i];
  }

  /** Remove the i-th packet from the head (i > 0; the head goes by shift()). */
  removeAt(i: number): void {
    this.items.splice(this.head + i, 1);
  }

  /** Removes and returns, in order, every packet `pred` selects. */
  takeWhere(pred: (q: QueuedPacket) => boolean): QueuedPacket[] {
    const taken: QueuedPacket[] = [];
    const kept: QueuedPacket[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const q = this.items[i] as QueuedPacket;
      (pred(q) ? taken : kept).push(q);
    }
    if (taken.length) {
      this.items = kept;
      this.head = 0;
    }
    return taken;
  }

  shift(): QueuedPacket | undefined {
    const q = this.items[this.head];
    if (q === undefined) return undefined;
    this.items[this.head] = undefined as unknown as QueuedPacket;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return q;
  }
}

/** How far past a blocked head the queue looks for a packet of another flow that can go. */
const LOOKAHEAD = 64;
/** ... and how many blocked flows it tries before giving up (each try asks the paths). */
const MAX_WAITING_FLOWS = 8;

export interface QueueLimits {
  maxPackets: number;
  maxBytes: number;
  maxDelayUs: number;
}

export class SendQueue {
  private readonly urgent = new PacketFifo();
  private readonly users = new Map<string, PacketFifo>();
  private ring: string[] = [];
  private turn = 0;
  private privileged = new Set<string>();
  /** Packets per turn, by user (absent: 1). */
  private weights = new Map<string, number>();
  /** Packets the user at `turn` has sent in its current turn. */
  private servedInTurn = 0;
  private packets = 0;
  private bytes = 0;
  /** Flows found blocked while looking past a head that is not ready (reused: pump() asks often). */
  private readonly waiting = new Set<FlowState | undefined>();

  constructor(private readonly limits: QueueLimits) {}

  get length(): number {
    return this.packets;
  }

  get queuedBytes(): number {
    return this.bytes;
  }

  setPrivileged(users: Iterable<string>): void {
    this.privileged = new Set(users);
  }

  /** S2-4: a user's share of the round robin, in packets per turn (whole numbers >= 1). */
  setWeights(weights: Iterable<readonly [string, number]>): void {
    this.weights = new Map([...weights].map(([u, w]) => [u, Math.max(1, Math.floor(w))]));
  }

  /** False when the queue is full (the caller counts the drop). */
  push(user: string, q: QueuedPacket, urgent: boolean): boolean {
    if (this.packets >= this.limits.maxPackets || this.bytes + q.ip.length > this.limits.maxBytes) return false;
    if (urgent) {
      this.urgent.push(q);
    } else {
      let f = this.users.get(user);
      if (!f) {
        f = new PacketFifo();
        this.users.set(user, f);
        this.ring.push(user);
      }
      f.push(q);
    }
    this.packets++;
    this.bytes += q.ip.length;
    return true;
  }

  /**
   * Take the next packet that `ready` accepts (a packet of a flow pinned to a path that cannot
   * send now is not ready: its user is skipped this turn). Packets that waited too long are
   * handed to `expired` and removed.
   */
  take(nowUs: number, ready: (q: QueuedPacket) => boolean, expired: (q: QueuedPacket) => void): QueuedPacket | undefined {
    const u = this.takeFrom(this.urgent, nowUs, ready, expired);
    if (u) return u;
    if (this.privileged.size > 0) {
      for (const name of this.privileged) {
        const f = this.users.get(name);
        if (f && f.length > 0) {
          const q = this.takeFrom(f, nowUs, ready, expired);
          if (q) return q;
        }
      }
    }
    const n = this.ring.length;
    for (let i = 0; i < n; i++) {
      const idx = (this.turn + i) % n;
      const name = this.ring[idx] as string;
      const f = this.users.get(name) as PacketFifo;
      const q = this.takeFrom(f, nowUs, ready, expired);
      if (q) {
        // A user that was skipped (nothing ready) lost the rest of its turn.
        this.servedInTurn = i === 0 ? this.servedInTurn + 1 : 1;
        if (this.servedInTurn >= (this.weights.get(name) ?? 1)) {
          this.turn = (idx + 1) % Math.max(1, this.ring.length);
          this.servedInTurn = 0;
        } else {
          this.turn = idx;
        }
        return q;
      }
    }
    this.compact();
    return undefined;
  }

  /**
   * When the head is not ready, the next few packets of *other* flows may go first: one user's
   * flows are pinned to different paths (S2-7), and a full path must not hold up the flows
   * pinned to paths with room (a browser's parallel requests, a train's parallel downloads).
   * A flow's own packets never overtake each other: once one of a flow's packets is not
   * ready, the rest of that flow waits too.
   */
  private takeFrom(f: PacketFifo, nowUs: number, ready: (q: QueuedPacket) => boolean, expired: (q: QueuedPacket) => void): QueuedPacket | undefined {
    for (;;) {
      const q = f.peek();
      if (!q) return undefined;
      if (q.dataSeq === 0 && !q.keep && nowUs - q.enqueuedUs > this.limits.maxDelayUs) {
        f.shift();
        this.account(q);
        expired(q);
        continue;
      }
      if (ready(q)) {
        f.shift();
        this.account(q);
        return q;
      }
      // (Packets of no known flow are one flow here: they keep their order among themselves.)
      const waiting = this.waiting;
      waiting.clear();
      waiting.add(q.flow);
      const n = Math.min(f.length, LOOKAHEAD);
      for (let i = 1; i < n; i++) {
        const c = f.at(i) as QueuedPacket;
        if (waiting.has(c.flow)) continue;
        if (ready(c)) {
          f.removeAt(i);
          this.account(c);
          return c;
        }
        waiting.add(c.flow);
        if (waiting.size >= MAX_WAITING_FLOWS) return undefined;
      }
      return undefined;
    }
  }

  private account(q: QueuedPacket): void {
    this.packets--;
    this.bytes -= q.ip.length;
  }

  /** Forget users with empty queues so the round-robin ring stays small. */
  private compact(): void {
    if (this.ring.length < 64) return;
    this.ring = this.ring.filter((name) => {
      const keep = (this.users.get(name)?.length ?? 0) > 0;
      if (!keep) this.users.delete(name);
      return keep;
    });
    this.turn = 0;
    this.servedInTurn = 0;
  }
}
