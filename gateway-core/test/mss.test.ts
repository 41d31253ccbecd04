// TCP MSS clamping of SYNs coming out of the tunnel (path/mss.ts): the option is lowered, the
// checksum stays valid, and anything that is not an unfragmented IPv4 TCP SYN is left alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clampMss, tcpChecksum } from '../src/path/mss.js';

/** An IPv4 TCP segment with the given flags and options (padded to 4 bytes), valid checksum. */
function tcpPacket(flags: number, options: number[], payload = 0): Buffer {
  const opts = [...options];
  while (opts.length % 4 !== 0) opts.push(0);
  const tcpLen = 20 + opts.length + payload;
  const ip = Buffer.alloc(20 + tcpLen);
  ip[0] = 0x45;
  ip.writeUInt16BE(ip.length, 2);
  ip[8] = 64;
  ip[9] = 6;
  ip.writeUInt32BE(0x0a0a0002, 12);
  ip.writeUInt32BE(0x0a280002, 16);
  ip.writeUInt16BE(40000, 20);
  ip.writeUInt16BE(80, 22);
  ip[32] = ((20 + opts.length) / 4) << 4;
  ip[33] = flags;
  Buffer.from(opts).copy(ip, 40);
  for (let i = 0; i < payload; i++) ip[40 + opts.length + i] = (i * 7) & 0xff;
  ip.writeUInt16BE(tcpChecksum(ip, 20, ip.length), 36);
  return ip;
}

const SYN = 0x02;
const ACK = 0x10;
const mssOpt = (v: number): number[] => [2, 4, v >> 8, v & 0xff];

test('a SYN-ACK MSS above the tunnel is lowered and the checksum still verifies', () => {
  const p = tcpPacket(SYN | ACK, [...mssOpt(1460), 4, 2, 1, 3, 3, 7]);
  assert.equal(clampMss(p, 1165), true);
  assert.equal(p.readUInt16BE(42), 1165);
  assert.equal(p.readUInt16BE(36), tcpChecksum(p, 20, p.length));
});

test('an MSS option at an odd offset (after one NOP) is found and the checksum recomputed', () => {
  const p = tcpPacket(SYN, [1, ...mssOpt(1460), 1, 1, 1]);
  assert.equal(clampMss(p, 1200), true);
  assert.equal(p.readUInt16BE(43), 1200);
  assert.equal(p.readUInt16BE(36), tcpChecksum(p, 20, p.length));
});

test('left alone: a small enough MSS, no SYN, no MSS option, a fragment, not TCP, malformed options', () => {
  const cases: [string, Buffer][] = [
    ['small MSS', tcpPacket(SYN, mssOpt(1000))],
    ['not a SYN', tcpPacket(ACK, mssOpt(1460), 100)],
    ['no MSS option', tcpPacket(SYN, [4, 2])],
    ['option length runs past the header', tcpPacket(SYN, [1, 2, 9, 0])],
  ];
  const frag = tcpPacket(SYN, mssOpt(1460));
  frag.writeUInt16BE(0x2000, 6); // More Fragments
  cases.push(['a fragment', frag]);
  const udp = tcpPacket(SYN, mssOpt(1460));
  udp[9] = 17;
  cases.push(['UDP', udp]);
  cases.push(['truncated', tcpPacket(SYN, mssOpt(1460)).subarray(0, 30)]);
  for (const [what, p] of cases) {
    const before = Buffer.from(p);
    assert.equal(clampMss(p, 1165), false, what);
    assert.deepEqual(p, before, `${what}: unchanged`);
  }
});
