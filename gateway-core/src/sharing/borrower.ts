// The borrowing edge (A) of carrier sharing: its session has one path per borrowed carrier; each
// such path's datagrams go over one link to the lending edge (B), which relays them out of the
// named carrier (lender.ts). The link comes from RendezvousPeer.connect: a direct dial first, a
// dial-back by B through the cloud's rendezvous when the direct dial is blocked. When the link
// dies the paths stop carrying (the session declares them down as it would a dead carrier) and
// the link is re-established after `retryMs`.
import { silentLogger, type Logger } from '../log.js';
import type { Path } from '../path/path.js';
import type { PeerLink, RendezvousPeer } from '../rendezvous/link.js';
import type { RendezvousEndpoint } from '../rendezvous/proto.js';

export interface BorrowedCarrier {
  /** The path id in our session. */
  pathId: number;
  name: string;
  /** The carrier's index in the lender's lent list. */
  index: number;
}

export interface BorrowerOptions {
  peer: RendezvousPeer;
  lender: string;
  address: RendezvousEndpoint;
  carriers: BorrowedCarrier[];
  /** Hand a path to the session (setTransport). */
  attach: (pathId: number, path: Path) => void;
  reverseAfterMs: number;
  retryMs: number;
  logger?: Logger;
}

/** One borrowed carrier as a Path of our session. */
class SharedPath implements Path {
  readonly kind = 'udp' as const;
  private datagramCb: (d: Buffer) => void = () => {};
  private errorCb: (e: Error) => void = () => {};
  constructor(private readonly link: PeerLink, private readonly index: number, private readonly name: string) {}
  get description(): string {
    return `${this.name} lent by ${this.link.peerId} (${this.link.direction})`;
  }
  send(d: Buffer): boolean {
    const f = Buffer.allocUnsafe(d.length + 1);
    f[0] = this.index;
    d.copy(f, 1);
    return this.link.send(f);
  }
  receive(d: Buffer): void { this.datagramCb(d); }
  onDatagram(cb: (d: Buffer) => void): void { this.datagramCb = cb; }
  onError(cb: (e: Error) => void): void { this.errorCb = cb; }
  fail(e: Error): void { this.errorCb(e); }
  close(): void { /* the link is shared by all borrowed carriers: closed by the borrower */ }
}

export class CarrierBorrower {
  private readonly log: Logger;
  private link: PeerLink | undefined;
  private paths: Map<number, SharedPath> | undefined;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  readonly stats = { links: 0, forward: 0, reverse: 0, failures: 0, malformed: 0 };

  constructor(private readonly opts: BorrowerOptions) {
    this.log = (opts.logger ?? silentLogger).child({ component: 'carrier-borrower', lender: opts.lender });
  }

  get direction(): 'forward' | 'reverse' | undefined {
    return this.link?.direction;
  }

  start(): void {
    void this.connect();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let link: PeerLink;
    try {
      link = await this.opts.peer.connect(this.opts.lender, this.opts.address, { reverseAfterMs: this.opts.reverseAfterMs, ttlMs: 30_000, timeoutMs: 15_000 });
    } catch (e) {
      this.stats.failures++;
      this.log.warn({ err: (e as Error).message, retryInMs: this.opts.retryMs }, 'no link to the lending edge');
      this.retry();
      return;
    }
    if (this.stopped) {
      link.close();
      return;
    }
    this.link = link;
    this.stats.links++;
    this.stats[link.direction]++;
    const paths = new Map<number, SharedPath>();
    for (const c of this.opts.carriers) paths.set(c.index, new SharedPath(link, c.index, c.name));
    this.paths = paths;
    this.reattach();
    link.onDatagram((f) => {
      const p = f.length > 1 ? paths.get(f[0] as number) : undefined;
      if (!p) {
        this.stats.malformed++;
        return;
      }
      p.receive(f.subarray(1));
    });
    link.onClose?.((e) => {
      if (this.link === link) this.link = undefined;
      for (const p of paths.values()) p.fail(e ?? new Error('link closed'));
      this.log.warn({ err: e?.message }, 'link to the lending edge lost');
      this.retry();
    });
    this.log.info({ direction: link.direction, carriers: this.opts.carriers.map((c) => c.name) }, 'borrowing carriers');
  }

  /** Hand the current link's paths to the session again (a new session after a re-Hello). */
  reattach(): void {
    if (!this.paths) return;
    for (const c of this.opts.carriers) {
      const p = this.paths.get(c.index);
      if (p) this.opts.attach(c.pathId, p);
    }
  }

  private retry(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.connect(), this.opts.retryMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.link?.close();
  }
}
