// Per-flow state of the sender: bytes so far (for first-bytes pinning, S2-7, and the traffic
// class), the path the flow is pinned to, and when it was last seen. Bounded: the least
// recently seen flows are forgotten first, and idle flows expire.
import type { TrafficClass } from './classify.js';
import type { FlowCompression } from '../wire/compress.js';

export interface FlowState {
  key: string;
  user: string;
  bytes: number;
  /** Path the flow's first bytes are pinned to, or -1 once pinning is over (or never started). */
  pinnedPath: number;
  cls: TrafficClass;
  startUs: number;
  lastSeenUs: number;
  /** Data sequence of the flow's last packet sent (0: none yet), for per-flow order (flow-chain). */
  lastSeq: number;
  /** Its header-compression context, once it has one (wire/compress). */
  hc?: FlowCompression | undefined;
}

export class FlowTable {
  // A Map iterates in insertion order: re-inserting on use keeps it ordered by recency.
  private readonly flows = new Map<string, FlowState>();
  /** Flows pinned to a path now (S2-7): few, each only for its first bytes. */
  private readonly pinned = new Set<FlowState>();

  /** `onForget`: a flow is dropped from the table (evicted or idle), so what it held can be reused. */
  constructor(private readonly maxFlows = 65536, private readonly idleUs = 120_000_000, private readonly onForget?: (f: FlowState, nowUs: number) => void) {}

  get size(): number {
    return this.flows.size;
  }

  touch(key: string, user: string, nowUs: number): FlowState {
    let f = this.flows.get(key);
    if (f) {
      this.flows.delete(key);
    } else {
      f = { key, user, bytes: 0, pinnedPath: -1, cls: 'interactive', startUs: nowUs, lastSeenUs: nowUs, lastSeq: 0 };
      if (this.flows.size >= this.maxFlows) {
        const oldest = this.flows.entries().next();
        if (!oldest.done) {
          this.flows.delete(oldest.value[0]);
          this.pinned.delete(oldest.value[1]);
          this.onForget?.(oldest.value[1], nowUs);
        }
      }
    }
    f.lastSeenUs = nowUs;
    this.flows.set(key, f);
    return f;
  }

  /** Forget flows idle for longer than the idle timeout (called from the session's tick). */
  expire(nowUs: number): void {
    for (const [k, f] of this.flows) {
      if (nowUs - f.lastSeenUs <= this.idleUs) break; // ordered by recency
      this.flows.delete(k);
      this.pinned.delete(f);
      this.onForget?.(f, nowUs);
    }
  }

  /** Average rate of a flow so far, bits per second (0 during its first 100 ms). */
  static rateBps(f: FlowState, nowUs: number): number {
    const age = nowUs - f.startUs;
    return age < 100_000 ? 0 : (f.bytes * 8) / (age / 1e6);
  }

  pin(f: FlowState, pathId: number): void {
    f.pinnedPath = pathId;
    this.pinned.add(f);
  }

  unpin(f: FlowState): void {
    f.pinnedPath = -1;
    this.pinned.delete(f);
  }

  /** Pinning ends for flows pinned to a path that went away. */
  unpinPath(pathId: number): void {
    for (const f of this.pinned) if (f.pinnedPath === pathId) this.unpin(f);
  }

  /** Bytes the flows pinned to `pathId` may still put on it before their pinning ends. */
  pinnedBytesToCome(pathId: number, pinBytes: number): number {
    let n = 0;
    for (const f of this.pinned) if (f.pinnedPath === pathId) n += Math.max(0, pinBytes - f.bytes);
    return n;
  }
}
