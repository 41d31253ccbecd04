// The test network: client -> edge (multi-SIM router) -> N carriers -> cloud -> server, each in
// its own network namespace, joined by veth pairs. Without Braid, the edge's preferred default
// route (wan0) carries everything over carrier 0, NATed by the edge like a real router would.
//
//   client lan 10.10.0.2 ── lan0 10.10.0.1  edge  wan{i} 10.2{i}.0.2 ── edge 10.2{i}.0.1  car{i}
//   car{i} cloud 10.3{i}.0.1 ── car{i} 10.3{i}.0.2  cloud (198.18.0.1 on lo)  srv0 10.40.0.1
//   cloud srv0 ── up0 10.40.0.2 + 10.40.0.3  server
import {
  addAddress, addNamespace, addVethPair, deleteNamespace, deleteNamespaceSync, execIn, inNs,
  linkCounters, nft, replaceRoute, setLink, setTbf, sysctl, type ExecOptions, type ExecResult, type LinkCounters,
} from './netns.js';
import { ManagedProcess, type SpawnOptions } from './process.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DirStats } from '../emulator/link.js';
import { validateCarrierEmulation, type CarrierEmulation } from '../emulator/spec.js';

export type { CarrierEmulation, DirStats };

export interface CarrierSpec {
  name: string;
  /** tbf rate on both directions; unlimited when absent. */
  rateMbit?: number;
  /** Queue that may build up at the rate before drops (default 50 ms). */
  queueMs?: number;
  /**
   * Trace-driven emulation (test/emulator) instead of tbf: a user-space link emulator runs in
   * the carrier's namespace. Exclusive with rateMbit.
   */
  emulate?: CarrierEmulation;
}

/** What a carrier's emulator reports (its latest stats line). */
export interface EmulatorStats {
  /** Seconds since the emulator started. */
  t: number;
  up: DirStats & { droppedWrite: number };
  down: DirStats & { droppedWrite: number };
}

export interface TopologyOptions {
  /** Namespace name prefix; default short and unique per process. */
  prefix?: string;
  carriers: CarrierSpec[];
}

/** Fixed addresses of the topology. */
export const ADDR = {
  clientSubnet: '10.10.0.0/24',
  client: '10.10.0.2',
  edgeLan: '10.10.0.1',
  cloudPublic: '198.18.0.1',
  cloudServerSide: '10.40.0.1',
  serverSubnet: '10.40.0.0/24',
  /** The server's first address: the multipath destination in tests. */
  server: '10.40.0.2',
  /** The server's second address: a non-multipath destination in tests. */
  serverAlt: '10.40.0.3',
  edgeWan: (i: number): string => `10.2${i}.0.2`,
  carrierEdgeSide: (i: number): string => `10.2${i}.0.1`,
  carrierCloudSide: (i: number): string => `10.3${i}.0.1`,
  cloudCarrierSide: (i: number): string => `10.3${i}.0.2`,
  edgeWanSubnet: (i: number): string => `10.2${i}.0.0/24`,
} as const;

/** Interface names, per namespace. */
export const IFACE = {
  clientLan: 'lan',
  edgeLan: 'lan0',
  edgeWan: (i: number): string => `wan${i}`,
  carrierEdgeSide: 'edge',
  carrierCloudSide: 'cloud',
  cloudCarrier: (i: number): string => `car${i}`,
  cloudPublic: 'lo',
  cloudServerSide: 'srv0',
  serverUp: 'up0',
} as const;

export interface CarrierCounters {
  /** Edge -> cloud, counted as sent out of the carrier's cloud side (after its shaper). */
  up: { bytes: number; packets: number };
  /** Cloud -> edge, counted as sent out of the carrier's edge side (after its shaper). */
  down: { bytes: number; packets: number };
  edgeSide: LinkCounters;
  cloudSide: LinkCounters;
}

