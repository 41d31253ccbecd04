// Forwarding between cloud replicas (docs/kubernetes.md, "Session ownership"): the UDP load
// balancer in front of the replicas hashes each path of a session on its own, so the paths of
// one session land on different replicas. The session lives in one of them, its owner, named by
// the tag in the session id (gateway-core/src/k8s/ownership.ts). A replica that receives a packet
// of a session it does not hold forwards it to the owner; the owner answers that path back
// through the same replica, which sends from its own data socket, so the answer leaves with the
// address the edge's path sent to and passes back through the load balancer's NAT.
//
// Frame on the replica-to-replica socket (one datagram each, no state, no handshake):
//
//   0  magic 0xBF   1  kind (1: to the owner, 2: back to the edge)
//   2  edge IPv4 (4 bytes)   6  edge port (2 bytes)   8  the data-plane datagram, untouched
//
// Only addresses in the replica list are listened to. The datagram stays sealed end to end: the
// owner authenticates it exactly as if it had arrived directly, so a forged frame is a counted
// drop at the owner, never a path.
import dgram from 'node:dgram';
import {
  sessionOwners, type CloudReplica, type DropCounters, type Logger, type Path, type ReplicaDiscovery, type UdpListener,
} from '@braid/gateway-core';

export const FRAME_MAGIC = 0xbf;
export const FRAME_HEADER = 8;
export const enum FrameKind { ToOwner = 1, ToEdge = 2 }

export interface Endpoint { address: string; port: number }

/** The 8-byte frame header for a datagram of `kind` concerning `edge`; undefined for a non-IPv4 edge. */
export function frameHeader(kind: FrameKind, edge: Endpoint): Buffer | undefined {
  const parts = edge.address.split('.');
  if (parts.length !== 4) return undefined;
  const h = Buffer.allocUnsafe(FRAME_HEADER);
  h[0] = FRAME_MAGIC;
  h[1] = kind;
  for (let i = 0; i < 4; i++) {
    const n = Number(parts[i]);
    if (!Number.isInteger(n) || n < 0 || n > 255) return undefined;
    h[2 + i] = n;
  }
  h.writeUInt16BE(edge.port, 6);
  return h;
}

/** `why` says what was wrong; all are counted as the drop reason forward-malformed. */
export type ParsedFrame = { ok: true; kind: FrameKind; edge: Endpoint; datagram: Buffer } | { ok: false; why: string };

export function parseFrame(b: Buffer): ParsedFrame {
  if (b.length <= FRAME_HEADER) return { ok: false, why: 'short' };
  if (b[0] !== FRAME_MAGIC) return { ok: false, why: 'bad magic' };
  const kind = b[1];
  if (kind !== FrameKind.ToOwner && kind !== FrameKind.ToEdge) return { ok: false, why: 'bad kind' };
  const port = b.readUInt16BE(6);
  if (port === 0) return { ok: false, why: 'port 0' };
  return { ok: true, kind, edge: { address: `${b[2]}.${b[3]}.${b[4]}.${b[5]}`, port }, datagram: b.subarray(FRAME_HEADER) };
}

export interface ForwarderOptions {
  /** This replica's address as the other replicas see it (the pod IP). */
  selfAddress: string;
  /** The replica-to-replica UDP port this replica listens on (0: any, for tests). */
  port: number;
  /** The port the other replicas listen on; default `port` (in a cluster every replica uses the same). */
  peerPort?: number;
  discovery: ReplicaDiscovery;
  /** The data-plane socket: answers to the edge leave from it. */
  data: UdpListener;
  drops: DropCounters;
  log: Logger;
  /** A forwarded datagram for a session this replica may own, with the edge address and the relaying replica. */
  deliver(datagram: Buffer, edge: Endpoint, relay: string): void;
}

export class ReplicaForwarder {
  /** Datagrams this replica forwarded to an owner / answers it relayed to an edge. */
  forwarded = 0;
  relayed = 0;
  private readonly peerPort: number;
  private constructor(private readonly sock: dgram.Socket, private readonly o: ForwarderOptions) {
    this.peerPort = o.peerPort ?? o.port;
  }

