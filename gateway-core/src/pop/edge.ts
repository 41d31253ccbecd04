// The edge with several PoPs (S2-13, docs/multi-pop.md): one edge gateway per PoP, each with its
// own session, TUN device and routing table, and a selector that sends each configured
// destination through the PoP with the least measured delay(edge-PoP) + delay(PoP-destination):
//
//   ip rule from CLIENT to BYPASS lookup main        priority P-1
//   ip rule from CLIENT to DEST   lookup T(pop)      priority P     (one per destination, moved on a switch)
//   PoP i's gateway: default dev <tun>p<i> table T+1+i, its own rules at P+1+2i / P+2+2i (none)
//
// delay(edge-PoP) is the round trip of that PoP's session's best live path (the data plane's own
// measurement); delay(PoP-destination) is what the PoP reports over PopService. A switch adds the
// new rule before it deletes the old one, so no packet meets a gap.
import type { Gateway } from '../cli/main.js';
import type { EdgeConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import { ip as runIp } from '../netcfg/run.js';
import { PopClient } from './service.js';
import { choosePop, type PopMeasurement } from './select.js';
import type { TargetDelay } from './probe.js';

/** What the runner needs of one PoP's edge gateway (EdgeGateway has it). */
export interface PopEdgeGateway extends Gateway {
  status(): { sessionId: number | null; paths: { state: string; rttMs: number | null }[] };
}

export interface PopDestinationStatus {
  prefix: string;
  probe: string;
  pop: string | undefined;
  /** delay(edge-PoP) + delay(PoP-destination) per PoP, ms, from the last round. */
  totals: Record<string, number>;
  reason: string;
  switches: number;
}

export interface PopStatus {
  name: string;
  device: string;
  table: number;
  started: boolean;
  edgeRttMs: number | undefined;
  destRttMs: Record<string, number>;
  error: string | undefined;
}

export interface MultiPopDeps {
  ip?: (...args: string[]) => Promise<unknown>;
  /** The PopService client of a PoP (tests may hand in their own). */
  client?: (pop: EdgeConfig['pops'][number], cfg: EdgeConfig) => { measure(targets: readonly string[]): Promise<TargetDelay[]>; close(): void };
}

/** Per-PoP configuration: everything of the edge's, with this PoP's cloud, device, table and rule priorities. */
export function popEdgeConfig(cfg: EdgeConfig, i: number): EdgeConfig {
  const pop = cfg.pops[i];
  if (!pop) throw new Error(`no PoP ${i}`);
  return {
    ...cfg,
    control: { ...cfg.control, cloud: pop.cloud, serverName: pop.serverName ?? cfg.control.serverName },
    tunnel: { ...cfg.tunnel, device: popDevice(cfg.tunnel.device, i) },
    interception: {
      ...cfg.interception,
      // The runner installs the destination rules; the PoP's gateway only its table's default route.
      multipathDestinations: [],
      bypassDestinations: [],
      routeTable: popTable(cfg.interception.routeTable, i),
      rulePriority: cfg.interception.rulePriority + 2 + 2 * i,
    },
    // One admin endpoint per edge: the first PoP's gateway serves it.
    admin: i === 0 ? cfg.admin : { ...cfg.admin, listen: '', grpcListen: '' },
    // The TCP relay redirects by destination in the gateway's own rules, and a PoP's
    // destinations move between gateways at run time (the runner's rules): with several PoPs,
    // client TCP stays end to end (docs/tcp-relay.md).
    dataPlane: { ...cfg.dataPlane, tcpRelay: { ...cfg.dataPlane.tcpRelay, enabled: false } },
  };
}

export function popDevice(base: string, i: number): string {
  return `${base.slice(0, 12)}p${i}`;
}

export function popTable(base: number, i: number): number {
  const t = base + 1 + i;
  // 253-255 are the default, main and local tables.
  return t >= 253 && base < 253 ? t + 3 : t;
}

export class MultiPopEdge implements Gateway {
  private readonly gateways: PopEdgeGateway[];
  private readonly started: boolean[];
  private readonly clients: ReturnType<NonNullable<MultiPopDeps['client']>>[];
  private readonly pops: PopStatus[];
  private readonly dests: PopDestinationStatus[];
  private readonly ip: (...args: string[]) => Promise<unknown>;
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  private stopping = false;

  constructor(private readonly cfg: EdgeConfig, private readonly log: Logger, make: (cfg: EdgeConfig, pop: string) => PopEdgeGateway, deps: MultiPopDeps = {}) {
    if (cfg.pops.length === 0) throw new Error('MultiPopEdge needs at least one PoP (pops)');
    this.ip = deps.ip ?? runIp;
    const client = deps.client ?? ((pop, c) => new PopClient({ target: pop.cloud, tls: c.control.tls, serverName: pop.serverName ?? c.control.serverName }));
    this.gateways = cfg.pops.map((p, i) => make(popEdgeConfig(cfg, i), p.name));
    this.started = cfg.pops.map(() => false);
    this.clients = cfg.pops.map((p) => client(p, cfg));
    this.pops = cfg.pops.map((p, i) => ({
      name: p.name, device: popDevice(cfg.tunnel.device, i), table: popTable(cfg.interception.routeTable, i), started: false,
      edgeRttMs: undefined, destRttMs: {}, error: undefined,
    }));
    this.dests = cfg.popSelection.destinations.map((d) => ({ prefix: d.prefix, probe: d.probe, pop: undefined, totals: {}, reason: 'not chosen yet', switches: 0 }));
  }

  /** Resolves when the first PoP's session is up; the others come up in the background. */
  async start(): Promise<void> {
    await this.removeRules();
    const starts = this.gateways.map((g, i) => g.start().then(() => {
      this.started[i] = true;
      const p = this.pops[i];
      if (p) p.started = true;
      this.log.info({ pop: this.cfg.pops[i]?.name }, 'PoP session up');
    }));
    for (const [i, s] of starts.entries()) s.catch((e: Error) => { if (!this.stopping) this.log.error({ pop: this.cfg.pops[i]?.name, err: e.message }, 'PoP gateway failed to start'); });
    await Promise.any(starts);
    for (const from of this.cfg.interception.clientSubnets) {
      for (const to of this.cfg.interception.bypassDestinations) await this.rule('add', from, to, 'main', this.cfg.interception.rulePriority - 1);
    }
    await this.selectRound();
    this.timer = setInterval(() => { this.round ??= this.selectRound().finally(() => { this.round = undefined; }); }, this.cfg.popSelection.intervalMs);
  }

  status(): { pops: PopStatus[]; destinations: PopDestinationStatus[] } {
    return { pops: this.pops.map((p) => ({ ...p, destRttMs: { ...p.destRttMs } })), destinations: this.dests.map((d) => ({ ...d, totals: { ...d.totals } })) };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    await this.round;
    await this.removeRules();
    for (const c of this.clients) c.close();
    await Promise.all(this.gateways.map((g) => g.stop().catch((e: Error) => this.log.error({ err: e.message }, 'PoP gateway stop failed'))));
  }

  /** One measurement round: edge RTT per PoP, PoP-destination RTTs, then each destination's choice. */
  private async selectRound(): Promise<void> {
    const targets = [...new Set(this.dests.map((d) => d.probe))];
    const measurements: PopMeasurement[] = await Promise.all(this.pops.map(async (p, i) => {
      const g = this.gateways[i];
      if (!this.started[i] || !g) return { name: p.name, edgeRttMs: undefined, destRttMs: new Map<string, number>() };
      const rtts = g.status().paths.filter((x) => x.state === 'up' && x.rttMs !== null).map((x) => x.rttMs as number);
      p.edgeRttMs = rtts.length > 0 ? Math.min(...rtts) : undefined;
      const dest = new Map<string, number>();
      try {
        for (const d of await this.clients[i]!.measure(targets)) if (d.rttMs !== undefined) dest.set(d.target, d.rttMs);
        p.error = undefined;
      } catch (e) {
        if (p.error !== (e as Error).message) this.log.warn({ pop: p.name, err: (e as Error).message }, 'PoP measurement failed');
        p.error = (e as Error).message;
      }
      p.destRttMs = Object.fromEntries(dest);
      return { name: p.name, edgeRttMs: p.edgeRttMs, destRttMs: dest };
    }));
    if (this.stopping) return;
    for (const d of this.dests) {
      const c = choosePop(d.probe, measurements, d.pop, this.cfg.popSelection);
      // Nothing measured yet: any PoP with a session beats no route for the destination.
      const next = c.pop ?? this.pops.find((p) => p.started)?.name;
      d.totals = c.totals;
      d.reason = c.pop ? c.reason : 'no measurements yet: first PoP with a session';
      if (next === undefined || next === d.pop) continue;
      await this.move(d, next);
    }
  }

  private async move(d: PopDestinationStatus, to: string): Promise<void> {
    const from = d.pop;
    const table = (name: string | undefined) => this.pops.find((p) => p.name === name)?.table;
    const newTable = table(to);
    if (newTable === undefined) return;
    const prio = this.cfg.interception.rulePriority;
    for (const c of this.cfg.interception.clientSubnets) await this.rule('add', c, d.prefix, String(newTable), prio);
    const oldTable = table(from);
    if (oldTable !== undefined) for (const c of this.cfg.interception.clientSubnets) await this.rule('del', c, d.prefix, String(oldTable), prio);
    d.pop = to;
    if (from !== undefined) d.switches++;
    this.log.info({ destination: d.prefix, from: from ?? null, to, totalsMs: d.totals, reason: d.reason }, 'PoP choice');
  }

  private async rule(op: 'add' | 'del', from: string, to: string, table: string, priority: number): Promise<void> {
    try {
      await this.ip('rule', op, 'from', from, 'to', to, 'lookup', table, 'priority', String(priority));
    } catch (e) {
      this.log.error({ op, from, to, table, err: (e as Error).message }, 'PoP rule change failed');
    }
  }

  private async removeRules(): Promise<void> {
    for (const prio of [this.cfg.interception.rulePriority, this.cfg.interception.rulePriority - 1]) {
      for (let i = 0; i < 4096; i++) {
        const ok = await this.ip('rule', 'del', 'priority', String(prio)).then(() => true, () => false);
        if (!ok) break;
      }
    }
  }
}
