// One relayed TCP connection's state at one gateway: the bytes it read from its local socket
// and sends to the peer (kept until acknowledged, re-sent when lost), and the bytes from the
// peer, put back in order and written to the local socket. The session below carries the
// frames over every carrier and already orders each flow and re-sends what a dying path held;
// what it gives up on (a gap declared lost) this layer repairs, so nothing of a relayed
// connection is lost while the session lives.
//
// No timers here: the relay (relay/relay.ts) calls tick() for all its streams from one timer.
import {
  encodeAck, encodeData, FrameFlags, MAX_ACK_RANGES, type FlowAddress,
} from './frame.js';

/** The local TCP connection of a relayed stream (node:net in relay/net.ts, in memory in tests). */
export interface RelayConn {
  /** Hand bytes to the connection; false when it now holds more than it wants (wait for drain). */
  write(b: Buffer): boolean;
  /** Bytes written that the kernel has not taken yet. */
  buffered(): number;
  /** No more bytes will be written (TCP FIN after the buffered bytes). */
  end(): void;
  /** Abort the connection (TCP RST). */
  reset(): void;
  pause(): void;
  resume(): void;
}

interface Seg {
  off: number;
  data: Buffer;
  flags: number;
  /** Last time it was sent (0: never). */
  sentUs: number;
  sends: number;
  sacked: boolean;
  /** Waiting to be (re-)sent (it is then in RelayStream.lostQueue). */
  lost: boolean;
  acked: boolean;
}

export interface StreamLimits {
  /** Bytes this side buffers per direction: unacknowledged sent data, and data out of order or waiting for the local socket. */
  windowBytes: number;
}

/** A delayed ACK goes after this long, or after ACK_EVERY frames. */
const ACK_DELAY_US = 10_000;
const ACK_EVERY = 16;
const MIN_RTO_US = 500_000;
/** While bytes wait behind a hole, the receiver repeats its ACK this often (the sender re-sends the hole from it). */
const HOLE_ACK_US = 50_000;
const RTT_MAX_WINDOW_US = 1_000_000;
const INITIAL_RTO_US = 1_000_000;
/** A segment re-sent n times waits min(2^(n-1), 4) timeouts before the next. */
const MAX_BACKOFF = 4;
/** A hole the peer reports is re-sent once it was sent at least this long ago (or a smoothed round trip). */
const MIN_REORDER_GUARD_US = 10_000;

export class RelayStream {
  // Send side.
  private readonly segs: Seg[] = [];
  /** Segments marked lost, in the order they are to be re-sent (acked ones are skipped). */
  private lostQueue: Seg[] = [];
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private sndUna = 0;
  private sndNxt = 0;
  private peerWindowEnd: number;
  private localEnded = false;
  private finQueued = false;
  finAcked = false;
  private opening: boolean;
  private readPaused = false;
  private srttUs = 0;
  private rttvarUs = 0;
  private lastProgressUs: number;
  private lastRtoScanUs = 0;
  /** Largest RTT sample in the previous and the current window (rttMaxUs). */
  private rttMax: [number, number] = [0, 0];
  private rttMaxSinceUs = 0;
  // Receive side.
  private rcvNxt = 0;
  private readonly ooo = new Map<number, Buffer>();
  private oooBytes = 0;
  private remoteFin = -1;
  finDelivered = false;
  private ackNow = false;
  private unacked = 0;
  private firstUnackedUs = 0;
  private lastWindow: number;
  private lastAckUs = 0;
  /** The lowest hole we report (our rcvNxt then), and since when it has gone without an urgent report. */
  private holeAt = -1;
  private holeSinceUs = 0;
  /**
   * What the frame nextFrame just returned is to the peer (relay.ts picks its SendOptions):
   *   - 'urgent': an ACK whose hole has been open for HOLE_ACK_US: the peer's repair is late or
   *     our reports of it were lost (on a carrier that died unnoticed). At most once per
   *     HOLE_ACK_US, not every hole report: with loss, nearly every ACK reports one, and sending
   *     each on several carriers doubled the ACK traffic.
   *   - 'repair': a re-sent segment: the peer's stream waits on it, so it jumps the session's
   *     queue and is the first thing re-sent if its carrier goes out of service, once (copying
   *     every repair cost efficiency).
   *   - 'plain': anything else.
   */
  lastFrame: 'plain' | 'urgent' | 'repair' = 'plain';
  // Counters (status, tests).
  bytesSent = 0;
  bytesResent = 0;
  bytesReceived = 0;

