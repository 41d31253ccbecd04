// Once a second: how much each path carried (the split), what the client received (the merge),
// turned into rates and shares, and rendered as the live table.
import { linkCounters } from '../harness/netns.js';
import type { CarrierSpec, Topology } from '../harness/topology.js';
import { describeCarrier } from './carriers.js';
import type { TrafficStats } from './traffic.js';

export interface PathSample {
  name: string;
  state: string;
  /** Edge -> cloud bytes. */
  txBytes: number;
  /** Cloud -> edge bytes. */
  rxBytes: number;
  rttMs: number | null;
}

/** Where per-path numbers come from: the edge's /status with Braid, carrier counters without. */
export type PathSource = () => Promise<PathSample[]>;

export function carrierCounterSource(topo: Topology): PathSource {
  return async () => Promise.all(topo.carriers.map(async (c, i) => {
    const k = await topo.carrierCounters(i);
    return { name: c.name, state: 'direct', txBytes: k.up.bytes, rxBytes: k.down.bytes, rttMs: null };
  }));
}

export interface PathRow extends PathSample {
  shaper: string;
  txMbps: number;
  rxMbps: number;
  /** Share of all bytes (both directions) carried so far. */
  share: number;
}

export interface Snapshot {
  elapsedS: number;
  paths: PathRow[];
  /** What the client's LAN link carried in the last interval: the merged result. */
  clientDownMbps: number;
  clientUpMbps: number;
  goodputMbps: number;
  sourceError?: string;
}

export class Monitor {
  private prevPaths = new Map<string, PathSample>();
  private prevClient: { rx: number; tx: number } | undefined;
  private prevAt = 0;
  last: Snapshot | undefined;
  lastPaths: PathSample[] = [];

  constructor(
    private readonly topo: Topology,
    private readonly source: PathSource,
    private readonly carriers: readonly CarrierSpec[],
    private readonly startedAt: number,
    private readonly goodBytes: () => number,
  ) {}

  async sample(): Promise<Snapshot> {
    const now = Date.now();
    const dt = this.prevAt ? (now - this.prevAt) / 1000 : 0;
    let paths: PathSample[] = this.lastPaths;
    let sourceError: string | undefined;
    try {
      paths = await this.source();
    } catch (err) {
      sourceError = (err as Error).message.split('\n')[0];
    }
    const lan = await linkCounters(this.topo.ns.client, this.topo.iface.clientLan);
    const rate = (bytes: number): number => (dt > 0 ? (bytes * 8) / dt / 1e6 : 0);
    const total = paths.reduce((s, p) => s + p.txBytes + p.rxBytes, 0);
    const rows: PathRow[] = paths.map((p) => {
      const prev = this.prevPaths.get(p.name);
      const carrier = this.carriers.find((c) => c.name === p.name);
      return {
        ...p,
        shaper: carrier ? describeCarrier(carrier) : '',
        txMbps: prev ? rate(p.txBytes - prev.txBytes) : 0,
        rxMbps: prev ? rate(p.rxBytes - prev.rxBytes) : 0,
        share: total > 0 ? (p.txBytes + p.rxBytes) / total : 0,
      };
    });
    const snap: Snapshot = {
      elapsedS: (now - this.startedAt) / 1000,
      paths: rows,
      clientDownMbps: this.prevClient ? rate(lan.rxBytes - this.prevClient.rx) : 0,
      clientUpMbps: this.prevClient ? rate(lan.txBytes - this.prevClient.tx) : 0,
      goodputMbps: now > this.startedAt ? (this.goodBytes() * 8) / ((now - this.startedAt) / 1000) / 1e6 : 0,
      ...(sourceError ? { sourceError } : {}),
    };
    this.prevPaths = new Map(paths.map((p) => [p.name, p]));
    this.lastPaths = paths;
    this.prevClient = { rx: lan.rxBytes, tx: lan.txBytes };
    this.prevAt = now;
    this.last = snap;
    return snap;
  }
}

const pad = (s: string, n: number): string => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number): string => (s.length >= n ? s : ' '.repeat(n - s.length) + s);
const mbps = (x: number): string => x.toFixed(1);

export function renderTable(snap: Snapshot, stats: TrafficStats, header: string): string {
  const lines: string[] = [];
  lines.push(header);
  lines.push(`t=${snap.elapsedS.toFixed(0)}s`);
  lines.push('');
  lines.push(`${pad('path', 13)}${pad('carrier', 22)}${pad('state', 10)}${lpad('tx Mbit/s', 10)}${lpad('rx Mbit/s', 10)}${lpad('share', 8)}${lpad('RTT ms', 8)}`);
  for (const p of snap.paths) {
    lines.push(`${pad(p.name, 13)}${pad(p.shaper, 22)}${pad(p.state, 10)}${lpad(mbps(p.txMbps), 10)}${lpad(mbps(p.rxMbps), 10)}` +
      `${lpad(`${(p.share * 100).toFixed(0)}%`, 8)}${lpad(p.rttMs === null ? '-' : p.rttMs.toFixed(0), 8)}`);
  }
  const sumTx = snap.paths.reduce((s, p) => s + p.txMbps, 0);
  const sumRx = snap.paths.reduce((s, p) => s + p.rxMbps, 0);
  lines.push(`${pad('split', 45)}${lpad(mbps(sumTx), 10)}${lpad(mbps(sumRx), 10)}`);
  lines.push(`${pad('merged (client link)', 45)}${lpad(mbps(snap.clientUpMbps), 10)}${lpad(mbps(snap.clientDownMbps), 10)}`);
  lines.push('');
  const d = stats.downloads;
  const u = stats.uploads;
  const udp = stats.udp;
  const loss = udp.packets > 0 ? `${((udp.lostPackets / udp.packets) * 100).toFixed(2)}%` : '-';
  lines.push(`goodput ${mbps(snap.goodputMbps)} Mbit/s average   downloads ${d.ok} ok / ${d.failed} failed   ` +
    `uploads ${u.ok} ok / ${u.failed} failed   udp loss ${loss}`);
  if (snap.sourceError) lines.push(`(path status unavailable: ${snap.sourceError})`);
  const lastErr = stats.errors.at(-1);
  if (lastErr) lines.push(`last error: ${lastErr.split('\n')[0]}`);
  return lines.join('\n');
}

/** End of run: what each path carried in total, and the transfers. */
export function renderSummary(paths: { name: string; txBytes: number; rxBytes: number; share: number }[], stats: TrafficStats): string {
  const mb = (b: number): string => (b / 1e6).toFixed(1);
  const lines = [`${pad('path', 8)}${lpad('tx MB', 10)}${lpad('rx MB', 10)}${lpad('share', 8)}`];
  for (const p of paths) lines.push(`${pad(p.name, 8)}${lpad(mb(p.txBytes), 10)}${lpad(mb(p.rxBytes), 10)}${lpad(`${(p.share * 100).toFixed(0)}%`, 8)}`);
  const d = stats.downloads;
  const u = stats.uploads;
  const udp = stats.udp;
  const loss = udp.packets > 0 ? `${((udp.lostPackets / udp.packets) * 100).toFixed(2)}%` : '-';
  lines.push(`downloads ${d.ok} ok / ${d.failed} failed (${d.aborted} cut off at the end), uploads ${u.ok} ok / ${u.failed} failed, ` +
    `udp ${udp.runs} runs, loss ${loss}`);
  for (const e of stats.errors.slice(0, 5)) lines.push(`error: ${e.split('\n')[0]}`);
  return lines.join('\n');
}
