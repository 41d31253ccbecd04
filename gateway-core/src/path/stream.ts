// Stream transports: TCP and TLS-over-TCP paths for carriers that drop UDP (S0 racing). Datagrams
// are length-prefixed on the stream (framing.ts). On the edge the TCP socket is pinned to the
// carrier interface with SO_BINDTODEVICE *before* it connects, so the SYN already leaves by that
// carrier whatever the routing table prefers (see pinnedTcpConnect).
//
// A tunnel must never buffer without bound: a TCP connection over a stalled carrier would queue
// minutes of traffic and deliver it stale. Each stream path has a bounded send queue (Node's
// writable buffer, on top of the kernel's socket buffer); when it is full, send() drops the
// datagram, counts it and returns false, exactly like a full UDP socket buffer would.
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { setBindToDevice } from '../native/index.js';
import { FrameDecoder, MAX_FRAME_PAYLOAD, frame } from './framing.js';
import type { Path, TransportKind } from './path.js';

/** Default bound of the user-space send queue of a stream path, bytes. */
export const DEFAULT_STREAM_QUEUE_BYTES = 256 * 1024;

export interface StreamPathStats {
  sentDatagrams: number;
  receivedDatagrams: number;
  /** Datagrams refused because the send queue was full (backpressure). */
  queueDrops: number;
  /** Bytes waiting in the user-space send queue now. */
  queuedBytes: number;
}

/** One connected stream (either end) carrying framed datagrams. */
export class StreamPath implements Path {
  private closed = false;
  private dead = false;
  private datagramCb: (d: Buffer) => void = () => {};
  private errorCb: (e: Error) => void = () => {};
  private closeCb: (e: Error | undefined) => void = () => {};
  private readonly decoder: FrameDecoder;
  private readonly counters = { sentDatagrams: 0, receivedDatagrams: 0, queueDrops: 0 };
  readonly remoteAddress: string;
  readonly remotePort: number;

  constructor(
    private readonly sock: Duplex & { writableLength: number; destroyed: boolean },
    readonly kind: TransportKind,
    readonly description: string,
    private readonly maxQueueBytes = DEFAULT_STREAM_QUEUE_BYTES,
    remote?: { address: string; port: number },
  ) {
    this.remoteAddress = remote?.address ?? '';
    this.remotePort = remote?.port ?? 0;
    this.decoder = new FrameDecoder((d) => {
      if (this.closed) return;
      this.counters.receivedDatagrams++;
      this.datagramCb(d);
    });
    sock.on('data', (chunk: Buffer) => { if (!this.closed) this.decoder.push(chunk); });
    sock.on('error', (e: Error) => this.die(e));
    sock.on('end', () => this.die(new Error(`${kind} peer closed the connection`)));
    sock.on('close', () => this.die(new Error(`${kind} connection closed`)));
  }

  private die(err: Error): void {
    if (this.dead) return;
    this.dead = true;
    if (!this.sock.destroyed) this.sock.destroy();
    if (this.closed) return;
    this.errorCb(err);
    this.closeCb(err);
  }

  /** True while the connection can carry datagrams. */
  get alive(): boolean {
    return !this.closed && !this.dead;
  }

