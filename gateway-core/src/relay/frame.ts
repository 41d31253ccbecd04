// The TCP relay's frames (relay/relay.ts) travel through the session like any IP packet: an
// IPv4 header with protocol 253 (RFC 3692, experimentation) and the relayed connection's own
// addresses and ports, then the relay header. So the engine sees each relayed connection as
// the flow it is (S2-4 users, S2-7 pinning, class rules by port) and needs no change; the
// session's AEAD seals, authenticates and replay-protects them like every data packet.
// Nothing from a TUN device may carry protocol 253 (edge and cloud drop it there, counted
// `relay-spoofed`), so only the peer gateway's relay can produce one.
//
//   IPv4 header (20 bytes, no options): src, dst = the connection's endpoints in the frame's
//   direction (edge to cloud: client -> server), protocol 253
//   0  sport u16   2  dport u16   (the connection's ports in the same direction)
//   4  kind u8     5  flags u8    6  stream id u32 (chosen by the edge)   10  offset u48
//   16 body
//
//   DATA   offset: the stream offset of the body's first byte; flags OPEN (the edge's frames
//          until the cloud has answered: open a connection to dst:dport) and FIN (the stream
//          ends after this body). A zero-length body is allowed (OPEN, FIN).
//   ACK    offset: every byte below it has arrived in order; flags FIN (the peer's FIN too);
//          body: window u32 (bytes above offset the receiver will take), count u8, then
//          count x (start u48, end u48): ranges above offset that arrived out of order.
//   RESET  the stream is gone (refused, the connection failed or was reset); body: reason u8.

export const PROTO_RELAY = 253;
export const IP_HEADER = 20;
export const RELAY_HEADER = 16;
/** Bytes a relay DATA frame adds to its payload inside the tunnel. */
export const RELAY_OVERHEAD = IP_HEADER + RELAY_HEADER;
export const MAX_ACK_RANGES = 8;
const MAX_OFFSET = 2 ** 48 - 1;

export const enum FrameKind { Data = 1, Ack = 2, Reset = 3 }
export const FrameFlags = { Open: 0x01, Fin: 0x02 } as const;

export const RESET_REASONS = ['unknown', 'refused', 'unreachable', 'timeout', 'reset', 'closed', 'limit', 'policy', 'idle'] as const;
export type ResetReason = (typeof RESET_REASONS)[number];

/** One direction of a relayed connection, as IPv4 numbers and ports. */
export interface FlowAddress { src: number; dst: number; sport: number; dport: number }

export type Frame =
  | { kind: FrameKind.Data; addr: FlowAddress; stream: number; flags: number; offset: number; data: Buffer }
  | { kind: FrameKind.Ack; addr: FlowAddress; stream: number; flags: number; offset: number; window: number; ranges: [number, number][] }
  | { kind: FrameKind.Reset; addr: FlowAddress; stream: number; flags: number; offset: number; reason: ResetReason };

function header(addr: FlowAddress, kind: FrameKind, flags: number, stream: number, offset: number, bodyLen: number): Buffer {
  const total = RELAY_OVERHEAD + bodyLen;
  const b = Buffer.allocUnsafe(total);
  b[0] = 0x45;
  b[1] = 0;
  b.writeUInt16BE(total, 2);
  b.writeUInt32BE(0, 4); // id, no fragmentation
  b[8] = 64;
  b[9] = PROTO_RELAY;
  b.writeUInt16BE(0, 10);
  b.writeUInt32BE(addr.src >>> 0, 12);
  b.writeUInt32BE(addr.dst >>> 0, 16);
  // The header checksum keeps the frame a well-formed IPv4 packet for anything that inspects it.
  let sum = 0;
  for (let i = 0; i < IP_HEADER; i += 2) sum += b.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  b.writeUInt16BE(~sum & 0xffff, 10);
  b.writeUInt16BE(addr.sport, 20);
  b.writeUInt16BE(addr.dport, 22);
  b[24] = kind;
  b[25] = flags;
  b.writeUInt32BE(stream >>> 0, 26);
  b.writeUIntBE(offset, 30, 6);
  return b;
}

