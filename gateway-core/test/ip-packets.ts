// Test packets: an IPv4/UDP datagram from 10.0.0.1 to 10.0.0.2 whose payload starts with a
// 32-bit sequence number (at byte 28), so receivers can tell which packet they got. One
// builder for the simulated-session tests.

import { tcpChecksum } from '../src/path/mss.js';

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

export interface TcpPacketOptions {
  /** Payload bytes after the 52 bytes of headers (default 1348: a full 1400-byte tunnel packet). */
  payload?: number;
  sport?: number;
  dport?: number;
  ttl?: number;
  /** TCP flags byte (default 0x10: ACK). */
  flags?: number;
}

/**
 * An IPv4/TCP segment from 10.0.0.1 to 10.0.0.2 as Linux sends one (DF, timestamps option) with
 * valid IP and TCP checksums; the payload starts with the 32-bit `seq` (at byte 52), which is
 * also the TCP sequence number.
 */
export function tcpPacket(seq: number, opts: TcpPacketOptions = {}): Buffer {
  const size = 52 + (opts.payload ?? 1348);
  const b = Buffer.alloc(size);
  b[0] = 0x45;
  b.writeUInt16BE(size, 2);
  b.writeUInt16BE(seq & 0xffff, 4);
  b.writeUInt16BE(0x4000, 6);
  b[8] = opts.ttl ?? 64;
  b[9] = 6;
  b.writeUInt32BE(0x0a000001, 12);
  b.writeUInt32BE(0x0a000002, 16);
  b.writeUInt16BE(opts.sport ?? 40000, 20);
  b.writeUInt16BE(opts.dport ?? 5001, 22);
  b.writeUInt32BE(seq >>> 0, 24);
  b.writeUInt32BE(0x12345678, 28);
  b[32] = 8 << 4; // 32-byte TCP header
  b[33] = opts.flags ?? 0x10;
  b.writeUInt16BE(502, 34);
  b.writeUInt32BE(0x0101080a, 40); // NOP, NOP, timestamps
  b.writeUInt32BE(seq * 7 >>> 0, 44);
  b.writeUInt32BE(seq * 3 >>> 0, 48);
  if (size >= 56) b.writeUInt32BE(seq >>> 0, 52);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += b.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  b.writeUInt16BE(~sum & 0xffff, 10);
  b.writeUInt16BE(tcpChecksum(b, 20, size), 36);
  return b;
}