export interface Topology {
  readonly prefix: string;
  readonly ns: { client: string; edge: string; cloud: string; server: string; carriers: string[] };
  readonly carriers: readonly CarrierSpec[];
  readonly addr: typeof ADDR;
  readonly iface: typeof IFACE;
  exec(ns: string, argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  spawn(ns: string, argv: string[], opts?: SpawnOptions): ManagedProcess;
  /** Stop a process started with spawn() and forget it. */
  release(p: ManagedProcess): Promise<void>;
  setCarrierDown(i: number): Promise<void>;
  setCarrierUp(i: number): Promise<void>;
  carrierCounters(i: number): Promise<CarrierCounters>;
  /** Fresh stats of carrier i's emulator (asks it with SIGUSR1); throws if it is not emulated. */
  emulatorStats(i: number): Promise<EmulatorStats>;
  destroy(): Promise<void>;
}

export function defaultPrefix(): string {
  return `br${process.pid % 100000}`;
}

const MAX_CARRIERS = 10; // the 10.2{i} / 10.3{i} address plan has one digit for the carrier

export async function createTopology(opts: TopologyOptions): Promise<Topology> {
  if (opts.carriers.length === 0 || opts.carriers.length > MAX_CARRIERS) {
    throw new Error(`createTopology: 1..${MAX_CARRIERS} carriers, got ${opts.carriers.length}`);
  }
  opts.carriers.forEach((c, i) => {
    if (c.emulate === undefined) return;
    if (c.rateMbit !== undefined) throw new Error(`createTopology: carriers[${i}] (${c.name}): rateMbit and emulate are exclusive`);
    validateCarrierEmulation(c.emulate, `carriers[${i}].emulate`);
  });
  const topo = new NamespaceTopology(opts.prefix ?? defaultPrefix(), opts.carriers);
  try {
    await topo.build();
  } catch (err) {
    await topo.destroy();
    throw err;
  }
  return topo;
}

class NamespaceTopology implements Topology {
  readonly ns: Topology['ns'];
  readonly addr = ADDR;
  readonly iface = IFACE;
  private readonly created: string[] = [];
  private readonly procs = new Set<ManagedProcess>();
  private readonly emulators = new Map<number, EmulatorProcess>();
  private emuDir: string | undefined;
  private destroyed: Promise<void> | undefined;

  constructor(readonly prefix: string, readonly carriers: readonly CarrierSpec[]) {
    this.ns = {
      client: `${prefix}-client`,
      edge: `${prefix}-edge`,
      cloud: `${prefix}-cloud`,
      server: `${prefix}-server`,
      carriers: carriers.map((_, i) => `${prefix}-car${i}`),
    };
  }

  async build(): Promise<void> {
    live.add(this);
    installExitHandlers();
    const { client, edge, cloud, server, carriers } = this.ns;
    // Leftovers of an earlier run that died hard (same pid, same prefix) would make `add` fail.
    for (const n of this.allNamespaces()) await deleteNamespace(n);
    for (const n of this.allNamespaces()) {
      await addNamespace(n);
      this.created.push(n);
    }
    // Forwarding everywhere but the two hosts; no reverse-path filtering: the gateways receive
    // on one interface what they would route out of another (tunnels, several default routes).
    for (const n of [edge, cloud, ...carriers]) {
      await sysctl(n, { 'net.ipv4.ip_forward': 1, 'net.ipv4.conf.all.rp_filter': 0, 'net.ipv4.conf.default.rp_filter': 0 });
    }

    await addVethPair(client, IFACE.clientLan, edge, IFACE.edgeLan);
    await addAddress(client, IFACE.clientLan, `${ADDR.client}/24`);
    await addAddress(edge, IFACE.edgeLan, `${ADDR.edgeLan}/24`);
    await replaceRoute(client, { to: 'default', via: ADDR.edgeLan });

    // This kernel has no dummy driver; the public address lives on lo, which routes it the same.
    await addAddress(cloud, IFACE.cloudPublic, `${ADDR.cloudPublic}/32`);
    await addVethPair(cloud, IFACE.cloudServerSide, server, IFACE.serverUp);
    await addAddress(cloud, IFACE.cloudServerSide, `${ADDR.cloudServerSide}/24`);
    await addAddress(server, IFACE.serverUp, `${ADDR.server}/24`);
    await addAddress(server, IFACE.serverUp, `${ADDR.serverAlt}/24`);
    await replaceRoute(server, { to: 'default', via: ADDR.cloudServerSide });

    for (let i = 0; i < this.carriers.length; i++) {
      const car = carriers[i]!;
      const spec = this.carriers[i]!;
      await addVethPair(edge, IFACE.edgeWan(i), car, IFACE.carrierEdgeSide);
      await addVethPair(car, IFACE.carrierCloudSide, cloud, IFACE.cloudCarrier(i));
      await addAddress(car, IFACE.carrierEdgeSide, `${ADDR.carrierEdgeSide(i)}/24`);
      await addAddress(car, IFACE.carrierCloudSide, `${ADDR.carrierCloudSide(i)}/24`);
      await addAddress(cloud, IFACE.cloudCarrier(i), `${ADDR.cloudCarrierSide(i)}/24`);
      await replaceRoute(car, { to: 'default', via: ADDR.cloudCarrierSide(i) });
      await replaceRoute(cloud, { to: ADDR.edgeWanSubnet(i), via: ADDR.carrierCloudSide(i) });
      await this.configureEdgeWan(i);
      if (spec.rateMbit !== undefined) await this.shapeCarrier(i, spec);
    }
    // The emulators start together: each pays Node + tsx start-up (about a second).
    await Promise.all(this.carriers.map((spec, i) => (spec.emulate ? this.startEmulator(i, spec.emulate) : undefined)));

    // Interfaces moved into a namespace do not reliably pick up conf.default; set each one.
    for (const n of [edge, cloud]) {
      const devs = await execIn(n, ['ls', '/proc/sys/net/ipv4/conf']);
      const settings: Record<string, number> = {};
      for (const d of devs.stdout.split('\n').filter(Boolean)) settings[`net.ipv4.conf.${d}.rp_filter`] = 0;
      await sysctl(n, settings);
    }

    // The router's own NAT for client traffic that leaves directly on a carrier (not tunnelled).
    await nft(edge, [
      'table ip harness {',
      '  chain postrouting {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      `    ip saddr ${ADDR.clientSubnet} oifname "wan*" masquerade`,
      '  }',
      '}',
    ].join('\n'));
  }