export function encodeData(addr: FlowAddress, stream: number, flags: number, offset: number, data: Buffer): Buffer {
  const b = header(addr, FrameKind.Data, flags, stream, offset, data.length);
  data.copy(b, RELAY_OVERHEAD);
  return b;
}

export function encodeAck(addr: FlowAddress, stream: number, flags: number, offset: number, window: number, ranges: readonly (readonly [number, number])[]): Buffer {
  const n = Math.min(ranges.length, MAX_ACK_RANGES);
  const b = header(addr, FrameKind.Ack, flags, stream, offset, 5 + n * 12);
  let o = RELAY_OVERHEAD;
  b.writeUInt32BE(Math.max(0, Math.min(window, 0xffffffff)), o);
  b[o + 4] = n;
  o += 5;
  for (let i = 0; i < n; i++) {
    const r = ranges[i] as readonly [number, number];
    b.writeUIntBE(r[0], o, 6);
    b.writeUIntBE(r[1], o + 6, 6);
    o += 12;
  }
  return b;
}

export function encodeReset(addr: FlowAddress, stream: number, reason: ResetReason): Buffer {
  const b = header(addr, FrameKind.Reset, 0, stream, 0, 1);
  b[RELAY_OVERHEAD] = RESET_REASONS.indexOf(reason);
  return b;
}

/** Is this IP packet a relay frame (to be handed to the relay, or dropped when read from a TUN)? */
export function isRelayFrame(ip: Buffer): boolean {
  return ip.length >= IP_HEADER && ((ip[0] as number) >> 4) === 4 && ip[9] === PROTO_RELAY;
}

/** Parse a relay frame; a string names what is wrong (the caller counts it as relay-malformed). */
export function decodeFrame(ip: Buffer): Frame | string {
  if (ip.length < RELAY_OVERHEAD) return 'short';
  if (ip[0] !== 0x45) return 'IP options or not IPv4';
  if (ip[9] !== PROTO_RELAY) return 'not a relay frame';
  const total = ip.readUInt16BE(2);
  if (total !== ip.length) return `IP length ${total} != ${ip.length}`;
  const addr: FlowAddress = { src: ip.readUInt32BE(12), dst: ip.readUInt32BE(16), sport: ip.readUInt16BE(20), dport: ip.readUInt16BE(22) };
  const kind = ip[24] as number;
  const flags = ip[25] as number;
  const stream = ip.readUInt32BE(26);
  const offset = ip.readUIntBE(30, 6);
  if (stream === 0) return 'stream 0';
  const body = ip.subarray(RELAY_OVERHEAD);
  switch (kind) {
    case FrameKind.Data:
      if ((flags & ~(FrameFlags.Open | FrameFlags.Fin)) !== 0) return `DATA flags 0x${flags.toString(16)}`;
      if (offset + body.length > MAX_OFFSET) return 'offset overflow';
      return { kind, addr, stream, flags, offset, data: body };
    case FrameKind.Ack: {
      if ((flags & ~FrameFlags.Fin) !== 0) return `ACK flags 0x${flags.toString(16)}`;
      if (body.length < 5) return 'ACK body short';
      const window = body.readUInt32BE(0);
      const n = body[4] as number;
      if (n > MAX_ACK_RANGES) return `ACK with ${n} ranges`;
      if (body.length !== 5 + n * 12) return 'ACK body length';
      const ranges: [number, number][] = [];
      let prev = offset;
      for (let i = 0; i < n; i++) {
        const s = body.readUIntBE(5 + i * 12, 6);
        const e = body.readUIntBE(11 + i * 12, 6);
        if (s <= prev || e <= s) return 'ACK ranges not ascending above the offset';
        ranges.push([s, e]);
        prev = e;
      }
      return { kind, addr, stream, flags, offset, window, ranges };
    }
    case FrameKind.Reset: {
      if (body.length !== 1) return 'RESET body length';
      const reason = RESET_REASONS[body[0] as number] ?? 'unknown';
      return { kind, addr, stream, flags, offset, reason };
    }
    default:
      return `kind ${kind}`;
  }
}

/** The same connection seen from the other end (the direction of the answers). */
export function reverse(a: FlowAddress): FlowAddress {
  return { src: a.dst, dst: a.src, sport: a.dport, dport: a.sport };
}
