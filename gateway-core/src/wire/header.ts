// The Braid datagram, as carried in one UDP payload:
//
//   0      1      2      4              8      10                 16
//   +------+------+------+--------------+------+------------------+
//   |ver|ty|flags | path |  session id  | key  |  path sequence   |   outer header, 16 bytes,
//   +------+------+------+--------------+------+------------------+   authenticated, not secret
//   |  TS1 (u32, sender us clock) | type-specific body ...        |   sealed with AES-256-GCM
//   +-----------------------------+-------------------------------+
//   |                      GCM tag, 16 bytes                       |
//   +--------------------------------------------------------------+
//
// The path sequence (48 bits) counts every packet sent on a path and is the AEAD nonce together
// with the path id and key id, so a nonce never repeats under one key. It also drives per-path
// loss detection and the per-path replay window. The global data sequence, which the receiver
// reorders and de-duplicates by, is inside the sealed body of data packets.
//
// Bodies (after TS1):
//   data:  flowGap u16, dataSeq u48, then one IP packet (with Flags.Compressed: an announced or
//          compressed TCP/IPv4 packet or TCP relay frame, wire/compress). flowGap is how far back the previous
//          data sequence of the same flow is (0: none, the flow's first packet): the receiver
//          keeps order per flow by it (receive/reorder), so one flow's gap holds back no other.
//   ack:   ackedPathSeq u48, rcvPackets u48, rcvBytes u48, watermark u48 (each in 8 bytes),
//          echoTs1 u32, ts2 u32 (the S3 timestamps: TS1 of the newest packet received on the
//          path, TS2 its arrival time on the acker's clock; TS3 is the ack's own TS1)
//   probe: watermark u48 (in 8 bytes), then padding; asks the peer to ack at once (keepalive,
//          RTT when idle). A padded probe (path MTU discovery, path/pmtu.ts) is answered by an
//          ack with the ProbeEcho flag whose ackedPathSeq is that probe's own path sequence, so
//          the sender knows exactly which size got through.
//   nack:  feedback of the redundant low-latency class (S4-6, redundant/): echoSeq u48, highest
//          u48 (each in 8 bytes), turnaroundUs u32, rangeCount u16, reserved u16 (0), then
//          rangeCount x (first u48 in 6 bytes, count u16): the class sequences the receiver is
//          missing and asks to be re-sent. echoSeq is the newest class sequence that arrived on
//          this path and turnaroundUs how long it waited for this packet (the sender's S4-2
//          delay sample); highest is the highest class sequence received on any path.
//
// The watermark is the sender's highest data sequence when the packet left. Paths are FIFO, so
// once a packet with watermark W arrived on a path, no data sequence <= W is still on its way
// on that path: the receiver uses this to tell a lost packet from a late one (receive/reorder).
// A data packet's own sequence is its watermark.

export const WIRE_VERSION = 1;
export const OUTER_LEN = 16;
export const TAG_LEN = 16;
export const TS_LEN = 4;
/** Largest datagram we ever send or accept (an IPv4 UDP payload on a 9000-byte jumbo link). */
export const MAX_DATAGRAM = 9000;
export const MAX_SEQ = 2 ** 48 - 1;

export enum PacketType {
  Data = 1,
  Ack = 2,
  Probe = 3,
  Nack = 4,
}

export const Flags = {
  /** On a data packet: an S2-8 duplicate. */
  Redundant: 0x01,
  /**
   * On an ack (the same bit as Redundant, which acks never carry): it acknowledges another
   * path's data, whose path id is one byte after the ack body. A receiver whose uplink on a
   * carrier is congested acknowledges that carrier's downlink over another carrier, so the
   * downlink is not starved of acks (session: Session.ackCarrier).
   */
  AckFor: 0x01,
  Retransmit: 0x02,
  Urgent: 0x04,
  /** The S4 low-latency class: its own sequence space, exactly-once, NACK repair (redundant/). */
  LowLatency: 0x08,
  /**
   * Two bits (any packet type): the sender's tier of this path under its path policy,
   * 0 primary, 1 secondary, 2 backup, 3 never (a carrier at its data cap is "never"); the
   * receiver sends no more on the path than that tier allows (session/path-policy).
   */
  TierMask: 0x30,
  /** On an ack: it answers a padded probe, and ackedPathSeq is that probe's path sequence (PMTU). */
  ProbeEcho: 0x40,
  /** On a data packet: the IP packet is in TCP/IPv4 header-compressed form (wire/compress). */
  Compressed: 0x80,
} as const;
export const TIER_SHIFT = 4;

