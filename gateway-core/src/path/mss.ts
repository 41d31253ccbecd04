// TCP MSS clamping in the packet path, for SYNs coming OUT of the tunnel. The gateways clamp SYNs
// going INTO the tunnel with nftables (`tcp option maxseg size set rt mtu`, which follows the TUN
// or route MTU that path MTU discovery sets). That is not enough: each gateway discovers only its
// own sending direction, the two can differ, and a SYN that leaves the tunnel would be clamped by
// nftables to the MTU of the route it leaves by (the LAN's), not to the tunnel's. So each gateway
// also clamps the SYNs its session delivers to its own tunnel MTU, and both ends of a connection
// learn an MSS that fits both directions: no client or server ever sends a segment the tunnel
// would have to refuse (with ICMP) or fragment.
//
// Only unfragmented IPv4 TCP packets with SYN set are touched (a few per connection); the
// checksum is recomputed in full, which is simpler than an incremental update when the option
// sits at an odd offset, and costs nothing at this rate.

const IPPROTO_TCP = 6;
const TCP_SYN = 0x02;
const OPT_END = 0;
const OPT_NOP = 1;
const OPT_MSS = 2;
/** IPv4 (20) + TCP (20) headers without options: the MSS for an MTU is MTU - 40. */
export const TCP_IP_HEADERS = 40;

/**
 * Lower the MSS option of a TCP SYN (or SYN-ACK) in `ip` to at most `maxMss`, in place. Returns
 * true when the packet was changed. Anything that is not a well-formed unfragmented IPv4 TCP SYN
 * with an MSS option is left alone.
 */
export function clampMss(ip: Buffer, maxMss: number): boolean {
  if (ip.length < 40 || (ip[0] as number) >> 4 !== 4 || ip[9] !== IPPROTO_TCP) return false;
  const ihl = ((ip[0] as number) & 0x0f) * 4;
  const total = ip.readUInt16BE(2);
  // Fragment offset or More Fragments set: the TCP header may not be (all) here.
  if ((ip.readUInt16BE(6) & 0x3fff) !== 0 || ihl < 20 || total > ip.length || total < ihl + 20) return false;
  const tcp = ihl;
  if (((ip[tcp + 13] as number) & TCP_SYN) === 0) return false;
  const dataOff = ((ip[tcp + 12] as number) >> 4) * 4;
  if (dataOff < 20 || tcp + dataOff > total) return false;
  let o = tcp + 20;
  const end = tcp + dataOff;
  while (o < end) {
    const kind = ip[o] as number;
    if (kind === OPT_END) return false;
    if (kind === OPT_NOP) {
      o++;
      continue;
    }
    if (o + 1 >= end) return false;
    const len = ip[o + 1] as number;
    if (len < 2 || o + len > end) return false;
    if (kind === OPT_MSS && len === 4) {
      const mss = ip.readUInt16BE(o + 2);
      if (mss <= maxMss) return false;
      ip.writeUInt16BE(maxMss, o + 2);
      writeTcpChecksum(ip, ihl, total);
      return true;
    }
    o += len;
  }
  return false;
}

/** The TCP checksum over the pseudo header and the segment ip[ihl, total). */
export function tcpChecksum(ip: Buffer, ihl: number, total: number): number {
  const segLen = total - ihl;
  let sum = 0;
  // Pseudo header: source, destination, zero + protocol, TCP length.
  for (let i = 12; i < 20; i += 2) sum += ip.readUInt16BE(i);
  sum += IPPROTO_TCP + segLen;
  for (let i = ihl; i + 1 < total; i += 2) {
    if (i === ihl + 16) continue; // the checksum field itself counts as zero
    sum += ip.readUInt16BE(i);
  }
  if (segLen % 2 === 1) sum += (ip[total - 1] as number) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function writeTcpChecksum(ip: Buffer, ihl: number, total: number): void {
  ip.writeUInt16BE(tcpChecksum(ip, ihl, total), ihl + 16);
}
