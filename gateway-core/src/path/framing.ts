// Datagrams over a byte stream (TCP, TLS): each datagram is sent as a 2-byte big-endian length
// followed by its bytes. Two bytes are enough: the wire format caps datagrams at 9000 bytes, and a
// smaller prefix than a varint keeps the decoder branch-free and resynchronisation impossible to
// get wrong (a stream transport never loses bytes in the middle: it either delivers or dies).

export const FRAME_HEADER = 2;
export const MAX_FRAME_PAYLOAD = 0xffff;

/** The framed form of one datagram (header and payload in one buffer: one write per datagram). */
export function frame(datagram: Buffer): Buffer {
  if (datagram.length > MAX_FRAME_PAYLOAD) throw new RangeError(`datagram of ${datagram.length} bytes exceeds the ${MAX_FRAME_PAYLOAD}-byte frame limit`);
  const out = Buffer.allocUnsafe(FRAME_HEADER + datagram.length);
  out.writeUInt16BE(datagram.length, 0);
  datagram.copy(out, FRAME_HEADER);
  return out;
}

/** Reassembles datagrams from stream chunks of any size and alignment. */
export class FrameDecoder {
  private pending: Buffer | undefined;

  constructor(private readonly onDatagram: (d: Buffer) => void) {}

  push(chunk: Buffer): void {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let off = 0;
    while (buf.length - off >= FRAME_HEADER) {
      const len = buf.readUInt16BE(off);
      if (buf.length - off - FRAME_HEADER < len) break;
      // A copy, not a view: the receiver may keep the datagram (reorder buffer) while the chunk's
      // memory is reused by the next read.
      this.onDatagram(Buffer.from(buf.subarray(off + FRAME_HEADER, off + FRAME_HEADER + len)));
      off += FRAME_HEADER + len;
    }
    if (off < buf.length) {
      buf = buf.subarray(off);
      this.pending = Buffer.from(buf);
    }
  }

  /** Bytes of an incomplete frame waiting for the rest. */
  get pendingBytes(): number {
    return this.pending?.length ?? 0;
  }
}
