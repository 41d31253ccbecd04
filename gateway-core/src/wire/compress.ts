// TCP/IPv4 header compression for data packets (wire Flags.Compressed). A bulk TCP segment
// through the tunnel carried 40 bytes of IPv4 and TCP header of which 21 never change within a
// flow or can be computed: at 1472 carrier bytes per 1348 bytes of payload, headers were 8.4 %
// of every carrier byte. Compression takes that to 7.1 %, and a pure ACK on a slow uplink from
// 124 to 103 bytes.
//
// The body of a data packet with Flags.Compressed set (after flowGap and dataSeq):
//   kind u8, ctx u16, then
//   kind 0 (announce):   the whole IPv4/TCP packet; the receiver keeps its fixed fields as ctx
//   kind 1 (compressed): ipId u16, seq u32, ack u32, offset+flags u16, window u16, checksum u16,
//                        then the TCP options and payload as they were
// Fixed fields (the context): TOS, DF, TTL, addresses, ports. Computed: version and header
// length (always 0x45), total length (from the datagram), protocol (6), the IP checksum, and
// the urgent pointer (0: a segment with URG set is sent as is). The TCP checksum travels
// unchanged, so the endpoint still checks the rebuilt segment end to end.
//
//   kind 2 (relay):      a TCP relay frame (relay/frame.ts, IPv4 protocol 253) without its IPv4
//                        header and ports: the relay header from its kind byte on, and the body
// Relay frames have the same context (their IP id is always 0 and not carried); 24 bytes
// become 3. With the TCP relay on, almost every bulk packet is a relay frame.
//
// Stateless per packet, so loss and reordering across paths cannot desynchronise it (unlike
// RFC 1144 deltas). A flow's first packets announce its context, and it is compressed only once
// those announcements had a round trip of the slowest path to arrive; a re-announce every 256
// packets repairs a context whose announcements were all lost. A compressed packet naming a
// context the receiver does not know is dropped and counted (`unknown-context`).

/** At most this many contexts per session and direction (receiver memory: about 17 bytes each). */
export const MAX_CONTEXTS = 4096;
/** Announce (kind 0) or compressed (kind 1) prefix: kind u8, ctx u16. */
const PREFIX = 3;
/** Compressed fields after the prefix: ipId, seq, ack, offset+flags, window, checksum. */
const FIELDS = 16;
/** Bytes a compressed packet saves against the packet it carries (40 header bytes become 19). */
export const COMPRESSION_SAVES = 40 - PREFIX - FIELDS;
const KIND_ANNOUNCE = 0;
const KIND_COMPRESSED = 1;
const KIND_RELAY = 2;
const PROTO_TCP = 6;
/** relay/frame.ts PROTO_RELAY (not imported: wire/ does not depend on relay/). */
const PROTO_RELAY = 253;
/** IPv4 header and ports of a relay frame, and its relay header after the ports (relay/frame.ts). */
const RELAY_FIXED = 24;
const RELAY_REST = 12;
/** The smallest data body the codec accepts (wire/codec MIN_IP). */
const MIN_DATA_BODY = 20;

/** The fields of an IPv4/TCP packet that stay the same within a flow. */
export interface TcpContext {
  /** 6 (TCP) or 253 (a TCP relay frame). */
  proto: number;
  tos: number;
  /** The IP flags and fragment offset field: 0 or DF (0x4000), nothing else is compressed. */
  frag: number;
  ttl: number;
  src: number;
  dst: number;
  sport: number;
  dport: number;
}

/** The context of an IPv4/TCP packet or relay frame that can be compressed, or undefined (options, fragments, URG, other protocols). */
export function contextOf(ip: Buffer): TcpContext | undefined {
  if (ip.length < 20 || ip[0] !== 0x45 || ip.readUInt16BE(2) !== ip.length) return undefined;
  const proto = ip[9] as number;
  const frag = ip.readUInt16BE(6);
  if ((frag & ~0x4000) !== 0) return undefined;
  if (proto === PROTO_RELAY) {
    if (ip.length < RELAY_FIXED + RELAY_REST || ip.readUInt16BE(4) !== 0) return undefined;
    return { proto, tos: ip[1] as number, frag, ttl: ip[8] as number, src: ip.readUInt32BE(12), dst: ip.readUInt32BE(16), sport: ip.readUInt16BE(20), dport: ip.readUInt16BE(22) };
  }
  if (proto !== PROTO_TCP || ip.length < 40) return undefined;
  const tcpLen = ((ip[32] as number) >> 4) * 4;
  if (tcpLen < 20 || 20 + tcpLen > ip.length) return undefined;
  if (((ip[33] as number) & 0x20) !== 0 || ip.readUInt16BE(38) !== 0) return undefined;
  return {
    proto, tos: ip[1] as number, frag, ttl: ip[8] as number,
    src: ip.readUInt32BE(12), dst: ip.readUInt32BE(16), sport: ip.readUInt16BE(20), dport: ip.readUInt16BE(22),
  };
}

