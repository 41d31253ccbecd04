// A loopback TCP relay that carries the edge's control-plane connections (Hello, the policy
// stream) over whichever carrier is alive.
//
// Why: grpc-js cannot bind its socket to a network device and has no hook to create the
// connection itself (no createConnection in its public API; its proxy support only speaks HTTP
// CONNECT to a proxy it reaches by the kernel's routing). Left to the kernel, the control
// connection leaves by the default route, i.e. one carrier: when that carrier dies without its
// link going down (a blackhole in the operator's network, a dead radio bearer), every new
// connection goes the same dead way and the control plane stays down although other carriers
// work. Policy routing (a rule per source address) would need the socket's source address
// chosen per carrier, which grpc-js cannot do either.
//
// So grpc-js dials 127.0.0.1:PORT, and for each connection the relay dials the cloud itself on
// every carrier interface at once, pinned with SO_BINDTODEVICE (pinnedTcpConnect, the same
// mechanism as the data plane's TCP paths), staggered by preference, and splices the first
// that connects. TLS stays end to end between grpc-js and the cloud (the relay sees only
// ciphertext); the edge verifies the cloud's certificate against control.serverName or the
// control host name. A carrier whose connection failed is tried last for a while.
import net from 'node:net';
import { lookup } from 'node:dns/promises';
import { silentLogger, type Logger } from '../log.js';
import { pinnedTcpConnect } from '../path/stream.js';
import { parseHostPort } from './listen-address.js';

export interface RelayCarrier {
  name: string;
  /** Interface to pin to; undefined: no pinning (tests on one host). */
  interface?: string | undefined;
}

export interface CarrierRelayOptions {
  /** "host:port" of the cloud control plane. */
  remote: string;
  carriers: readonly RelayCarrier[];
  /** Give up on one carrier's connect after this long (default 3 s). */
  connectTimeoutMs?: number;
  /** Start the next carrier's attempt this long after the previous one (default 150 ms). */
  staggerMs?: number;
  /** A carrier that failed is tried last for this long (default 30 s). */
  penaltyMs?: number;
  logger?: Logger;
}

export interface RelayStats {
  connections: number;
  /** Upstream connections made per carrier. */
  byCarrier: Record<string, number>;
  /** Connections with no carrier reaching the cloud. */
  failed: number;
  /** The carrier of the newest upstream connection. */
  lastCarrier: string;
}

export class CarrierRelay {
  private readonly server: net.Server;
  private readonly log: Logger;
  private readonly failedAt = new Map<string, number>();
  private readonly sockets = new Set<net.Socket>();
  /** Each live upstream connection and the carrier it runs over. */
  private readonly upstream = new Map<net.Socket, string>();
  private readonly host: string;
  private readonly port: number;
  readonly stats: RelayStats = { connections: 0, byCarrier: {}, failed: 0, lastCarrier: '' };

  private constructor(private readonly opts: CarrierRelayOptions, private readonly address: string) {
    const hp = parseHostPort(opts.remote);
    this.host = hp.host;
    this.port = hp.port;
    this.log = (opts.logger ?? silentLogger).child({ component: 'control-relay' });
    this.server = net.createServer((s) => void this.accept(s));
  }

  /** Listens on 127.0.0.1 (a free port); `target` is what grpc-js should dial. */
  static async start(opts: CarrierRelayOptions): Promise<CarrierRelay> {
    if (opts.carriers.length === 0) throw new Error('control relay: no carriers');
    const hp = parseHostPort(opts.remote);
    // Resolved once per connection later; checked here so a bad name fails the start.
    const address = net.isIP(hp.host) ? hp.host : (await lookup(hp.host, { family: 4 })).address;
    const r = new CarrierRelay(opts, address);
    await new Promise<void>((resolve, reject) => {
      r.server.once('error', reject);
      r.server.listen(0, '127.0.0.1', () => resolve());
    });
    return r;
  }