  constructor(
    readonly id: number,
    /** The frames this side sends: addresses and ports in its direction. */
    readonly out: FlowAddress,
    readonly conn: RelayConn,
    private readonly limits: StreamLimits,
    /** The edge's side of a new stream: its frames carry OPEN until the cloud answers. */
    opener: boolean,
    now: number,
  ) {
    this.peerWindowEnd = limits.windowBytes;
    this.lastWindow = limits.windowBytes;
    this.opening = opener;
    this.lastProgressUs = now;
    // The edge announces the stream at once, even before the client says anything (a server
    // that speaks first, SMTP or SSH, waits for the connection, not for client data).
    if (opener) this.markLost(this.pushSeg(0, Buffer.alloc(0), FrameFlags.Open, 0, 0));
  }

  // ---- from the local connection ----

  /** Bytes read from the local connection. */
  onLocalData(b: Buffer): void {
    if (this.localEnded || b.length === 0) return;
    this.pending.push(b);
    this.pendingBytes += b.length;
    if (!this.readPaused && this.sendBuffered() >= this.limits.windowBytes) {
      this.readPaused = true;
      this.conn.pause();
    }
  }

  /** The local connection sent FIN: the stream ends after what it read. */
  onLocalEnd(): void {
    this.localEnded = true;
  }

  /** The local connection took what it buffered: the window we advertise opened. */
  onLocalDrain(): void {
    if (this.lastWindow < this.limits.windowBytes / 4) this.ackNow = true;
  }

  private sendBuffered(): number {
    return this.pendingBytes + (this.sndNxt - this.sndUna);
  }

  // ---- sending ----

  /** Has this stream a frame to send now (data within the peer's window, a repair, FIN, an ACK due)? */
  wantsToSend(now: number): boolean {
    return this.ackDue(now) || this.hasDataFrame();
  }

  private pushSeg(off: number, data: Buffer, flags: number, sentUs: number, sends: number): Seg {
    const s: Seg = { off, data, flags, sentUs, sends, sacked: false, lost: false, acked: false };
    this.segs.push(s);
    return s;
  }

  private markLost(s: Seg): void {
    s.lost = true;
    this.lostQueue.push(s);
  }

  private hasDataFrame(): boolean {
    while (this.lostQueue.length > 0 && !(this.lostQueue[0] as Seg).lost) this.lostQueue.shift();
    if (this.lostQueue.length > 0) return true;
    if (this.pendingBytes > 0) return this.sndNxt < this.peerWindowEnd;
    return this.localEnded && !this.finQueued;
  }

  /**
   * The next frame to send, or undefined: an ACK when one is due, else (when `dataAllowed`) a
   * lost segment, new data within the peer's window, or the FIN. `maxPayload` is what fits in
   * a tunnel packet.
   */
  nextFrame(now: number, maxPayload: number, dataAllowed = true): Buffer | undefined {
    this.lastFrame = 'plain';
    if (this.ackDue(now)) return this.takeAck(now);
    if (!dataAllowed) return undefined;
    const flags0 = this.opening ? FrameFlags.Open : 0;
    for (let s = this.lostQueue.shift(); s !== undefined; s = this.lostQueue.shift()) {
      if (!s.lost || s.acked) continue;
      s.lost = false;
      if (s.sends > 0) {
        this.bytesResent += s.data.length;
        this.lastFrame = 'repair';
      }
      s.sends++;
      s.sentUs = now;
      return encodeData(this.out, this.id, s.flags | flags0, s.off, s.data);
    }
    if (this.pendingBytes > 0) {
      const room = this.peerWindowEnd - this.sndNxt;
      const n = Math.min(maxPayload, this.pendingBytes, room);
      // Not a sliver of a packet into a nearly closed window (silly window syndrome).
      if (n <= 0 || (n < this.pendingBytes && n < maxPayload && n < this.limits.windowBytes / 4)) return undefined;
      const data = this.cut(n);
      const fin = this.localEnded && this.pendingBytes === 0;
      if (fin) this.finQueued = true;
      return this.sendNew(data, fin ? FrameFlags.Fin : 0, flags0, now);
    }
    if (this.localEnded && !this.finQueued) {
      this.finQueued = true;
      return this.sendNew(Buffer.alloc(0), FrameFlags.Fin, flags0, now);
    }
    return undefined;
  }

  private sendNew(data: Buffer, flags: number, flags0: number, now: number): Buffer {
    const s = this.pushSeg(this.sndNxt, data, flags, now, 1);
    this.sndNxt += data.length;
    this.bytesSent += data.length;
    return encodeData(this.out, this.id, flags | flags0, s.off, data);
  }