  /**
   * Carrier shaping lives in one method so that the tbf stand-in can be swapped for another
   * emulator (trace-driven cellular links) without touching the rest of the topology.
   */
  private async shapeCarrier(i: number, spec: CarrierSpec): Promise<void> {
    const car = this.ns.carriers[i]!;
    const tbf = { rateMbit: spec.rateMbit!, queueMs: spec.queueMs ?? 50 };
    await setTbf(car, IFACE.carrierEdgeSide, tbf); // download direction
    await setTbf(car, IFACE.carrierCloudSide, tbf); // upload direction
  }

  private async startEmulator(i: number, emulate: CarrierEmulation): Promise<void> {
    // The spec goes through a file: generated traces can hold a million opportunities.
    this.emuDir ??= mkdtempSync(join(tmpdir(), `braid-emu-${this.prefix}-`));
    const specFile = join(this.emuDir, `car${i}.json`);
    // The emulator runs in the repository root: make trace paths independent of our cwd.
    const abs = (d: CarrierEmulation['up']): CarrierEmulation['up'] => (d.traceFile ? { ...d, traceFile: resolve(d.traceFile) } : d);
    writeFileSync(specFile, JSON.stringify({ up: abs(emulate.up), down: abs(emulate.down) }));
    const emu = new EmulatorProcess();
    const p = this.spawn(this.ns.carriers[i]!, [
      process.execPath, '--conditions=source', '--import', 'tsx', EMULATOR_MAIN, '--spec', specFile,
      '--edge', IFACE.carrierEdgeSide, '--cloud', IFACE.carrierCloudSide,
    ], { name: `emulator car${i}`, cwd: REPO_ROOT, keepBytes: 64 * 1024, onStdout: (c) => emu.onStdout(c) });
    emu.proc = p;
    this.emulators.set(i, emu);
    await p.waitFor(/emulator ready/, 20_000);
  }

  async emulatorStats(i: number): Promise<EmulatorStats> {
    this.carrierIndex(i);
    const emu = this.emulators.get(i);
    if (!emu?.proc) throw new Error(`carrier ${i} (${this.carriers[i]!.name}) is not emulated`);
    return emu.fresh();
  }

  private async configureEdgeWan(i: number): Promise<void> {
    await addAddress(this.ns.edge, IFACE.edgeWan(i), `${ADDR.edgeWan(i)}/24`);
    // One default route per carrier like a multi-SIM router; the lowest metric (wan0) wins.
    await replaceRoute(this.ns.edge, { to: 'default', via: ADDR.carrierEdgeSide(i), dev: IFACE.edgeWan(i), metric: 10 + i });
  }

  private allNamespaces(): string[] {
    return [this.ns.client, this.ns.edge, ...this.ns.carriers, this.ns.cloud, this.ns.server];
  }

  exec(ns: string, argv: string[], opts?: ExecOptions): Promise<ExecResult> {
    return execIn(ns, argv, opts);
  }

