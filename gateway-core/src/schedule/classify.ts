// Traffic classes and flow identity, read from the IP header (S2-4). The class picks the
// scheduling algorithm (S2-11): bulk traffic is striped for throughput, interactive and
// real-time traffic is kept on the lowest-delay paths (and, with the redundant class of S4,
// duplicated). Classification uses only what is visible without decryption: protocol, ports,
// DSCP, packet sizes and the flow's byte count so far.

export type TrafficClass = 'bulk' | 'interactive' | 'realtime';

export interface PacketMeta {
  /** 5-tuple key of the flow ("proto:src:sport>dst:dport"); fragments and other protocols use the addresses. */
  flow: string;
  src: number;
  dst: number;
  proto: number;
  sport: number;
  dport: number;
  dscp: number;
  /** TCP SYN, FIN or RST, or a pure TCP ACK: small control packets that should not wait behind data. */
  urgent: boolean;
  length: number;
}

export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
/** TCP relay frames (relay/frame.ts) start with the relayed connection's ports, as TCP does. */
const PROTO_RELAY = 253;

/**
 * Protocols whose first 4 bytes after the IP header are source and destination ports: the
 * flow identity on both sides (here, and receive/flow-hash). Both must agree, or the receiver
 * keeps one order across flows the sender kept apart, and refuses their packets as too late.
 */
export function carriesPorts(proto: number): boolean {
  return proto === PROTO_TCP || proto === PROTO_UDP || proto === PROTO_RELAY;
}

/** Parse what the scheduler needs from an IPv4 packet; undefined for anything else. */
export function packetMeta(pkt: Buffer): PacketMeta | undefined {
  if (pkt.length < 20 || (pkt[0] as number) >> 4 !== 4) return undefined;
  const ihl = ((pkt[0] as number) & 0x0f) * 4;
  if (ihl < 20 || pkt.length < ihl) return undefined;
  const proto = pkt[9] as number;
  const src = pkt.readUInt32BE(12);
  const dst = pkt.readUInt32BE(16);
  const dscp = (pkt[1] as number) >> 2;
  const fragOffset = pkt.readUInt16BE(6) & 0x1fff;
  let sport = 0;
  let dport = 0;
  let urgent = false;
  if (carriesPorts(proto) && fragOffset === 0 && pkt.length >= ihl + 4) {
    sport = pkt.readUInt16BE(ihl);
    dport = pkt.readUInt16BE(ihl + 2);
    if (proto === PROTO_TCP && pkt.length >= ihl + 14) {
      const flags = pkt[ihl + 13] as number;
      const dataOffset = ((pkt[ihl + 12] as number) >> 4) * 4;
      const payload = pkt.readUInt16BE(2) - ihl - dataOffset;
      // SYN, FIN, RST, or an ACK carrying no data.
      urgent = (flags & 0x07) !== 0 || ((flags & 0x10) !== 0 && payload <= 0);
    }
  }
  return { flow: `${proto}:${src}:${sport}>${dst}:${dport}`, src, dst, proto, sport, dport, dscp, urgent, length: pkt.length };
}

export interface ClassRule {
  /** Match on protocol ('tcp' | 'udp' | a number), destination or source port ranges, DSCP values. */
  proto?: 'tcp' | 'udp' | number;
  ports?: [number, number][];
  dscp?: number[];
  /** Destination networks (policy: traffic to these prefixes), as network number and mask. */
  destinations?: { network: number; mask: number }[];
  class: TrafficClass;
}

/**
 * Default rules: DSCP EF/CS5/AF4x and well-known real-time ports are real-time; DSCP CS6/CS7,
 * DNS, SSH and remote desktop are interactive. Everything else is decided by behaviour.
 */
export const DEFAULT_CLASS_RULES: ClassRule[] = [
  { dscp: [46, 40, 34, 36, 38], class: 'realtime' },
  { dscp: [48, 56], class: 'interactive' },
  { proto: 'udp', ports: [[3478, 3481], [5060, 5061], [10000, 20000], [19302, 19309], [27000, 27050]], class: 'realtime' },
  { ports: [[53, 53], [22, 22], [3389, 3389], [5900, 5900]], class: 'interactive' },
];

function ruleMatches(r: ClassRule, m: PacketMeta): boolean {
  if (r.proto !== undefined) {
    const p = r.proto === 'tcp' ? PROTO_TCP : r.proto === 'udp' ? PROTO_UDP : r.proto;
    if (p !== m.proto) return false;
  }
  if (r.dscp && !r.dscp.includes(m.dscp)) return false;
  if (r.destinations && !r.destinations.some((d) => ((m.dst & d.mask) >>> 0) === d.network)) return false;
  if (r.ports && !r.ports.some(([lo, hi]) => (m.dport >= lo && m.dport <= hi) || (m.sport >= lo && m.sport <= hi))) return false;
  return true;
}

/** Above this average rate a flow of small UDP packets is not voice or game traffic. */
export const REALTIME_MAX_BPS = 2_000_000;

/**
 * The class of a packet of a flow that has carried `flowBytes` so far at `flowBps` on
 * average. Rules first; then behaviour: small UDP packets at a modest rate are real-time
 * (voice, games); a flow past a quarter of the first-bytes threshold is bulk; the first bytes
 * of anything else are interactive (requests, handshakes).
 */
export function classify(m: PacketMeta, flowBytes: number, rules: readonly ClassRule[], pinBytes: number, flowBps = 0): TrafficClass {
  for (const r of rules) if (ruleMatches(r, m)) return r.class;
  if (m.proto === PROTO_UDP && m.length <= 300 && flowBps <= REALTIME_MAX_BPS) return 'realtime';
  return flowBytes > pinBytes / 4 ? 'bulk' : 'interactive';
}
