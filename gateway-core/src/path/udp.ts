// UDP transports. On the edge, one socket per carrier, pinned to the carrier's interface with
// SO_BINDTODEVICE, so its packets leave by that link whatever the routing table prefers (the
// route lookup is restricted to the device). On the cloud, one listening socket serves every
// session; a peer path is just "reply to the address this path was last seen from".
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { setBindToDevice, setMtuDiscover, socketFd, type MtuDiscoverMode } from '../native/index.js';
import type { Path } from './path.js';

/** Kernel socket buffers: large enough to absorb a TUN batch at hundreds of Mbit/s. */
const SOCKET_BUFFER = 4 * 1024 * 1024;

function setBuffers(sock: dgram.Socket): void {
  try {
    sock.setRecvBufferSize(SOCKET_BUFFER);
    sock.setSendBufferSize(SOCKET_BUFFER);
  } catch {
    // Capped by net.core.*mem_max; the defaults still work, only burst tolerance is lower.
  }
}

export interface UdpCarrierPathOptions {
  /** Carrier interface to pin the socket to. */
  interface: string;
  remoteHost: string;
  remotePort: number;
  /**
   * IP_MTU_DISCOVER of the socket. Path MTU discovery (path/pmtu.ts) uses 'probe': DF always set
   * and the kernel's ICMP-learned path MTU ignored, so a too-big datagram is lost rather than
   * fragmented and only our own probes decide the size. Default: the kernel's ('want').
   */
  mtuDiscover?: MtuDiscoverMode;
}

export class UdpCarrierPath implements Path {
  readonly description: string;
  private closed = false;
  private datagramCb: (d: Buffer) => void = () => {};
  private errorCb: (e: Error) => void = () => {};
  private readonly onSent = (err: Error | null): void => {
    if (err && !this.closed) this.errorCb(err);
  };

  private constructor(private readonly sock: dgram.Socket, opts: UdpCarrierPathOptions) {
    this.description = `udp ${opts.interface} -> ${opts.remoteHost}:${opts.remotePort}`;
    sock.on('message', (m) => this.datagramCb(m));
    sock.on('error', (e) => { if (!this.closed) this.errorCb(e); });
  }

  static async open(opts: UdpCarrierPathOptions): Promise<UdpCarrierPath> {
    const sock = dgram.createSocket({ type: 'udp4' });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address: '0.0.0.0', port: 0 }, () => { sock.off('error', reject); resolve(); });
    });
    try {
      setBindToDevice(socketFd(sock), opts.interface);
      if (opts.mtuDiscover) setMtuDiscover(socketFd(sock), opts.mtuDiscover);
      setBuffers(sock);
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.connect(opts.remotePort, opts.remoteHost, () => { sock.off('error', reject); resolve(); });
      });
    } catch (e) {
      sock.close();
      throw new Error(`cannot open UDP path on ${opts.interface} to ${opts.remoteHost}:${opts.remotePort}: ${(e as Error).message}`);
    }
    return new UdpCarrierPath(sock, opts);
  }

  send(datagram: Buffer): boolean {
    if (this.closed) return false;
    try {
      this.sock.send(datagram, this.onSent);
      return true;
    } catch (e) {
      this.errorCb(e as Error);
      return false;
    }
  }

  onDatagram(cb: (d: Buffer) => void): void {
    this.datagramCb = cb;
  }

  onError(cb: (e: Error) => void): void {
    this.errorCb = cb;
  }

  localPort(): number {
    return (this.sock.address() as AddressInfo).port;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.close();
  }
}

/** The cloud's data-plane socket: every session's datagrams arrive here. */
export class UdpListener {
  private constructor(readonly sock: dgram.Socket) {}

  /** `mtuDiscover`: as UdpCarrierPathOptions.mtuDiscover. */
  static async open(host: string, port: number, mtuDiscover?: MtuDiscoverMode): Promise<UdpListener> {
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: false });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address: host, port }, () => { sock.off('error', reject); resolve(); });
    });
    setBuffers(sock);
    if (mtuDiscover) setMtuDiscover(socketFd(sock), mtuDiscover);
    return new UdpListener(sock);
  }

  get port(): number {
    return (this.sock.address() as AddressInfo).port;
  }

  onDatagram(cb: (d: Buffer, from: { address: string; port: number }) => void): void {
    this.sock.on('message', (m, rinfo) => cb(m, rinfo));
  }

  close(): void {
    this.sock.close();
  }
}

/** A session path as the cloud sees it: answers go back to where the path was last heard from. */
export class UdpPeerPath implements Path {
  private errorCb: (e: Error) => void = () => {};
  private closed = false;
  private readonly onSent = (err: Error | null): void => {
    if (err && !this.closed) this.errorCb(err);
  };

  constructor(private readonly listener: UdpListener, public address: string, public port: number) {}

  get description(): string {
    return `udp peer ${this.address}:${this.port}`;
  }

  /** Follow the peer to a new address (NAT rebinding), learned from an authenticated packet. */
  moveTo(address: string, port: number): boolean {
    if (address === this.address && port === this.port) return false;
    this.address = address;
    this.port = port;
    return true;
  }

  send(datagram: Buffer): boolean {
    if (this.closed) return false;
    try {
      this.listener.sock.send(datagram, this.port, this.address, this.onSent);
      return true;
    } catch (e) {
      this.errorCb(e as Error);
      return false;
    }
  }

  onDatagram(): void {
    // Datagrams reach the cloud through the shared UdpListener, which demultiplexes by session.
  }

  onError(cb: (e: Error) => void): void {
    this.errorCb = cb;
  }

  close(): void {
    this.closed = true;
  }
}