function sameContext(a: TcpContext, b: TcpContext): boolean {
  return a.proto === b.proto && a.tos === b.tos && a.frag === b.frag && a.ttl === b.ttl && a.src === b.src && a.dst === b.dst && a.sport === b.sport && a.dport === b.dport;
}

/** A flow's compression state on the sender (kept on its FlowState). */
export interface FlowCompression {
  ctx: number;
  context: TcpContext;
  firstAnnounceUs: number;
  announced: number;
  sinceAnnounce: number;
}

/** Announcements a flow sends before it is compressed, and how often it re-announces. */
const MIN_ANNOUNCE = 3;
const REANNOUNCE_EVERY = 256;
/** A released context is given to a new flow only this much later (nothing of the old one is still on its way). */
const REUSE_AFTER_US = 30_000_000;

/**
 * The sender's side: hands out contexts to flows and writes the body of each packet. One per
 * session; `encode` returns the bytes to carry (with Flags.Compressed), or undefined to carry
 * the packet as is.
 */
export class HeaderCompressor {
  private nextFresh = 0;
  private readonly released: { ctx: number; atUs: number }[] = [];
  private releasedHead = 0;
  private readonly scratch = Buffer.allocUnsafe(65536);
  /** Packets sent compressed and announcements sent (for status and the tests). */
  compressed = 0;
  announcements = 0;

  /**
   * `settleUs`: how long after a flow's first announcement its packets may be compressed (the
   * session passes its slowest path's smoothed round trip plus a margin).
   */
  encode(flow: { hc?: FlowCompression | undefined } | undefined, ip: Buffer, nowUs: number, settleUs: number): Buffer | undefined {
    if (!flow) return undefined;
    const context = contextOf(ip);
    if (!context) return undefined;
    let hc = flow.hc;
    if (!hc) {
      const ctx = this.allocate(nowUs);
      if (ctx === undefined) return undefined;
      hc = { ctx, context, firstAnnounceUs: nowUs, announced: 0, sinceAnnounce: 0 };
      flow.hc = hc;
    }
    // A field of the context changed (a route's TTL, a DSCP remark): this packet goes as is.
    if (!sameContext(hc.context, context)) return undefined;
    const out = this.scratch;
    out[1] = hc.ctx >> 8;
    out[2] = hc.ctx & 0xff;
    if (hc.announced < MIN_ANNOUNCE || nowUs - hc.firstAnnounceUs < settleUs || hc.sinceAnnounce >= REANNOUNCE_EVERY) {
      out[0] = KIND_ANNOUNCE;
      ip.copy(out, PREFIX);
      hc.announced++;
      hc.sinceAnnounce = 0;
      this.announcements++;
      return out.subarray(0, PREFIX + ip.length);
    }
    // The codec takes no data body shorter than an IPv4 header: a short relay frame (an ACK,
    // a FIN, a one-byte message) goes as it is.
    if (context.proto === PROTO_RELAY && PREFIX + ip.length - RELAY_FIXED < MIN_DATA_BODY) return undefined;
    hc.sinceAnnounce++;
    this.compressed++;
    if (context.proto === PROTO_RELAY) {
      out[0] = KIND_RELAY;
      ip.copy(out, PREFIX, RELAY_FIXED);
      return out.subarray(0, PREFIX + ip.length - RELAY_FIXED);
    }
    out[0] = KIND_COMPRESSED;
    ip.copy(out, PREFIX, 4, 6); // IP id
    ip.copy(out, PREFIX + 2, 24, 36); // seq, ack, offset+flags, window
    ip.copy(out, PREFIX + 14, 36, 38); // TCP checksum
    ip.copy(out, PREFIX + FIELDS, 40); // options and payload
    return out.subarray(0, PREFIX + FIELDS + ip.length - 40);
  }

  /** The flow is forgotten (FlowTable): its context may serve another flow later. */
  release(hc: FlowCompression, nowUs: number): void {
    this.released.push({ ctx: hc.ctx, atUs: nowUs });
  }

  private allocate(nowUs: number): number | undefined {
    if (this.nextFresh < MAX_CONTEXTS) return this.nextFresh++;
    const r = this.released[this.releasedHead];
    if (!r || nowUs - r.atUs < REUSE_AFTER_US) return undefined;
    this.releasedHead++;
    if (this.releasedHead > 1024 && this.releasedHead * 2 > this.released.length) {
      this.released.splice(0, this.releasedHead);
      this.releasedHead = 0;
    }
    return r.ctx;
  }
}

/** Why a compressed body was refused: counted by the session under these drop reasons. */
export type DecompressError = 'malformed-body' | 'unknown-context';

/** The receiver's side: the contexts the peer announced, and the packets rebuilt from them. */
export class HeaderDecompressor {
  // Typed arrays sized on first use: a session that never sees a compressed flow pays nothing.
  private known: Uint8Array | undefined;
  private tosTtl!: Uint16Array;
  private frag!: Uint16Array;
  private addr!: Uint32Array;
  private ports!: Uint32Array;

