// Encode and decode whole datagrams for one session: header, seal/open, body. Decoding returns
// either a parsed packet or the reason it was refused (counted by the caller).
import { Opener, Sealer } from './aead.js';
import {
  ACK_BODY_LEN, DATA_BODY_LEN, Flags, MAX_DATAGRAM, OUTER_LEN, PROBE_BODY_LEN, PacketType, TAG_LEN, TS_LEN,
  nackBodyLength, readAckBody, readDataBody, readNackBody, readOuter, readU48, writeAckBody, writeDataBody, writeNackBody, writeOuter, writeU48,
  type AckBody, type NackBody, type OuterHeader,
} from './header.js';
import type { DropReason } from './drops.js';

export type Decoded =
  | { type: PacketType.Data; header: OuterHeader; ts1: number; dataSeq: number; flowGap: number; payload: Buffer }
  | { type: PacketType.Ack; header: OuterHeader; ts1: number; ack: AckBody }
  | { type: PacketType.Probe; header: OuterHeader; ts1: number; watermark: number; padding: number }
  | { type: PacketType.Nack; header: OuterHeader; ts1: number; nack: NackBody };

export type DecodeResult = { ok: true; packet: Decoded } | { ok: false; reason: DropReason };

/** Smallest IP packet a data body may carry (an IPv4 header). */
const MIN_IP = 20;

export class SessionCodec {
  private readonly sealer: Sealer;
  private readonly opener: Opener;
  private readonly tsBuf = Buffer.alloc(TS_LEN + ACK_BODY_LEN);

  constructor(readonly sessionId: number, sendKey: Buffer, recvKey: Buffer, readonly keyId = 0) {
    this.sealer = new Sealer(sendKey);
    this.opener = new Opener(recvKey);
  }

  private header(type: PacketType, pathId: number, pathSeq: number, flags: number): OuterHeader {
    return { type, flags, pathId, sessionId: this.sessionId, keyId: this.keyId, pathSeq };
  }

  /** `flowGap`: distance back to the previous data sequence of the packet's flow (0: none; receive/reorder). */
  encodeData(pathId: number, pathSeq: number, flags: number, ts1: number, dataSeq: number, ip: Buffer, flowGap = 0): Buffer {
    const out = Buffer.allocUnsafe(OUTER_LEN + TS_LEN + DATA_BODY_LEN + ip.length + TAG_LEN);
    writeOuter(out, this.header(PacketType.Data, pathId, pathSeq, flags));
    const pre = this.tsBuf.subarray(0, TS_LEN + DATA_BODY_LEN);
    pre.writeUInt32BE(ts1 >>> 0, 0);
    writeDataBody(pre, TS_LEN, dataSeq, flowGap);
    return this.sealer.sealInto(out, [pre, ip]);
  }

  /** An ack with `ack.forPath` set acknowledges that path's data while it travels on `pathId` (Flags.AckFor). */
  encodeAck(pathId: number, pathSeq: number, ts1: number, ack: AckBody, flags = 0): Buffer {
    const other = ack.forPath !== undefined;
    const out = Buffer.allocUnsafe(OUTER_LEN + TS_LEN + ACK_BODY_LEN + (other ? 1 : 0) + TAG_LEN);
    writeOuter(out, this.header(PacketType.Ack, pathId, pathSeq, other ? flags | Flags.AckFor : flags & ~Flags.AckFor));
    this.tsBuf.writeUInt32BE(ts1 >>> 0, 0);
    writeAckBody(this.tsBuf, TS_LEN, ack);
    return this.sealer.sealInto(out, other ? [this.tsBuf, Buffer.of(ack.forPath as number)] : [this.tsBuf]);
  }

