// A TUN device: IP packets in and out of the kernel. Reading is done by the addon with uv_poll
// on the event loop thread (fs.read would tie up libuv's four-thread pool), and packets arrive
// in batches so that a burst costs one JavaScript call per batch rather than per packet.
// Addresses, MTU and routes are configured with `ip` elsewhere (netcfg).
import { loadNative, type BraidNativeAddon } from '../native/index.js';

export interface TunDeviceOptions {
  /** Most packets handed to one onPackets call (default 64). */
  batchLimit?: number;
}

export class TunDevice {
  readonly name: string;
  readonly fd: number;
  /** Packets read from and written to the device (written: accepted by the kernel). */
  readonly stats = { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0 };
  private readonly native: BraidNativeAddon;
  private readonly batchLimit: number | undefined;
  private pollId: number | undefined;
  private packetsCb: ((packets: Buffer[]) => void) | undefined;
  private errorCb: ((err: Error) => void) | undefined;
  private closed = false;

  private constructor(native: BraidNativeAddon, fd: number, name: string, opts: TunDeviceOptions) {
    this.native = native;
    this.fd = fd;
    this.name = name;
    this.batchLimit = opts.batchLimit;
  }

  /** Opens (creates, if needed) the TUN device `name`; '' lets the kernel pick tunN. */
  static open(name: string, opts: TunDeviceOptions = {}): TunDevice {
    const native = loadNative();
    const { fd, name: actual } = native.openTun(name);
    return new TunDevice(native, fd, actual, opts);
  }

  /** start delivering batches of packets (each Buffer is one IP packet). A second call replaces the callback. */
  onPackets(cb: (packets: Buffer[]) => void): void {
    if (this.closed) throw new Error(`TUN ${this.name} is closed`);
    this.packetsCb = cb;
    if (this.pollId !== undefined) return;
    this.pollId = this.native.pollStart(this.fd, (err, packets) => {
      if (err !== null) {
        // The addon has already stopped polling. Without an error listener this is an uncaught
        // exception: a dead TUN must not go unnoticed.
        this.pollId = undefined;
        if (this.errorCb === undefined) throw err;
        this.errorCb(err);
        return;
      }
      if (packets !== undefined && !this.closed) {
        this.stats.rxPackets += packets.length;
        for (const p of packets) this.stats.rxBytes += p.length;
        this.packetsCb?.(packets);
      }
    }, this.batchLimit);
  }

  /** Read errors (the device vanished, ...). Polling has stopped when this is called. */
  onError(cb: (err: Error) => void): void {
    this.errorCb = cb;
  }

  /** write one IP packet; returns false when the kernel queue is full (caller counts the drop). */
  write(packet: Buffer): boolean {
    if (this.closed) throw new Error(`TUN ${this.name} is closed`);
    const ok = this.native.tunWrite(this.fd, packet);
    if (ok) {
      this.stats.txPackets++;
      this.stats.txBytes += packet.length;
    }
    return ok;
  }

  /** Writes packets in order until the kernel queue is full; returns how many were written. */
  writeBatch(packets: Buffer[]): number {
    if (this.closed) throw new Error(`TUN ${this.name} is closed`);
    const n = this.native.tunWriteBatch(this.fd, packets);
    this.stats.txPackets += n;
    for (let i = 0; i < n; i++) this.stats.txBytes += (packets[i] as Buffer).length;
    return n;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** idempotent: stops polling, closes fd (a non-persistent TUN device disappears with it). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pollId !== undefined) {
      this.native.pollStop(this.pollId);
      this.pollId = undefined;
    }
    this.packetsCb = undefined;
    this.native.closeFd(this.fd);
  }
}

/** A TUN device's counters as plain data (zeros before the device exists). */
export function tunStatsOf(tun: TunDevice | undefined): TunDevice['stats'] {
  return { ...(tun?.stats ?? { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0 }) };
}