export interface OuterHeader {
  type: PacketType;
  flags: number;
  pathId: number;
  sessionId: number;
  keyId: number;
  pathSeq: number;
}

export const DATA_BODY_LEN = 8;
export const ACK_BODY_LEN = 40;
export const PROBE_BODY_LEN = 8;
/** Fixed part of a NACK body; each missing range adds NACK_RANGE_LEN. */
export const NACK_FIXED_LEN = 24;
export const NACK_RANGE_LEN = 8;
/** Most ranges one NACK may list (keeps it under 1100 bytes, far below any MTU). */
export const MAX_NACK_RANGES = 128;
/** Bytes the tunnel adds to each IP packet it carries (outer + TS1 + data body + tag). */
export const DATA_OVERHEAD = OUTER_LEN + TS_LEN + DATA_BODY_LEN + TAG_LEN;
/** An unpadded probe; a probe of datagram size S has S - PROBE_MIN_LEN bytes of padding. */
export const PROBE_MIN_LEN = OUTER_LEN + TS_LEN + PROBE_BODY_LEN + TAG_LEN;

export interface AckBody {
  /** Set when the ack travels on another path than the one it acknowledges (Flags.AckFor). */
  forPath?: number;
  ackedPathSeq: number;
  rcvPackets: number;
  rcvBytes: number;
  watermark: number;
  echoTs1: number;
  ts2: number;
}

/** A run of missing sequences: first, first + 1, ..., first + count - 1 (count 1..65535). */
export interface NackRange {
  first: number;
  count: number;
}

export interface NackBody {
  echoSeq: number;
  highest: number;
  turnaroundUs: number;
  ranges: NackRange[];
}

export function writeOuter(buf: Buffer, h: OuterHeader): void {
  buf[0] = (WIRE_VERSION << 4) | (h.type & 0x0f);
  buf[1] = h.flags & 0xff;
  buf.writeUInt16BE(h.pathId, 2);
  buf.writeUInt32BE(h.sessionId >>> 0, 4);
  buf.writeUInt16BE(h.keyId, 8);
  buf.writeUIntBE(h.pathSeq, 10, 6);
}

export type OuterResult = { ok: true; header: OuterHeader } | { ok: false; reason: 'truncated' | 'oversized' | 'bad-version' | 'bad-type' };

/** Parse the cleartext header. Nothing in it is trusted until the AEAD tag verifies. */
export function readOuter(buf: Buffer): OuterResult {
  if (buf.length < OUTER_LEN + TS_LEN + TAG_LEN) return { ok: false, reason: 'truncated' };
  if (buf.length > MAX_DATAGRAM) return { ok: false, reason: 'oversized' };
  const b0 = buf[0] as number;
  if (b0 >> 4 !== WIRE_VERSION) return { ok: false, reason: 'bad-version' };
  const type = b0 & 0x0f;
  if (type !== PacketType.Data && type !== PacketType.Ack && type !== PacketType.Probe && type !== PacketType.Nack) return { ok: false, reason: 'bad-type' };
  return {
    ok: true,
    header: {
      type,
      flags: buf[1] as number,
      pathId: buf.readUInt16BE(2),
      sessionId: buf.readUInt32BE(4),
      keyId: buf.readUInt16BE(8),
      pathSeq: buf.readUIntBE(10, 6),
    },
  };
}

/** Minimum sealed length per type (header + TS1 + body + tag). */
export function minLength(type: PacketType): number {
  const body = type === PacketType.Data ? DATA_BODY_LEN + 20 : type === PacketType.Ack ? ACK_BODY_LEN : type === PacketType.Nack ? NACK_FIXED_LEN : PROBE_BODY_LEN;
  return OUTER_LEN + TS_LEN + body + TAG_LEN;
}

export function writeU48(buf: Buffer, v: number, off: number): void {
  buf.writeUInt16BE(0, off);
  buf.writeUIntBE(v, off + 2, 6);
}

export function readU48(buf: Buffer, off: number): number | undefined {
  if (buf.readUInt16BE(off) !== 0) return undefined;
  return buf.readUIntBE(off + 2, 6);
}