  /** The IP packet a compressed body carries, or why it cannot be rebuilt. */
  decode(body: Buffer): Buffer | DecompressError {
    if (body.length < PREFIX) return 'malformed-body';
    const kind = body[0] as number;
    const ctx = body.readUInt16BE(1);
    if (ctx >= MAX_CONTEXTS) return 'malformed-body';
    if (kind === KIND_ANNOUNCE) {
      const ip = body.subarray(PREFIX);
      const c = contextOf(ip);
      if (!c) return 'malformed-body';
      this.remember(ctx, c);
      return ip;
    }
    if (kind === KIND_RELAY) return this.relayFrame(ctx, body);
    if (kind !== KIND_COMPRESSED) return 'malformed-body';
    if (body.length < PREFIX + FIELDS) return 'malformed-body';
    if (!this.known || this.known[ctx] !== PROTO_TCP) return this.known?.[ctx] ? 'malformed-body' : 'unknown-context';
    const rest = body.length - PREFIX - FIELDS;
    const tcpLen = ((body[PREFIX + 10] as number) >> 4) * 4;
    if (tcpLen < 20 || tcpLen - 20 > rest || 40 + rest > 65535) return 'malformed-body';
    const ip = Buffer.allocUnsafe(40 + rest);
    const tt = this.tosTtl[ctx] as number;
    ip[0] = 0x45;
    ip[1] = tt >> 8;
    ip.writeUInt16BE(ip.length, 2);
    body.copy(ip, 4, PREFIX, PREFIX + 2);
    ip.writeUInt16BE(this.frag[ctx] as number, 6);
    ip[8] = tt & 0xff;
    ip[9] = 6;
    ip.writeUInt16BE(0, 10);
    ip.writeUInt32BE(this.addr[2 * ctx] as number, 12);
    ip.writeUInt32BE(this.addr[2 * ctx + 1] as number, 16);
    ip.writeUInt32BE(this.ports[ctx] as number, 20);
    body.copy(ip, 24, PREFIX + 2, PREFIX + 14);
    body.copy(ip, 36, PREFIX + 14, PREFIX + 16);
    ip.writeUInt16BE(0, 38);
    body.copy(ip, 40, PREFIX + FIELDS);
    ip.writeUInt16BE(ipHeaderChecksum(ip), 10);
    return ip;
  }

  /** A relay frame rebuilt from its context: IPv4 header (id 0) and ports, then the rest as carried. */
  private relayFrame(ctx: number, body: Buffer): Buffer | DecompressError {
    if (body.length < PREFIX + RELAY_REST || body.length - PREFIX + RELAY_FIXED > 65535) return 'malformed-body';
    if (!this.known || this.known[ctx] !== PROTO_RELAY) return this.known?.[ctx] ? 'malformed-body' : 'unknown-context';
    const ip = Buffer.allocUnsafe(body.length - PREFIX + RELAY_FIXED);
    const tt = this.tosTtl[ctx] as number;
    ip[0] = 0x45;
    ip[1] = tt >> 8;
    ip.writeUInt16BE(ip.length, 2);
    ip.writeUInt16BE(0, 4);
    ip.writeUInt16BE(this.frag[ctx] as number, 6);
    ip[8] = tt & 0xff;
    ip[9] = PROTO_RELAY;
    ip.writeUInt16BE(0, 10);
    ip.writeUInt32BE(this.addr[2 * ctx] as number, 12);
    ip.writeUInt32BE(this.addr[2 * ctx + 1] as number, 16);
    ip.writeUInt32BE(this.ports[ctx] as number, 20);
    body.copy(ip, RELAY_FIXED, PREFIX);
    ip.writeUInt16BE(ipHeaderChecksum(ip), 10);
    return ip;
  }

  private remember(ctx: number, c: TcpContext): void {
    if (!this.known) {
      this.known = new Uint8Array(MAX_CONTEXTS);
      this.tosTtl = new Uint16Array(MAX_CONTEXTS);
      this.frag = new Uint16Array(MAX_CONTEXTS);
      this.addr = new Uint32Array(2 * MAX_CONTEXTS);
      this.ports = new Uint32Array(MAX_CONTEXTS);
    }
    // The protocol the context was announced for: a compressed packet of the other kind is malformed.
    this.known[ctx] = c.proto;
    this.tosTtl[ctx] = (c.tos << 8) | c.ttl;
    this.frag[ctx] = c.frag;
    this.addr[2 * ctx] = c.src;
    this.addr[2 * ctx + 1] = c.dst;
    this.ports[ctx] = ((c.sport << 16) | c.dport) >>> 0;
  }
}

/** The IPv4 header checksum of ip[0, 20) with its checksum field taken as written. */
function ipHeaderChecksum(ip: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += ip.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