  encodeProbe(pathId: number, pathSeq: number, ts1: number, watermark: number, padding = 0, flags = 0): Buffer {
    const out = Buffer.allocUnsafe(OUTER_LEN + TS_LEN + PROBE_BODY_LEN + padding + TAG_LEN);
    writeOuter(out, this.header(PacketType.Probe, pathId, pathSeq, flags));
    const pt = Buffer.alloc(TS_LEN + PROBE_BODY_LEN + padding);
    pt.writeUInt32BE(ts1 >>> 0, 0);
    writeU48(pt, watermark, TS_LEN);
    return this.sealer.sealInto(out, [pt]);
  }

  /** Feedback of the redundant class (S4-6): missing sequences and the S4-2 echo. */
  encodeNack(pathId: number, pathSeq: number, ts1: number, nack: NackBody, flags = 0): Buffer {
    const len = nackBodyLength(nack);
    const out = Buffer.allocUnsafe(OUTER_LEN + TS_LEN + len + TAG_LEN);
    writeOuter(out, this.header(PacketType.Nack, pathId, pathSeq, flags));
    const pt = Buffer.alloc(TS_LEN + len);
    pt.writeUInt32BE(ts1 >>> 0, 0);
    writeNackBody(pt, TS_LEN, nack);
    return this.sealer.sealInto(out, [pt]);
  }

  /** Authenticate and parse a datagram whose outer header names this session. */
  decode(datagram: Buffer): DecodeResult {
    const outer = readOuter(datagram);
    if (!outer.ok) return outer;
    const h = outer.header;
    if (h.sessionId !== this.sessionId) return { ok: false, reason: 'unknown-session' };
    if (h.keyId !== this.keyId) return { ok: false, reason: 'auth-failed' };
    const pt = this.opener.open(datagram);
    if (!pt) return { ok: false, reason: 'auth-failed' };
    const ts1 = pt.readUInt32BE(0);
    switch (h.type) {
      case PacketType.Data: {
        if (pt.length < TS_LEN + DATA_BODY_LEN + MIN_IP) return { ok: false, reason: 'malformed-body' };
        const { dataSeq, flowGap } = readDataBody(pt, TS_LEN);
        // Sequence 0 is never sent, and a gap reaching back past it names no packet.
        if (dataSeq === 0 || flowGap >= dataSeq) return { ok: false, reason: 'malformed-body' };
        return { ok: true, packet: { type: PacketType.Data, header: h, ts1, dataSeq, flowGap, payload: pt.subarray(TS_LEN + DATA_BODY_LEN) } };
      }
      case PacketType.Ack: {
        const other = (h.flags & Flags.AckFor) !== 0;
        const ack = readAckBody(other ? pt.subarray(0, pt.length - 1) : pt, TS_LEN);
        if (!ack) return { ok: false, reason: 'malformed-body' };
        if (other) ack.forPath = pt[pt.length - 1] as number;
        return { ok: true, packet: { type: PacketType.Ack, header: h, ts1, ack } };
      }
      case PacketType.Probe: {
        if (pt.length < TS_LEN + PROBE_BODY_LEN) return { ok: false, reason: 'malformed-body' };
        const watermark = readU48(pt, TS_LEN);
        if (watermark === undefined) return { ok: false, reason: 'malformed-body' };
        return { ok: true, packet: { type: PacketType.Probe, header: h, ts1, watermark, padding: pt.length - TS_LEN - PROBE_BODY_LEN } };
      }
      case PacketType.Nack: {
        const nack = readNackBody(pt, TS_LEN);
        if (!nack) return { ok: false, reason: 'malformed-body' };
        return { ok: true, packet: { type: PacketType.Nack, header: h, ts1, nack } };
      }
    }
  }
}

/** Session id of a datagram without authenticating it (to find the session's keys), or a drop reason. */
export function peekSessionId(datagram: Buffer): { ok: true; sessionId: number } | { ok: false; reason: DropReason } {
  const outer = readOuter(datagram);
  if (!outer.ok) return outer;
  return { ok: true, sessionId: outer.header.sessionId };
}

export { MAX_DATAGRAM };
