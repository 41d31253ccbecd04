// Path MTU discovery wired to a session: one PathMtuSearch (mtu.ts) per path of the session,
// driven by padded probes the session sends (Session.sendPaddedProbe) and the ProbeEcho acks the
// peer returns for exactly those probes (wire/header.ts). From the paths' settled MTUs it keeps the
// tunnel MTU: the smallest over the live paths minus what the tunnel adds to an IP packet, so a
// client packet fits whichever path the scheduler puts it on.
//
// Each gateway discovers its own sending direction: the edge edge->cloud (and sets its TUN's MTU),
// the cloud cloud->edge (and sets the MTU of its route to that edge's tunnel address). TCP MSS
// clamping then follows by itself: both gateways already rewrite the MSS of SYNs entering and
// leaving the TUN to the route MTU (`tcp option maxseg size set rt mtu`), which is what we set.
//
// Estimates are pessimistic until measured: a path that comes up for the first time counts at the
// floor (a size assumed to pass everywhere) until its search settles; the top of the search range
// is tried first, so on a clean path that takes one round trip. A path that comes back after being
// down keeps its last settled value while it is searched again (a flap should not shrink the
// tunnel for everyone). A path whose transport kind changes (S0 racing moved it from TCP, which
// passes any datagram size, to UDP) starts over from the floor.
import type { Clock, TimerHandle } from '../clock.js';
import { DATA_OVERHEAD, MAX_DATAGRAM, PROBE_MIN_LEN } from '../wire/header.js';
import { PathMtuSearch, tunnelMtu } from './mtu.js';

/** What the session tells the discovery (SessionOptions.pmtu). */
export interface SessionPmtuHooks {
  /** A path came up (first packet heard) or was declared down. */
  pathState(pathId: number, up: boolean): void;
  /** The peer answered the padded probe with this path sequence. */
  probeEchoed(pathId: number, pathSeq: number): void;
}

/** Largest IP packet the tunnel can carry for a datagram budget (probe size == data datagram size). */
export const ipFor = (datagram: number): number => datagram - DATA_OVERHEAD;
/** Datagram size needed to carry an IP packet of `ipMtu` bytes. */
export const datagramFor = (ipMtu: number): number => ipMtu + DATA_OVERHEAD;

export interface PmtuChange {
  pathId: number;
  name: string;
  /** The path's new settled MTU (largest datagram, bytes of UDP payload). */
  pathMtu: number;
  previous: number;
  /** The tunnel MTU after the change (largest IP packet a client may send). */
  tunnelMtu: number;
}

export interface PmtuOptions {
  clock: Clock;
  pathNames: readonly string[];
  /** Datagram size assumed to pass on every path. */
  floor: number;
  /** Largest datagram size worth trying (the configured tunnel MTU plus the tunnel overhead). */
  ceiling: number;
  probeTimeoutMs?: number;
  attempts?: number;
  researchIntervalMs?: number;
  /** The tunnel MTU while no path is up (the configured one). */
  fallbackTunnelMtu: number;
  /** Send a padded probe of `size` bytes on a path; its path sequence, or undefined. */
  sendProbe(pathId: number, size: number): number | undefined;
  /** The transport kind under a path now (S0 racing can change it); a change restarts the search. */
  kindOf?(pathId: number): string | undefined;
  /** The tunnel MTU changed (apply it to the TUN or the route). */
  onTunnelMtu(mtu: number): void;
  /** A path's settled MTU changed (one telemetry event per change). */
  onPathMtu?(change: PmtuChange): void;
}

export interface PmtuPathStatus {
  name: string;
  live: boolean;
  /** Settled MTU in use for this path (datagram bytes). */
  mtu: number;
  searching: boolean;
  probesSent: number;
  probesLost: number;
}

/** How often a path's transport kind is compared with the one its search measured. */
const KIND_CHECK_US = 1_000_000;

export class PmtuDiscovery implements SessionPmtuHooks {
  private readonly searches: (PathMtuSearch | undefined)[];
  private readonly live: boolean[];
  /** Settled MTU per path (the floor until its first search settles). */
  private readonly settled: number[];
  private readonly kinds: (string | undefined)[];
  private tunnel: number;
  private kindTimer: TimerHandle | undefined;
  private stopped = false;
  /** Settled changes announced (for status and tests). */
  changes = 0;