  /** The port this replica listens on. */
  get port(): number {
    return this.sock.address().port;
  }

  static async open(o: ForwarderOptions): Promise<ReplicaForwarder> {
    const sock = dgram.createSocket({ type: 'udp4' });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address: '0.0.0.0', port: o.port }, () => { sock.off('error', reject); resolve(); });
    });
    const f = new ReplicaForwarder(sock, o);
    sock.on('message', (m, rinfo) => f.fromReplica(m, rinfo.address));
    // A send error (owner just died: host unreachable) must not kill the process.
    sock.on('error', (e) => o.log.warn({ err: e.message }, 'replica forwarding socket error'));
    return f;
  }

  replicas(): CloudReplica[] {
    return this.o.discovery.replicas();
  }

  /**
   * A datagram of a session this replica does not hold: send it to the owner(s) named by the
   * session id. False when no known replica carries that tag (the session is gone for good).
   */
  toOwner(sessionId: number, datagram: Buffer, edge: Endpoint): boolean {
    const owners = sessionOwners(sessionId, this.o.discovery.replicas(), this.o.selfAddress);
    const h = owners.length > 0 ? frameHeader(FrameKind.ToOwner, edge) : undefined;
    if (!h) return false;
    for (const r of owners) this.sock.send([h, datagram], this.peerPort, r.address, this.onSent);
    this.forwarded++;
    return true;
  }

  /** The path through which the owner answers an edge whose packets arrive via `relay`. */
  pathVia(relay: string, edge: Endpoint): RelayedPeerPath {
    return new RelayedPeerPath(this, relay, edge);
  }

  /** Used by RelayedPeerPath. */
  sendToEdgeVia(relay: string, edge: Endpoint, datagram: Buffer, cb: (err: Error | null) => void): boolean {
    const h = frameHeader(FrameKind.ToEdge, edge);
    if (!h) return false;
    this.sock.send([h, datagram], this.peerPort, relay, cb);
    return true;
  }

  close(): void {
    try { this.sock.close(); } catch { /* already closed */ }
  }

  private readonly onSent = (err: Error | null): void => {
    if (err) this.o.drops.add('send-error');
  };

  private fromReplica(m: Buffer, from: string): void {
    if (!this.o.discovery.replicas().some((r) => r.address === from)) {
      this.o.drops.add('forward-not-replica');
      return;
    }
    const f = parseFrame(m);
    if (!f.ok) {
      this.o.drops.add('forward-malformed');
      return;
    }
    if (f.kind === FrameKind.ToOwner) {
      this.o.deliver(f.datagram, f.edge, from);
      return;
    }
    // An owner's answer for an edge path that reaches the cluster through this replica.
    this.relayed++;
    this.o.data.sock.send(f.datagram, f.edge.port, f.edge.address, this.onSent);
  }
}

/** The owner's side of a path that reaches it through another replica. */
export class RelayedPeerPath implements Path {
  private errorCb: (e: Error) => void = () => {};
  private closed = false;
  private readonly onSent = (err: Error | null): void => {
    if (err && !this.closed) this.errorCb(err);
  };

  constructor(private readonly fwd: ReplicaForwarder, public relay: string, public edge: Endpoint) {}

  get description(): string {
    return `udp peer ${this.edge.address}:${this.edge.port} via replica ${this.relay}`;
  }

  /** Follow the path to another relay (the load balancer re-hashed it) or edge address (NAT rebinding). */
  moveTo(relay: string, edge: Endpoint): boolean {
    if (relay === this.relay && edge.address === this.edge.address && edge.port === this.edge.port) return false;
    this.relay = relay;
    this.edge = { ...edge };
    return true;
  }

  send(datagram: Buffer): boolean {
    if (this.closed) return false;
    try {
      return this.fwd.sendToEdgeVia(this.relay, this.edge, datagram, this.onSent);
    } catch (e) {
      this.errorCb(e as Error);
      return false;
    }
  }

  onDatagram(): void {
    // Datagrams reach the owner through the forwarder, which hands them to the cloud's demultiplexer.
  }

  onError(cb: (e: Error) => void): void {
    this.errorCb = cb;
  }

  close(): void {
    this.closed = true;
  }
}
