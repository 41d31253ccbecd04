// Per-flow order on the wire (receive/reorder): every data packet carries the distance back to
// its flow's previous data sequence (flowGap, wire/header), so the receiver holds a packet only
// behind its own flow's gaps. This is the sender's half: it hands out the gaps as packets get
// their data sequence, and remembers them for packets that are sent again (a cross-path
// re-send or a duplicate copy keeps its sequence, so it must keep its gap too).
import type { FlowState } from './flows.js';

/** Largest gap the wire carries (u16); a longer one is sent as 0, "no predecessor". */
export const MAX_FLOW_GAP = 0xffff;
/** Gaps remembered for re-sends: far more than the packets one path can have in flight. */
const RING = 1 << 16;

export class FlowChain {
  private readonly gapOf = new Uint16Array(RING);
  private readonly seqOf = new Float64Array(RING).fill(-1);
  /** Last sequence of packets that have no flow (not IPv4): they form one chain of their own. */
  private flowlessLast = 0;

  /**
   * Data sequence `seq` was just given to a packet of `flow`: its gap back to the flow's
   * previous packet (0 for a flow's first packet). Why a gap longer than MAX_FLOW_GAP can be
   * sent as "none": the receiver's window (dataPlane.reorder.maxPackets, at most 65536 for this
   * reason) has moved past a predecessor that far back, so it is delivered or given up anyway.
   */
  link(flow: FlowState | undefined, seq: number): number {
    const last = flow ? flow.lastSeq : this.flowlessLast;
    if (flow) flow.lastSeq = seq;
    else this.flowlessLast = seq;
    const gap = last > 0 && seq - last <= MAX_FLOW_GAP ? seq - last : 0;
    const i = seq & (RING - 1);
    this.gapOf[i] = gap;
    this.seqOf[i] = seq;
    return gap;
  }

  /** The gap `seq` was first sent with (0 when it is too old to be remembered). */
  gapOfSeq(seq: number): number {
    const i = seq & (RING - 1);
    return this.seqOf[i] === seq ? (this.gapOf[i] as number) : 0;
  }
}