export function writeDataBody(buf: Buffer, off: number, dataSeq: number, flowGap: number): void {
  buf.writeUInt16BE(flowGap, off);
  buf.writeUIntBE(dataSeq, off + 2, 6);
}

export function readDataBody(buf: Buffer, off: number): { dataSeq: number; flowGap: number } {
  return { flowGap: buf.readUInt16BE(off), dataSeq: buf.readUIntBE(off + 2, 6) };
}

export function writeAckBody(buf: Buffer, off: number, a: AckBody): void {
  writeU48(buf, a.ackedPathSeq, off);
  writeU48(buf, a.rcvPackets, off + 8);
  writeU48(buf, a.rcvBytes, off + 16);
  writeU48(buf, a.watermark, off + 24);
  buf.writeUInt32BE(a.echoTs1 >>> 0, off + 32);
  buf.writeUInt32BE(a.ts2 >>> 0, off + 36);
}

export function readAckBody(buf: Buffer, off: number): AckBody | undefined {
  if (buf.length - off !== ACK_BODY_LEN) return undefined;
  const ackedPathSeq = readU48(buf, off);
  const rcvPackets = readU48(buf, off + 8);
  const rcvBytes = readU48(buf, off + 16);
  const watermark = readU48(buf, off + 24);
  if (ackedPathSeq === undefined || rcvPackets === undefined || rcvBytes === undefined || watermark === undefined) return undefined;
  return { ackedPathSeq, rcvPackets, rcvBytes, watermark, echoTs1: buf.readUInt32BE(off + 32), ts2: buf.readUInt32BE(off + 36) };
}

export function nackBodyLength(n: NackBody): number {
  return NACK_FIXED_LEN + n.ranges.length * NACK_RANGE_LEN;
}

/** Write a NACK body; throws on a body the decoder would refuse (a programming error). */
export function writeNackBody(buf: Buffer, off: number, n: NackBody): void {
  if (n.ranges.length > MAX_NACK_RANGES) throw new RangeError(`nack: ${n.ranges.length} ranges > ${MAX_NACK_RANGES}`);
  writeU48(buf, n.echoSeq, off);
  writeU48(buf, n.highest, off + 8);
  buf.writeUInt32BE(Math.min(0xffffffff, Math.max(0, Math.round(n.turnaroundUs))), off + 16);
  buf.writeUInt16BE(n.ranges.length, off + 20);
  buf.writeUInt16BE(0, off + 22);
  let o = off + NACK_FIXED_LEN;
  for (const r of n.ranges) {
    if (r.count < 1 || r.count > 0xffff || r.first < 1 || r.first + r.count - 1 > MAX_SEQ) throw new RangeError(`nack: bad range ${r.first}+${r.count}`);
    buf.writeUIntBE(r.first, o, 6);
    buf.writeUInt16BE(r.count, o + 6);
    o += NACK_RANGE_LEN;
  }
}

/**
 * Parse a NACK body. Refused (undefined): a length that does not match the range count, more
 * than MAX_NACK_RANGES ranges, reserved bits set, an empty range or sequence 0, ranges not
 * strictly ascending and disjoint, or a range beyond `highest` (nothing above it can be missing).
 */
export function readNackBody(buf: Buffer, off: number): NackBody | undefined {
  if (buf.length - off < NACK_FIXED_LEN) return undefined;
  const echoSeq = readU48(buf, off);
  const highest = readU48(buf, off + 8);
  if (echoSeq === undefined || highest === undefined) return undefined;
  const turnaroundUs = buf.readUInt32BE(off + 16);
  const n = buf.readUInt16BE(off + 20);
  if (buf.readUInt16BE(off + 22) !== 0 || n > MAX_NACK_RANGES) return undefined;
  if (buf.length - off !== NACK_FIXED_LEN + n * NACK_RANGE_LEN) return undefined;
  const ranges: NackRange[] = [];
  let prevEnd = 0;
  let o = off + NACK_FIXED_LEN;
  for (let i = 0; i < n; i++) {
    const first = buf.readUIntBE(o, 6);
    const count = buf.readUInt16BE(o + 6);
    if (count === 0 || first <= prevEnd || first + count - 1 > highest) return undefined;
    ranges.push({ first, count });
    prevEnd = first + count - 1;
    o += NACK_RANGE_LEN;
  }
  return { echoSeq, highest, turnaroundUs, ranges };
}