  /** The first n pending bytes as one buffer. */
  private cut(n: number): Buffer {
    this.pendingBytes -= n;
    const first = this.pending[0] as Buffer;
    if (first.length === n) {
      this.pending.shift();
      return first;
    }
    if (first.length > n) {
      this.pending[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let o = 0;
    while (o < n) {
      const b = this.pending[0] as Buffer;
      const take = Math.min(b.length, n - o);
      b.copy(out, o, 0, take);
      o += take;
      if (take === b.length) this.pending.shift();
      else this.pending[0] = b.subarray(take);
    }
    return out;
  }

  // ---- acknowledgements from the peer ----

  /** The peer's ACK: release what it has, re-send the holes it reports. */
  onAck(cum: number, fin: boolean, window: number, ranges: readonly (readonly [number, number])[], now: number): void {
    this.opening = false;
    if (cum > this.sndNxt) return; // acknowledges what we never sent: ignored
    if (cum >= this.sndUna) this.peerWindowEnd = Math.max(this.peerWindowEnd, cum + window);
    let progressed = false;
    while (this.segs.length > 0) {
      const s = this.segs[0] as Seg;
      const end = s.off + s.data.length;
      const acked = end < cum || (end === cum && ((s.flags & FrameFlags.Fin) === 0 || fin));
      if (!acked) break;
      this.segs.shift();
      s.acked = true;
      s.lost = false;
      // Karn, and more: neither a re-sent segment nor one that waited behind a hole (it was
      // reported out of order first) says how long the round trip is.
      if (s.sends === 1 && !s.sacked && s.sentUs > 0 && s.data.length > 0) this.rttSample(now - s.sentUs, now);
      if ((s.flags & FrameFlags.Fin) !== 0) this.finAcked = true;
      progressed = true;
    }
    if (cum > this.sndUna) {
      this.sndUna = cum;
      progressed = true;
    }
    if (progressed) {
      this.lastProgressUs = now;
      if (this.readPaused && this.sendBuffered() < this.limits.windowBytes / 2) {
        this.readPaused = false;
        this.conn.resume();
      }
    }
    if (ranges.length === 0) return;
    // The session below already held the hole as long as its paths could still bring it, so
    // it is most likely lost: re-send it once a smoothed round trip has passed since it was
    // sent (less, and a report crossing our last repair would repeat it). Not the slowest
    // round trip seen: the session's holds inflate that to 100-200 ms, every repair waited
    // for it, and a carrier that blacked out left the client 300-400 ms without data (the
    // failover namespace test: 5 of 19 runs over 300 ms; 0 of 10 with this guard, 99-246 ms).
    // A segment that was only late still arrives (the session delivers late relay frames) and
    // costs one duplicate.
    const guard = Math.max(MIN_REORDER_GUARD_US, this.srttUs);
    const top = (ranges[ranges.length - 1] as readonly [number, number])[1];
    let r = 0;
    for (const s of this.segs) {
      const end = s.off + s.data.length;
      while (r < ranges.length && (ranges[r] as readonly [number, number])[1] < end) r++;
      const rg = ranges[r];
      s.sacked = rg !== undefined && rg[0] <= s.off && end <= rg[1] && s.data.length > 0;
      // A hole below data the peer has: lost, unless it was sent (again) too recently to tell.
      if (!s.sacked && !s.lost && end <= top && now - s.sentUs >= guard) this.markLost(s);
    }
  }

  /** The largest round trip of the last one to two seconds: the slowest carrier's, queue included. */
  private rttMaxUs(): number {
    return Math.max(this.rttMax[0], this.rttMax[1]);
  }

  private rttSample(us: number, now: number): void {
    if (now - this.rttMaxSinceUs >= RTT_MAX_WINDOW_US) {
      this.rttMax = [this.rttMax[1], 0];
      this.rttMaxSinceUs = now;
    }
    if (us > this.rttMax[1]) this.rttMax[1] = us;
    if (this.srttUs === 0) {
      this.srttUs = us;
      this.rttvarUs = us / 2;
      return;
    }
    this.rttvarUs += (Math.abs(this.srttUs - us) - this.rttvarUs) / 4;
    this.srttUs += (us - this.srttUs) / 8;
  }

  /**
   * A segment's retransmission timeout, the last resort: holes are repaired from the peer's
   * ACKs (it repeats them while it has one, HOLE_ACK_US), so this only catches a lost tail.
   * Past the slowest carrier's round trip, not the mean one, or a segment on a slow carrier's
   * queue would time out every time.
   */
  private rtoUs(): number {
    return this.srttUs === 0 ? INITIAL_RTO_US : Math.max(MIN_RTO_US, 2 * this.srttUs, 1.5 * this.rttMaxUs());
  }

  /**
   * Timers: each segment's retransmission timeout, and delayed ACKs. Returns true when there is
   * something to send. The timeout is per segment, not per stream: a repair that is lost again
   * while other data still flows (or while the peer's window is full of what waits behind it,
   * so no ACK comes) is sent again after its own timeout, not after the whole stream stalls.
   * It backs off per segment only: congestion is the session's business (S3), not this layer's.
   */
  tick(now: number): boolean {
    const rto = this.rtoUs();
    if (this.segs.length > 0 && now - this.lastRtoScanUs >= rto / 4) {
      this.lastRtoScanUs = now;
      for (const s of this.segs) {
        if (s.sacked || s.lost || s.sends === 0) continue;
        if (now - s.sentUs >= rto * Math.min(1 << (s.sends - 1), MAX_BACKOFF)) this.markLost(s);
      }
    }
    return this.wantsToSend(now);
  }

  /** How long since the peer last acknowledged anything while we had data out (for a dead-peer limit). */
  stalledForUs(now: number): number {
    return this.segs.length > 0 ? now - this.lastProgressUs : 0;
  }

  // ---- data from the peer ----

  /** A DATA frame of this stream from the peer. Returns false when it was beyond our window (dropped). */
  onData(off: number, data: Buffer, fin: boolean, now: number): boolean {
    const end = off + data.length;
    if (end > this.rcvNxt + this.limits.windowBytes) {
      this.ackNow = true;
      return false;
    }
    if (fin) {
      if (this.remoteFin < 0) this.remoteFin = end;
      this.ackNow = true;
    }
    if (end <= this.rcvNxt) {
      // Already have it (a repair that crossed our ACK): say so at once.
      if (data.length > 0) this.ackNow = true;
    } else if (off <= this.rcvNxt) {
      this.deliver(data.subarray(this.rcvNxt - off));
      if (this.ooo.size > 0) {
        for (let b = this.ooo.get(this.rcvNxt); b !== undefined; b = this.ooo.get(this.rcvNxt)) {
          this.ooo.delete(this.rcvNxt);
          this.oooBytes -= b.length;
          this.deliver(b);
        }
        // Drop what the delivery overtook (a segment that started inside delivered bytes cannot
        // exist: segments keep their boundaries when re-sent).
        this.ackNow = true;
      }
    } else if (!this.ooo.has(off)) {
      this.ooo.set(off, data);
      this.oooBytes += data.length;
      this.ackNow = true;
    }
    if (this.remoteFin >= 0 && this.rcvNxt >= this.remoteFin && !this.finDelivered) {
      this.finDelivered = true;
      this.conn.end();
    }
    if (this.unacked++ === 0) this.firstUnackedUs = now;
    return true;
  }

  private deliver(b: Buffer): void {
    if (b.length === 0) return;
    this.rcvNxt += b.length;
    this.bytesReceived += b.length;
    this.conn.write(b);
  }

  private ackDue(now: number): boolean {
    return this.ackNow || this.unacked >= ACK_EVERY || (this.unacked > 0 && now - this.firstUnackedUs >= ACK_DELAY_US)
      || (this.ooo.size > 0 && now - this.lastAckUs >= HOLE_ACK_US);
  }

  /** Ask for an ACK at the next chance (the peer's OPEN, a duplicate). */
  requestAck(): void {
    this.ackNow = true;
  }

  private takeAck(now: number): Buffer {
    if (this.ooo.size === 0) this.holeAt = -1;
    else if (this.holeAt !== this.rcvNxt) {
      this.holeAt = this.rcvNxt;
      this.holeSinceUs = now;
    } else if (now - this.holeSinceUs >= HOLE_ACK_US) {
      this.holeSinceUs = now;
      this.lastFrame = 'urgent';
    }
    this.lastAckUs = now;
    this.ackNow = false;
    this.unacked = 0;
    const window = Math.max(0, this.limits.windowBytes - this.oooBytes - this.conn.buffered());
    this.lastWindow = window;
    const ranges: [number, number][] = [];
    if (this.ooo.size > 0) {
      for (const off of [...this.ooo.keys()].sort((a, b) => a - b)) {
        const end = off + (this.ooo.get(off) as Buffer).length;
        const last = ranges[ranges.length - 1];
        if (last && last[1] === off) last[1] = end;
        else if (ranges.length < MAX_ACK_RANGES) ranges.push([off, end]);
        else break;
      }
    }
    const fin = this.finDelivered ? FrameFlags.Fin : 0;
    return encodeAck(this.out, this.id, fin, this.rcvNxt, window, ranges);
  }

  /** Both directions finished and acknowledged: the stream can go. */
  done(): boolean {
    return this.finAcked && this.finDelivered && !this.ackNow && this.unacked === 0;
  }

  /** Bytes held by this stream (send buffer and reassembly), for the relay's memory bound and status. */
  heldBytes(): number {
    return this.sendBuffered() + this.oooBytes;
  }

  stats() {
    return { id: this.id, sent: this.bytesSent, resent: this.bytesResent, received: this.bytesReceived, held: this.heldBytes(), srttMs: Math.round(this.srttUs / 100) / 10 };
  }
}
