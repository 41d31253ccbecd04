// The lending edge (B) of carrier sharing: another edge (A) of the same fleet connects to it over
// the local network (RendezvousPeer: direct dial, or B dials back through the cloud's rendezvous
// when a firewall stops A's dial), and B relays A's path datagrams out of its own carriers to the
// cloud's data plane, and the cloud's answers back. Each link gets its own UDP socket per lent
// carrier, pinned to that carrier (SO_BINDTODEVICE), so the cloud sees each borrowed path as a
// path of A's session from B's carrier address and answers it there. B cannot read or alter what
// it relays: A's datagrams are sealed with A's session keys; what arrives damaged is dropped by
// the cloud's authentication.
//
// Link framing (on top of the link's datagram framing): 1 byte, the carrier's index in the
// lender's lent list, then the datagram.
import { silentLogger, type Logger } from '../log.js';
import type { Path } from '../path/path.js';
import { UdpCarrierPath } from '../path/udp.js';
import type { PeerLink, RendezvousPeer } from '../rendezvous/link.js';

export interface LentCarrier {
  name: string;
  interface: string;
}

export interface CarrierCounters {
  name: string;
  /** Borrower -> cloud, relayed out of this carrier. */
  upPackets: number;
  upBytes: number;
  /** Cloud -> borrower. */
  downPackets: number;
  downBytes: number;
}

export interface LenderOptions {
  peer: RendezvousPeer;
  carriers: LentCarrier[];
  /** The cloud's data-plane endpoint (this edge's own session knows it); undefined while unknown. */
  cloud: () => { host: string; port: number } | undefined;
  /** Open a datagram path out of a carrier (default: a UDP socket pinned to its interface). */
  openCarrier?: (c: LentCarrier, host: string, port: number) => Promise<Path>;
  logger?: Logger;
}

export class CarrierLender {
  private readonly log: Logger;
  /** Each link with the carrier sockets opened for it. */
  private readonly links = new Map<PeerLink, (Path | undefined)[]>();
  readonly counters: CarrierCounters[];
  /** Link datagrams refused: empty, or naming a carrier that is not lent. */
  malformed = 0;
  private closed = false;

  constructor(private readonly opts: LenderOptions) {
    this.log = (opts.logger ?? silentLogger).child({ component: 'carrier-lender' });
    this.counters = opts.carriers.map((c) => ({ name: c.name, upPackets: 0, upBytes: 0, downPackets: 0, downBytes: 0 }));
    opts.peer.onLink((l) => void this.serve(l));
  }

  get activeLinks(): number {
    return this.links.size;
  }

  private async serve(link: PeerLink): Promise<void> {
    const cloud = this.opts.cloud();
    if (this.closed || !cloud) {
      this.log.warn({ peer: link.peerId }, 'cannot lend carriers yet (no cloud data endpoint known): link closed');
      link.close();
      return;
    }
    this.links.set(link, []);
    // DF always set ('probe'): the borrower's path MTU discovery measures this carrier through us,
    // so a datagram too big for it must be lost here, not fragmented.
    const open = this.opts.openCarrier ?? ((c, host, port) => UdpCarrierPath.open({ interface: c.interface, remoteHost: host, remotePort: port, mtuDiscover: 'probe' }));
    const out: (Path | undefined)[] = await Promise.all(this.opts.carriers.map((c) => open(c, cloud.host, cloud.port).catch((e: Error) => {
      this.log.error({ carrier: c.name, err: e.message }, 'cannot open a lent carrier');
      return undefined;
    })));
    if (!this.links.has(link)) {
      // The link went away (or the lender closed) while the sockets were opening.
      for (const p of out) p?.close();
      return;
    }
    this.links.set(link, out);
    out.forEach((p, i) => {
      p?.onDatagram((d) => {
        const cnt = this.counters[i] as CarrierCounters;
        cnt.downPackets++;
        cnt.downBytes += d.length;
        const f = Buffer.allocUnsafe(d.length + 1);
        f[0] = i;
        d.copy(f, 1);
        link.send(f);
      });
      p?.onError(() => undefined);
    });
    link.onDatagram((f) => {
      const i = f[0];
      const p = i === undefined ? undefined : out[i];
      if (!p || f.length < 2) {
        this.malformed++;
        return;
      }
      const cnt = this.counters[i as number] as CarrierCounters;
      cnt.upPackets++;
      cnt.upBytes += f.length - 1;
      p.send(f.subarray(1));
    });
    link.onClose?.(() => {
      this.links.delete(link);
      for (const p of out) p?.close();
      this.log.info({ peer: link.peerId }, 'borrowing edge gone: its lent carriers are closed');
    });
    this.log.info({ peer: link.peerId, direction: link.direction, carriers: this.opts.carriers.map((c) => c.name), cloud: `${cloud.host}:${cloud.port}` }, 'lending carriers');
  }

  close(): void {
    this.closed = true;
    // A link closed by its owner reports no close: its sockets are closed here.
    for (const [l, out] of this.links) {
      l.close();
      for (const p of out) p?.close();
    }
    this.links.clear();
  }
}
