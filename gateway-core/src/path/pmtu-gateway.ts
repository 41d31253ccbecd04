// Path MTU discovery as a gateway runs it for one session: the discovery itself (pmtu.ts), the
// step that applies a new tunnel MTU to the host (the edge's TUN device, or the cloud's route to
// one edge's tunnel address), and one telemetry event per path MTU change. Kept here so edge.ts
// and cloud.ts only create it and hand its hooks to the session.
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import { ip } from '../netcfg/run.js';
import type { EventInput } from '../telemetry/events.js';
import { DATA_OVERHEAD } from '../wire/header.js';
import type { PmtuConfig } from './pmtu-config.js';
import { PmtuDiscovery } from './pmtu.js';
import { TCP_IP_HEADERS, clampMss } from './mss.js';

/**
 * Runs `ip` changes one at a time, newest value wins: MTU changes can come faster than `ip`
 * returns, and an older value must never land after a newer one.
 */
export class MtuApplier {
  private running = false;
  private pending: number | undefined;
  private closed = false;
  private idle: Promise<void> = Promise.resolve();
  private wake: (() => void) | undefined;
  /** The value last applied successfully. */
  applied: number | undefined;

  constructor(private readonly apply: (mtu: number) => Promise<unknown>, private readonly log: Logger, private readonly what: string) {}

  set(mtu: number): void {
    if (this.closed) return;
    this.pending = mtu;
    if (!this.running) void this.drain();
  }

  /** Stop applying; resolves once a change under way has finished (then undo it safely). */
  close(): Promise<void> {
    this.closed = true;
    this.pending = undefined;
    return this.idle;
  }

  private async drain(): Promise<void> {
    this.running = true;
    this.idle = new Promise((r) => { this.wake = r; });
    while (this.pending !== undefined) {
      const mtu = this.pending;
      this.pending = undefined;
      try {
        await this.apply(mtu);
        this.applied = mtu;
      } catch (e) {
        this.log.error({ err: (e as Error).message, mtu }, `cannot set the MTU of ${this.what}`);
      }
    }
    this.running = false;
    this.wake?.();
  }
}

export interface GatewayPmtuOptions {
  settings: PmtuConfig;
  /** The configured (and agreed) tunnel MTU: the most the discovery will raise it to. */
  tunnelMtu: number;
  pathNames: readonly string[];
  clock: Clock;
  sessionId: number;
  sendProbe(pathId: number, size: number): number | undefined;
  kindOf?(pathId: number): string | undefined;
  /** Apply a new tunnel MTU to the host. */
  apply(mtu: number): Promise<unknown>;
  /** What `apply` changes, for log lines ("TUN braid0", "route to 10.99.0.2"). */
  target: string;
  event?(e: EventInput): void;
  log: Logger;
}

export interface GatewayPmtu {
  discovery: PmtuDiscovery;
  applier: MtuApplier;
  /**
   * For each packet the session delivers (coming out of the tunnel): a SYN's MSS is lowered to
   * fit this gateway's tunnel MTU (path/mss.ts explains why nftables alone is not enough).
   */
  clampDelivered(ip: Buffer): void;
  /** SYNs whose MSS clampDelivered lowered. */
  readonly clamped: number;
  stop(): Promise<void>;
}

/** Start discovery for one session, or undefined when dataPlane.pmtu.enabled is false. */
export function startGatewayPmtu(o: GatewayPmtuOptions): GatewayPmtu | undefined {
  if (!o.settings.enabled) return undefined;
  const ceiling = o.tunnelMtu + DATA_OVERHEAD;
  const applier = new MtuApplier(o.apply, o.log, o.target);
  const discovery = new PmtuDiscovery({
    clock: o.clock,
    pathNames: o.pathNames,
    // A floor above what the configured tunnel MTU needs would only be probed for nothing.
    floor: Math.min(o.settings.floor, ceiling),
    ceiling,
    probeTimeoutMs: o.settings.probeTimeoutMs,
    researchIntervalMs: o.settings.researchIntervalS * 1000,
    fallbackTunnelMtu: o.tunnelMtu,
    sendProbe: o.sendProbe,
    ...(o.kindOf ? { kindOf: o.kindOf } : {}),
    onTunnelMtu: (mtu) => {
      o.log.info({ session: o.sessionId, tunnelMtu: mtu, target: o.target }, 'tunnel MTU changed');
      applier.set(mtu);
    },
    onPathMtu: (c) => {
      o.log.info({ session: o.sessionId, path: c.name, pathMtu: c.pathMtu, previous: c.previous, tunnelMtu: c.tunnelMtu }, 'path MTU changed');
      o.event?.({
        kind: 'path.mtu', sessionId: o.sessionId, path: c.name,
        message: `path ${c.name} MTU ${c.previous} -> ${c.pathMtu} bytes (tunnel MTU ${c.tunnelMtu})`,
        attributes: { 'braid.path.id': c.pathId, 'braid.path.mtu': c.pathMtu, 'braid.path.mtu.previous': c.previous, 'braid.tunnel.mtu': c.tunnelMtu },
      });
    },
  });
  let clamped = 0;
  return {
    discovery,
    applier,
    clampDelivered: (ip) => {
      if (clampMss(ip, discovery.tunnelMtu - TCP_IP_HEADERS)) clamped++;
    },
    get clamped() { return clamped; },
    stop: async () => {
      discovery.stop();
      await applier.close();
    },
  };
}

/** Edge: the tunnel MTU is the TUN device's MTU (TCP MSS follows through `rt mtu`). */
export const setLinkMtu = (dev: string) => (mtu: number): Promise<string> => ip('link', 'set', 'dev', dev, 'mtu', String(mtu));

/**
 * Cloud: one TUN serves every edge, so each edge's tunnel MTU goes on a host route to its tunnel
 * address; the kernel then refuses (with ICMP to the server, inside the data centre) and the MSS
 * clamp shrinks whatever would not fit that edge's paths.
 */
export const setRouteMtu = (dev: string, address: string) => (mtu: number): Promise<string> =>
  ip('route', 'replace', `${address}/32`, 'dev', dev, 'mtu', String(mtu));

export const deleteRoute = (dev: string, address: string): Promise<void> =>
  ip('route', 'del', `${address}/32`, 'dev', dev).then(() => undefined, () => undefined);
