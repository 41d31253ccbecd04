// Test packets: an IPv4/UDP datagram from 10.0.0.1 to 10.0.0.2 whose payload starts with a
// 32-bit sequence number (at byte 28), so receivers can tell which packet they got. One
// builder for the simulated-session tests.

export interface UdpPacketOptions {
  /** Total length in bytes (default 1200). */
  size?: number;
  sport?: number;
  /** Destination port; the classifier looks at it (default 5001: bulk). */
  dport?: number;
}

export function udpPacket(seq: number, opts: UdpPacketOptions = {}): Buffer {
  const size = opts.size ?? 1200;
  const b = Buffer.alloc(size);
  b[0] = 0x45;
  b.writeUInt16BE(size, 2);
  b[9] = 17;
  b.writeUInt32BE(0x0a000001, 12);
  b.writeUInt32BE(0x0a000002, 16);
  b.writeUInt16BE(opts.sport ?? 40000, 20);
  b.writeUInt16BE(opts.dport ?? 5001, 22);
  b.writeUInt32BE(seq, 28);
  return b;
}