  get target(): string {
    return `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** The name TLS must verify: the cloud's host as configured (not 127.0.0.1). */
  get serverName(): string {
    return this.host;
  }

  close(): void {
    this.server.close();
    for (const s of this.sockets) s.destroy();
  }

  /**
   * The data plane found `carrier` dead (the session declared its path down in-band). A control
   * connection over it would hang until TCP or a keepalive gave up: the telemetry stream's reports
   * (the path-down report among them) waited out a whole blackout, and the cloud's demotion came
   * 5.4 s after it began (test/control-loop.it.test.ts). Its connections are closed now, so
   * grpc-js reconnects through this relay, which tries that carrier last. Returns how many.
   */
  carrierDown(carrier: string): number {
    this.failedAt.set(carrier, Date.now());
    let closed = 0;
    for (const [socket, name] of this.upstream) {
      if (name !== carrier) continue;
      socket.destroy();
      closed++;
    }
    if (closed) this.log.warn({ carrier, closed }, 'control connections closed: their carrier is down');
    return closed;
  }

  /** Carriers in the order to try: those without a recent failure first, config order within. */
  private order(now: number): RelayCarrier[] {
    const penalty = this.opts.penaltyMs ?? 30_000;
    const bad = (c: RelayCarrier): boolean => (this.failedAt.get(c.name) ?? -Infinity) > now - penalty;
    return [...this.opts.carriers.filter((c) => !bad(c)), ...this.opts.carriers.filter(bad)];
  }

  private async accept(down: net.Socket): Promise<void> {
    this.stats.connections++;
    this.track(down);
    down.pause();
    down.on('error', () => undefined);
    let address = this.address;
    if (!net.isIP(this.host)) {
      try {
        address = (await lookup(this.host, { family: 4 })).address;
      } catch {
        // Keep the address resolved at start.
      }
    }
    const up = await this.race(address);
    if (!up || down.destroyed) {
      if (!up) this.stats.failed++;
      up?.socket.destroy();
      down.destroy();
      return;
    }
    const { socket, carrier } = up;
    this.track(socket);
    this.upstream.set(socket, carrier.name);
    socket.on('close', () => this.upstream.delete(socket));
    this.stats.byCarrier[carrier.name] = (this.stats.byCarrier[carrier.name] ?? 0) + 1;
    this.stats.lastCarrier = carrier.name;
    this.log.info({ carrier: carrier.name, interface: carrier.interface }, `control connection to ${this.opts.remote} over ${carrier.name}`);
    socket.on('error', (e) => {
      // The carrier failed under a live connection: try it last next time.
      this.failedAt.set(carrier.name, Date.now());
      this.log.warn({ carrier: carrier.name, err: e.message }, 'control connection lost');
      down.destroy();
    });
    down.on('close', () => socket.destroy());
    socket.on('close', () => down.destroy());
    socket.pipe(down);
    down.pipe(socket);
    down.resume();
  }

  /** Dial on every carrier, staggered by preference; the first connection wins, the rest are closed. */
  private race(address: string): Promise<{ socket: net.Socket; carrier: RelayCarrier } | undefined> {
    const carriers = this.order(Date.now());
    const stagger = this.opts.staggerMs ?? 150;
    return new Promise((resolve) => {
      let pending = carriers.length;
      let won = false;
      const timers: NodeJS.Timeout[] = [];
      carriers.forEach((carrier, i) => {
        timers.push(setTimeout(() => {
          if (won) {
            pending--;
            return;
          }
          pinnedTcpConnect({ interface: carrier.interface, remoteHost: address, remotePort: this.port, connectTimeoutMs: this.opts.connectTimeoutMs ?? 3000 })
            .then((socket) => {
              pending--;
              if (won) {
                socket.destroy();
                return;
              }
              won = true;
              for (const t of timers) clearTimeout(t);
              resolve({ socket, carrier });
            }, (e: Error) => {
              pending--;
              this.failedAt.set(carrier.name, Date.now());
              this.log.debug({ carrier: carrier.name, err: e.message }, 'control connect failed');
              if (pending === 0 && !won) resolve(undefined);
            });
        }, i * stagger));
      });
    });
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
  }
}