  send(datagram: Buffer): boolean {
    if (this.closed || this.dead) return false;
    if (datagram.length > MAX_FRAME_PAYLOAD) return false;
    if (this.sock.writableLength + datagram.length + 2 > this.maxQueueBytes) {
      this.counters.queueDrops++;
      return false;
    }
    try {
      this.sock.write(frame(datagram));
      this.counters.sentDatagrams++;
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

  onClose(cb: (e: Error | undefined) => void): void {
    this.closeCb = cb;
  }

  stats(): StreamPathStats {
    return { ...this.counters, queuedBytes: this.closed ? 0 : this.sock.writableLength };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dead = true;
    this.sock.destroy();
  }
}

export interface StreamCarrierOptions {
  /** Carrier interface to pin the socket to (SO_BINDTODEVICE); undefined: no pinning (tests, single-homed hosts). */
  interface?: string;
  remoteHost: string;
  remotePort: number;
  /** Give up connecting after this long (default 10 s). */
  connectTimeoutMs?: number;
  /** Bound of the send queue (default DEFAULT_STREAM_QUEUE_BYTES). */
  maxQueueBytes?: number;
}

export interface TlsCarrierOptions extends StreamCarrierOptions {
  /** PEM of the CA that signs the cloud's certificate. */
  ca: Buffer | string;
  /** SNI and the name the certificate must carry (default: remoteHost). */
  serverName?: string;
}

/**
 * A TCP connection whose socket is bound to `iface` before it connects.
 *
 * Node opens the socket only inside connect(), between its DNS lookup and the connect() system
 * call, and offers no hook there. The custom `lookup` is that hook: when it runs, the socket's
 * libuv handle exists but has no fd yet; binding it to 0.0.0.0:0 creates the fd, SO_BINDTODEVICE
 * pins it, and then the lookup answers with the real address and Node connects the pinned
 * socket. `lookup` is only consulted for names, so the host is given as a placeholder name that
 * the hook resolves to remoteHost. (The alternative, localAddress = the carrier's address, needs
 * a source-address routing rule per carrier to keep the SYN on that carrier; pinning does not.)
 */
export function pinnedTcpConnect(opts: StreamCarrierOptions): Promise<net.Socket> {
  const timeoutMs = opts.connectTimeoutMs ?? 10_000;
  return new Promise<net.Socket>((resolve, reject) => {
    const sock = new net.Socket();
    let settled = false;
    const fail = (e: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      reject(new Error(`cannot connect tcp${opts.interface ? ` on ${opts.interface}` : ''} to ${opts.remoteHost}:${opts.remotePort}: ${e.message}`));
    };
    const timer = setTimeout(() => fail(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    sock.once('error', fail);
    const family = net.isIPv6(opts.remoteHost) ? 6 : 4;
    const lookup = (_host: string, lopts: { all?: boolean }, cb: (...args: unknown[]) => void): void => {
      try {
        if (opts.interface !== undefined) {
          // The handle is internal to net.Socket; there is no public way to reach the fd before connect.
          const handle = (sock as unknown as { _handle?: { bind(a: string, p: number): number; bind6?(a: string, p: number, f: number): number; fd: number } | null })._handle;
          if (!handle) throw new Error('socket handle not created yet');
          const err = family === 6 && handle.bind6 ? handle.bind6('::', 0, 0) : handle.bind('0.0.0.0', 0);
          if (err !== 0) throw new Error(`bind failed (${err})`);
          setBindToDevice(handle.fd, opts.interface);
        }
      } catch (e) {
        cb(e);
        return;
      }
      if (lopts.all) cb(null, [{ address: opts.remoteHost, family }]);
      else cb(null, opts.remoteHost, family);
    };
    sock.connect({
      host: opts.interface !== undefined && net.isIP(opts.remoteHost) ? 'braid-carrier-peer' : opts.remoteHost,
      port: opts.remotePort,
      autoSelectFamily: false,
      lookup: lookup as unknown as net.LookupFunction,
    });
    sock.once('connect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.off('error', fail);
      // Datagrams are latency-sensitive and already sized: no Nagle.
      sock.setNoDelay(true);
      sock.setKeepAlive(true, 5000);
      resolve(sock);
    });
  });
}

function label(kind: TransportKind, opts: StreamCarrierOptions): string {
  return `${kind}${opts.interface ? ` ${opts.interface}` : ''} -> ${opts.remoteHost}:${opts.remotePort}`;
}

/** Edge side: a TCP path on one carrier. */
export async function openTcpCarrierPath(opts: StreamCarrierOptions): Promise<StreamPath> {
  const sock = await pinnedTcpConnect(opts);
  return new StreamPath(sock, 'tcp', label('tcp', opts), opts.maxQueueBytes, { address: opts.remoteHost, port: opts.remotePort });
}

/** Edge side: TLS over a pinned TCP connection, verifying the cloud's certificate against `ca`. */
export async function openTlsCarrierPath(opts: TlsCarrierOptions): Promise<StreamPath> {
  const tcp = await pinnedTcpConnect(opts);
  const timeoutMs = opts.connectTimeoutMs ?? 10_000;
  const servername = opts.serverName ?? opts.remoteHost;
  const sock = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({
      socket: tcp,
      ca: opts.ca,
      // SNI must be a name; for an IP address the certificate's IP SAN is checked instead.
      ...(net.isIP(servername) ? {} : { servername }),
      checkServerIdentity: (_h, cert) => tls.checkServerIdentity(servername, cert),
      minVersion: 'TLSv1.2',
    });
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`tls handshake timed out after ${timeoutMs} ms`)); }, timeoutMs);
    s.once('secureConnect', () => { clearTimeout(timer); s.removeAllListeners('error'); resolve(s); });
    s.once('error', (e) => { clearTimeout(timer); s.destroy(); reject(new Error(`tls to ${opts.remoteHost}:${opts.remotePort}: ${e.message}`)); });
  });
  return new StreamPath(sock, 'tls', label('tls', opts), opts.maxQueueBytes, { address: opts.remoteHost, port: opts.remotePort });
}