  spawn(ns: string, argv: string[], opts: SpawnOptions = {}): ManagedProcess {
    if (this.destroyed) throw new Error('topology destroyed');
    const p = new ManagedProcess(inNs(ns, argv), { name: argv[0], ...opts });
    this.procs.add(p);
    void p.exited.then(() => this.procs.delete(p));
    return p;
  }

  async release(p: ManagedProcess): Promise<void> {
    await p.stop();
    this.procs.delete(p);
  }

  private carrierIndex(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.carriers.length) throw new Error(`no carrier ${i}`);
  }

  async setCarrierDown(i: number): Promise<void> {
    this.carrierIndex(i);
    await setLink(this.ns.edge, IFACE.edgeWan(i), 'down');
  }

  async setCarrierUp(i: number): Promise<void> {
    this.carrierIndex(i);
    await setLink(this.ns.edge, IFACE.edgeWan(i), 'up');
    // Taking the link down flushed its default route; the address survives, but restore both.
    await this.configureEdgeWan(i);
  }

  async carrierCounters(i: number): Promise<CarrierCounters> {
    this.carrierIndex(i);
    const car = this.ns.carriers[i]!;
    const [edgeSide, cloudSide] = await Promise.all([
      linkCounters(car, IFACE.carrierEdgeSide), linkCounters(car, IFACE.carrierCloudSide),
    ]);
    return {
      up: { bytes: cloudSide.txBytes, packets: cloudSide.txPackets },
      down: { bytes: edgeSide.txBytes, packets: edgeSide.txPackets },
      edgeSide, cloudSide,
    };
  }

  destroy(): Promise<void> {
    this.destroyed ??= (async () => {
      await Promise.all([...this.procs].map((p) => p.stop(2000)));
      this.procs.clear();
      this.emulators.clear();
      if (this.emuDir) rmSync(this.emuDir, { recursive: true, force: true });
      for (const n of this.allNamespaces()) await deleteNamespace(n);
      live.delete(this);
    })();
    return this.destroyed;
  }

  /** Last-chance cleanup from an exit handler: synchronous, no waiting for anything. */
  destroySync(): void {
    for (const p of this.procs) p.killNow();
    this.procs.clear();
    for (const n of this.allNamespaces()) deleteNamespaceSync(n);
    if (this.emuDir) rmSync(this.emuDir, { recursive: true, force: true });
    live.delete(this);
  }
}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EMULATOR_MAIN = fileURLToPath(new URL('../emulator/main.ts', import.meta.url));

/** The emulator's stdout: one JSON stats line per second (and one per SIGUSR1). */
class EmulatorProcess {
  proc: ManagedProcess | undefined;
  latest: EmulatorStats | undefined;
  private partial = '';
  private lines = 0;
  private waiters: (() => void)[] = [];

  onStdout(chunk: Buffer): void {
    this.partial += chunk.toString('utf8');
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      const line = this.partial.slice(0, nl);
      this.partial = this.partial.slice(nl + 1);
      try {
        this.latest = JSON.parse(line) as EmulatorStats;
        this.lines++;
      } catch {
        continue; // not a stats line
      }
      for (const w of this.waiters.splice(0)) w();
    }
  }

  /** Asks for a stats line now (SIGUSR1) and waits up to 1 s for it; else the latest one. */
  async fresh(): Promise<EmulatorStats> {
    const p = this.proc!;
    if (p.running && p.pid !== undefined) {
      const seen = this.lines;
      const got = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
      try {
        process.kill(p.pid, 'SIGUSR1');
      } catch {
        // exited meanwhile: the last line it printed is the answer
      }
      await got;
      if (this.lines === seen && !this.latest) throw new Error(`${p.name}: no stats line`);
    }
    if (!this.latest) throw new Error(`${p.name}: no stats line (exited ${p.exitCode})\n${p.tail(10)}`);
    return this.latest;
  }
}

// --- cleanup when the process ends without calling destroy() --------------------------------

const live = new Set<NamespaceTopology>();
let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const t of [...live]) t.destroySync();
  });
  for (const [sig, num] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]] as const) {
    const handler = (): void => {
      // A program that handles the signal itself (the demo) shuts down in order and calls
      // destroy(); only when nobody else listens do we stand in for the default action.
      if (process.listenerCount(sig) > 1) return;
      for (const t of [...live]) t.destroySync();
      process.exit(128 + num);
    };
    process.on(sig, handler);
  }
}