  constructor(private readonly opts: PmtuOptions) {
    const ceiling = Math.min(opts.ceiling, MAX_DATAGRAM);
    if (!(opts.floor >= PROBE_MIN_LEN && opts.floor <= ceiling)) {
      throw new RangeError(`path MTU discovery needs ${PROBE_MIN_LEN} <= floor <= ceiling, got floor ${opts.floor}, ceiling ${ceiling}`);
    }
    const n = opts.pathNames.length;
    this.searches = new Array<PathMtuSearch | undefined>(n).fill(undefined);
    this.live = new Array<boolean>(n).fill(false);
    this.settled = new Array<number>(n).fill(opts.floor);
    this.kinds = new Array<string | undefined>(n).fill(undefined);
    this.tunnel = opts.fallbackTunnelMtu;
    this.scheduleKindCheck();
  }

  /** The current tunnel MTU (largest client IP packet). */
  get tunnelMtu(): number {
    return this.tunnel;
  }

  pathState(pathId: number, up: boolean): void {
    if (this.stopped || pathId < 0 || pathId >= this.live.length) return;
    if (this.live[pathId] === up) return;
    this.live[pathId] = up;
    this.searches[pathId]?.stop();
    this.searches[pathId] = undefined;
    if (up) this.startSearch(pathId);
    this.recompute();
  }

  probeEchoed(pathId: number, pathSeq: number): void {
    this.searches[pathId]?.acked(pathSeq);
  }

  status(): PmtuPathStatus[] {
    return this.opts.pathNames.map((name, i) => {
      const s = this.searches[i]?.status();
      return { name, live: this.live[i] ?? false, mtu: this.settled[i] ?? this.opts.floor, searching: s?.searching ?? false, probesSent: s?.probesSent ?? 0, probesLost: s?.probesLost ?? 0 };
    });
  }

  stop(): void {
    this.stopped = true;
    this.kindTimer?.cancel();
    for (const s of this.searches) s?.stop();
  }

  private startSearch(pathId: number): void {
    this.kinds[pathId] = this.opts.kindOf?.(pathId);
    const search = new PathMtuSearch({
      clock: this.opts.clock,
      floor: this.opts.floor,
      ceiling: Math.min(this.opts.ceiling, MAX_DATAGRAM),
      ...(this.opts.probeTimeoutMs !== undefined ? { probeTimeoutMs: this.opts.probeTimeoutMs } : {}),
      ...(this.opts.attempts !== undefined ? { attempts: this.opts.attempts } : {}),
      ...(this.opts.researchIntervalMs !== undefined ? { researchIntervalMs: this.opts.researchIntervalMs } : {}),
      sendProbe: (size) => this.opts.sendProbe(pathId, size),
      onSettled: (mtu) => {
        if (this.searches[pathId] === search) this.settle(pathId, mtu);
      },
    });
    this.searches[pathId] = search;
    search.start();
  }

  private settle(pathId: number, mtu: number): void {
    const previous = this.settled[pathId] ?? this.opts.floor;
    if (mtu === previous) return;
    this.settled[pathId] = mtu;
    this.recompute();
    this.changes++;
    this.opts.onPathMtu?.({ pathId, name: this.opts.pathNames[pathId] ?? String(pathId), pathMtu: mtu, previous, tunnelMtu: this.tunnel });
  }

  private recompute(): void {
    const mtus = this.settled.filter((_, i) => this.live[i]);
    const t = Math.min(this.opts.fallbackTunnelMtu, tunnelMtu(mtus, DATA_OVERHEAD, this.opts.fallbackTunnelMtu));
    if (t === this.tunnel) return;
    this.tunnel = t;
    this.opts.onTunnelMtu(t);
  }

  /** A racer that changed a path's transport (TCP <-> UDP) invalidates what was measured. */
  private scheduleKindCheck(): void {
    if (!this.opts.kindOf || this.stopped) return;
    this.kindTimer = this.opts.clock.setTimer(KIND_CHECK_US, () => {
      this.live.forEach((up, i) => {
        if (!up) return;
        const kind = this.opts.kindOf?.(i);
        if (kind === this.kinds[i]) return;
        this.searches[i]?.stop();
        this.settled[i] = this.opts.floor;
        this.recompute();
        this.startSearch(i);
      });
      this.scheduleKindCheck();
    });
  }
}