export interface StreamListenerOptions {
  kind: 'tcp' | 'tls';
  host: string;
  port: number;
  /** PEM certificate and key (TLS only). */
  tls?: { cert: Buffer | string; key: Buffer | string };
  maxQueueBytes?: number;
  /** Connections beyond this are refused at once (default 4096). */
  maxConnections?: number;
  /**
   * A connection silent for this long is closed (default 60 s). Edges send keepalives far more
   * often; this bounds what connections that never speak (scans, dead peers) can hold.
   */
  idleTimeoutMs?: number;
  /** TLS handshakes must finish within this (default 10 s). */
  handshakeTimeoutMs?: number;
}

/**
 * Cloud side: accepts stream connections; each one is a StreamPath of its own whose datagrams
 * go to the cloud's session demultiplexer like UDP datagrams, and whose answers go back on it.
 */
export class StreamListener {
  private connCb: (p: StreamPath) => void = () => {};
  private readonly conns = new Set<StreamPath>();

  private constructor(private readonly server: net.Server, readonly kind: 'tcp' | 'tls', private readonly opts: StreamListenerOptions) {}

  static async open(opts: StreamListenerOptions): Promise<StreamListener> {
    let server: net.Server;
    if (opts.kind === 'tls') {
      if (!opts.tls) throw new Error('a TLS stream listener needs a certificate and key');
      server = tls.createServer({ cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2', handshakeTimeout: opts.handshakeTimeoutMs ?? 10_000 });
    } else {
      server = net.createServer();
    }
    server.maxConnections = opts.maxConnections ?? 4096;
    const l = new StreamListener(server, opts.kind, opts);
    server.on(opts.kind === 'tls' ? 'secureConnection' : 'connection', (s: net.Socket) => l.accept(s));
    // A failed handshake or a reset before accept is the client's problem, not the listener's.
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => { server.off('error', reject); resolve(); });
    });
    return l;
  }

  private accept(s: net.Socket): void {
    s.setNoDelay(true);
    s.setKeepAlive(true, 5000);
    s.setTimeout(this.opts.idleTimeoutMs ?? 60_000, () => s.destroy());
    const remote = { address: s.remoteAddress ?? '', port: s.remotePort ?? 0 };
    const p = new StreamPath(s, this.kind, `${this.kind} peer ${remote.address}:${remote.port}`, this.opts.maxQueueBytes, remote);
    this.conns.add(p);
    s.once('close', () => this.conns.delete(p));
    this.connCb(p);
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  get connections(): number {
    return this.conns.size;
  }

  /** Each accepted connection, as a path (set its onDatagram at once: data may follow). */
  onConnection(cb: (p: StreamPath) => void): void {
    this.connCb = cb;
  }

  close(): void {
    this.server.close();
    for (const c of this.conns) c.close();
    this.conns.clear();
  }
}
